"""`asyncback sweep`: many seeds of the simulator, each under a random fault schedule, checked
against the run invariants and liveness after the faults end; every failing seed is printed with
the one command that replays it."""

from __future__ import annotations

import sys
import time

import click

from node.cli.common import make_host, network_options
from relay.core.config import ConfigError


@click.command()
@network_options()
@click.option("--collators-per-para", default=1, show_default=True)
@click.option("--relay-blocks", default=40, show_default=True)
@click.option("--seeds", default=50, show_default=True, help="How many seeds to run.")
@click.option("--first-seed", default=0, show_default=True)
@click.option("--jobs", default=0, show_default=True, help="Worker processes (0: one per core).")
def sweep(validators: int, paras: int, cores_per_para: int, max_candidate_depth: int | None,
          allowed_ancestry_len: int, lookahead: int | None, slot_ms: int,
          execution_ms: int | None, sync: bool, collators_per_para: int, relay_blocks: int,
          seeds: int, first_seed: int, jobs: int) -> None:
    """Run the simulator over many seeds with random faults; exit 1 if any seed breaks an
    invariant or a para stays stalled after its faults ended."""
    from node.sim import SimConfig
    from node.sweep import MIN_RELAY_BLOCKS
    from node.sweep import sweep as run_sweep

    if relay_blocks < MIN_RELAY_BLOCKS:
        raise click.UsageError(f"--relay-blocks must be at least {MIN_RELAY_BLOCKS}")
    try:
        host = make_host(max_candidate_depth, allowed_ancestry_len, lookahead, slot_ms,
                         execution_ms, cores_per_para=cores_per_para, sync=sync)
        base = SimConfig(validators=validators, paras=paras,
                         collators_per_para=collators_per_para, cores_per_para=cores_per_para,
                         host=host, relay_blocks=relay_blocks)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    started = time.perf_counter()
    failed = included = blocks = 0
    for outcome in run_sweep(base, range(first_seed, first_seed + seeds), jobs or None):
        included += outcome.included
        blocks += outcome.relay_blocks
        if outcome.problems:
            failed += 1
            click.echo(f"seed {outcome.seed} FAILED: {outcome.problems[0]}"
                       + (f" (+{len(outcome.problems) - 1} more)"
                          if len(outcome.problems) > 1 else ""))
            click.echo(f"  replay: {outcome.command}")
    elapsed = time.perf_counter() - started
    click.echo(f"{seeds} seeds, {failed} failed; {blocks} relay blocks, {included} candidates "
               f"included ({included / max(blocks, 1):.2f} per relay block) in {elapsed:.1f} s")
    sys.exit(1 if failed else 0)
