"""Benchmark: how short a relay slot the default testnet of real processes keeps up with (5
validators, a relay full node, 2 paras with a collator each, over TCP on this machine), and what
each process costs at that slot.

For each slot it runs the network as `asyncback testnet` does (`run_testnet`, in this process) for
`--relay-blocks` blocks and prints: the least and most candidates included per 15-block window per
para (async backing's target is 15, the acceptance bar 14), the finality lag at the end, and per
role the mean CPU share of one core (user + system time over the process's lifetime, read from
/proc while it runs) and the peak RSS. The shortest slot whose every para kept ≥ 14 per window is
named at the end. Asserts nothing; on a shared or loaded machine the figures are noisy.

Run: `.venv/bin/python benchmarks/slots.py [--slots 6000,1000,750,500] [--relay-blocks 40]`
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from node.cli.common import make_host
from node.cli.testnet import RunOutcome, run_testnet
from node.cluster.live import LiveView
from node.cluster.spec import default_network

TICKS = os.sysconf("SC_CLK_TCK")
BAR = 14


@dataclass
class ProcSample:
    role: str
    cpu_s: float  # user + system
    alive_s: float  # since the process started
    peak_rss_mb: float


def _sample(pid: int, role: str) -> ProcSample | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:  # it has exited
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    utime, stime, start = int(fields[11]), int(fields[12]), int(fields[19])
    hwm = next((int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmHWM:")), 0)
    if hwm == 0:  # a zombie: exited, not yet reaped, its memory gone
        return None
    return ProcSample(role, (utime + stime) / TICKS, uptime - start / TICKS, hwm / 1024)


async def _watch(run_dir: Path, samples: dict[str, ProcSample]) -> None:
    """Keep each node's latest sample, reading its pid from the launcher's network.json."""
    while True:
        try:
            doc: dict[str, Any] = json.loads((run_dir / "network.json").read_text())
        except (OSError, ValueError):
            doc = {}
        for node in doc.get("nodes", []):
            if node.get("pid"):
                s = _sample(node["pid"], node["role"])
                if s is not None:
                    samples[node["name"]] = s
        await trio.sleep(0.5)


async def _run(slot_ms: int, relay_blocks: int, run_dir: Path
               ) -> tuple[RunOutcome, dict[str, ProcSample]]:
    spec = default_network(make_host(None, 2, None, slot_ms, None))
    samples: dict[str, ProcSample] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch, run_dir, samples)
        outcome = await run_testnet(spec, run_dir, relay_blocks,
                                    view=LiveView(spec.name, out=io.StringIO(), live=False),
                                    echo=lambda _line: None)
        nursery.cancel_scope.cancel()
    return outcome, samples


def _report(slot_ms: int, outcome: RunOutcome, samples: dict[str, ProcSample]) -> bool:
    paras = outcome.summary.get("paras", {})
    windows = {p: (s["window_min"], s["window_max"]) for p, s in paras.items()}
    kept = bool(windows) and all(lo is not None and lo >= BAR for lo, _ in windows.values())
    s = outcome.summary
    lag = (s.get("best_number", 0) - s.get("finalized_number", 0)) if s else None
    per_window = ", ".join(f"{p}: {lo}-{hi}" for p, (lo, hi) in windows.items()) or "n/a"
    print(f"\n{slot_ms} ms slots: {len(outcome.records)} relay blocks (stopped by "
          f"{outcome.reason}); included per 15 blocks {per_window}; finality lag {lag}; "
          f"{'keeps' if kept else 'does NOT keep'} >= {BAR} per window")
    by_role: dict[str, list[ProcSample]] = defaultdict(list)
    for sample in samples.values():
        by_role[sample.role].append(sample)
    for role, group in sorted(by_role.items()):
        cpu = [100 * x.cpu_s / x.alive_s for x in group if x.alive_s > 0]
        rss = [x.peak_rss_mb for x in group]
        print(f"  {role:<11} x{len(group)}: CPU {sum(cpu) / len(cpu):5.1f} % of a core "
              f"(max {max(cpu):5.1f}), peak RSS {sum(rss) / len(rss):6.1f} MB "
              f"(max {max(rss):6.1f})")
    return kept


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--slots", default="6000,1000,750,500",
                      help="Comma-separated slot lengths in ms, run in this order.")
    args.add_argument("--relay-blocks", type=int, default=40)
    opts = args.parse_args()
    slots = [int(x) for x in opts.slots.split(",")]
    kept: list[int] = []
    print(f"default testnet (5 validators, relay node, 2 paras) over TCP on {os.cpu_count()} "
          f"cores, {opts.relay_blocks} relay blocks per slot length")
    for slot_ms in slots:
        with tempfile.TemporaryDirectory(prefix="asyncback-slots-") as tmp:
            outcome, samples = trio.run(_run, slot_ms, opts.relay_blocks, Path(tmp) / "run")
        if _report(slot_ms, outcome, samples):
            kept.append(slot_ms)
    print(f"\nshortest slot keeping >= {BAR} per window: "
          f"{f'{min(kept)} ms' if kept else 'none of those tried'}")


if __name__ == "__main__":
    main()
