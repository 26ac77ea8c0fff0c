"""A node process refusing bad configuration: exit status 1 and one line naming the problem (a
port in use named with its address and flag); an unexpected error: one line naming it and the
file its full traceback went to."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from node.cluster import default_network
from node.cluster.launcher import LAUNCH, node_environment
from relay.core.config import HostConfiguration

PORT_FLAGS = {"port in use (p2p)": "--port", "port in use (rpc)": "--rpc-port",
              "port in use (prometheus)": "--prometheus-port"}


def _run_validator(tmp_path: Path, spec: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    ports = {"--port": "0", "--rpc-port": "0", "--prometheus-port": "0"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        ports[flag] = value
    return subprocess.run([*LAUNCH, "validator", "--chain", str(spec), "--name", "alice",
                           *(a for kv in ports.items() for a in kv)],
                          cwd=tmp_path, env=node_environment(), capture_output=True, timeout=60)


def _chain_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "chain-spec.json"
    chain = default_network(HostConfiguration(slot_ms=1000), validators=4).chain_spec()
    spec.write_text(json.dumps(chain.to_json()))
    return spec


@pytest.mark.parametrize("problem", ["unknown key", "missing file", *PORT_FLAGS])
def test_bad_configuration_exits_nonzero_with_one_line(tmp_path: Path, problem: str) -> None:
    spec = _chain_spec(tmp_path)
    args: list[str] = ["--base-path", str(tmp_path / "d")]
    blocker = socket.socket()
    try:
        if problem == "unknown key":
            spec.write_text(spec.read_text().replace('"name"', '"nmae"', 1))
            expected = "nmae"
        elif problem in PORT_FLAGS:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            port = blocker.getsockname()[1]
            args += [PORT_FLAGS[problem], str(port)]
            expected = f"cannot listen on 127.0.0.1:{port} for "
        else:
            spec = tmp_path / "absent.json"
            expected = "does not exist"
        out = _run_validator(tmp_path, spec, *args)
    finally:
        blocker.close()
    err = out.stderr.decode().strip().splitlines()
    assert out.returncode != 0
    assert len(err) == 1 and expected in err[0], err
    if problem in PORT_FLAGS:
        assert PORT_FLAGS[problem] in err[0] and "Address already in use" in err[0], err


def test_an_unexpected_error_is_one_line_naming_the_traceback_file(tmp_path: Path) -> None:
    """A base path that is a file: the store cannot be opened, an error no check anticipates."""
    spec = _chain_spec(tmp_path)
    base = tmp_path / "not-a-directory"
    base.write_text("")
    out = _run_validator(tmp_path, spec, "--base-path", str(base))
    err = out.stderr.decode().strip().splitlines()
    assert out.returncode == 1
    assert len(err) == 1 and err[0].startswith("error: unexpected error: FileExistsError"), err
    traceback_file = Path(err[0].rsplit("full traceback in ", 1)[1].rstrip(")"))
    text = traceback_file.read_text()
    assert "Traceback" in text and "FileExistsError" in text and "_open_store" in text
