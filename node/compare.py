"""`--compare`: the same network run with sync then async backing, printed as the seed's table
(README) with each figure the seed states beside the one measured.

The seed's figures are for 6-second slots and one core per para; they scale with the slot (a
para block every other slot or every slot, an execution budget of 1/12 or 1/3 of it) and, for
blocks per relay block, with the cores a para has. Figures the seed does not state come from
design.md (backing of N+1 and inclusion of N land in the same relay block) and testing.md (the
finality lag targets).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.core.config import HostConfiguration


@dataclass(frozen=True)
class ComparedRun:
    host: HostConfiguration
    cores_per_para: int
    summary: Mapping[str, Any]  # node.report.summarize

    def mean(self, key: str) -> float | None:
        """Mean over paras of a per-para figure (a number, or a stats dict's mean)."""
        values: list[float] = []
        for para in self.summary["paras"].values():
            v = para.get(key)
            if isinstance(v, dict):
                v = v.get("mean")
            if isinstance(v, int | float):
                values.append(float(v))
        return statistics.fmean(values) if values else None

    def max(self, key: str) -> float | None:
        values = [p[key]["max"] for p in self.summary["paras"].values() if p.get(key)]
        return max(values) if values else None


def _duration(ms: float) -> str:
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:.0f} ms"


def _s(x: float | None, unit: str = "", digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}{unit}"


def compare_rows(sync: ComparedRun, fast: ComparedRun) -> list[list[str]]:
    """Rows for `print_table`: a header, then one row per figure of the seed's table."""
    slot_s = fast.host.slot_ms / 1000
    rows = [["", "sync: seed", "sync: measured", "async: seed", "async: measured"]]

    def per_block(run: ComparedRun) -> float | None:
        return run.mean("included_per_relay_block")

    def block_time(run: ComparedRun) -> str:
        rate = per_block(run)
        return _s(run.host.slot_ms / 1000 / rate if rate else None, " s", 1)

    rows.append(["para block time", _duration(2 * slot_s * 1000 / sync.cores_per_para),
                 block_time(sync), _duration(slot_s * 1000 / fast.cores_per_para),
                 block_time(fast)])
    rows.append(["para blocks per relay block", f"{0.5 * sync.cores_per_para:g}",
                 _s(per_block(sync)), f"{1.0 * fast.cores_per_para:g}", _s(per_block(fast))])

    def budget(run: ComparedRun) -> str:
        rate, txs = per_block(run), run.mean("txs_per_relay_block")
        fill = f" ({txs / rate:.0f} tx/block)" if rate and txs is not None else ""
        return f"{_duration(run.host.execution_timeout_ms)}{fill}"

    rows.append(["execution budget", _duration(sync.host.slot_ms / 12), budget(sync),
                 _duration(fast.host.slot_ms / 3), budget(fast)])

    def segment(run: ComparedRun) -> str:
        mean, top = run.mean("collator_unincluded_segment"), run.max("collator_unincluded_segment")
        return "n/a" if mean is None else f"{mean:.2f} (max {top:g})"

    rows.append(["unincluded segment", f"≤ {sync.host.max_candidate_depth + 1}",
                 segment(sync), f"≤ {fast.host.max_candidate_depth + 1}", segment(fast)])
    rows.append(["backed → included", "1", _s(sync.mean("backing_to_inclusion")),
                 "1", _s(fast.mean("backing_to_inclusion"))])
    rows.append(["included → finalized", "≤ 2",
                 _s(sync.mean("inclusion_to_finality")), "≤ 3",
                 _s(fast.mean("inclusion_to_finality"))])
    # The seed's "inclusion-to-finality: 30 seconds": finality now waits for approval checking
    # (issue 15); measured in relay blocks, shown in seconds of slot.

    def finality_s(run: ComparedRun) -> str:
        lag = run.mean("inclusion_to_finality")
        return _s(None if lag is None else lag * run.host.slot_ms / 1000, " s", 1)

    rows.append(["included → finalized (time)", "30 s", finality_s(sync), "30 s",
                 finality_s(fast)])
    slow_txs, fast_txs = sync.mean("txs_per_relay_block"), fast.mean("txs_per_relay_block")
    ratio = fast_txs / slow_txs if slow_txs and fast_txs is not None else None
    rows.append(["blockspace (tx/relay block)", "1×", f"1× ({_s(slow_txs, '', 0)})",
                 "~8×", f"{_s(ratio, '×', 1)} ({_s(fast_txs, '', 0)})"])
    return rows


def print_compare(rows: list[list[str]], title: str) -> None:
    """The table with its labels on the left, never wrapped: off a terminal (logs, CI) rich
    would fold it into 80 columns."""
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption="latencies in relay blocks; unincluded segment: the "
                  "collators', mean (max) per relay block")
    table.add_column(rows[0][0], justify="left", no_wrap=True)
    for h in rows[0][1:]:
        table.add_column(h, justify="right", no_wrap=True)
    for r in rows[1:]:
        table.add_row(*r)
    Console(width=None if sys.stdout.isatty() else 120).print(table)
