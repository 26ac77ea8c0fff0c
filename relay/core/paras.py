"""Para registry state (the `paras` pallet and the slice of messaging this model keeps): heads,
validation code, the most recent relay-parent context, code upgrades, and the UMP queue."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from proto.hashing import blake2_256


@dataclass
class FutureCode:
    code_hash: bytes
    expected_at: int  # relay-parent number from which candidates run the new code


@dataclass
class ParasState:
    heads: dict[int, bytes] = field(default_factory=dict)
    code_hash: dict[int, bytes] = field(default_factory=dict)
    code_by_hash: dict[bytes, bytes] = field(default_factory=dict)
    most_recent_context: dict[int, int] = field(default_factory=dict)
    future_code: dict[int, FutureCode] = field(default_factory=dict)
    upgrade_cooldown_until: dict[int, int] = field(default_factory=dict)
    go_ahead: dict[int, bool] = field(default_factory=dict)  # signal for the para's next block
    hrmp_watermark: dict[int, int] = field(default_factory=dict)
    ump_queue: dict[int, tuple[int, int]] = field(default_factory=dict)  # para → (count, bytes)
    ump_processed: int = 0

    def copy(self) -> ParasState:
        return copy.deepcopy(self)

    def register(self, para_id: int, head: bytes, code: bytes) -> None:
        h = blake2_256(code)
        self.heads[para_id] = head
        self.code_hash[para_id] = h
        self.code_by_hash[h] = code
        self.most_recent_context[para_id] = 0

    def schedule_code_upgrade(self, para_id: int, code: bytes, at: int, cooldown_until: int) -> None:
        h = blake2_256(code)
        self.code_by_hash[h] = code
        self.future_code[para_id] = FutureCode(h, at)
        self.upgrade_cooldown_until[para_id] = cooldown_until

    def upgrade_allowed(self, para_id: int, now: int) -> bool:
        return para_id not in self.future_code and now >= self.upgrade_cooldown_until.get(para_id, 0)

    def note_new_head(self, para_id: int, head: bytes, relay_parent_number: int) -> None:
        self.heads[para_id] = head
        self.most_recent_context[para_id] = relay_parent_number
        fut = self.future_code.get(para_id)
        if fut is not None and fut.expected_at <= relay_parent_number:
            self.code_hash[para_id] = fut.code_hash
            del self.future_code[para_id]
            self.go_ahead[para_id] = True

    def enqueue_ump(self, para_id: int, messages: list[bytes]) -> None:
        count, size = self.ump_queue.get(para_id, (0, 0))
        self.ump_queue[para_id] = (count + len(messages), size + sum(len(m) for m in messages))

    def drain_ump(self) -> None:
        """The relay chain processes every queued upward message at the start of each block."""
        self.ump_processed += sum(c for c, _ in self.ump_queue.values())
        self.ump_queue.clear()
