"""Any k of n erasure chunks recover the PoV; corrupted chunks are caught by their proofs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.availability import chunk_valid, make_chunks, recover
from proto.candidate import AvailableData, PersistedValidationData, PoV
from proto.erasure import ErasureError, recovery_threshold
from proto.merkle import merkle_proof, merkle_root, verify_proof


def data(blob: bytes) -> AvailableData:
    return AvailableData(PoV(blob), PersistedValidationData(b"head", 7, b"\x01" * 32, 1 << 20))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 50), st.randoms(use_true_random=False))
def test_any_k_of_n_chunks_recover(blob: bytes, n: int, rnd) -> None:  # type: ignore[no-untyped-def]
    d = data(blob)
    root, chunks = make_chunks(d, n)
    k = recovery_threshold(n)
    subset = rnd.sample(chunks, k)
    assert recover(subset, n, root) == d
    if k > 1:
        with pytest.raises(ErasureError):
            recover(subset[: k - 1], n, root)


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=2000), st.integers(4, 30), st.data())
def test_corrupted_chunks_fail_their_proof(blob: bytes, n: int, draw: st.DataObject) -> None:
    root, chunks = make_chunks(data(blob), n)
    i = draw.draw(st.integers(0, n - 1))
    c = chunks[i]
    j = draw.draw(st.integers(0, len(c.chunk) - 1))
    bad = type(c)(c.chunk[:j] + bytes([c.chunk[j] ^ 0xFF]) + c.chunk[j + 1 :], c.index, c.proof)
    assert chunk_valid(root, c, n) and not chunk_valid(root, bad, n)
    other = (c.index + 1) % n
    if chunks[other].chunk != c.chunk:  # identical chunks may stand at each other's place
        assert not chunk_valid(root, type(c)(c.chunk, other, c.proof), n)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=40), st.data())
def test_merkle_proofs(leaves: list[bytes], draw: st.DataObject) -> None:
    root = merkle_root(leaves)
    i = draw.draw(st.integers(0, len(leaves) - 1))
    proof = merkle_proof(leaves, i)
    assert verify_proof(root, leaves[i], i, len(leaves), proof)
    assert not verify_proof(root, leaves[i] + b"x", i, len(leaves), proof)
    if proof:
        assert not verify_proof(root, leaves[i], i, len(leaves), proof[:-1])
