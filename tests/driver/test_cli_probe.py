"""`asyncback probe-peer` through click where no node is needed: what it refuses is one line
with exit status 1, and a target nobody listens on is reported dead (exit 1), not a traceback.
Against real nodes it runs in tests/e2e/test_faults.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import main


def spec_file(tmp_path: Path) -> Path:
    res = CliRunner().invoke(main, ["genesis", "--validators", "2", "--out",
                                    str(tmp_path / "spec.json")])
    assert res.exit_code == 0, res.output
    return tmp_path / "spec.json"


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["probe-peer", *args])
    return res.exit_code, res.output


@pytest.mark.parametrize(("args", "expected"), [
    (["localhost", "--chain", "{spec}"], "error: target 'localhost': expected HOST:PORT"),
    (["127.0.0.1:70000", "--chain", "{spec}"], "expected HOST:PORT"),
    (["127.0.0.1:1", "--chain", "{missing}"], "does not exist"),
    (["127.0.0.1:1", "--chain", "{spec}", "--seconds", "0"], "must be positive"),
    (["127.0.0.1:1", "--chain", "{spec}", "--rpc-url", "http://nohost"],
     "expected http://HOST:PORT"),
])
def test_what_it_refuses_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    spec = spec_file(tmp_path)
    args = [a.format(spec=spec, missing=tmp_path / "missing.json") for a in args]
    code, out = run(*args)
    assert code == 1 and expected in out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out


def test_a_target_nobody_listens_on_is_reported_dead(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report = tmp_path / "report.json"
    code, out = run(f"127.0.0.1:{port}", "--chain", str(spec_file(tmp_path)), "--seconds", "0.5",
                    "--json", str(report))
    assert code == 1
    assert "alive at the end: NO" in out and "did NOT survive" in out
    doc = json.loads(report.read_text())
    assert doc["connections"] == 0 and doc["dial_failures"] > 0 and not doc["survived"]
    assert doc["frames_sent_total"] == 0
