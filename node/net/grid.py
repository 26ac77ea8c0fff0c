"""The gossip grid of a session's validators (polkadot-sdk's gossip-support `GridNeighbors`).

The validators are shuffled by a seed every node derives alike (the genesis hash and the session
index) and laid out row by row in a matrix `ceil(sqrt(n))` wide, the last row possibly short. A
validator's *row* and *column* neighbours share its row or its column. A message's originator
sends it to all its neighbours; a validator that receives it forwards it only along the other
dimension: to its column if the originator shares its row, to its row if the originator shares
its column, and not at all otherwise. So a message reaches every validator within two hops and
each validator gets about two copies (one through the originator's row, one through its column),
about `2n` frames a message instead of a flood's `n` per forwarder.

Two hops always suffice: from the originator at (r0, c0) to (r1, c1), either (r0, c1) or
(r1, c0) exists (only the last row is short, and if both were missing both validators would sit
in that row, where they are row neighbours).

Pure: no I/O, no clock; `tests/unit/net/test_grid.py` checks reach, copies and determinism.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from proto.hashing import blake2_256
from proto.network import PeerId


class GridTopology:
    """Row and column neighbours of each validator of one session."""

    def __init__(self, validators: Sequence[PeerId], seed: bytes) -> None:
        if len(set(validators)) != len(validators):
            raise ValueError("validators must be distinct")
        self.validators = tuple(validators)
        # The shuffle: sort by a hash of the seed and the key, so every node computes the same
        # order without sharing anything but the seed.
        order = sorted(self.validators, key=lambda v: blake2_256(seed + v))
        self.width = max(1, math.ceil(math.sqrt(len(order))))
        self._position = {v: divmod(i, self.width) for i, v in enumerate(order)}
        # For `peer in grid.members` where a check runs once a message (no method call).
        self.members = frozenset(self._position)
        rows: dict[int, list[PeerId]] = {}
        cols: dict[int, list[PeerId]] = {}
        for v, (r, c) in self._position.items():
            rows.setdefault(r, []).append(v)
            cols.setdefault(c, []).append(v)
        self._rows = {r: tuple(vs) for r, vs in rows.items()}
        self._cols = {c: tuple(vs) for c, vs in cols.items()}
        # route() answers, by (local, origin) among the grid's members: a node asks with itself
        # as `local` alone, so at most one entry per validator (the grid is rebuilt each session).
        self._routes: dict[tuple[PeerId, PeerId], tuple[PeerId, ...]] = {}

    def __contains__(self, peer: object) -> bool:
        return peer in self.members

    def __len__(self) -> int:
        return len(self._position)

    def position(self, peer: PeerId) -> tuple[int, int] | None:
        """(row, column), None for a peer outside the grid."""
        return self._position.get(peer)

    def row_neighbours(self, peer: PeerId) -> list[PeerId]:
        pos = self._position.get(peer)
        return [] if pos is None else [v for v in self._rows[pos[0]] if v != peer]

    def column_neighbours(self, peer: PeerId) -> list[PeerId]:
        pos = self._position.get(peer)
        return [] if pos is None else [v for v in self._cols[pos[1]] if v != peer]

    def neighbours(self, peer: PeerId) -> list[PeerId]:
        return self.row_neighbours(peer) + self.column_neighbours(peer)

    def route(self, local: PeerId, origin: PeerId) -> tuple[PeerId, ...]:
        """Where `local` sends a message `origin` published: all its neighbours if it is the
        originator; its column if the originator shares its row; its row if the originator
        shares its column; nowhere otherwise (it came off the grid, or on its second hop)."""
        key = (local, origin)
        found = self._routes.get(key)
        if found is None:
            found = tuple(self._route(local, origin))
            if local in self._position and origin in self._position:
                # Only grid members are remembered: an envelope's origin is the sender's word,
                # and random ones must not grow the table.
                self._routes[key] = found
        return found

    def _route(self, local: PeerId, origin: PeerId) -> list[PeerId]:
        me, them = self._position.get(local), self._position.get(origin)
        if me is None or them is None:
            return []
        if local == origin:
            return self.neighbours(local)
        if them[0] == me[0]:
            return [v for v in self.column_neighbours(local) if v != origin]
        if them[1] == me[1]:
            return [v for v in self.row_neighbours(local) if v != origin]
        return []


def grid_seed(genesis_hash: bytes, session_index: int) -> bytes:
    """What every validator shuffles the session's grid by."""
    return blake2_256(b"gossip-grid" + genesis_hash + session_index.to_bytes(4, "big"))
