"""`asyncback test` on the examples at 1 s slots (each starts its own network of processes), and
the pytest plugin used from a directory outside the repository.

- every example passes, and its run directory gets the run's report.json and timeline.png:
  async backing (0011 style), sync backing with lower and upper bounds
  over a fixed stretch (0017 style), elastic scaling on three cores;
- the 0017-style file fails on an async-backing network, on its upper bound, and says which line;
- a copy of an example with one assertion made false exits non-zero naming that line;
- a temporary directory holding one test file and no conftest uses the `cluster` fixture (the
  plugin comes from the installed package's entry point) and passes; a failing test there gets
  the run directory and the nodes' logs in its report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 600

pytestmark = pytest.mark.slow


def asyncback_test(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli", "test", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)


def results(run_dir: Path) -> list[dict[str, object]]:
    doc = json.loads((run_dir / "test-results.json").read_text())
    return list(doc["results"])


@pytest.mark.parametrize("example", ["async-backing", "sync-backing", "elastic-scaling",
                                     "link-faults"])
def test_example_passes_at_one_second_slots(example: str, tmp_path: Path) -> None:
    out = asyncback_test(EXAMPLES / f"{example}.zndsl", "--slot-ms", "1000",
                         "--run-dir", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = results(tmp_path)
    assert lines and all(r["passed"] for r in lines), lines
    assert f"{len(lines)} passed, 0 failed" in out.stdout
    # the run's report, read from the nodes over RPC as `asyncback testnet` writes it
    report = json.loads((tmp_path / "report.json").read_text())
    blocks = report["relay_blocks"]
    assert blocks and [b["number"] for b in blocks] == list(range(1, len(blocks) + 1))
    assert any(b["included"] for b in blocks), "no candidate included in the report"
    assert (tmp_path / "timeline.png").stat().st_size > 0
    print(out.stdout)  # the measured values, for the log


def test_sync_bounds_fail_on_an_async_network(tmp_path: Path) -> None:
    out = asyncback_test(EXAMPLES / "sync-backing.zndsl", "--network",
                         EXAMPLES / "async-backing.toml", "--slot-ms", "1000",
                         "--run-dir", tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    failed = [r for r in results(tmp_path) if r["passed"] is False]
    # only the upper bound read after the stretch: async backing ran past it
    assert [r["line"] for r in failed] == [16], failed
    assert "block height is lower than 17" in str(failed[0]["text"])
    assert "FAILED" in out.stderr and "sync-backing.zndsl:16:" in out.stderr
    print(out.stdout)


def test_a_false_assertion_fails_naming_its_line(tmp_path: Path) -> None:
    for name in ("elastic-scaling.zndsl", "elastic-scaling.toml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    test = tmp_path / "elastic-scaling.zndsl"
    lines = test.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "is at least 6 within" in line)
    lines[number - 1] = "validator-0: parachain 2000 block height is at least 100000 within 6 seconds"
    test.write_text("\n".join(lines) + "\n")
    out = asyncback_test(test, "--slot-ms", "1000", "--fail-fast", "--run-dir", tmp_path / "run")
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"FAILED {test}:{number}: validator-0: parachain 2000 block height is at least " \
           f"100000" in out.stderr
    by_line = {r["line"]: r["passed"] for r in results(tmp_path / "run")}
    assert by_line[number] is False
    assert all(passed for line, passed in by_line.items() if line < number)
    assert all(passed is None for line, passed in by_line.items() if line > number)


def run_pytest(directory: Path) -> subprocess.CompletedProcess[str]:
    """pytest in `directory`, as another project runs it: no conftest, no ini file, nothing
    on the path but the installed packages."""
    assert not (directory / "conftest.py").exists()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(directory), str(directory)],
                          cwd=directory, capture_output=True, text=True, env=env,
                          timeout=TIMEOUT_S)


def test_cluster_fixture_outside_the_repository(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "test_with_cluster.py", tmp_path / "test_with_cluster.py")
    shutil.copy(EXAMPLES / "sync-backing.toml", tmp_path / "sync-backing.toml")
    out = run_pytest(tmp_path)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "2 passed" in out.stdout


def test_a_failing_test_reports_its_run_directory_and_logs(tmp_path: Path) -> None:
    (tmp_path / "test_fails.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.asyncback_network(validators=1, paras=0, full_nodes=0)\n"
        "def test_wrong_name(cluster):\n"
        "    assert cluster['alice'].rpc('system_name') == 'somebody else'\n")
    out = run_pytest(tmp_path)
    assert out.returncode == 1, out.stdout[-4000:] + out.stderr[-2000:]
    assert "asyncback run directory" in out.stdout
    assert "asyncback log alice.log" in out.stdout and '"node started"' in out.stdout
    assert "asyncback run directories (kept)" in out.stdout
    kept = out.stdout.split("asyncback run directories (kept)")[1]
    run_dir = Path(kept.split("test_wrong_name: ")[1].split()[0])
    assert (run_dir / "alice.log").is_file() and (run_dir / "network.json").is_file()
