"""report.json and timeline.png from runs of the ideal network (node/ideal.py, pure and fast),
including elastic scaling, where one relay block includes several candidates of the same para."""

from __future__ import annotations

import functools
from pathlib import Path

from node.ideal import IdealNetwork
from node.report import BlockRecord, read_report, summarize, write_report
from node.run_config import RunConfig
from node.timeline import render_timeline
from relay.core.config import HostConfiguration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@functools.cache
def elastic_run() -> tuple[list[BlockRecord], dict[int, list[int]]]:
    net = IdealNetwork(RunConfig(validators=6, paras=1, cores_per_para=3, relay_blocks=30,
                                   host=HostConfiguration(max_candidate_depth=6)))
    return net.run(), net.segment_lengths


def test_elastic_report_counts_every_inclusion_of_a_block() -> None:
    records, segments = elastic_run()
    assert max(len(b.included) for b in records) == 3  # one para, three cores, one block
    s = summarize(records, [2000], segment_lengths=segments)["paras"]["2000"]
    assert s["window_min"] == s["window_max"] == 45
    assert s["included_per_relay_block"] == 3.0
    assert s["backing_to_inclusion"]["max"] == 1


def test_report_round_trips_through_json(tmp_path: Path) -> None:
    records, segments = elastic_run()
    summary = summarize(records, [2000], segment_lengths=segments)
    path = tmp_path / "run" / "report.json"
    write_report(path, {"mode": "ideal", "cores_per_para": 3}, records, summary)
    config, blocks, stored = read_report(path)
    assert config == {"mode": "ideal", "cores_per_para": 3}
    assert blocks == records
    assert stored == summary
    # re-summarised offline, the per-window figures are the same
    again = summarize(blocks, [2000])["paras"]["2000"]
    assert (again["window_min"], again["included_total"]) == (45, summary["paras"]["2000"]["included_total"])


def test_timeline_draws_several_inclusions_of_a_para_in_one_block(tmp_path: Path) -> None:
    records, _ = elastic_run()
    png = render_timeline(records, {"cores_per_para": 3}, tmp_path / "timeline.png")
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_timeline_of_an_empty_run_is_still_a_picture(tmp_path: Path) -> None:
    png = render_timeline([], {}, tmp_path / "timeline.png")
    assert png.read_bytes().startswith(PNG_MAGIC)
