"""`report.json`: what a run produced (design.md §4), and the per-para summary computed from it.

The same schema comes out of `asyncback ideal` and `sim` (design.md §4 asks it of `testnet` too):
`config`, `relay_blocks` (the
best chain, each block with the candidates it backed and included) and `summary`. The summary is
derived from `relay_blocks` only, so a report can be re-summarised offline (`asyncback report`).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WINDOW = 15  # relay blocks per measurement window (zombienet's async backing tests)
DEFAULT_WARMUP = 10


@dataclass
class BackedRecord:
    para_id: int
    candidate_hash: str
    relay_parent_number: int
    para_number: int
    core: int


@dataclass
class IncludedRecord:
    para_id: int
    candidate_hash: str
    relay_parent_number: int
    para_number: int
    backed_in: int
    txs: int = 0


@dataclass
class BlockRecord:
    number: int
    hash: str
    parent_hash: str
    slot: int
    author: int
    finalized: bool = False
    backed: list[BackedRecord] = field(default_factory=list)
    included: list[IncludedRecord] = field(default_factory=list)
    timed_out: list[dict[str, Any]] = field(default_factory=list)
    # The best block's number when this block was first seen finalized (None: not yet, or not
    # watched): what "included → finalized" is counted from.
    finalized_at: int | None = None


def block_from_json(d: Mapping[str, Any]) -> BlockRecord:
    return BlockRecord(
        number=d["number"], hash=d["hash"], parent_hash=d["parent_hash"], slot=d["slot"],
        author=d["author"], finalized=d.get("finalized", False),
        backed=[BackedRecord(**b) for b in d.get("backed", [])],
        included=[IncludedRecord(**i) for i in d.get("included", [])],
        timed_out=list(d.get("timed_out", [])), finalized_at=d.get("finalized_at"),
    )


def _block_json(b: BlockRecord) -> dict[str, Any]:
    return {
        "number": b.number, "hash": b.hash, "parent_hash": b.parent_hash, "slot": b.slot,
        "author": b.author, "finalized": b.finalized,
        "backed": [vars(x) for x in b.backed], "included": [vars(x) for x in b.included],
        "timed_out": b.timed_out, "finalized_at": b.finalized_at,
    }


def window_counts(
    blocks: Sequence[BlockRecord], para_id: int, warmup: int, window: int = WINDOW
) -> list[int]:
    """Included candidates of `para_id` in every `window`-block sliding window after `warmup`."""
    by_number = {b.number: sum(1 for i in b.included if i.para_id == para_id) for b in blocks}
    if not by_number:
        return []
    last = max(by_number)
    return [
        sum(by_number.get(n, 0) for n in range(start, start + window))
        for start in range(warmup + 1, last - window + 2)
    ]


def _stats(values: Iterable[float]) -> dict[str, float] | None:
    v = list(values)
    if not v:
        return None
    return {"mean": round(statistics.fmean(v), 3), "min": min(v), "max": max(v)}


def summarize(
    blocks: Sequence[BlockRecord],
    para_ids: Iterable[int],
    warmup: int = DEFAULT_WARMUP,
    segment_lengths: Mapping[int, Sequence[int]] | None = None,
    collator_segment_lengths: Mapping[int, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Per para: included counts over 15-block windows after warm-up, rates, latencies, ages.

    `segment_lengths` are the relay chain's candidates pending availability per relay block,
    `collator_segment_lengths` the collators' unincluded segments (blocks built past the
    included one) sampled once per relay block: both are measured while the run goes, not kept
    in the blocks."""
    paras: dict[str, Any] = {}
    measured = [b for b in blocks if b.number > warmup]
    span = len(measured)
    for p in sorted(para_ids):
        counts = window_counts(blocks, p, warmup)
        included = [i for b in measured for i in b.included if i.para_id == p]
        backed = [(b.number, x) for b in measured for x in b.backed if x.para_id == p]
        latency = [b.number - i.backed_in for b in measured for i in b.included if i.para_id == p]
        to_finality = [b.finalized_at - b.number for b in measured if b.finalized_at is not None
                       for i in b.included if i.para_id == p]
        ages = [n - x.relay_parent_number for n, x in backed]
        txs = sum(i.txs for i in included)
        seg = list((segment_lengths or {}).get(p, []))
        collator_seg = list((collator_segment_lengths or {}).get(p, []))
        paras[str(p)] = {
            "included_total": sum(1 for b in blocks for i in b.included if i.para_id == p),
            "included_after_warmup": len(included),
            "window": WINDOW,
            "window_min": min(counts) if counts else None,
            "window_max": max(counts) if counts else None,
            "last_window": counts[-1] if counts else None,
            "included_per_relay_block": round(len(included) / span, 3) if span else 0.0,
            "backing_to_inclusion": _stats(latency),
            "included_one_block_after_backing": (
                round(sum(1 for x in latency if x == 1) / len(latency), 3) if latency else None
            ),
            "inclusion_to_finality": _stats(to_finality),
            "relay_parent_age_at_backing": _stats(ages),
            "unincluded_segment_length": _stats(seg),
            "collator_unincluded_segment": _stats(collator_seg),
            "txs_included": txs,
            "txs_per_relay_block": round(txs / span, 3) if span else 0.0,
        }
    finalized = [b.number for b in blocks if b.finalized]
    return {
        "relay_blocks": len(blocks),
        "warmup": warmup,
        "best_number": blocks[-1].number if blocks else 0,
        "finalized_number": max(finalized) if finalized else 0,
        "paras": paras,
    }


def write_report(
    path: Path, config: Mapping[str, Any], blocks: Sequence[BlockRecord], summary: Mapping[str, Any]
) -> None:
    doc = {"config": dict(config), "relay_blocks": [_block_json(b) for b in blocks],
           "summary": dict(summary)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False))
    tmp.replace(path)


def read_report(path: Path) -> tuple[dict[str, Any], list[BlockRecord], dict[str, Any]]:
    doc = json.loads(path.read_text())
    return doc["config"], [block_from_json(b) for b in doc["relay_blocks"]], doc.get("summary", {})


def summary_table(summary: Mapping[str, Any]) -> list[list[str]]:
    """Rows for a terminal table: para, included, per window (min/max), per block, latency, txs."""
    rows = [["para", "included", f"per {WINDOW} (min-max)", "per block", "backed→incl",
             "rp age", "txs/block"]]
    for p, s in summary["paras"].items():
        lat = s["backing_to_inclusion"]
        age = s["relay_parent_age_at_backing"]
        rows.append([
            p, str(s["included_after_warmup"]),
            f"{s['window_min']}-{s['window_max']}" if s["window_min"] is not None else "n/a",
            f"{s['included_per_relay_block']:.2f}",
            f"{lat['mean']:.2f}" if lat else "n/a", f"{age['mean']:.2f}" if age else "n/a",
            f"{s['txs_per_relay_block']:.1f}",
        ])
    return rows
