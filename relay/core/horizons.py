"""How far below finality a node keeps what it keeps, derived in one place from the host
configuration, so that changing `allowed_ancestry_len` or `paras_availability_period` moves every
horizon with it.

- A candidate may name a relay parent at most `allowed_ancestry_len` blocks below the block's
  parent, so backing state for a relay parent is useful while some active leaf still allows it
  (`relay_parent_scope`; backing drops it exactly when no leaf's allowed ancestry holds it).
- A backed candidate waits at most `paras_availability_period` blocks for availability, so its
  chunks and the bitfields about it are of no use once its relay parent is more than
  `availability_horizon` blocks below finality: by then it was included or timed out in a
  finalized block.
- What a validator signed is recorded so that it never signs something else for the same thing
  after a restart. The store refuses to record below its pruning bound, so the bound must stay
  below anything a lagging validator (paused, overloaded, just resumed) may still finish signing
  for: `LAGGING_SLACK` blocks beyond the availability horizon.
"""

from __future__ import annotations

from relay.core.config import HostConfiguration


def relay_parent_scope(host: HostConfiguration) -> int:
    """Blocks a relay parent stays usable below the block that backs a candidate on it."""
    return host.allowed_ancestry_len + 1


def availability_horizon(host: HostConfiguration) -> int:
    return relay_parent_scope(host) + host.paras_availability_period


LAGGING_SLACK = 64  # blocks a validator may trail finality and still finish queued signing


def signed_record_horizon(host: HostConfiguration) -> int:
    return availability_horizon(host) + LAGGING_SLACK
