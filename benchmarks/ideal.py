"""Benchmark: wall time of the ideal-network driver (pure cores, no I/O) for 100 relay blocks.

Prints figures; asserts nothing. Run: `.venv/bin/python benchmarks/ideal.py`.
"""

from __future__ import annotations

import time

from node.ideal import IdealNetwork
from node.run_config import RunConfig
from relay.core.config import HostConfiguration, sync_backing

CASES = {
    "async, 5 validators, 2 paras": RunConfig(relay_blocks=100),
    "sync, 5 validators, 2 paras": RunConfig(relay_blocks=100,
                                               host=sync_backing(HostConfiguration())),
    "elastic 3 cores, 5 validators": RunConfig(paras=1, cores_per_para=3, relay_blocks=100,
                                                 host=HostConfiguration(max_candidate_depth=6)),
}


def main() -> None:
    for name, cfg in CASES.items():
        started = time.perf_counter()
        records = IdealNetwork(cfg).run()
        secs = time.perf_counter() - started
        included = sum(len(r.included) for r in records)
        print(f"{name:34s} {cfg.relay_blocks} relay blocks in {secs:6.2f} s "
              f"({cfg.relay_blocks / secs:5.1f} blocks/s, {included} candidates included)")


if __name__ == "__main__":
    main()
