"""node/cluster/process.py: a spawned node leads its own process group, and `process_alive`
tells running, stopped, zombie and gone processes apart (what the teardown and parent-death
checks read from network.json's pids)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from node.cluster.process import process_alive, signal_group, spawn

GUARD_S = 10  # a hung test fails instead of blocking the suite; never an expected duration


def test_spawned_process_leads_its_group_and_logs_to_its_file(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    proc = spawn([sys.executable, "-c", "import os, time; print(os.getpgid(0), flush=True); "
                  "time.sleep(60)"], log, cwd=tmp_path, env=dict(os.environ))
    try:
        deadline = time.monotonic() + GUARD_S
        while not log.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.read_text().strip() == str(proc.pid)  # its own group
        assert process_alive(proc.pid)
        assert signal_group(proc, signal.SIGSTOP)
        assert process_alive(proc.pid)  # stopped still counts as alive
        assert signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=GUARD_S)
        assert not process_alive(proc.pid)
        assert not signal_group(proc, signal.SIGTERM)  # exited: nothing sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + GUARD_S
    # Exited but not reaped: a zombie until we wait for it.
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not process_alive(proc.pid)
    proc.wait()
    assert not process_alive(proc.pid)
    assert process_alive(os.getpid())
