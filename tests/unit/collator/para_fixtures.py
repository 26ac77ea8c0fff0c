"""Parachain test helpers: a para genesis and relay state proofs made from real relay entries."""

from __future__ import annotations

from collator.core.collation import RelayParentData, genesis_header
from collator.core.para_runtime import ParaHeader, genesis_entries
from collator.core.relay_view import relay_proof_keys
from proto.codec import encode
from proto.hashing import blake2_256
from proto.relay_state import (
    ACTIVE_CONFIG_KEY,
    BLOCK_NUMBER_KEY,
    CURRENT_SLOT_KEY,
    RelayDispatchQueueRemaining,
    para_head_key,
    prove,
    relay_dispatch_queue_key,
    state_root,
    upgrade_go_ahead_key,
)
from relay.core.config import HostConfiguration
from relay.core.runtime import abridged_config

PARA = 2000


def para_genesis(capacity: int = 3, velocity: int = 1, weight_ms: int = 2000
                 ) -> tuple[dict[bytes, bytes], ParaHeader]:
    entries = genesis_entries(PARA, velocity, capacity, 6000, weight_ms * 1_000_000)
    return entries, genesis_header(PARA, entries)


def relay_parent(number: int, slot: int, included_head: bytes, go_ahead: bool = False,
                 ump: tuple[int, int] = (8, 1 << 20)) -> RelayParentData:
    state = {
        ACTIVE_CONFIG_KEY: encode(abridged_config(HostConfiguration())),
        CURRENT_SLOT_KEY: encode(slot),
        para_head_key(PARA): included_head,
        relay_dispatch_queue_key(PARA): encode(RelayDispatchQueueRemaining(*ump)),
        BLOCK_NUMBER_KEY: encode(number),
    }
    if go_ahead:
        state[upgrade_go_ahead_key(PARA)] = encode(1)
    return RelayParentData(blake2_256(b"relay" + encode(number)), number, state_root(state),
                           prove(state, relay_proof_keys(PARA)))
