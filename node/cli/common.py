"""What the commands share: the host configuration the network options describe, the network
options themselves (one set for `ideal`, `sim`, `genesis` and `testnet`), the summary table and the
report files, and the one-line failure exit."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from relay.core.config import HostConfiguration, default_execution_ms, sync_backing


def fail(message: str) -> NoReturn:
    """Exit 1 with one line naming the problem (no traceback)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def network_options(validators: int = 5) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options that shape a network's genesis, with the same names and defaults on every
    command that takes them."""
    options = [
        click.option("--validators", default=validators, show_default=True,
                     help="Relay-chain validators (alice, bob, ...)."),
        click.option("--paras", default=2, show_default=True, help="Parachains, ids from 2000."),
        click.option("--cores-per-para", default=1, show_default=True,
                     help="Cores per para (more than one is elastic scaling)."),
        click.option("--max-candidate-depth", default=None, type=int,
                     help="Default: 3, or 2×cores for elastic scaling."),
        click.option("--allowed-ancestry-len", default=2, show_default=True),
        click.option("--lookahead", default=None, type=int, help="Default: ancestry + 1."),
        click.option("--slot-ms", default=6000, show_default=True),
        click.option("--execution-ms", default=None, type=int,
                     help="Para block budget and backing timeout; default 1/3 of the slot "
                          "(1/12 when ancestry is 0)."),
        click.option("--sync", "sync", is_flag=True, help="Sync backing: depth 0, ancestry 0."),
    ]

    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


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


def print_summary(summary: dict[str, Any], title: str) -> None:
    """The per-para table of a run and the line saying what its windows are."""
    from node.report import summary_table

    print_table(summary_table(summary), title)
    click.echo(f"finalized #{summary['finalized_number']} of #{summary['best_number']}; "
               f"windows of 15 relay blocks after {summary['warmup']} warm-up blocks")


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
