"""`asyncback ideal` end to end through click: table, report.json, exit status."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from node.cli import main


def test_ideal_writes_a_report_whose_summary_matches(tmp_path: Path) -> None:
    out = tmp_path / "run" / "report.json"
    res = CliRunner().invoke(main, ["ideal", "--relay-blocks", "30", "--paras", "1",
                                    "--report", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["config"]["max_candidate_depth"] == 3
    assert len(doc["relay_blocks"]) == 30
    assert doc["summary"]["paras"]["2000"]["window_min"] == 15
    assert (out.parent / "timeline.png").stat().st_size > 10_000
    res = CliRunner().invoke(main, ["report", str(out)])
    assert res.exit_code == 0 and "2000" in res.output


def test_sync_flag_halves_the_rate(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    res = CliRunner().invoke(main, ["ideal", "--sync", "--relay-blocks", "30", "--paras", "1",
                                    "--report", str(out)])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())["summary"]["paras"]["2000"]
    assert 7 <= s["window_min"] <= s["window_max"] <= 8


def test_bad_parameters_are_a_usage_error() -> None:
    res = CliRunner().invoke(main, ["ideal", "--lookahead", "0"])
    assert res.exit_code == 2 and "lookahead" in res.output


def test_too_few_validators_for_the_cores_is_a_usage_error() -> None:
    res = CliRunner().invoke(main, ["ideal", "--paras", "1", "--cores-per-para", "12"])
    assert res.exit_code == 2 and "validators" in res.output
