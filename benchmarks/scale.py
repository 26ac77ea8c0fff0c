"""Benchmark: how the simulator scales with validators × paras.

For each size, one `asyncback sim`-shaped run (`node.sim`), the same with `--no-sharing`
(`unshared`: every simulated node does all its own pure work) and, beside them as the upper bound,
the ideal driver (`node.ideal`: the same cores with no network). Per run: wall seconds per relay
block (start-up included), real-time factor (virtual seconds / wall seconds), frames and bytes the
in-memory network carried per relay block, signature checks per relay block (`verify` calls the
code made / Ed25519 verifications actually run: with sharing, a relay block imported once for all
nodes makes its signature checks once, so fewer are even asked for), peak RSS of the run's own process, and the fewest
candidates any para had included in a 15-block window after warm-up. Under each `sim` row, the
frames and bytes (payload) per relay block by lane and topic, message type or request kind: where
the traffic comes from. `split` is `sim` with half the validators in a second process in
lockstep (`asyncback sim --processes 2`); CPU and RSS then cover both processes, and under the
row each process's CPU per relay block and the wall time the run needs on two idle cores (each
window as long as the slower process), the figure a shared machine's wall clock cannot give.
CPU seconds (user + system) are printed beside the wall figures: on a shared machine they are
the steadier measure.

Each run is a fresh subprocess, so peak RSS is that run's alone. Prints figures; asserts nothing.
The machine may be shared: the wall figures are noisy.

Run: `nice .venv/bin/python benchmarks/scale.py [--sizes 5/2,20/4,50/10,100/20,300/60]
[--relay-blocks 25]` (default sizes: 5/2 and 20/4, a few minutes).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

ALL_SIZES = ("5/2", "20/4", "50/10", "100/20", "300/60")
DEFAULT_SIZES = ("5/2", "20/4")


def _cpu_s() -> float:
    """CPU seconds of this process and its children (the second process of a `split` run)."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def _peak_rss_mb() -> float:
    """The larger of this process's peak RSS and its largest child's (Linux: KiB)."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def reference_loop_ns(iterations: int = 2_000_000, repeats: int = 3) -> float:
    """This machine's speed at the simulator's kind of work, in ns per iteration of a fixed loop
    of dict reads and writes, calls and small tuples (the best of `repeats`): machines of one
    kind, or one machine from day to day, differ by up to 2x here, and the same figure beside
    each table says how far two tables are comparable."""

    def step(table: dict[int, int], key: int) -> tuple[int, int]:
        value = table.get(key, 0) + 1
        table[key] = value
        return key, value

    best = float("inf")
    for _ in range(repeats):
        table: dict[int, int] = {}
        started = time.perf_counter()
        for i in range(iterations):
            step(table, i & 1023)
        best = min(best, time.perf_counter() - started)
    return best / iterations * 1e9


def _min_window(records: list[Any], para_ids: list[int]) -> int | None:
    from node.report import DEFAULT_WARMUP, window_counts

    counts = [c for p in para_ids for c in window_counts(records, p, DEFAULT_WARMUP)]
    return min(counts) if counts else None


def run_one(mode: str, validators: int, paras: int, relay_blocks: int) -> dict[str, Any]:
    """One run in this process; what the table shows of it."""
    from proto.keys import SIGNATURE_CHECKS

    started, cpu_started = time.perf_counter(), _cpu_s()
    if mode == "ideal":
        from node.ideal import IdealNetwork
        from node.run_config import RunConfig

        cfg = RunConfig(validators=validators, paras=paras, relay_blocks=relay_blocks)
        records = IdealNetwork(cfg).run()
        wall = time.perf_counter() - started
        virtual = relay_blocks * cfg.host.slot_ms / 1000
        para_ids, frames, nbytes, problems = sorted({i.para_id for r in records
                                                     for i in r.included}), None, None, 0
        traffic, messages, split = {}, {}, {}
    elif mode in ("sim", "unshared", "split"):
        from node.sim import SimConfig, run_sim

        result = run_sim(SimConfig(validators=validators, paras=paras,
                                   relay_blocks=relay_blocks, sharing=mode != "unshared",
                                   processes=2 if mode == "split" else 1))
        wall = time.perf_counter() - started
        records, para_ids, virtual = result.records, result.para_ids, result.virtual_seconds
        frames, nbytes = result.network["sent"], result.network["bytes_sent"]
        traffic = result.traffic
        messages = result.gossip_messages
        problems = len(result.problems)
        split = result.split
    else:
        raise SystemExit(f"unknown mode {mode!r} (ideal, sim, unshared, split)")
    cpu = _cpu_s() - cpu_started
    blocks = max(1, len(records))
    return {
        "mode": mode, "size": f"{validators}/{paras}", "relay_blocks": len(records),
        "virtual_s": virtual,
        "wall_per_block_s": wall / blocks, "rtf": virtual / wall,
        "cpu_per_block_s": cpu / blocks, "cpu_rtf": virtual / cpu,
        "frames_per_block": None if frames is None else frames / blocks,
        "bytes_per_block": None if nbytes is None else nbytes / blocks,
        "sigs_asked_per_block": SIGNATURE_CHECKS.requested / blocks,
        "sigs_run_per_block": SIGNATURE_CHECKS.performed / blocks,
        "peak_rss_mb": _peak_rss_mb(), "min_window": _min_window(records, para_ids),
        "problems": problems,
        # Per lane and topic / message type / request kind: [frames, bytes] per relay block.
        "traffic": {k: [n / blocks, b / blocks] for k, (n, b) in traffic.items()},
        # Gossip messages per topic per relay block, alone or inside batch frames.
        "messages": {k: n / blocks for k, n in messages.items()},
        # split: each process's CPU seconds, and the wall the run needs on two idle cores.
        "split": {**split, "virtual_s": virtual, "blocks": blocks} if split else {},
    }


def _in_subprocess(mode: str, size: str, relay_blocks: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--one", mode, size,
                          "--relay-blocks", str(relay_blocks)],
                         check=True, capture_output=True, text=True)
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


HEADER = (f"{'size v/p':>9} {'mode':>8} {'blocks':>6} {'wall/blk s':>10} {'x real':>7} "
          f"{'cpu/blk s':>9} {'x real cpu':>10} "
          f"{'frames/blk':>10} {'KiB/blk':>8} {'sig asked/blk':>13} {'sig run/blk':>11} "
          f"{'RSS MB':>7} {'min/win':>7} {'problems':>8}")


def _line(r: dict[str, Any]) -> str:
    kib = None if r["bytes_per_block"] is None else r["bytes_per_block"] / 1024
    return (f"{r['size']:>9} {r['mode']:>8} {r['relay_blocks']:>6} "
            f"{r['wall_per_block_s']:>10.3f} {r['rtf']:>7.2f} "
            f"{r['cpu_per_block_s']:>9.3f} {r['cpu_rtf']:>10.2f} "
            f"{_fmt(r['frames_per_block'], '>10.0f')} {_fmt(kib, '>8.0f')} "
            f"{r['sigs_asked_per_block']:>13.0f} {r['sigs_run_per_block']:>11.0f} "
            f"{r['peak_rss_mb']:>7.0f} {_fmt(r['min_window'], '>7')} {r['problems']:>8}")


def _split_line(split: dict[str, Any]) -> str:
    """Two processes in lockstep: what each spent, and what the run takes on two idle cores (on a
    shared machine the measured wall is the other load's as much as the run's)."""
    per_block = split["lockstep_s"] / split["blocks"]
    return (f"{'':>9} {'split':>8}   process CPU s/blk {split['cpu_s_0'] / split['blocks']:.3f} + "
            f"{split['cpu_s_1'] / split['blocks']:.3f}; on 2 idle cores {per_block:.3f} s/blk "
            f"({split['virtual_s'] / split['lockstep_s']:.2f}x real time, start-up excluded; "
            f"{split['windows']} windows)")


def _breakdown(r: dict[str, Any]) -> list[str]:
    """The traffic of one run by lane and topic (or message type, request kind), largest first."""
    rows = sorted(r["traffic"].items(), key=lambda kv: -kv[1][0])
    total = sum(n for n, _ in r["traffic"].values()) or 1
    lines = [f"{'':>9} {r['mode']:>8}   {key:<28} {n:>10.0f} frames/blk {n / total:>6.1%} "
             f"{b / 1024:>9.1f} KiB/blk" for key, (n, b) in rows]
    lines += [f"{'':>9} {r['mode']:>8}   gossip messages {key:<12} {n:>10.0f} msgs/blk"
              for key, n in sorted(r.get("messages", {}).items(), key=lambda kv: -kv[1])]
    return lines


def _cost_line(r: dict[str, Any]) -> str:
    """The run's CPU per gossip message delivered, beside what real time on two cores allows:
    nearly all of a large run's work is every validator counting every vote, assignment and
    approval (n² messages), so this is the figure that has to come down for a size to keep up."""
    messages = sum(r.get("messages", {}).values())
    if not messages:
        return f"{'':>9} {r['mode']:>8}   no gossip messages counted"
    slot_s = r["virtual_s"] / max(1, r["relay_blocks"])
    spent = r["cpu_per_block_s"] / messages * 1e6
    allowed = 2 * slot_s / messages * 1e6
    return (f"{'':>9} {r['mode']:>8}   CPU per gossip message delivered {spent:.1f} us; real "
            f"time on 2 cores allows {allowed:.1f} us ({messages:.0f} msgs/blk)")


def growth(rows: list[dict[str, Any]]) -> list[str]:
    """How frames and bytes per relay block grow between consecutive sizes, as an exponent of
    the validator count (n^e): the issue's bar is e <= 1.5 (n·√n); a flood's is 2 or more."""
    import itertools
    import math

    out = [f"{'from':>9} {'to':>9} {'n ratio':>7} {'frames ratio':>12} {'exponent':>8} "
           f"{'n^1.5 ratio':>11} {'KiB ratio':>9} {'exponent':>8}"]
    for a, b in itertools.pairwise(rows):
        na, nb = (int(r["size"].split("/")[0]) for r in (a, b))
        if na == nb or not a["frames_per_block"] or not b["frames_per_block"]:
            continue
        k = nb / na
        fr = b["frames_per_block"] / a["frames_per_block"]
        br = b["bytes_per_block"] / a["bytes_per_block"]
        out.append(f"{a['size']:>9} {b['size']:>9} {k:>7.2f} {fr:>12.2f} "
                   f"{math.log(fr) / math.log(k):>8.2f} {k ** 1.5:>11.2f} {br:>9.2f} "
                   f"{math.log(br) / math.log(k):>8.2f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(DEFAULT_SIZES),
                        help=f"validators/paras, comma-separated (any of {', '.join(ALL_SIZES)}, "
                             f"or others)")
    parser.add_argument("--relay-blocks", type=int, default=25,
                        help="25 = 10 blocks of warm-up and one 15-block window")
    parser.add_argument("--modes", default="ideal,sim,unshared",
                        help="ideal: no network; sim: the simulator sharing pure work across its "
                             "nodes; unshared: the simulator with every node doing its own; "
                             "split: sim with half the validators in a second process")
    parser.add_argument("--one", nargs=2, metavar=("MODE", "V/P"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        mode, size = args.one
        v, p = (int(x) for x in size.split("/"))
        print(json.dumps(run_one(mode, v, p, args.relay_blocks)))
        return
    print(f"machine: {reference_loop_ns():.0f} ns per reference-loop iteration (pure Python, "
          f"one core; the same code runs about that much slower where the figure is higher)")
    print(HEADER, flush=True)
    sim_rows = []
    for size in args.sizes.split(","):
        for mode in args.modes.split(","):
            row = _in_subprocess(mode, size, args.relay_blocks)
            print(_line(row), flush=True)
            if mode == "sim":
                print("\n".join(_breakdown(row)), flush=True)
                print(_cost_line(row), flush=True)
                sim_rows.append(row)
            if row["split"]:
                print(_split_line(row["split"]), flush=True)
    if len(sim_rows) > 1:
        print("\ngrowth of the sim's traffic per relay block (n = validators):")
        print("\n".join(growth(sim_rows)), flush=True)


if __name__ == "__main__":
    main()
