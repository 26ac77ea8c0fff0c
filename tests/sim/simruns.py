"""Shared sim runs (imported by the tests beside it): each configuration runs once per test session (a 40-block run is seconds of
CPU), and every test reads its figures from the summary, in relay blocks."""

from __future__ import annotations

from typing import Any

from node.report import summarize
from node.sim import NodeFault, PartitionFault, SimConfig, SimResult, run_sim
from relay.core.config import HostConfiguration

SYNC = {"max_candidate_depth": 0, "allowed_ancestry_len": 0, "lookahead": 1}
_cache: dict[str, tuple[SimResult, dict[str, Any]]] = {}


def sim_run(host: dict[str, int] | None = None, **kw: Any) -> tuple[SimResult, dict[str, Any]]:
    key = repr((sorted((host or {}).items()), sorted(kw.items())))
    if key not in _cache:
        cfg = SimConfig(host=HostConfiguration(**(host or {})), **kw)
        result = run_sim(cfg)
        summary = summarize(result.records, result.para_ids,
                            segment_lengths=result.segment_lengths,
                            collator_segment_lengths=result.collator_segment_lengths)
        _cache[key] = (result, summary)
    return _cache[key]


__all__ = ["SYNC", "NodeFault", "PartitionFault", "sim_run"]
