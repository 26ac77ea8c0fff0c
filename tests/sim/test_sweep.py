"""Random fault schedules: what they may contain, that 50 seeds keep every invariant and recover
after their faults, that a printed command replays a seed exactly, and that the checks catch a
stalled para and a stopped chain."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from node.cli import main
from node.sim import OBSERVER, NodeFault, SimConfig, run_sim
from node.sweep import QUIET_BLOCKS, liveness_problems, random_faults, replay_command, sweep

BASE = SimConfig(relay_blocks=30)


def test_schedules_keep_to_what_the_protocol_must_survive() -> None:
    for seed in range(300):
        cfg = random_faults(replace(BASE, seed=seed))
        assert cfg == random_faults(replace(BASE, seed=seed))  # a function of the seed
        validators = {f.node for f in cfg.faults if not f.node.startswith("collator")}
        validators |= {n for p in cfg.partitions for n in p.nodes}
        assert len(validators) <= (cfg.validators - 1) // 3
        assert OBSERVER not in {f.node for f in cfg.faults}
        assert all(OBSERVER not in p.nodes for p in cfg.partitions)
        ends = [f.restart_at or f.at_block for f in cfg.faults] + [p.heal_at for p in cfg.partitions]
        assert all(e <= cfg.relay_blocks - QUIET_BLOCKS for e in ends)
        assert 0.0 <= cfg.loss <= 0.1


def test_fifty_seeds_of_random_faults_break_no_invariant() -> None:
    outcomes = list(sweep(BASE, range(50), jobs=2))
    failed = [(o.seed, o.problems, o.command) for o in outcomes if o.problems]
    assert failed == []
    # Faults cost throughput, but the pipeline still runs: over a candidate per relay block
    # for the two paras together, on average over every seed.
    blocks = sum(o.relay_blocks for o in outcomes)
    assert sum(o.included for o in outcomes) / blocks > 1.0


def test_the_printed_command_replays_the_seed(tmp_path: Path) -> None:
    cfg = random_faults(replace(BASE, seed=7))
    args = shlex.split(replay_command(cfg))
    assert args[:2] == ["asyncback", "sim"]
    report = tmp_path / "report.json"
    result = CliRunner().invoke(main, [*args[1:], "--report", str(report)])
    assert result.exit_code == 0, result.output
    replayed = json.loads(report.read_text())["relay_blocks"]
    assert [b["hash"] for b in replayed] == [b.hash for b in run_sim(cfg).records]


def test_liveness_check_catches_a_para_that_stopped() -> None:
    cfg = replace(BASE, faults=(NodeFault("collator-2000-0", 6),))
    result = run_sim(cfg)
    assert result.problems == []
    assert liveness_problems(cfg, result) == []  # its only collator is down: no liveness owed
    claimed_alive = replace(cfg, faults=())
    assert liveness_problems(claimed_alive, result) == [
        f"liveness: para 2000 included nothing in blocks #{30 - QUIET_BLOCKS + 1}-#30 after "
        "every fault had ended"]


def test_a_chain_that_stops_ends_the_run_with_a_problem() -> None:
    names = ("alice", "bob", "charlie", "dave", "eve")
    result = run_sim(replace(BASE, faults=tuple(NodeFault(n, 5) for n in names)))
    assert any(p.startswith("stalled: the observed chain reached #5 of #30") for p in
               result.problems), result.problems
