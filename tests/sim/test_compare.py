"""`asyncback sim --compare`: sync then async backing on the same network, printed as the seed's
table with the measured figures beside the stated ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from node.cli import main


def row(output: str, label: str) -> list[str]:
    """The cells of the comparison table's row that starts with `label`."""
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if cells and cells[0] == label:
            return cells[1:]
    raise AssertionError(f"no row {label!r} in:\n{output}")


def test_sim_compare_prints_the_seed_table_with_measured_figures(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["sim", "--compare", "--relay-blocks", "26",
                                    "--report", str(tmp_path / "report.json")])
    assert out.exit_code == 0, out.output
    text = out.output
    assert row(text, "para block time") == ["12 s", "12.0 s", "6 s", "6.0 s"]
    assert row(text, "para blocks per relay block") == ["0.5", "0.50", "1", "1.00"]
    sync_budget, async_budget = row(text, "execution budget")[1::2]
    assert sync_budget.startswith("500 ms (") and async_budget.startswith("2 s (")
    seed_sync, sync_seg, seed_async, async_seg = row(text, "unincluded segment")
    assert (seed_sync, seed_async) == ("≤ 1", "≤ 4")
    assert sync_seg.endswith("(max 1)") and float(async_seg.split()[0]) > 1.5
    assert row(text, "backed → included") == ["1", "1.00", "1", "1.00"]
    blockspace = row(text, "blockspace (tx/relay block)")
    assert blockspace[2] == "~8×"
    assert float(blockspace[3].split("×")[0]) >= 7.5
    for mode, depth in (("sync", 0), ("async", 3)):
        doc = json.loads((tmp_path / mode / "report.json").read_text())
        assert doc["config"]["max_candidate_depth"] == depth
        assert (tmp_path / mode / "timeline.png").exists()


def test_sim_compare_refuses_sync() -> None:
    out = CliRunner().invoke(main, ["sim", "--compare", "--sync"])
    assert out.exit_code == 2
    assert "--compare runs sync backing itself" in out.output
