"""What a block author puts in its block (polkadot's provisioner), and the availability bits a
validator signs: pure functions over a relay state, the author's prospective-parachains view and
its backing tables, shared by the ideal driver and the validator service.

Backable candidates are asked for per para with the number of cores that will be free once the
bitfields in hand are applied: a para whose pending candidate reaches availability in this very
block frees its core, so its next candidate can be backed in the same block (the pipeline).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from proto.statements import BackedCandidate, SignedAvailabilityBitfield
from relay.core import runtime as rt
from relay.core.backing_table import BackingTable
from relay.core.inclusion import supermajority_threshold
from relay.core.prospective.view import ProspectiveParachains
from relay.core.state import RelayState


def backing_group(state: RelayState, core: int, relay_parent_number: int) -> list[int] | None:
    """The validators that back `core` for candidates with a relay parent of that number (the
    group assigned at the block after it, as the runtime checks)."""
    gi = state.scheduler.group_assigned_to_core(core, relay_parent_number + 1)
    if gi is None or not 0 <= gi < len(state.scheduler.groups):
        return None
    return list(state.scheduler.groups[gi])


def cores_backed_by(state: RelayState, validator: int, relay_parent_number: int) -> list[int]:
    """The cores whose backing group `validator` is in, for candidates at that relay parent."""
    return [c for c in range(state.scheduler.n_cores)
            if validator in (backing_group(state, c, relay_parent_number) or [])]


def availability_bits(state: RelayState, has_chunk: Callable[[bytes], bool]) -> list[bool]:
    """One bit per core: set when the core is occupied by a candidate whose chunk we hold."""
    return [occ is not None and has_chunk(occ[1]) for occ in rt.availability_cores(state)]


def select_candidates(
    state: RelayState,
    leaf_hash: bytes,
    prospective: ProspectiveParachains,
    tables: Mapping[bytes, BackingTable],
    bitfields: Sequence[SignedAvailabilityBitfield],
) -> list[BackedCandidate]:
    """The backed candidates for a block on `leaf_hash` (whose post-state is `state`), in chain
    order per para, assuming `bitfields` go into the same block."""
    threshold = supermajority_threshold(state.n_validators)
    by_index = {bf.validator_index: bf for bf in bitfields}
    picked: list[BackedCandidate] = []
    for pid in state.para_ids:
        pending = state.inclusion.pending.get(pid, [])
        freed, ancestors, chain_ok = 0, [], True
        for p in pending:
            votes = sum(1 for v, have in enumerate(p.availability_votes)
                        if have or (v in by_index and p.core < len(by_index[v].bits)
                                    and by_index[v].bits[p.core]))
            # Candidates are enacted in chain order: one that stays pending holds its successors.
            chain_ok = chain_ok and votes >= threshold
            freed += 1 if chain_ok else 0
            ancestors.append(p.hash)
        free = len(rt.cores_of(state, pid)) - len(pending) + freed
        if free <= 0:
            continue
        for h, rp in prospective.get_backable_candidates(leaf_hash, pid, free, ancestors):
            table = tables.get(rp)
            backed = table.attested(h, state.config.minimum_backing_votes) if table else None
            if backed is None:
                break  # a gap: later candidates of the chain cannot go in without it
            picked.append(backed)
    return picked
