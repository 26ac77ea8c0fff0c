"""Erasure recovery in the presence of corrupted chunks: `proto.availability.recover` drops every
chunk whose merkle proof fails, so corrupted chunks can neither poison nor stand in for good ones."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.availability import ErasureChunk, chunk_valid, make_chunks, recover
from proto.candidate import AvailableData, PersistedValidationData, PoV
from proto.erasure import ErasureError, recovery_threshold
from proto.errors import DecodeError


def available(blob: bytes) -> AvailableData:
    return AvailableData(PoV(blob), PersistedValidationData(b"parent", 3, b"\x07" * 32, 1 << 20))


def corrupt(c: ErasureChunk, rnd: random.Random) -> ErasureChunk:
    data = bytearray(c.chunk or b"\x00")
    data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
    return ErasureChunk(bytes(data), c.index, c.proof)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000), st.integers(2, 50), st.randoms(use_true_random=False))
def test_k_good_chunks_recover_despite_corrupted_ones(blob: bytes, n: int,
                                                     rnd: random.Random) -> None:
    d = available(blob)
    root, chunks = make_chunks(d, n)
    k = recovery_threshold(n)
    rnd.shuffle(chunks)
    good, rest = chunks[:k], chunks[k:]
    bad = [corrupt(c, rnd) for c in rest]
    assert all(chunk_valid(root, c, n) for c in good)
    assert not any(chunk_valid(root, c, n) for c in bad)
    mixed = bad + good
    rnd.shuffle(mixed)
    assert recover(mixed, n, root) == d


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=2000), st.integers(4, 50), st.randoms(use_true_random=False))
def test_fewer_than_k_good_chunks_never_recover(blob: bytes, n: int, rnd: random.Random) -> None:
    root, chunks = make_chunks(available(blob), n)
    k = recovery_threshold(n)
    rnd.shuffle(chunks)
    # k - 1 good chunks plus corrupted copies of all the others: the proofs throw the bad away
    attempt = chunks[: k - 1] + [corrupt(c, rnd) for c in chunks[k - 1 :]]
    with pytest.raises((ErasureError, DecodeError)):
        recover(attempt, n, root)


def test_chunks_for_another_root_are_ignored() -> None:
    n = 10
    root, chunks = make_chunks(available(b"mine" * 50), n)
    _, foreign = make_chunks(available(b"theirs" * 50), n)
    k = recovery_threshold(n)
    with pytest.raises((ErasureError, DecodeError)):
        recover(foreign, n, root)
    assert recover(foreign + chunks[:k], n, root) == available(b"mine" * 50)
