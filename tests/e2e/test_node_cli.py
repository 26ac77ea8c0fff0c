"""A node process refusing bad configuration: exit status 1 and one line naming the problem."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from node.cluster import default_network
from node.cluster.launcher import LAUNCH, node_environment
from relay.core.config import HostConfiguration


@pytest.mark.parametrize("problem", ["unknown key", "port in use", "missing file"])
def test_bad_configuration_exits_nonzero_with_one_line(tmp_path: Path, problem: str) -> None:
    spec = tmp_path / "chain-spec.json"
    chain = default_network(HostConfiguration(slot_ms=1000), validators=4).chain_spec()
    spec.write_text(json.dumps(chain.to_json()))
    port_args: list[str] = []
    blocker = socket.socket()
    try:
        if problem == "unknown key":
            spec.write_text(spec.read_text().replace('"name"', '"nmae"', 1))
            expected = "nmae"
        elif problem == "port in use":
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            port_args = ["--port", str(blocker.getsockname()[1])]
            expected = "in use"
        else:
            spec = tmp_path / "absent.json"
            expected = "does not exist"
        out = subprocess.run([*LAUNCH, "validator", "--chain", str(spec), "--name", "alice",
                              "--base-path", str(tmp_path / "d"), "--rpc-port", "0",
                              "--prometheus-port", "0", *port_args],
                             cwd=tmp_path, env=node_environment(), capture_output=True,
                             timeout=60)
    finally:
        blocker.close()
    err = out.stderr.decode().strip().splitlines()
    assert out.returncode != 0
    assert len(err) == 1 and expected in err[0], err
