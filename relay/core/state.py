"""The relay chain's runtime state after a block: everything `paras_inherent` reads and writes.

Applying a block never mutates its parent's state: callers take `copy()` first, so forks can share
a parent (consensus-specs' `on_block` contract: apply fully or raise, leaving the input intact).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relay.core.allowed_relay_parents import AllowedRelayParentsTracker
from relay.core.config import HostConfiguration
from relay.core.disputes.state import DisputeState
from relay.core.inclusion import InclusionState
from relay.core.paras import ParasState
from relay.core.scheduler import Scheduler


@dataclass
class RelayState:
    config: HostConfiguration
    validators: tuple[bytes, ...]
    para_ids: tuple[int, ...]
    number: int
    slot: int
    session_index: int
    allowed: AllowedRelayParentsTracker
    scheduler: Scheduler
    inclusion: InclusionState
    paras: ParasState
    disabled: frozenset[int] = field(default_factory=frozenset)
    # The chain's record of disputes (relay/core/disputes/onchain.py): votes per (session,
    # candidate), and the block number where this chain backed each recent candidate.
    disputes: dict[tuple[int, bytes], DisputeState] = field(default_factory=dict)
    backed_at: dict[bytes, int] = field(default_factory=dict)

    def copy(self) -> RelayState:
        return RelayState(self.config, self.validators, self.para_ids, self.number, self.slot,
                          self.session_index, self.allowed.copy(), self.scheduler.copy(),
                          self.inclusion.copy(), self.paras.copy(), self.disabled,
                          dict(self.disputes), dict(self.backed_at))

    @property
    def n_validators(self) -> int:
        return len(self.validators)

    @property
    def n_cores(self) -> int:
        return self.scheduler.n_cores

    def session_change_pending(self, now: int) -> bool:
        """A session change is buffered for the end of block `now`."""
        length = self.config.session_length
        return length > 0 and (now + 1) % length == 0
