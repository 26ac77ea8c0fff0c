"""Starting and stopping one node process, so that none outlives the launcher.

Each node runs in its own session and process group (`start_new_session`), so a signal to the
group reaches it and anything it might start, and a Ctrl-C meant for the launcher's terminal
does not hit the nodes before the launcher has decided how to stop them.

Parent-death watch: on Linux every node is started with `prctl(PR_SET_PDEATHSIG, SIGKILL)`,
set in the child between fork and exec. The kernel then kills the node the moment the launcher
dies, however it dies (SIGKILL included), with nothing to poll and nothing for the node to do:
it works for a node that is stopped (SIGSTOP) or too busy to poll, which a watch inside the node
(polling `os.getppid()`) could not promise. SIGKILL rather than SIGTERM because a stopped node
would hold a SIGTERM pending until someone sent SIGCONT; the nodes are built to restart from a
SIGKILL (their store is written before what it records is sent). The launcher's death is already
abnormal, so nobody misses the clean shutdown.

The caveat, and why the launcher spawns the way it does: the signal fires when the *thread* that
forked the child exits, not the process. trio's `open_process` forks from a worker thread that
exits after ten idle seconds, which would kill every node ten seconds after it started; so
`spawn` calls `subprocess.Popen` directly, from the thread that runs the launcher's trio loop,
which lives as long as the cluster (with `SyncCluster`, its background thread). If the launcher
died between the fork and the prctl call, the child sees that its parent changed and kills itself.

Elsewhere than Linux there is no parent-death signal and nodes outlive a SIGKILLed launcher;
teardown still stops them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Looked up now, in the parent: the child must not load libraries between fork and exec.
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child, between fork and exec
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the launcher died before the prctl took hold
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def spawn(argv: Sequence[str], log_path: Path, *, cwd: Path, env: dict[str, str]
          ) -> subprocess.Popen[bytes]:
    """Start `argv` in its own process group, stdout and stderr appended to `log_path`, to be
    killed by the kernel if this launcher dies (Linux). Call it from the launcher's own thread."""
    with log_path.open("ab") as log:
        return subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent(os.getpid()))


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> bool:
    """Send `sig` to the process group `proc` leads; False if it has exited. A process not yet
    reaped still owns its pid (a zombie), so the group id cannot have been reused."""
    if proc.poll() is not None:
        return False
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return False
    return True


def process_alive(pid: int) -> bool:
    """Whether `pid` names a running (or stopped) process: not gone and not a zombie. For pids
    that are not this process's children, such as those `network.json` lists after the launcher
    died (an orphan's zombie lingers until whoever adopted it reaps it)."""
    if not Path("/proc/self/stat").exists():  # no procfs: zombies count as alive here
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # Field 3, after the parenthesised command name (which may itself hold spaces or ')').
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")
