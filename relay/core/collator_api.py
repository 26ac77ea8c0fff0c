"""What a collator asks its relay node at a new relay block, answered in one go from that
block's post-state: where to build (the collation target with the relay-state proof), the para's
included and pending heads, and who backs each of the para's cores there.

A relay node answers a collator in the same process (the simulator) by calling this, the ideal
driver calls it directly, and over RPC the same answer travels msgpack-encoded in JSON
(`parachain_collationContext`).
"""

from __future__ import annotations

from dataclasses import dataclass

from collator.core.collation import RelayParentData
from collator.core.collator_chain import CollationTarget
from collator.core.relay_view import relay_proof_keys
from proto.relay_block import RelayHeader
from relay.core import runtime as rt
from relay.core.provisioner import backing_group
from relay.core.state import RelayState


@dataclass(frozen=True)
class CollationContext:
    target: CollationTarget
    included_head: bytes  # head data
    pending_heads: tuple[bytes, ...]  # head data of candidates pending availability, in order
    backers: dict[int, tuple[bytes, ...]]  # core -> public keys of its backing group here


def collation_context(state: RelayState, leaf: RelayHeader, para_id: int,
                      max_cores: int = 0) -> CollationContext | None:
    """None when the para is not registered at `leaf`. `max_cores` caps how many cores the
    collator builds for (0: every core at the front of the claim queue for the para)."""
    if para_id not in state.paras.heads:
        return None
    cq = rt.claim_queue(state)
    cores = sorted(c for c, q in cq.items() if q and q[0] == para_id)
    if max_cores:
        cores = cores[:max_cores]
    proof = rt.state_proof(state, relay_proof_keys(para_id))
    target = CollationTarget(
        RelayParentData(leaf.hash(), leaf.number, leaf.state_root, proof), tuple(cores),
        rt.session_index_for_child(state), state.n_validators, state.config.max_pov_size,
        state.number - state.config.allowed_ancestry_len, state.config.max_candidate_depth + 1)
    pending = tuple(p.commitments_head for p in state.inclusion.pending.get(para_id, []))
    backers = {c: tuple(state.validators[v] for v in backing_group(state, c, leaf.number) or [])
               for c in cores}
    return CollationContext(target, state.paras.heads[para_id], pending, backers)
