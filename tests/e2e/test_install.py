"""The package as a user installs it: a wheel built from this tree, installed with no extras into a
fresh virtual environment, runs every role (issue 14: a collator once needed a module only the
`test` extra brought, and died with an 80-line exception group).

Offline once warmed: the wheel and its dependencies are installed from a wheelhouse
(`~/.cache/asyncback/wheelhouse`, or `ASYNCBACK_TEST_WHEELHOUSE`) with `--no-index`; when that
fails (a first run, or a dependency the wheelhouse lacks) the wheelhouse is filled from PyPI
with `pip download` and the install is tried again, offline. Nothing from this tree or the
project's own environment is importable in the new one (no PYTHONPATH, another directory).

Then `asyncback genesis` (one validator, one para, 1 s slots), and a validator, a relay node and
a collator started from the new environment's `asyncback` script: each must pass
`asyncback health --wait` (answering, peers, not syncing, a new block and new finality, a new
para block for the collator) and stop cleanly on SIGTERM with "node stopped" in its log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from node.cluster.launcher import PACKAGE_ROOT
from node.cluster.ports import PortAllocator

WHEELHOUSE = Path(os.environ.get("ASYNCBACK_TEST_WHEELHOUSE",
                                 Path.home() / ".cache" / "asyncback" / "wheelhouse"))
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
HEALTH_WAIT_S = 40  # a bound on the wait, not a measurement: a healthy node passes in seconds
STOP_S = 15


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("ASYNCBACK_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _offline_install(venv: Path, build_dir: Path) -> subprocess.CompletedProcess[str]:
    """Build the wheel and install it with its dependencies, both from the wheelhouse only."""
    built = subprocess.run([*PIP, "wheel", "-q", "--no-deps", "--no-index", "--find-links",
                            str(WHEELHOUSE), "-w", str(build_dir), str(PACKAGE_ROOT)],
                           capture_output=True, text=True, timeout=300)
    if built.returncode != 0:
        return built
    wheel = next(build_dir.glob("asyncback-*.whl"))
    return subprocess.run([*PIP, "--python", str(venv / "bin" / "python"), "install", "-q",
                           "--no-index", "--find-links", str(WHEELHOUSE), str(wheel)],
                          capture_output=True, text=True, timeout=300)


def _install(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    out = _offline_install(venv, tmp_path / "dist")
    if out.returncode != 0:  # fill the wheelhouse from PyPI, then offline again
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        subprocess.run([*PIP, "download", "-q", "-d", str(WHEELHOUSE), "setuptools>=77",
                        str(PACKAGE_ROOT)], check=True, capture_output=True, timeout=600)
        out = _offline_install(venv, tmp_path / "dist")
    assert out.returncode == 0, out.stderr
    return venv / "bin"


def test_a_no_extras_install_runs_every_role(tmp_path: Path) -> None:
    bin_dir = _install(tmp_path)
    env = _clean_env()
    where = subprocess.run([str(bin_dir / "python"), "-c", "import node, trio_websocket; "
                            "print(node.__file__)"], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=60)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(tmp_path / "venv")), where.stdout
    for extra in ("pytest", "hypothesis", "httpx", "matplotlib"):  # no extra came along
        probe = subprocess.run([str(bin_dir / "python"), "-c", f"import {extra}"],
                               capture_output=True, env=env, cwd=tmp_path, timeout=60)
        assert probe.returncode != 0, f"{extra} is importable without extras"

    asyncback = str(bin_dir / "asyncback")
    spec = tmp_path / "chain.json"
    subprocess.run([asyncback, "genesis", "--validators", "1", "--paras", "1", "--slot-ms",
                    "1000", "--out", str(spec)], check=True, env=env, cwd=tmp_path, timeout=60)
    assert json.loads(spec.read_text())["name"]

    allocator = PortAllocator()
    ports = {n: {k: allocator.allocate() for k in ("p2p", "rpc", "prom")}
             for n in ("alice", "bob", "collator")}

    def command(name: str, role: str, *extra: str) -> list[str]:
        p = ports[name]
        return [asyncback, role, "--chain", str(spec), "--name", name, "--base-path",
                str(tmp_path / "data" / name), "--port", str(p["p2p"]), "--rpc-port",
                str(p["rpc"]), "--prometheus-port", str(p["prom"]), "--log-format", "json",
                *extra]

    alice = f"127.0.0.1:{ports['alice']['p2p']}"
    nodes = {
        "alice": command("alice", "validator"),
        "bob": command("bob", "relay-node", "--bootnodes", alice),
        "collator": command("collator", "collator", "--para-id", "2000",
                            "--relay-chain-rpc-url", f"ws://127.0.0.1:{ports['bob']['rpc']}"),
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, argv in nodes.items():
            with (tmp_path / f"{name}.log").open("wb") as log:
                procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                               env=env, cwd=tmp_path)
        for name in nodes:  # a lone validator has no peers: each is asked once all run
            health = subprocess.run(
                [asyncback, "health", "--rpc-url", f"http://127.0.0.1:{ports[name]['rpc']}/",
                 "--wait", str(HEALTH_WAIT_S)],
                capture_output=True, text=True, env=env, cwd=tmp_path,
                timeout=HEALTH_WAIT_S + 30)
            assert health.returncode == 0, (name, health.stderr,
                                            (tmp_path / f"{name}.log").read_text()[-2000:])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in procs.items():
            try:
                codes[name] = proc.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        allocator.close()
    assert codes == {"alice": 0, "bob": 0, "collator": 0}, codes
    for name in nodes:
        text = (tmp_path / f"{name}.log").read_text()
        assert '"node stopped"' in text and "Traceback" not in text, text[-2000:]
