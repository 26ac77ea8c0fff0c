"""`asyncback test FILE.zndsl`: a zombienet test run against a network of asyncback processes.

Exit status: 0 when every line passed, 1 when a line failed (each failing line is named), 2 when
the test could not run (a file that does not parse, a network that does not start).
The run directory gets the nodes' logs, `test-results.json` (a result per line) and, read over
RPC from a relay node still running after the last line, the run's `report.json` and
`timeline.png`, as `asyncback testnet` writes them.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from relay.core.config import ConfigError

CANNOT_RUN = 2


class CannotRun(click.ClickException):
    exit_code = CANNOT_RUN


@click.command("test")
@click.argument("zndsl", type=click.Path(path_type=Path))
@click.option("--slot-ms", type=click.IntRange(min=10), default=None,
              help="Run the network at this relay slot. Every `within`, `sleep` and `after` "
                   "scales by the same factor as the slot (from the file's [asyncback] "
                   "slot_ms, else 6000): 1000 runs a 6 s-slot test six times faster.")
@click.option("--network", "network_path", type=click.Path(path_type=Path), default=None,
              help="This network file instead of the test's Network header.")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Where logs, data and results go (default: a new temporary directory).")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failing line.")
def test(zndsl: Path, slot_ms: int | None, network_path: Path | None, run_dir: Path | None,
         fail_fast: bool) -> None:
    """Run a zombienet test file (.zndsl) against asyncback processes on this machine.

    The network file is zombienet's TOML (see node/zombienet/network_file.py); the lines are
    zombienet's assertions: `is up`, `parachain P is registered`, `parachain P block height`,
    `reports METRIC`, `log line matches`, `count of log lines`, `restart`, `pause`, `resume`,
    `sleep`; and asyncback's link faults `partition [reset]`, `degrade latency N ms [jitter N ms]
    [loss N%]`, `heal` (the network then runs every node behind a fault proxy). Lines asyncback
    cannot run (js-script, system event, ...) are errors.
    """
    import trio

    from node.zombienet.network_file import read_network
    from node.zombienet.runner import check_names
    from node.zombienet.zndsl import ZndslError, parse_file

    try:
        script = parse_file(zndsl)
        network = read_network(network_path or script.network_path, slot_ms=slot_ms)
        spec = network.spec
        check_names(script, [n.name for n in spec.nodes()], spec.groups)
    except (ZndslError, ConfigError) as exc:
        raise CannotRun(str(exc)) from None
    notice = network.notice()
    if notice:
        click.echo(notice, err=True)
    for note in network.notes:
        click.echo(f"note: {note}", err=True)
    run_dir = (run_dir or Path(tempfile.mkdtemp(prefix=f"asyncback-test-{zndsl.stem}-"))
               ).resolve()
    click.echo(f"{zndsl}: {len(script.steps)} lines on {len(spec.nodes())} nodes, "
               f"{spec.host.slot_ms} ms slots (times x{network.time_scale:g}); "
               f"run directory {run_dir}")
    outcome = trio.run(_run, script, network, run_dir, fail_fast)
    observed = outcome.pop("observed", None)
    results = outcome["results"]
    (run_dir / "test-results.json").write_text(json.dumps(outcome, indent=1) + "\n")
    if observed is not None:
        _write_report(run_dir, outcome, *observed)
    failed = [r for r in results if r["passed"] is False]
    passed = sum(1 for r in results if r["passed"])
    click.echo(f"{passed} passed, {len(failed)} failed, "
               f"{sum(1 for r in results if r['passed'] is None)} not run; "
               f"logs and test-results.json in {run_dir}")
    if observed is None:
        click.echo(f"report: not written ({outcome.get('report_error', 'no relay node answered')})")
    if failed:
        for r in failed:
            click.echo(f"FAILED {zndsl}:{r['line']}: {r['text']} (measured {r['value'] or '-'}; "
                       f"{r['reason']})", err=True)
        sys.exit(1)


async def _run(script: Any, network: Any, run_dir: Path, fail_fast: bool) -> dict[str, Any]:
    from node.cluster import Cluster, ClusterError
    from node.zombienet.runner import LineResult, ZndslRunner

    def show(r: LineResult) -> None:
        mark = {True: "PASS", False: "FAIL", None: "SKIP"}[r.passed]
        value = f"  [{r.value}]" if r.value else ""
        why = f"  {r.reason}" if r.passed is False else ""
        click.echo(f"{mark} {r.line:>4}  {r.text}{value}  {r.duration_s:.1f} s{why}")

    spec = network.spec
    timeout = network.timeout_s
    try:
        faults = script.needs_link_faults
        cluster = Cluster(spec, run_dir, faults=faults,
                          **({"startup_timeout_s": timeout} if timeout else {}))
        async with cluster:
            runner = ZndslRunner(cluster.nodes, spec.groups, scale=network.time_scale,
                                 links=cluster if faults else None)
            results = await runner.run(script, fail_fast=fail_fast, on_result=show)
            observed, report_error = await _observe(cluster, spec)
    except ClusterError as exc:
        raise CannotRun(f"the network did not start: {exc}") from None
    outcome = {"test": str(script.path), "network": spec.name, "slot_ms": spec.host.slot_ms,
               "time_scale": network.time_scale, "results": [r.to_json() for r in results]}
    if observed is None:
        outcome["report_error"] = report_error
    else:
        outcome["observed"] = observed
    return outcome


async def _observe(cluster: Any, spec: Any) -> tuple[tuple[Any, Any] | None, str]:
    """The run's relay-block records and summary, read over RPC from a relay node still up
    after the test's last line (the test may have stopped or paused some)."""
    from node.cluster.observe import RPC_ERRORS, NetworkObserver, ObserveError

    para_ids = [p.para_id for p in spec.paras]
    relays = [n for n in (*cluster.by_role("relay-node"), *cluster.by_role("validator"))
              if not n.crashed]
    problem = "no relay node is running"
    errors: tuple[type[BaseException], ...] = (*RPC_ERRORS, ObserveError)
    for node in relays:
        collators = {p: [c.rpc for c in cluster.collators(p)] for p in para_ids}
        observer = NetworkObserver(node.rpc, para_ids, collators)
        try:
            await observer.poll()
        except errors as exc:
            problem = f"{node.name}: {exc}"
            continue
        return (observer.records, observer.summary()), ""
    return None, problem


def _write_report(run_dir: Path, outcome: dict[str, Any], records: Any, summary: Any) -> None:
    """report.json and timeline.png beside test-results.json, as `asyncback testnet` writes."""
    from node.cli.common import write_outputs

    config = {"mode": "test", "test": outcome["test"], "name": outcome["network"],
              "run_dir": str(run_dir), "slot_ms": outcome["slot_ms"]}
    write_outputs(run_dir / "report.json", config, records, summary)
