"""Deterministic simulation sweeps: a random fault schedule per seed (kills, restarts, a
partition, message loss, latency and jitter), run through the simulator, checked against the
run invariants and a liveness rule, and reported as one replayable command per failing seed.

The schedule is a pure function of the seed and the network's shape, so `asyncback sim
--random-faults --seed S` replays a sweep's seed exactly (the simulator is deterministic per
config). Schedules keep to what a correct protocol must survive:
- at most `(n-1)//3` validators are down or cut off at any time (finality needs more than 2/3);
- the observer (`relay-0`, whose chain the run records) is never killed or cut off;
- every fault is over `QUIET_BLOCKS` before the run ends, and a para whose collators are all
  alive at the end must have a candidate included in that quiet stretch (liveness after faults,
  testing.md item 36).
"""

from __future__ import annotations

import os
import random
import shlex
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from node.sim import OBSERVER, NodeFault, PartitionFault, SimConfig, SimResult, run_sim
from proto.keys import dev_name

QUIET_BLOCKS = 12
MIN_RELAY_BLOCKS = 30


def random_faults(cfg: SimConfig) -> SimConfig:
    """`cfg` with a fault schedule drawn from `cfg.seed` (its own faults replaced)."""
    if cfg.relay_blocks < MIN_RELAY_BLOCKS:
        raise ValueError(f"random faults need at least {MIN_RELAY_BLOCKS} relay blocks")
    rng = random.Random(f"faults:{cfg.seed}")
    validators = [dev_name(i) for i in range(cfg.validators)]
    collators = [f"collator-{2000 + p}-{k}" for p in range(cfg.paras)
                 for k in range(cfg.collators_per_para)]
    first, last = 4, cfg.relay_blocks - QUIET_BLOCKS  # faults live in [first, last)
    tolerable = (cfg.validators - 1) // 3

    loss = rng.choice((0.0, 0.0, 0.02, 0.05, 0.1))
    latency = rng.choice((10.0, 50.0, 150.0, 400.0))
    jitter = rng.uniform(0.0, latency / 2)

    # One validator slot of trouble at a time is all (n-1)//3 allows for 4-6 validators: a
    # validator is either killed or cut off, never both, and never two at once beyond that.
    troubled = rng.sample(validators, k=min(tolerable, rng.randint(0, 2)))
    faults: list[NodeFault] = []
    partitions: list[PartitionFault] = []
    for name in troubled:
        start = rng.randrange(first, last - 2)
        end = rng.randrange(start + 1, last)
        if rng.random() < 0.5:
            faults.append(NodeFault(name, start, end))
        else:
            partitions.append(PartitionFault((name,), start, end))
    for name in rng.sample(collators, k=rng.randint(0, min(2, len(collators)))):
        start = rng.randrange(first, last - 2)
        restart = rng.randrange(start + 1, last) if rng.random() < 0.8 else None
        faults.append(NodeFault(name, start, restart))
    return replace(cfg, loss=loss, latency_ms=round(latency, 1), jitter_ms=round(jitter, 1),
                   faults=tuple(faults), partitions=tuple(partitions))


def replay_command(cfg: SimConfig) -> str:
    """The `asyncback sim` command line that runs exactly `cfg`."""
    host = cfg.host
    args = ["asyncback", "sim", "--validators", str(cfg.validators), "--paras", str(cfg.paras),
            "--collators-per-para", str(cfg.collators_per_para),
            "--cores-per-para", str(cfg.cores_per_para),
            "--max-candidate-depth", str(host.max_candidate_depth),
            "--allowed-ancestry-len", str(host.allowed_ancestry_len),
            "--lookahead", str(host.lookahead), "--slot-ms", str(host.slot_ms),
            "--execution-ms", str(host.execution_timeout_ms),
            "--relay-blocks", str(cfg.relay_blocks), "--seed", str(cfg.seed),
            "--loss", str(cfg.loss), "--latency-ms", str(cfg.latency_ms),
            "--jitter-ms", str(cfg.jitter_ms)]
    for f in cfg.faults:
        args += ["--kill", f"{f.node}@{f.at_block}" + (f":{f.restart_at}" if f.restart_at else "")]
    for p in cfg.partitions:
        args += ["--partition", f"{','.join(p.nodes)}@{p.at_block}-{p.heal_at}"]
    return shlex.join(args)


def liveness_problems(cfg: SimConfig, result: SimResult) -> list[str]:
    """Paras with a live collator at the end that included nothing in the quiet stretch."""
    down = {f.node for f in cfg.faults if f.restart_at is None}
    quiet_from = cfg.relay_blocks - QUIET_BLOCKS + 1
    out = []
    for pid in result.para_ids:
        alive = [k for k in range(cfg.collators_per_para) if f"collator-{pid}-{k}" not in down]
        if not alive:
            continue
        included = [i for b in result.records if b.number >= quiet_from for i in b.included
                    if i.para_id == pid]
        if not included:
            out.append(f"liveness: para {pid} included nothing in blocks #{quiet_from}-"
                       f"#{cfg.relay_blocks} after every fault had ended")
    return out


@dataclass(frozen=True)
class SeedOutcome:
    seed: int
    problems: tuple[str, ...]
    command: str
    included: int  # candidates included over the run, all paras
    relay_blocks: int


def run_seed(base: SimConfig, seed: int) -> SeedOutcome:
    cfg = random_faults(replace(base, seed=seed))
    result = run_sim(cfg)
    problems = [*result.problems, *liveness_problems(cfg, result)]
    included = sum(len(b.included) for b in result.records)
    return SeedOutcome(seed, tuple(problems), replay_command(cfg), included, len(result.records))


def _run_seed_args(args: tuple[SimConfig, int]) -> SeedOutcome:
    return run_seed(*args)


def sweep(base: SimConfig, seeds: range, jobs: int | None = None) -> Iterator[SeedOutcome]:
    """Run every seed (in `jobs` worker processes; default: one per core), yielding outcomes in
    seed order."""
    jobs = jobs or os.cpu_count() or 1
    work = [(base, s) for s in seeds]
    if jobs == 1:
        yield from map(_run_seed_args, work)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_run_seed_args, work)


__all__ = ["OBSERVER", "SeedOutcome", "liveness_problems", "random_faults", "replay_command",
           "run_seed", "sweep"]
