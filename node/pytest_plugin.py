"""asyncback's pytest plugin (registered through the `pytest11` entry point, so any project that
installs asyncback has it): a `cluster` fixture that starts a network of asyncback processes for
one test and stops it afterwards.

    @pytest.mark.asyncback_network(validators=4, paras=1, slot_ms=1000)
    def test_para_grows(cluster):
        cluster.wait_para_height(2000, 5)                 # waits count relay blocks
        assert cluster["validator-0"].rpc("system_health")["peers"] > 0

    @pytest.mark.asyncback_network("networks/async.toml")   # a zombienet network file
    def test_from_a_file(cluster): ...

The marker takes the network as `asyncback sim`'s flags do (`validators`, `paras`,
`collators_per_para`, `cores_per_para`, `full_nodes`, `max_candidate_depth`,
`allowed_ancestry_len`, `lookahead`, `slot_ms`, `execution_ms`, `sync`, `tx_rate`,
`blocks_per_relay_parent`), or a zombienet network file (a path relative to the test file;
`slot_ms` runs it at that slot), or a `NetworkSpec` (`spec=`). Slots are 1 s unless `slot_ms`
says otherwise (waits count relay blocks, so a test means the same at any slot). Without the
marker: the default network (five validators, a full node, two paras). The fixture is a `SyncCluster` proxy: `Cluster`'s methods, called
from a plain test function, block until done.

The run directory (logs, data, `network.json`) is kept under pytest's temporary directory, or
under `--asyncback-run-dir`. When a test fails, the report names it and carries the end of each
node's log.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from node.cluster.spec import NetworkSpec

MARKER = "asyncback_network"
DEFAULT_SLOT_MS = 1000
LOG_TAIL_LINES = 30
RUN_DIR = pytest.StashKey[Path]()
FLAGS = frozenset({
    "validators", "paras", "collators_per_para", "cores_per_para", "full_nodes",
    "max_candidate_depth", "allowed_ancestry_len", "lookahead", "slot_ms", "execution_ms",
    "sync", "tx_rate", "blocks_per_relay_parent",
})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("asyncback").addoption(
        "--asyncback-run-dir", default=None,
        help="Keep the asyncback clusters' run directories under this directory.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(toml_path=None, *, spec=None, **flags): the network the "
                   "`cluster` fixture starts (asyncback sim's flags, a zombienet network file, "
                   "or a NetworkSpec)")


def network_from_marker(marker: pytest.Mark | None, test_dir: Path) -> NetworkSpec:
    """The network a marker describes; `pytest.UsageError` naming what it cannot use."""
    from node.cli.common import make_host
    from node.cluster.spec import NetworkSpec, default_network
    from relay.core.config import ConfigError

    args = marker.args if marker is not None else ()
    kwargs = dict(marker.kwargs) if marker is not None else {}
    spec = kwargs.pop("spec", None)
    if len(args) > 1 or (args and spec is not None):
        raise pytest.UsageError(f"{MARKER}: give one network file or one spec=")
    unknown = sorted(set(kwargs) - FLAGS)
    if unknown:
        raise pytest.UsageError(f"{MARKER}: unknown keyword(s) {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(FLAGS))})")
    try:
        if spec is not None:
            if not isinstance(spec, NetworkSpec) or kwargs:
                raise pytest.UsageError(f"{MARKER}: spec= takes a NetworkSpec and nothing else")
            return spec
        if args:
            from node.zombienet.network_file import read_network

            extra = sorted(set(kwargs) - {"slot_ms"})
            if extra:
                raise pytest.UsageError(f"{MARKER}: with a network file only slot_ms applies, "
                                        f"not {', '.join(extra)}")
            return read_network(test_dir / str(args[0]),
                                slot_ms=kwargs.get("slot_ms", DEFAULT_SLOT_MS)).spec
        cores = kwargs.get("cores_per_para", 1)
        host = make_host(kwargs.get("max_candidate_depth"), kwargs.get("allowed_ancestry_len", 2),
                         kwargs.get("lookahead"), kwargs.get("slot_ms", DEFAULT_SLOT_MS),
                         kwargs.get("execution_ms"), cores_per_para=cores,
                         sync=kwargs.get("sync", False))
        return default_network(
            host, validators=kwargs.get("validators", 5), paras=kwargs.get("paras", 2),
            collators_per_para=kwargs.get("collators_per_para", 1), cores_per_para=cores,
            full_nodes=kwargs.get("full_nodes", 1), tx_rate=kwargs.get("tx_rate"),
            blocks_per_relay_parent=kwargs.get("blocks_per_relay_parent", 0))
    except ConfigError as exc:
        raise pytest.UsageError(f"{MARKER}: {exc}") from None


def _run_dir(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Path:
    base = request.config.getoption("--asyncback-run-dir")
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in request.node.name)[:60]
    if base is None:
        return factory.mktemp(f"asyncback-{name}", numbered=True)
    path = Path(base) / name
    k = 0
    while path.exists():
        k += 1
        path = Path(base) / f"{name}-{k}"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running asyncback network, as the test's `asyncback_network` marker describes it."""
    from node.cluster.blocking import SyncCluster

    spec = network_from_marker(request.node.get_closest_marker(MARKER), request.path.parent)
    run_dir = _run_dir(request, tmp_path_factory)
    request.node.stash[RUN_DIR] = run_dir
    with SyncCluster(spec, run_dir) as running:
        yield running


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    run_dir = item.stash.get(RUN_DIR, None)
    if run_dir is not None and report.failed:
        report.sections.append(("asyncback run directory", str(run_dir)))
        for log in sorted(run_dir.glob("*.log")):
            report.sections.append((f"asyncback log {log.name} (last {LOG_TAIL_LINES} lines)",
                                    _tail(log)))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = []
    stats = terminalreporter.stats
    for report in stats.get("failed", []) + stats.get("error", []):
        for title, content in getattr(report, "sections", []):
            if title == "asyncback run directory":
                lines.append(f"{report.nodeid}: {content}")
    if lines:
        terminalreporter.section("asyncback run directories (kept)")
        for line in lines:
            terminalreporter.write_line(line)


def _tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as exc:
        return f"(cannot read: {exc})"
    return "\n".join(lines[-n:])
