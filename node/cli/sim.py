"""`asyncback sim`: the node services, all in one process over the in-memory network in virtual
time, with faults; prints the per-para pipeline figures and checks the invariants."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from node.cli.common import (
    backing_mode,
    make_host,
    network_options,
    print_summary,
    write_outputs,
)
from relay.core.config import ConfigError


def parse_kill(spec: str) -> tuple[str, int, int | None]:
    """`NODE@BLOCK` or `NODE@BLOCK:RESTART_BLOCK`."""
    try:
        node, when = spec.split("@", 1)
        kill_s, _, restart_s = when.partition(":")
        return node, int(kill_s), int(restart_s) if restart_s else None
    except ValueError:
        raise click.BadParameter(f"{spec!r}: expected NODE@BLOCK or NODE@BLOCK:RESTART") from None


def parse_partition(spec: str) -> tuple[tuple[str, ...], int, int]:
    """`NODE,NODE@FROM-TO`: those nodes are cut off from the rest between the two blocks."""
    try:
        nodes, span = spec.split("@", 1)
        start, end = span.split("-", 1)
        return tuple(n for n in nodes.split(",") if n), int(start), int(end)
    except ValueError:
        raise click.BadParameter(f"{spec!r}: expected NODE,NODE@FROM-TO") from None


def parse_malus(spec: str) -> tuple[str, str]:
    """`NODE:MODE`: validator NODE runs the malus MODE."""
    node, sep, mode = spec.partition(":")
    if not sep or not node or not mode:
        raise click.BadParameter(f"{spec!r}: expected NODE:MODE")
    return node, mode


@click.command()
@network_options()
@click.option("--collators-per-para", default=1, show_default=True)
@click.option("--relay-blocks", default=40, show_default=True)
@click.option("--blocks-per-relay-parent", default=0, show_default=True,
              help="Cap on blocks a collator builds per relay parent (0: one per core).")
@click.option("--tx-rate", default=None, type=float,
              help="Transactions per second per collator (default: a saturated pool).")
@click.option("--saturate", is_flag=True, help="Keep every pool saturated (the default).")
@click.option("--seed", default=0, show_default=True)
@click.option("--latency-ms", default=50.0, show_default=True)
@click.option("--jitter-ms", default=20.0, show_default=True)
@click.option("--loss", default=0.0, show_default=True, help="Message loss probability per link.")
@click.option("--kill", "kills", multiple=True, metavar="NODE@BLOCK[:RESTART]",
              help="Kill a node (alice, relay-0, collator-2000-0, ...) when the chain reaches "
                   "BLOCK; restart it with empty state at RESTART (BLOCK 0: the node is not "
                   "there from the start and joins at RESTART). Repeatable.")
@click.option("--keep-state", is_flag=True,
              help="Restarted validators and relay nodes keep what they had stored.")
@click.option("--partition", "partitions", multiple=True, metavar="NODE,NODE@FROM-TO",
              help="Cut these nodes off from the rest between two relay blocks. Repeatable.")
@click.option("--random-faults", is_flag=True,
              help="Draw a fault schedule (kills, restarts, a partition, loss, latency) from "
                   "--seed instead of the fault options; prints it as a replayable command.")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="Write report.json here (and timeline.png beside it); with --compare, "
                   "into sync/ and async/ beside it.")
@click.option("--malus", "malus", multiple=True, metavar="NODE:MODE",
              help="Run validator NODE as a malus (suggest-garbage-candidate, back-garbage, "
                   "dispute-valid, no-show); repeatable.")
@click.option("--minimum-backing-votes", type=int, default=None,
              help="Backing threshold (1: a validator backs alone).")
@click.option("--needed-approvals", type=int, default=None,
              help="Approvals from assigned checkers before a candidate is approved (default "
                   "2, polkadot's local testnets).")
@click.option("--compare", is_flag=True,
              help="Run the network with sync then async backing and print the seed's table "
                   "beside the measured figures.")
@click.option("--no-sharing", is_flag=True,
              help="Let every simulated node do all its own pure work (signature checks, "
                   "collation validation, block import) instead of computing each once for all; "
                   "slower, same result.")
@click.option("--processes", type=click.Choice(["1", "2", "auto"]), default="1",
              show_default=True,
              help="2: run every other validator in a second process, in step with the first "
                   "(a second core for a large network); auto: 2 from 50 validators on a "
                   "machine with two cores or more, else 1.")
def sim(validators: int, paras: int, collators_per_para: int, cores_per_para: int,
        max_candidate_depth: int | None, allowed_ancestry_len: int, lookahead: int | None,
        slot_ms: int, execution_ms: int | None, relay_blocks: int, blocks_per_relay_parent: int,
        tx_rate: float | None, saturate: bool, sync: bool, seed: int, latency_ms: float,
        jitter_ms: float, loss: float, kills: tuple[str, ...], keep_state: bool,
        partitions: tuple[str, ...], random_faults: bool, report_path: Path | None,
        malus: tuple[str, ...], minimum_backing_votes: int | None,
        needed_approvals: int | None, compare: bool,
        no_sharing: bool, processes: str) -> None:
    """Run validators, a relay node and collators in one process over a simulated network in
    virtual time (hundreds of relay blocks in seconds, deterministic from --seed)."""
    from node.compare import ComparedRun, compare_rows, print_compare
    from node.sim import NodeFault, PartitionFault, SimConfig, auto_processes

    if tx_rate is not None and saturate:
        raise click.UsageError("--tx-rate and --saturate exclude each other")
    if compare and sync:
        raise click.UsageError("--compare runs sync backing itself; drop --sync")
    if random_faults and (kills or partitions):
        raise click.UsageError("--random-faults replaces --kill and --partition")
    faults = [NodeFault(*parse_kill(k)) for k in kills]
    if keep_state:
        faults = [replace(f, keep_state=not f.node.startswith("collator")) for f in faults]
    cuts = [PartitionFault(*parse_partition(p)) for p in partitions]
    maluses = tuple(parse_malus(m) for m in malus)
    process_count = auto_processes(validators) if processes == "auto" else int(processes)
    if processes == "auto":
        click.echo(f"processes: {process_count} (auto: {validators} validators)")
    runs: list[ComparedRun] = []
    failed = False
    for sync_run in ([True, False] if compare else [sync]):
        try:
            host = make_host(max_candidate_depth, allowed_ancestry_len, lookahead, slot_ms,
                             execution_ms, cores_per_para=cores_per_para, sync=sync_run)
            if minimum_backing_votes is not None:
                host = host.replace(minimum_backing_votes=minimum_backing_votes)
            if needed_approvals is not None:
                host = host.replace(needed_approvals=needed_approvals)
            cfg = SimConfig(validators=validators, paras=paras,
                            collators_per_para=collators_per_para,
                            cores_per_para=cores_per_para, host=host, relay_blocks=relay_blocks,
                            blocks_per_relay_parent=blocks_per_relay_parent,
                            saturate=tx_rate is None, tx_rate=tx_rate or 0.0, seed=seed,
                            latency_ms=latency_ms, jitter_ms=jitter_ms, loss=loss,
                            faults=tuple(faults), partitions=tuple(cuts), malus=maluses,
                            sharing=not no_sharing, processes=process_count)
            if random_faults:
                from node import sweep

                cfg = sweep.random_faults(cfg)
                click.echo(f"faults: {sweep.replay_command(cfg)}")
        except (ConfigError, ValueError) as exc:
            raise click.UsageError(str(exc)) from None
        path = report_path
        if compare and report_path is not None:
            path = report_path.parent / ("sync" if sync_run else "async") / report_path.name
        summary, ok = _run_and_print(cfg, path)
        failed = failed or not ok
        runs.append(ComparedRun(host, cores_per_para, summary))
    if compare:
        print_compare(compare_rows(runs[0], runs[1]),
                      f"sync vs async backing, sim, {slot_ms} ms slots: seed and measured")
    if failed:
        sys.exit(1)


class _Progress:
    """A line on stderr as the run goes: on a terminal rewritten at each relay block, elsewhere
    (a log, CI) one line at each tenth of the run. A run of a large network takes minutes, and
    the table comes only at its end."""

    def __init__(self, relay_blocks: int, stream: Any = None) -> None:
        self.relay_blocks = relay_blocks
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.step = 1 if self.tty else max(1, relay_blocks // 10)
        self.shown = 0
        self.first: tuple[float, int] | None = None  # (when, best) at the first block seen

    async def __call__(self, sim: Any) -> None:
        best, finalized = sim.observed()
        if best < self.shown + self.step or best <= 0:
            return
        self.shown = best
        now = time.perf_counter()
        if self.first is None:
            self.first = now, best  # start-up is over: the rate counts from here
        since, first_best = self.first
        rate = ""
        if best > first_best:
            per_block = (now - since) / (best - first_best)
            left = max(0, self.relay_blocks - best) * per_block
            rate = f"{per_block:.2f} s wall a block, about {left:.0f} s left, "
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        line = (f"sim: relay block #{best} of {self.relay_blocks}, finalized #{finalized}, "
                f"{rate}peak RSS {rss_mb:.0f} MB")
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _run_and_print(cfg: Any, report_path: Path | None) -> tuple[dict[str, Any], bool]:
    """One simulation: its summary table, its report if asked; (summary, invariants held)."""
    from node.report import summarize
    from node.sim import run_sim

    host = cfg.host
    started = time.perf_counter()
    progress = _Progress(cfg.relay_blocks)
    try:
        result = run_sim(cfg, progress)
    except (ConfigError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        progress.done()
    elapsed = time.perf_counter() - started
    summary = summarize(result.records, result.para_ids, segment_lengths=result.segment_lengths,
                        collator_segment_lengths=result.collator_segment_lengths)
    title = (f"sim, {backing_mode(host)} backing: {cfg.validators} validators, depth "
             f"{host.max_candidate_depth}, ancestry {host.allowed_ancestry_len}, "
             f"{cfg.cores_per_para} core(s)/para, seed {cfg.seed}: "
             f"{len(result.records)} relay blocks, {result.virtual_seconds:.0f} s virtual in "
             f"{elapsed:.1f} s")
    print_summary(summary, title)
    if report_path is not None:
        write_outputs(report_path, cfg.to_json(), result.records, summary)
    if result.problems:
        click.echo("INVARIANT VIOLATIONS:\n" + "\n".join(result.problems), err=True)
    return summary, not result.problems
