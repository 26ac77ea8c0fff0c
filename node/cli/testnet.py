"""`asyncback testnet`: a local testnet of real processes (validators, a relay full node,
collators) started by `Cluster` under one run directory, followed over JSON-RPC while it runs,
and reported when it stops. `--provider docker` (or `provider = "docker"` in a network file's
`[settings]`) runs the same network as containers of a compose project (see
`node.cluster.docker_provider`), with the same run directory.

It stops on Ctrl-C or SIGTERM, when `--relay-blocks` is reached, when a node dies (which one, and
where its log is, is printed) or when the relay chain stalls; then it stops every process and
writes `network.json` (the launcher's), `report.json` and `timeline.png` in the run directory
and prints the same summary table as `asyncback sim`. The exit status is 0 when it was stopped
as asked (a signal, or `--relay-blocks`) and the run's invariants held, 1 otherwise.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import trio
from click.core import ParameterSource

from node.cli.common import backing_mode, make_host, network_options, print_table, write_outputs
from node.cluster.live import LiveView, SecondedCounter, seconded_total
from node.cluster.observe import RPC_ERRORS, NetworkObserver
from node.cluster.spec import PROVIDERS, NetworkSpec, default_network
from node.invariants import check_invariants
from node.report import BlockRecord
from relay.core.config import ConfigError

STALL_SLOTS = 30  # no new relay block for this many slots: the chain has stalled
POLLS_PER_SLOT = 4
COMPARE_RELAY_BLOCKS = 40


@dataclass
class RunOutcome:
    """How a testnet run ended and what it recorded."""

    run_dir: Path
    spec: NetworkSpec
    # relay-blocks | interrupted | terminated | node died | stalled | failed to start
    reason: str = "not started"
    detail: str = ""
    records: list[BlockRecord] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    launched_at: float = 0.0  # monotonic, when the launcher began starting nodes
    first_inclusion: tuple[int, float] | None = None  # relay number, seconds after launch

    @property
    def ok(self) -> bool:
        return self.reason in ("relay-blocks", "interrupted", "terminated") and not self.problems


def unique_run_dir(base: Path = Path("runs")) -> Path:
    """`runs/<timestamp>/`, made here; a second testnet started the same second gets `-2`."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for k in range(1, 1000):
        path = base / (stamp if k == 1 else f"{stamp}-{k}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise click.ClickException(f"cannot make a run directory under {base}")


def describe_nodes(cluster: Any) -> list[str]:
    """One line per node: name, role, RPC and WebSocket URL, Prometheus URL, log path."""
    nodes = list(cluster)
    width = max(len(n.name) for n in nodes)
    return [f"{n.name:<{width}}  {n.role:<10}  rpc {n.rpc_url}  ws {n.ws_url}  "
            f"prometheus {n.prometheus_url}  log {n.log_path}" for n in nodes]


async def _watch_signals(receiver: Any, outcome: RunOutcome, scope: trio.CancelScope) -> None:
    async for signum in receiver:
        outcome.reason = "interrupted" if signum == signal.SIGINT else "terminated"
        scope.cancel()
        return


async def _seconded(cluster: Any, observer: NetworkObserver, counter: SecondedCounter) -> None:
    for p in observer.para_ids:
        totals = []
        for c in cluster.collators(p):
            try:
                totals.append(seconded_total(await c.metrics()))
            except RPC_ERRORS:
                continue
        known = [t for t in totals if t is not None]
        if known:
            counter.note(p, observer.best_number, sum(known))


async def _follow(cluster: Any, observer: NetworkObserver, outcome: RunOutcome,
                  relay_blocks: int | None, view: LiveView) -> None:
    """Poll the network until it is to stop; sets `outcome.reason`."""
    slot_s = cluster.spec.host.slot_ms / 1000
    counter = SecondedCounter()
    last_progress = time.monotonic()
    while True:
        dead = cluster.crashed()
        if dead:
            n = dead[0]
            outcome.reason = "node died"
            outcome.detail = (f"node {n.name} ({n.role}) exited with status {n.returncode}; "
                              f"its log: {n.log_path}")
            return
        before = len(observer.records)
        try:
            added = await observer.poll()
        except RPC_ERRORS:
            added = []  # the relay node is busy or restarting: next poll
        if added:
            last_progress = time.monotonic()
            await _seconded(cluster, observer, counter)
            if outcome.first_inclusion is None and any(r.included for r in observer.records):
                first = next(r for r in observer.records if r.included)
                outcome.first_inclusion = (first.number, time.monotonic() - outcome.launched_at)
            view.update(observer, added, replaced=len(observer.records) - len(added) < before,
                        seconded=counter)
        if relay_blocks is not None and observer.best_number >= relay_blocks:
            outcome.reason = "relay-blocks"
            return
        if time.monotonic() - last_progress > STALL_SLOTS * slot_s:
            outcome.reason = "stalled"
            outcome.detail = (f"no new relay block for {STALL_SLOTS} slots (best "
                              f"#{observer.best_number})")
            return
        await trio.sleep(slot_s / POLLS_PER_SLOT)


async def run_testnet(spec: NetworkSpec, run_dir: Path, relay_blocks: int | None, *,
                      view: LiveView | None = None,
                      echo: Callable[[str], None] = click.echo) -> RunOutcome:
    """Start the network, follow it until it is to stop, stop it; the records and summary are
    in the outcome (nothing is written here but what `Cluster` writes)."""
    from node.cluster.handle import ClusterError
    from node.cluster.launcher import Cluster
    from node.cluster.waits import NodeCrashed

    outcome = RunOutcome(run_dir, spec)
    view = view or LiveView(spec.name)
    para_ids = [p.para_id for p in spec.paras]
    observer: NetworkObserver | None = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, signals, outcome, nursery.cancel_scope)
            outcome.launched_at = time.monotonic()
            try:
                async with Cluster(spec, run_dir) as cluster:
                    echo(f"run directory: {cluster.run_dir}")
                    for line in describe_nodes(cluster):
                        echo(line)
                    observer = NetworkObserver(
                        cluster.observer.rpc, para_ids,
                        {p: [c.rpc for c in cluster.collators(p)] for p in para_ids})
                    await _follow(cluster, observer, outcome, relay_blocks, view)
            except (ClusterError, NodeCrashed) as exc:
                outcome.reason, outcome.detail = "failed to start", str(exc)
            finally:
                view.close()
            nursery.cancel_scope.cancel()
    if observer is not None:
        outcome.records = observer.records[:relay_blocks]
        outcome.summary = observer.summary(relay_blocks)
        host = spec.host
        outcome.problems = check_invariants(outcome.records, host.allowed_ancestry_len,
                                            host.max_candidate_depth)
        capacity = host.max_candidate_depth + 1
        for p, lengths in observer.collator_segment_lengths.items():
            if lengths and max(lengths) > capacity:
                outcome.problems.append(f"para {p}: a collator's unincluded segment reached "
                                        f"{max(lengths)} > capacity {capacity}")
    return outcome


def run_config(spec: NetworkSpec, outcome: RunOutcome) -> dict[str, Any]:
    paras = spec.paras
    return {
        "mode": "testnet", "name": spec.name, "run_dir": str(outcome.run_dir),
        "validators": len(spec.validators), "full_nodes": len(spec.full_nodes),
        "paras": len(paras), "cores_per_para": max((p.cores for p in paras), default=0),
        "collators_per_para": max((len(p.collators) for p in paras), default=0),
        "stopped_by": outcome.reason, **spec.host.to_mapping(),
    }


def report_outcome(outcome: RunOutcome) -> None:
    """report.json and timeline.png in the run directory, and the summary table."""
    from node.report import summary_table

    if outcome.reason == "failed to start":
        click.echo(f"error: {outcome.detail}", err=True)
        return
    if not outcome.records and outcome.reason in ("interrupted", "terminated"):
        click.echo(f"{outcome.reason} before the network produced a block", err=True)
        return
    host = outcome.spec.host
    write_outputs(outcome.run_dir / "report.json", run_config(outcome.spec, outcome),
                  outcome.records, outcome.summary)
    click.echo(f"network: {outcome.run_dir / 'network.json'}")
    title = (f"testnet, {backing_mode(host)} backing: {len(outcome.spec.validators)} "
             f"validators, depth {host.max_candidate_depth}, ancestry "
             f"{host.allowed_ancestry_len}, {host.slot_ms} ms slots: {len(outcome.records)} "
             f"relay blocks, stopped by {outcome.reason}")
    print_table(summary_table(outcome.summary), title)
    s = outcome.summary
    click.echo(f"finalized #{s['finalized_number']} of #{s['best_number']}; windows of 15 relay "
               f"blocks after {s['warmup']} warm-up blocks")
    if outcome.detail:
        click.echo(f"{outcome.reason}: {outcome.detail}", err=True)
    if outcome.problems:
        click.echo("INVARIANT VIOLATIONS:\n" + "\n".join(outcome.problems), err=True)


def load_network_file(path: Path, slot_ms: int | None) -> NetworkSpec:
    """`-c network.toml`: zombienet's network file (`node.zombienet.network_file`), at
    `slot_ms` if given; its ignored keys and notes are printed once."""
    from node.zombienet.network_file import read_network

    try:
        file = read_network(path, slot_ms=slot_ms)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for line in (file.notice(), *file.notes):
        if line:
            click.echo(f"{path}: {line}", err=True)
    return file.spec


NETWORK_OPTIONS = ("validators", "paras", "collators_per_para", "cores_per_para",
                   "max_candidate_depth", "allowed_ancestry_len", "lookahead", "slot_ms",
                   "execution_ms", "sync")


@click.command()
@click.option("-c", "--config", "config_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A zombienet network file (TOML) instead of the network options.")
@network_options()
@click.option("--collators-per-para", default=1, show_default=True)
@click.option("--relay-blocks", default=None, type=click.IntRange(min=1),
              help="Stop after this many relay blocks (default: run until Ctrl-C).")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Logs, node data, network.json, report.json, timeline.png "
                   "(default: runs/<timestamp>/).")
@click.option("--provider", type=click.Choice(PROVIDERS), default=None,
              help="native: processes of this machine; docker: containers of a compose project "
                   "(image $ASYNCBACK_IMAGE, default asyncback:dev, from scripts/build-image). "
                   "Default: the network file's, else native.")
@click.option("--compare", is_flag=True,
              help=f"Run the network with sync then async backing (--relay-blocks each, "
                   f"default {COMPARE_RELAY_BLOCKS}; into sync/ and async/ of the run directory) "
                   f"and print the seed's table beside the measured figures.")
def testnet(config_path: Path | None, validators: int, paras: int, collators_per_para: int,
            cores_per_para: int, max_candidate_depth: int | None, allowed_ancestry_len: int,
            lookahead: int | None, slot_ms: int, execution_ms: int | None, sync: bool,
            relay_blocks: int | None, run_dir: Path | None, provider: str | None,
            compare: bool) -> None:
    """Run a local testnet of real processes: validators alice..eve, relay full node ferdie,
    paras 2000 and 2001 with a collator each attached to ferdie (by default), until Ctrl-C."""
    from node.compare import ComparedRun, compare_rows, print_compare

    if compare and sync:
        raise click.UsageError("--compare runs sync backing itself; drop --sync")
    if compare and config_path is not None:
        raise click.UsageError("--compare builds its two networks from the flags, not -c")
    if config_path is not None:
        ctx = click.get_current_context()
        given = [f"--{name.replace('_', '-')}" for name in NETWORK_OPTIONS if name != "slot_ms"
                 and ctx.get_parameter_source(name) is not ParameterSource.DEFAULT]
        if given:
            raise click.UsageError(f"-c describes the network; drop {', '.join(given)}")

    def network(sync_run: bool) -> NetworkSpec:
        if config_path is not None:
            explicit = click.get_current_context().get_parameter_source("slot_ms")
            return load_network_file(
                config_path, slot_ms if explicit is not ParameterSource.DEFAULT else None)
        try:
            host = make_host(max_candidate_depth, allowed_ancestry_len, lookahead, slot_ms,
                             execution_ms, cores_per_para=cores_per_para, sync=sync_run)
            return default_network(host, validators=validators, paras=paras,
                                   collators_per_para=collators_per_para,
                                   cores_per_para=cores_per_para)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None

    modes = [True, False] if compare else [sync]
    specs = [network(m) for m in modes]  # refuse bad flags before starting anything
    if provider is not None:
        specs = [replace(s, provider=provider) for s in specs]
    base = run_dir if run_dir is not None else unique_run_dir()
    if compare and relay_blocks is None:
        relay_blocks = COMPARE_RELAY_BLOCKS
    outcomes: list[RunOutcome] = []
    for sync_run, spec in zip(modes, specs, strict=True):
        where = base / ("sync" if sync_run else "async") if compare else base
        outcome = _run(spec, where, relay_blocks)
        report_outcome(outcome)
        outcomes.append(outcome)
        if outcome.reason != "relay-blocks":
            break  # interrupted, or a node died: not a comparison any more
    if compare and len(outcomes) == 2:
        runs = [ComparedRun(o.spec.host, cores_per_para, o.summary) for o in outcomes]
        print_compare(compare_rows(runs[0], runs[1]),
                      f"sync vs async backing, testnet, {slot_ms} ms slots: seed and measured")
    sys.exit(0 if all(o.ok for o in outcomes) else 1)


def _run(spec: NetworkSpec, run_dir: Path, relay_blocks: int | None) -> RunOutcome:
    return trio.run(run_testnet, spec, run_dir, relay_blocks)
