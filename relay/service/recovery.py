"""Availability recovery: get a candidate's `AvailableData`, the way an approval checker (or a
dispute participant) gets a candidate it did not back. As polkadot-sdk's availability-recovery
with `RecoveryStrategyKind::BackersFirstIfSizeLower(SMALL_POV_LIMIT)`:

- **From the backers, when the data is small.** Our own chunk's size times the recovery
  threshold estimates the data's size (polkadot asks its store for its own chunk's size the same
  way; without our chunk there is no estimate and we go to the chunks). Below `SMALL_POV_LIMIT`
  the backers are asked for the whole data (`Kind.AVAILABLE_DATA`) one at a time, each checker
  starting at a place in the group given by its own index so the checkers spread over it. One
  request instead of a third of n: at 100 validators the chunk requests were ~11,600 frames a
  relay block. Trusting a backer's copy is safe because it is not trusted: it is re-encoded and
  must give the erasure root the chain committed to (`proto.availability.matches_root`), the
  data any third of the chunks would rebuild. A backer serving other data is charged, and the
  next one asked.
- **From the chunks otherwise, or when no backer answered with good data** (cut off, pruned,
  lying). Validator i holds chunk i (fetched at availability time, `availability.py`) and is
  asked for that chunk alone. Every chunk is checked against the erasure root before use, a peer
  serving a bad one is charged, and the rebuilt data is re-encoded and checked against the root
  once more (`proto.availability.recover`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import trio

from proto.availability import ErasureChunk, chunk_valid, matches_root, recover
from proto.candidate import AvailableData
from proto.codec import decode
from proto.erasure import ErasureError, recovery_threshold
from proto.errors import DecodeError
from proto.messages import (
    KIB,
    AvailableDataRequest,
    AvailableDataResponse,
    ChunkRequest,
    ChunkResponse,
)
from proto.network import COST_MAJOR, Kind, RequestError
from relay.service.availability import Availability
from relay.service.validator_context import ValidatorContext

ROUNDS = 3  # passes over the validators that have not answered yet, before giving up
# Requests in flight beyond the chunks still needed (so one slow peer does not hold up a round),
# and at most this many at once (polkadot's availability recovery keeps up to 50).
SPARE_REQUESTS = 2
MAX_IN_FLIGHT = 50
SMALL_POV_LIMIT = 128 * KIB  # polkadot-sdk's: the whole data from a backer below this estimate


class AvailabilityRecovery:
    def __init__(self, v: ValidatorContext, availability: Availability) -> None:
        self.v = v
        self.availability = availability
        self.recovered = 0  # candidates recovered, from the backers or from chunks
        self.recovered_from_backers = 0  # of which from a backer's copy
        self.failed = 0

    async def recover(self, candidate_hash: bytes, erasure_root: bytes, n_validators: int,
                      backers: Sequence[int] = ()) -> AvailableData | None:
        """The candidate's available data, from one of its `backers` (validator indices) if it
        is small, else (or failing that) from chunks; None if not enough valid chunks came
        back."""
        data = await self.from_backers(candidate_hash, erasure_root, n_validators, backers)
        if data is not None:
            self.recovered += 1
            self.recovered_from_backers += 1
            return data
        need = recovery_threshold(n_validators)
        chunks: dict[int, ErasureChunk] = {}
        own = self._own_chunk(candidate_hash, erasure_root, n_validators)
        if own is not None:
            chunks[own.index] = own
        me = self.v.index
        # Start after ourselves, so checkers spread their first requests over the validators.
        order = [(me + k) % n_validators for k in range(1, n_validators)]
        for _ in range(ROUNDS):
            missing = [i for i in order if i not in chunks and i < len(self.v.validators)]
            if len(chunks) >= need or not missing:
                break
            await self._fetch_round(missing, candidate_hash, erasure_root, n_validators,
                                    chunks, need)
            if len(chunks) < need:
                await trio.sleep(self.v.slot_s / 12)
        if len(chunks) < need:
            self.failed += 1
            return None
        try:
            data = recover(list(chunks.values()), n_validators, erasure_root)
        except (ErasureError, DecodeError):
            self.failed += 1
            return None
        self.recovered += 1
        return data

    def _own_chunk(self, candidate_hash: bytes, erasure_root: bytes,
                   n: int) -> ErasureChunk | None:
        own = self.availability.own.get(candidate_hash)
        return own if own is not None and chunk_valid(erasure_root, own, n) else None

    async def from_backers(self, candidate_hash: bytes, erasure_root: bytes, n: int,
                           backers: Sequence[int]) -> AvailableData | None:
        """The whole data from the first backer whose copy matches the erasure root, asked one
        at a time (one pass), if our own chunk says it is small; None otherwise (see the module
        docstring)."""
        own = self._own_chunk(candidate_hash, erasure_root, n)
        if own is None or len(own.chunk) * recovery_threshold(n) >= SMALL_POV_LIMIT:
            return None
        others = [b for b in backers if b != self.v.index and b < len(self.v.validators)]
        if not others:
            return None
        start = self.v.index % len(others)
        for backer in others[start:] + others[:start]:
            peer = self.v.peer_of(backer)
            try:
                raw = await self.v.net.request(peer, Kind.AVAILABLE_DATA,
                                               AvailableDataRequest(candidate_hash))
                data = decode(raw, AvailableDataResponse).data
            except (RequestError, DecodeError):
                continue
            if data is None:
                continue  # pruned it, or never held it: the next backer
            if not matches_root(data, n, erasure_root):
                self.v.net.peers.report(peer, COST_MAJOR)
                continue
            return data
        return None

    async def _fetch_round(self, missing: list[int], candidate_hash: bytes, erasure_root: bytes,
                           n: int, chunks: dict[int, ErasureChunk], need: int) -> None:
        """Ask the `missing` validators in turn, keeping as many requests in flight as chunks are
        still needed (plus `SPARE_REQUESTS`): each answer that brings no chunk sends the next
        request. Asking all of them at once would put n requests on the wire for a third of n
        chunks."""
        queue = iter(missing)
        async with trio.open_nursery() as nursery:
            def ask_next() -> None:
                i = next(queue, None)
                if i is not None and len(chunks) < need:
                    nursery.start_soon(self._ask, i, candidate_hash, erasure_root, n, chunks,
                                       need, nursery.cancel_scope, ask_next)

            for _ in range(min(need - len(chunks) + SPARE_REQUESTS, MAX_IN_FLIGHT)):
                ask_next()

    async def _ask(self, i: int, candidate_hash: bytes, erasure_root: bytes, n: int,
                   chunks: dict[int, ErasureChunk], need: int, done: trio.CancelScope,
                   ask_next: Callable[[], None]) -> None:
        peer = self.v.peer_of(i)
        try:
            raw = await self.v.net.request(peer, Kind.CHUNK, ChunkRequest(candidate_hash, i))
            chunk = decode(raw, ChunkResponse).chunk
        except (RequestError, DecodeError):
            ask_next()
            return
        if chunk is None:
            ask_next()
            return  # it does not hold the chunk (yet): asked again next round
        if chunk.index != i or not chunk_valid(erasure_root, chunk, n):
            self.v.net.peers.report(peer, COST_MAJOR)
            ask_next()
            return
        chunks[i] = chunk
        if len(chunks) >= need:
            done.cancel()
