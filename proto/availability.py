"""Availability chunks: the erasure-coded `AvailableData`, its merkle root (the candidate's
`erasure_root`) and per-chunk proofs."""

from __future__ import annotations

from typing import Annotated

import msgspec

from proto import erasure
from proto.candidate import AvailableData
from proto.codec import decode, encode
from proto.hashing import blake2_256
from proto.merkle import merkle_proofs, merkle_root, verify_proof
from proto.primitives import Blob, Hash, Struct, ValidatorIndex
from proto.shared_work import shared


class ErasureChunk(Struct, frozen=True):
    chunk: Blob
    index: ValidatorIndex
    proof: Annotated[list[Hash], msgspec.Meta(max_length=64)]


def chunks_of(data: AvailableData, n_validators: int) -> list[bytes]:
    return erasure.encode(encode(data), n_validators)


def erasure_root(data: AvailableData, n_validators: int) -> bytes:
    return merkle_root(chunks_of(data, n_validators))


def matches_root(data: AvailableData, n_validators: int, root: bytes) -> bool:
    """Whether `data` is what `root` commits to: re-encoded into its chunks, their merkle root is
    `root` (data a backer serves, checked as polkadot's recovery from backers re-encodes it). The
    root is a pure function of the data's encoding, so the simulated nodes of one process compute
    it once per content (`proto.shared_work`, keyed by the encoding's hash, not by `root`: data
    that does not match is someone else's content)."""
    encoded = encode(data)
    computed = shared("erasure_root", (blake2_256(encoded), n_validators),
                      lambda: merkle_root(erasure.encode(encoded, n_validators)))
    return computed == root


def make_chunks(data: AvailableData, n_validators: int) -> tuple[bytes, list[ErasureChunk]]:
    """(erasure root, one chunk with its proof per validator)."""
    chunks = chunks_of(data, n_validators)
    root, proofs = merkle_proofs(chunks)
    return root, [ErasureChunk(c, i, proof) for i, (c, proof) in enumerate(zip(chunks, proofs,
                                                                                strict=True))]


def chunk_valid(root: bytes, chunk: ErasureChunk, n_validators: int) -> bool:
    return verify_proof(root, chunk.chunk, chunk.index, n_validators, chunk.proof)


def recover(chunks: list[ErasureChunk], n_validators: int, root: bytes) -> AvailableData:
    """Rebuild `AvailableData` from verified chunks; raises `ErasureError`/`DecodeError`.

    Any enough valid chunks of one root rebuild the same data (the rebuilt data is re-encoded
    and must give that root again), so once a caller holds enough of them the simulated nodes
    of one process rebuild each root once (`proto.shared_work`)."""
    good = {c.index: c.chunk for c in chunks if chunk_valid(root, c, n_validators)}
    if len(good) < erasure.recovery_threshold(n_validators):
        return _recover(good, n_validators, root)  # fails for this caller alone
    return shared("recovery", (root, n_validators), lambda: _recover(good, n_validators, root),
                  large=True)


def _recover(good: dict[int, bytes], n_validators: int, root: bytes) -> AvailableData:
    data = decode(erasure.reconstruct(good, n_validators), AvailableData)
    if erasure_root(data, n_validators) != root:
        raise erasure.ErasureError("recovered data does not match the erasure root")
    return data
