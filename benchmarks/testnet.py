"""Benchmark: the default testnet of real processes (5 validators, a relay full node, 2 paras
with a collator each), launched and followed as `asyncback testnet` does (`run_testnet`, in this
process), at 1 s slots unless told otherwise.

Prints, per run: launch to first inclusion, in relay blocks (the number of the first relay block
that included a candidate) and in seconds from the launch; and the launcher's own CPU share (this
process's CPU time over the wall time: starting the nodes, polling their RPC, keeping the
records), i.e. what following a network costs beside the network itself. Asserts nothing.

Run: `.venv/bin/python benchmarks/testnet.py [--slot-ms 1000] [--relay-blocks 30] [--runs 1]`
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from functools import partial
from pathlib import Path

import trio

from node.cli.common import make_host
from node.cli.testnet import run_testnet
from node.cluster.live import LiveView
from node.cluster.spec import default_network


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--slot-ms", type=int, default=1000)
    args.add_argument("--relay-blocks", type=int, default=30)
    args.add_argument("--runs", type=int, default=1)
    opts = args.parse_args()
    spec = default_network(make_host(None, 2, None, opts.slot_ms, None))
    for k in range(opts.runs):
        with tempfile.TemporaryDirectory(prefix="asyncback-bench-") as tmp:
            wall0, cpu0 = time.monotonic(), time.process_time()
            view = LiveView(spec.name, out=io.StringIO(), live=False)
            outcome = trio.run(partial(run_testnet, spec, Path(tmp) / "run", opts.relay_blocks,
                                       view=view, echo=lambda _line: None))
            wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        first = outcome.first_inclusion
        first_text = (f"first inclusion in relay block #{first[0]}, {first[1]:.1f} s after "
                      f"launch" if first else "no inclusion")
        paras = outcome.summary.get("paras", {})
        per_window = ", ".join(f"{p}: {s['window_min']}-{s['window_max']}"
                               if s["window_min"] is not None else f"{p}: n/a (too short)"
                               for p, s in paras.items())
        print(f"run {k + 1}: {opts.slot_ms} ms slots, {len(outcome.records)} relay blocks in "
              f"{wall:.1f} s wall (stopped by {outcome.reason}); {first_text}; launcher CPU "
              f"{cpu:.1f} s = {100 * cpu / wall:.1f} % of one core; per 15 blocks {per_window}")


if __name__ == "__main__":
    main()
