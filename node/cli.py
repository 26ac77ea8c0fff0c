"""The `asyncback` command line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from node import __version__
from node.cli_nodes import COMMANDS
from node.cli_sim import sim
from node.cli_testnet import testnet
from relay.core.config import ConfigError, HostConfiguration, default_execution_ms, sync_backing


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "auto_envvar_prefix": "ASYNCBACK"})
@click.version_option(__version__, prog_name="asyncback")
def main() -> None:
    """asyncback: a working model of Polkadot's asynchronous backing."""


def make_host(max_candidate_depth: int | None, ancestry: int, lookahead: int | None,
              slot_ms: int, execution_ms: int | None, *, cores_per_para: int = 1,
              sync: bool = False) -> HostConfiguration:
    """The host configuration the command-line options describe: depth defaults to 3 (2 per
    core for elastic scaling), `sync` is depth 0 / ancestry 0 / lookahead 1, the execution
    budget defaults to the slot's share. `ConfigError` for values the configuration refuses."""
    depth = max_candidate_depth if max_candidate_depth is not None else max(3, 2 * cores_per_para)
    look = lookahead if lookahead is not None else max(1, ancestry + 1)
    host = HostConfiguration(max_candidate_depth=depth, allowed_ancestry_len=ancestry,
                             lookahead=look, slot_ms=slot_ms)
    if sync:
        host = sync_backing(host)
    budget = execution_ms if execution_ms is not None else default_execution_ms(host)
    return host.replace(backing_execution_timeout_ms=budget)


def backing_mode(host: HostConfiguration) -> str:
    return "sync" if host.max_candidate_depth == 0 and host.allowed_ancestry_len == 0 else "async"


def print_table(rows: list[list[str]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for h in rows[0]:
        table.add_column(h, justify="right")
    for r in rows[1:]:
        table.add_row(*r)
    Console().print(table)


def write_outputs(report_path: Path, config: dict[str, Any], records: Any, summary: Any) -> None:
    """report.json, and timeline.png beside it when matplotlib (the `report` extra) is there."""
    from node.report import write_report

    write_report(report_path, config, records, summary)
    click.echo(f"report: {report_path}")
    try:
        from node.timeline import render_timeline

        png = render_timeline(records, config, report_path.with_name("timeline.png"))
    except ModuleNotFoundError:
        click.echo("timeline: skipped (install the 'report' extra for matplotlib)")
    else:
        click.echo(f"timeline: {png}")


@main.command()
@click.option("--validators", default=5, show_default=True, help="Relay-chain validators.")
@click.option("--paras", default=2, show_default=True, help="Parachains, ids from 2000.")
@click.option("--cores-per-para", default=1, show_default=True,
              help="Cores per para (more than one is elastic scaling).")
@click.option("--max-candidate-depth", default=None, type=int,
              help="Default: 3, or 2×cores for elastic scaling.")
@click.option("--allowed-ancestry-len", default=2, show_default=True)
@click.option("--lookahead", default=None, type=int, help="Default: ancestry + 1.")
@click.option("--slot-ms", default=6000, show_default=True)
@click.option("--execution-ms", default=None, type=int,
              help="Para block budget; default 1/3 of the slot, 1/12 when ancestry is 0.")
@click.option("--relay-blocks", default=40, show_default=True)
@click.option("--blocks-per-relay-parent", default=0, show_default=True,
              help="Cap on blocks a collator builds per relay parent (0: one per core).")
@click.option("--sync", "sync", is_flag=True, help="Sync backing: depth 0, ancestry 0.")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="Write report.json here (and timeline.png beside it).")
def ideal(validators: int, paras: int, cores_per_para: int, max_candidate_depth: int | None,
          allowed_ancestry_len: int, lookahead: int | None, slot_ms: int, execution_ms: int | None,
          relay_blocks: int, blocks_per_relay_parent: int, sync: bool,
          report_path: Path | None) -> None:
    """Play an ideal network (no loss, no latency) through the protocol cores and print the
    per-para pipeline figures: the protocol's upper bound, in a second."""
    from node.ideal import IdealConfig, IdealNetwork
    from node.invariants import check_invariants
    from node.report import summarize, summary_table

    try:
        host = make_host(max_candidate_depth, allowed_ancestry_len, lookahead, slot_ms,
                         execution_ms, cores_per_para=cores_per_para, sync=sync)
        cfg = IdealConfig(validators, paras, cores_per_para, relay_blocks, host,
                          blocks_per_relay_parent)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    started = time.perf_counter()
    try:
        net = IdealNetwork(cfg)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    records = net.run()
    elapsed = time.perf_counter() - started
    summary = summarize(records, net.collators, segment_lengths=net.segment_lengths,
                        collator_segment_lengths=net.collator_segment_lengths)
    problems = check_invariants(records, host.allowed_ancestry_len, host.max_candidate_depth)
    title = (f"ideal network, {backing_mode(host)} backing: depth {host.max_candidate_depth}, "
             f"ancestry {host.allowed_ancestry_len}, "
             f"{cores_per_para} core(s)/para, {relay_blocks} relay blocks in {elapsed:.1f} s")
    print_table(summary_table(summary), title)
    click.echo(f"finalized #{summary['finalized_number']} of #{summary['best_number']}; "
               f"windows of 15 relay blocks after {summary['warmup']} warm-up blocks")
    if report_path is not None:
        config: dict[str, Any] = {"mode": "ideal", "validators": validators, "paras": paras,
                                  "cores_per_para": cores_per_para, **host.to_mapping()}
        write_outputs(report_path, config, records, summary)
    if problems:
        click.echo("INVARIANT VIOLATIONS:\n" + "\n".join(problems), err=True)
        sys.exit(1)


@main.command()
@click.argument("report_path", type=click.Path(exists=True, path_type=Path))
@click.option("--png", type=click.Path(path_type=Path), default=None)
def report(report_path: Path, png: Path | None) -> None:
    """Re-summarise a report.json (and draw its timeline)."""
    from node.report import read_report, summarize, summary_table

    config, blocks, _ = read_report(report_path)
    paras = {i.para_id for b in blocks for i in b.included} | {x.para_id for b in blocks for x in b.backed}
    summary = summarize(blocks, paras)
    print_table(summary_table(summary), f"{report_path}")
    if png is not None:
        from node.timeline import render_timeline

        render_timeline(blocks, config, png)
        click.echo(f"timeline: {png}")
    click.echo(json.dumps(summary["paras"], indent=1) if not sys.stdout.isatty() else "")


main.add_command(sim)
main.add_command(testnet)
for _command in COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
