"""`asyncback ideal` (the protocol through the pure cores, no network: the upper bound) and
`asyncback report` (re-summarise a report.json)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from node.cli.common import (
    backing_mode,
    make_host,
    network_options,
    print_summary,
    print_table,
    write_outputs,
)
from relay.core.config import ConfigError


@click.command()
@network_options()
@click.option("--relay-blocks", default=40, show_default=True)
@click.option("--blocks-per-relay-parent", default=0, show_default=True,
              help="Cap on blocks a collator builds per relay parent (0: one per core).")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="Write report.json here (and timeline.png beside it).")
def ideal(validators: int, paras: int, cores_per_para: int, max_candidate_depth: int | None,
          allowed_ancestry_len: int, lookahead: int | None, slot_ms: int, execution_ms: int | None,
          relay_blocks: int, blocks_per_relay_parent: int, sync: bool,
          report_path: Path | None) -> None:
    """Play an ideal network (no loss, no latency) through the protocol cores and print the
    per-para pipeline figures: the protocol's upper bound, in a second."""
    from node.ideal import IdealNetwork
    from node.invariants import check_invariants
    from node.report import summarize
    from node.run_config import RunConfig

    try:
        host = make_host(max_candidate_depth, allowed_ancestry_len, lookahead, slot_ms,
                         execution_ms, cores_per_para=cores_per_para, sync=sync)
        cfg = RunConfig(validators=validators, paras=paras, cores_per_para=cores_per_para,
                        host=host, relay_blocks=relay_blocks,
                        blocks_per_relay_parent=blocks_per_relay_parent)
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
    print_summary(summary, title)
    if report_path is not None:
        write_outputs(report_path, cfg.to_json("ideal"), records, summary)
    if problems:
        click.echo("INVARIANT VIOLATIONS:\n" + "\n".join(problems), err=True)
        sys.exit(1)


@click.command()
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
