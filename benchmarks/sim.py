"""Benchmark: wall seconds for the whole service stack in virtual time (`node.sim`): validators,
a relay node and collators over the in-memory network, 100 relay blocks (10 virtual minutes).

Prints figures; asserts nothing. Run: `.venv/bin/python benchmarks/sim.py [--heavy]`
(`--heavy` adds 12 cores with 24 validators, a few minutes).
"""

from __future__ import annotations

import sys
import time

from node.sim import SimConfig, run_sim
from relay.core.config import HostConfiguration, sync_backing

CASES = {
    "async, 5 validators, 2 paras": SimConfig(relay_blocks=100),
    "sync, 5 validators, 2 paras": SimConfig(relay_blocks=100,
                                             host=sync_backing(HostConfiguration())),
    "async, 10% message loss": SimConfig(relay_blocks=100, loss=0.1),
    "elastic 3 cores, 5 validators": SimConfig(paras=1, cores_per_para=3, relay_blocks=100,
                                               host=HostConfiguration(max_candidate_depth=6)),
}
HEAVY = {
    "elastic 12 cores, 24 validators": SimConfig(validators=24, paras=1, cores_per_para=12,
                                                 relay_blocks=100,
                                                 host=HostConfiguration(max_candidate_depth=24)),
}


def main() -> None:
    cases = {**CASES, **(HEAVY if "--heavy" in sys.argv else {})}
    for name, cfg in cases.items():
        started = time.perf_counter()
        result = run_sim(cfg)
        secs = time.perf_counter() - started
        included = sum(len(r.included) for r in result.records)
        print(f"{name:34s} {cfg.relay_blocks} relay blocks ({result.virtual_seconds:4.0f} s "
              f"virtual) in {secs:6.1f} s wall, {result.virtual_seconds / secs:5.1f}x real time, "
              f"{included} candidates included, {len(result.problems)} invariant violations")


if __name__ == "__main__":
    main()
