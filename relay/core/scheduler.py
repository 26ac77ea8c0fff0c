"""Scheduler (spec §2.3): validator groups, their rotation over cores, and the claim queue.

Cores are assigned to paras at genesis (a para with several cores is elastic scaling); the claim
queue of each core holds the next `lookahead` claims and is advanced every block for the cores that
were free, whether or not a candidate used the claim.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GroupRotationInfo:
    session_start_block: int
    group_rotation_frequency: int
    now: int

    def rotations(self, at: int | None = None) -> int:
        at = self.now if at is None else at
        return max(0, at - self.session_start_block) // self.group_rotation_frequency

    def group_for_core(self, core: int, n_cores: int, at: int | None = None) -> int:
        return (core + self.rotations(at)) % n_cores if n_cores else 0

    def core_for_group(self, group: int, n_cores: int, at: int | None = None) -> int:
        return (group - self.rotations(at)) % n_cores if n_cores else 0

    def last_rotation_at(self, at: int | None = None) -> int:
        return self.session_start_block + self.rotations(at) * self.group_rotation_frequency

    def next_rotation_at(self, at: int | None = None) -> int:
        return self.last_rotation_at(at) + self.group_rotation_frequency


def make_groups(n_validators: int, n_cores: int, max_per_core: int = 0) -> list[list[int]]:
    """Cut validators into `n_cores` contiguous groups; the first `V mod n` get one extra."""
    if n_cores == 0:
        return []
    count = n_validators if not max_per_core else min(n_validators, max_per_core * n_cores)
    base, extra = divmod(count, n_cores)
    groups, start = [], 0
    for g in range(n_cores):
        size = base + (1 if g < extra else 0)
        groups.append(list(range(start, start + size)))
        start += size
    return groups


@dataclass
class Scheduler:
    assignments: list[int]  # core → the para that owns it
    groups: list[list[int]]
    session_start_block: int
    group_rotation_frequency: int
    lookahead: int
    claim_queue: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for core in range(len(self.assignments)):
            self.claim_queue.setdefault(core, [])
            self._fill(core)

    def copy(self) -> Scheduler:
        return Scheduler(list(self.assignments), [list(g) for g in self.groups],
                         self.session_start_block, self.group_rotation_frequency, self.lookahead,
                         {c: list(q) for c, q in self.claim_queue.items()})

    @property
    def n_cores(self) -> int:
        return len(self.assignments)

    def rotation_info(self, now: int) -> GroupRotationInfo:
        return GroupRotationInfo(self.session_start_block, self.group_rotation_frequency, now)

    def group_assigned_to_core(self, core: int, at: int) -> int | None:
        if not 0 <= core < self.n_cores or not self.groups:
            return None
        return self.rotation_info(at).group_for_core(core, len(self.groups))

    def core_for_group(self, group: int, at: int) -> int:
        return self.rotation_info(at).core_for_group(group, len(self.groups))

    def _fill(self, core: int) -> None:
        queue = self.claim_queue[core]
        while len(queue) < self.lookahead:
            queue.append(self.assignments[core])

    def snapshot(self) -> dict[int, tuple[int, ...]]:
        return {c: tuple(q) for c, q in sorted(self.claim_queue.items())}

    def eligible_cores(self, occupied: set[int]) -> dict[int, list[int]]:
        """para → the free cores whose claim-queue front is that para."""
        out: dict[int, list[int]] = {}
        for core in range(self.n_cores):
            queue = self.claim_queue.get(core, [])
            if core not in occupied and queue:
                out.setdefault(queue[0], []).append(core)
        return out

    def advance_claim_queue(self, except_for: set[int]) -> None:
        """Consume the front claim of every core not in `except_for` (the occupied ones)."""
        for core in range(self.n_cores):
            if core in except_for:
                continue
            queue = self.claim_queue[core]
            if queue:
                queue.pop(0)
            self._fill(core)

    def new_session(self, groups: list[list[int]], session_start_block: int) -> None:
        self.groups = groups
        self.session_start_block = session_start_block
