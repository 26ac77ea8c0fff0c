"""The relay blocks a node has imported with their post-states, answering the relay-chain
queries prospective parachains asks (`RelayChainInfo`) from the runtime APIs."""

from __future__ import annotations

from proto.relay_block import RelayHeader
from relay.core import runtime as rt
from relay.core.constraints import BackingState
from relay.core.prospective.view import RelayBlockHeaderInfo
from relay.core.state import RelayState


class ChainStore:
    """Imported relay blocks with their post-states (RelayChainInfo): one node's in `RelayChain`,
    every validator's at once in the ideal driver."""

    def __init__(self) -> None:
        self.headers: dict[bytes, RelayHeader] = {}
        self.states: dict[bytes, RelayState] = {}

    def add(self, header: RelayHeader, state: RelayState) -> None:
        self.headers[header.hash()] = header
        self.states[header.hash()] = state

    def block_info(self, block_hash: bytes) -> RelayBlockHeaderInfo | None:
        h = self.headers.get(block_hash)
        return None if h is None else RelayBlockHeaderInfo(block_hash, h.number, h.parent_hash,
                                                           h.state_root)

    def backing_state(self, at: bytes, para_id: int) -> BackingState | None:
        return rt.backing_state(self.states[at], para_id)

    def claim_queue_paras(self, at: bytes) -> set[int]:
        return {p for q in rt.claim_queue(self.states[at]).values() for p in q}

    def async_backing_params(self, at: bytes) -> tuple[int, int]:
        return rt.async_backing_params(self.states[at])

    def session_index_for_child(self, at: bytes) -> int:
        return rt.session_index_for_child(self.states[at])
