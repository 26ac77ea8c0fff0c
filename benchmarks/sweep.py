"""Benchmark: the deterministic simulation sweep at scale (`node.sweep`): N seeds, each under a
random fault schedule (kills and restarts, a partition, loss, latency), 40 relay blocks each.

Prints figures and every failing seed with the command that replays it; asserts nothing.
Run: `.venv/bin/python benchmarks/sweep.py [SEEDS]` (default 500; CI runs 50 as a test).
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from node.sim import SimConfig
from node.sweep import sweep


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    base = SimConfig(relay_blocks=40)
    started = time.perf_counter()
    failed, included, blocks = 0, 0, 0
    kinds: Counter[str] = Counter()
    for outcome in sweep(base, range(seeds)):
        included += outcome.included
        blocks += outcome.relay_blocks
        if outcome.problems:
            failed += 1
            kinds.update(p.split(":")[0] for p in outcome.problems)
            print(f"seed {outcome.seed}: {outcome.problems[0]}\n  replay: {outcome.command}")
    secs = time.perf_counter() - started
    print(f"{seeds} seeds x {base.relay_blocks} relay blocks with random faults: {failed} failed "
          f"{dict(kinds) or ''}; {included / blocks:.2f} candidates included per relay block "
          f"(2 paras; 2.00 without faults); {secs:.0f} s wall, {secs / seeds:.1f} s a seed")


if __name__ == "__main__":
    main()
