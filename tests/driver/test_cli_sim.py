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


def test_processes_auto_splits_only_a_large_network_on_two_cores(tmp_path: Path) -> None:
    from node.sim import AUTO_SPLIT_VALIDATORS, auto_processes

    assert auto_processes(AUTO_SPLIT_VALIDATORS, cores=2) == 2
    assert auto_processes(AUTO_SPLIT_VALIDATORS - 1, cores=2) == 1
    assert auto_processes(300, cores=1) == 1
    out = tmp_path / "report.json"
    res = CliRunner().invoke(main, ["sim", "--relay-blocks", "6", "--paras", "1",
                                    "--processes", "auto", "--report", str(out)])
    assert res.exit_code == 0, res.output
    assert "processes: 1 (auto: 5 validators)" in res.output
    assert json.loads(out.read_text())["config"]["processes"] == 1
    res = CliRunner().invoke(main, ["sim", "--processes", "3"])
    assert res.exit_code == 2 and "'auto'" in res.output


async def test_progress_prints_a_line_at_each_tenth_of_the_run_in_a_log() -> None:
    import io

    from node.cli.sim import _Progress

    class Sim:
        best = 0

        def observed(self) -> tuple[int, int]:
            return self.best, max(0, self.best - 2)

    stream, sim = io.StringIO(), Sim()
    progress = _Progress(40, stream)
    for best in [0, 0, 1, 2, 3, 4, 4, 5, 8, 9, 12, 40]:
        sim.best = best
        await progress(sim)
    progress.done()
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "sim: relay block #4 of 40", "sim: relay block #8 of 40", "sim: relay block #12 of 40",
        "sim: relay block #40 of 40"]
    assert "s wall a block" not in lines[0]  # no rate before a second block is seen
    assert "finalized #38" in lines[-1] and "about 0 s left" in lines[-1]
