"""`asyncback sim` through click: table, report.json, fault options, exit status."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from node.cli import main


def test_sim_prints_the_table_and_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    res = CliRunner().invoke(main, ["sim", "--relay-blocks", "14", "--paras", "1",
                                    "--seed", "3", "--kill", "eve@8:11", "--needed-approvals", "3",
                                    "--report", str(out)])
    assert res.exit_code == 0, res.output
    assert "2000" in res.output and "finalized" in res.output
    doc = json.loads(out.read_text())
    assert doc["config"]["mode"] == "sim" and doc["config"]["seed"] == 3
    assert doc["config"]["faults"] == [{"node": "eve", "at_block": 8, "restart_at": 11,
                                        "keep_state": False}]
    assert doc["config"]["needed_approvals"] == 3
    assert len(doc["relay_blocks"]) == 14
    assert sum(len(b["included"]) for b in doc["relay_blocks"]) >= 10


def test_bad_fault_specs_are_usage_errors() -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["sim", "--kill", "bob"])
    assert res.exit_code == 2 and "NODE@BLOCK" in res.output
    res = runner.invoke(main, ["sim", "--kill", "mallory@5"])
    assert res.exit_code == 2 and "mallory" in res.output
    res = runner.invoke(main, ["sim", "--partition", "bob@9-4"])
    assert res.exit_code == 2 and "heal" in res.output
    res = runner.invoke(main, ["sim", "--tx-rate", "10", "--saturate"])
    assert res.exit_code == 2
    res = runner.invoke(main, ["sim", "--needed-approvals", "0"])
    assert res.exit_code == 2 and "needed_approvals" in res.output
