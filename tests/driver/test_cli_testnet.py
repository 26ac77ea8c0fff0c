"""`asyncback testnet` refuses what it cannot run before starting any process: one usage line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import main
from node.cli.testnet import unique_run_dir


@pytest.mark.parametrize(("args", "expected"), [
    (["--compare", "--sync"], "--compare runs sync backing itself"),
    (["--relay-blocks", "0"], "--relay-blocks"),
    (["--validators", "0"], "at least one validator"),
    (["--max-candidate-depth", "-1"], "max_candidate_depth"),
])
def test_bad_options_are_one_usage_line(tmp_path: Path, args: list[str], expected: str) -> None:
    res = CliRunner().invoke(main, ["testnet", "--run-dir", str(tmp_path / "R"), *args])
    assert res.exit_code == 2, res.output
    assert expected in res.output.splitlines()[-1], res.output
    assert not (tmp_path / "R").exists()  # nothing was started


def test_a_network_file_excludes_the_network_options(tmp_path: Path) -> None:
    network = tmp_path / "network.toml"
    network.write_text("[relaychain]\n")
    for extra in (["--paras", "1"], ["--sync"], ["--compare"]):
        res = CliRunner().invoke(main, ["testnet", "-c", str(network), *extra])
        assert res.exit_code == 2, res.output
        assert "-c" in res.output.splitlines()[-1]


def test_default_run_directories_never_clash(tmp_path: Path) -> None:
    made = [unique_run_dir(tmp_path / "runs") for _ in range(3)]
    assert len(set(made)) == 3 and all(p.is_dir() for p in made)


def test_a_network_file_with_an_unknown_key_is_one_line_naming_it(tmp_path: Path) -> None:
    network = tmp_path / "network.toml"
    network.write_text('[relaychain]\n[[relaychain.nodes]]\nname = "alice"\nvaidator = true\n')
    res = CliRunner().invoke(main, ["testnet", "-c", str(network), "--run-dir",
                                    str(tmp_path / "R")])
    assert res.exit_code == 1, res.output
    assert "relaychain.nodes[0].vaidator" in res.output.splitlines()[-1], res.output
    assert not (tmp_path / "R").exists()
