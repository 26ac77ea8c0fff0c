"""Availability recovery: rebuild a candidate's `AvailableData` from the erasure chunks the
validators hold, the way an approval checker (or a dispute participant) gets a candidate it did
not back.

Validator i holds chunk i (fetched at availability time, `availability.py`); it is asked for that
chunk alone, never the backers for the whole data: a checker that trusted the backers' copy would
check what the backers chose to show, not what the chain made available. Every chunk is checked
against the candidate's erasure root before use, a peer serving a bad one is charged, and the
rebuilt data is re-encoded and checked against the root once more (`proto.availability.recover`).
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from proto.availability import ErasureChunk, chunk_valid, recover
from proto.candidate import AvailableData
from proto.codec import decode
from proto.erasure import ErasureError, recovery_threshold
from proto.errors import DecodeError
from proto.messages import ChunkRequest, ChunkResponse
from proto.network import COST_MAJOR, Kind, RequestError
from relay.service.availability import Availability
from relay.service.validator_context import ValidatorContext

ROUNDS = 3  # passes over the validators that have not answered yet, before giving up
# Requests in flight beyond the chunks still needed (so one slow peer does not hold up a round),
# and at most this many at once (polkadot's availability recovery keeps up to 50).
SPARE_REQUESTS = 2
MAX_IN_FLIGHT = 50


class AvailabilityRecovery:
    def __init__(self, v: ValidatorContext, availability: Availability) -> None:
        self.v = v
        self.availability = availability
        self.recovered = 0  # candidates rebuilt from chunks
        self.failed = 0

    async def recover(self, candidate_hash: bytes, erasure_root: bytes,
                      n_validators: int) -> AvailableData | None:
        """The candidate's available data, or None if not enough valid chunks came back."""
        need = recovery_threshold(n_validators)
        chunks: dict[int, ErasureChunk] = {}
        own = self.availability.own.get(candidate_hash)
        if own is not None and chunk_valid(erasure_root, own, n_validators):
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
