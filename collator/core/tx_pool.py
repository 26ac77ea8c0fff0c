"""A transaction pool: transactions ready in arrival order, per-sender nonces checked against the
state a block builds on, so a block only takes what will apply."""

from __future__ import annotations

from collections import deque

from collator.core.para_runtime import (
    N_ACCOUNTS,
    Extrinsic,
    Transfer,
    read_int,
)
from collator.core.storage_keys import nonce_key


class TxPool:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self.queue: deque[Extrinsic] = deque()
        self.next_nonce: dict[int, int] = {}
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.queue)

    def submit(self, x: Extrinsic) -> bool:
        """Queue a transaction; False when the pool is full (the caller reports the drop)."""
        if len(self.queue) >= self.capacity:
            self.dropped += 1
            return False
        self.queue.append(x)
        return True

    def generate_transfers(self, count: int) -> None:
        """Synthetic load: `count` transfers round the dev accounts, nonces in order."""
        for i in range(count):
            s = (len(self.queue) + i) % N_ACCOUNTS
            nonce = self.next_nonce.get(s, 0)
            if self.submit(Transfer(s, (s + 1) % N_ACCOUNTS, 1, nonce)):
                self.next_nonce[s] = nonce + 1

    def ready(self, entries: dict[bytes, bytes], limit: int) -> list[Extrinsic]:
        """Up to `limit` queued transactions that apply in order on `entries`: arrival order,
        except that a transaction waits for its sender's earlier nonces (repeated passes)."""
        nonces: dict[int, int] = {}
        out: list[Extrinsic] = []
        waiting = list(self.queue)
        progress = True
        while progress and waiting and len(out) < limit:
            progress = False
            later: list[Extrinsic] = []
            for x in waiting:
                if len(out) >= limit:
                    break
                if isinstance(x, Transfer):
                    n = nonces.get(x.sender, read_int(entries, nonce_key(x.sender)))
                    if x.nonce != n:
                        if x.nonce > n:
                            later.append(x)
                        continue
                    nonces[x.sender] = n + 1
                out.append(x)
                progress = True
            waiting = later
        return out

    def prune(self, entries: dict[bytes, bytes]) -> None:
        """Drop what the state at the included block has already applied."""
        self.queue = deque(x for x in self.queue if not (
            isinstance(x, Transfer) and x.nonce < read_int(entries, nonce_key(x.sender))))


SATURATING_TXS_PER_CORE = 450  # transfers offered per block: more than any block takes


def saturated_pool(entries: dict[bytes, bytes], cores: int) -> TxPool:
    """A pool holding more valid transfers than `cores` blocks built in a row on `entries` can
    take: the saturating load of the seed-table runs."""
    pool = TxPool(capacity=10**6)
    for x in saturating_transfers(entries, SATURATING_TXS_PER_CORE * max(1, cores)):
        pool.submit(x)
    return pool


def saturating_transfers(entries: dict[bytes, bytes], count: int) -> list[Extrinsic]:
    """Enough valid transfers to fill any block, derived from the parent's nonces."""
    nonces = [read_int(entries, nonce_key(i)) for i in range(N_ACCOUNTS)]
    out: list[Extrinsic] = []
    for i in range(count):
        s = i % N_ACCOUNTS
        out.append(Transfer(s, (s + 1) % N_ACCOUNTS, 1, nonces[s]))
        nonces[s] += 1
    return out
