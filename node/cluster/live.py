"""What `asyncback testnet` shows while the network runs, from a `NetworkObserver`.

On a terminal, a live table (rich, redrawn on stderr): relay best and finalized, and per para
over the last 15 relay blocks the candidates seconded, backed and included, those pending
availability now, the collators' unincluded segment and the relay-parent age at backing. Off a
terminal (logs, CI, a pipe), one plain line per relay block on stdout, so a log reads as the
chain grew.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from node.cluster.observe import NetworkObserver
from node.report import WINDOW, BlockRecord

SECONDED_METRIC = "asyncback_collations_seconded_total"


def block_line(rec: BlockRecord, observer: NetworkObserver, replaced: bool = False) -> str:
    """`#12 0x1a2b3c4d by 2, finalized #10 | 2000: backed #12 included #11 (15/15) | ...`"""
    parts = [f"#{rec.number} {rec.hash[:10]} by {rec.author}"
             f"{' (replaces a block)' if replaced else ''}, finalized "
             f"#{min(rec.number, observer.finalized_number)}"]
    for p in observer.para_ids:
        backed = ",".join(f"#{x.para_number}" for x in rec.backed if x.para_id == p) or "-"
        included = ",".join(f"#{x.para_number}" for x in rec.included if x.para_id == p) or "-"
        w = observer.window(p, upto=rec.number)
        parts.append(f"{p}: backed {backed} included {included} "
                     f"({w.included}/{min(WINDOW, rec.number)})")
    return " | ".join(parts)


class SecondedCounter:
    """Per para, the collators' seconded totals (their Prometheus counter) sampled once per relay
    block, so a window's count is a difference of two samples."""

    def __init__(self) -> None:
        self.samples: dict[int, list[tuple[int, float]]] = {}  # para -> [(relay number, total)]

    def note(self, para_id: int, relay_number: int, total: float) -> None:
        self.samples.setdefault(para_id, []).append((relay_number, total))

    def in_window(self, para_id: int, best: int, size: int = WINDOW) -> int | None:
        samples = self.samples.get(para_id)
        if not samples:
            return None
        start = best - size
        before = [t for n, t in samples if n <= start]
        base = before[-1] if before else samples[0][1]
        return max(0, int(samples[-1][1] - base))


def seconded_total(metrics: Mapping[str, float]) -> float | None:
    value = metrics.get(SECONDED_METRIC)
    return float(value) if value is not None else None


def live_table(observer: NetworkObserver, seconded: SecondedCounter, title: str) -> Any:
    from rich.table import Table

    table = Table(title=f"{title}\nrelay best #{observer.best_number}, finalized "
                        f"#{observer.finalized_number}",
                  caption=f"seconded, backed, included: over the last {WINDOW} relay blocks; "
                          f"pending availability and the collators' unincluded segment: now; "
                          f"relay-parent age at backing: mean over the window")
    for h in ("para", "seconded", "backed", "included", "pending avail.", "unincl. segment",
              "rp age"):
        table.add_column(h, justify="right")

    def opt(x: float | None, fmt: str = "{}") -> str:
        return "-" if x is None else fmt.format(x)

    for p in observer.para_ids:
        w = observer.window(p)
        table.add_row(str(p), opt(seconded.in_window(p, observer.best_number)), str(w.backed),
                      str(w.included), opt(w.pending_availability), opt(w.unincluded_segment),
                      opt(w.relay_parent_age, "{:.2f}"))
    return table


class LiveView:
    """The rich live table on a terminal, plain lines elsewhere; `close()` when done."""

    def __init__(self, title: str, out: TextIO | None = None, live: bool | None = None) -> None:
        self.title = title
        self.out = out or sys.stdout
        self.live_mode = sys.stderr.isatty() if live is None else live
        self._live: Any = None

    def update(self, observer: NetworkObserver, added: list[BlockRecord], replaced: bool,
               seconded: SecondedCounter) -> None:
        if self.live_mode:
            table = live_table(observer, seconded, self.title)
            if self._live is None:
                from rich.console import Console
                from rich.live import Live

                self._live = Live(table, console=Console(stderr=True), auto_refresh=False)
                self._live.start()
            self._live.update(table, refresh=True)
            return
        for i, rec in enumerate(added):
            print(block_line(rec, observer, replaced and i == 0), file=self.out, flush=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
