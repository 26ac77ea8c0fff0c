"""Benchmark: a backing group cut off and healed, again and again, on one network of real
processes, to show how the para behind that group resumes and how finality follows.

The network is the link-fault e2e's (tests/e2e/test_link_faults.py): validators alice..harry,
backing groups of two that do not rotate, relay node ferdie, paras 2000 and 2001 with a collator
each, 1 s slots, every p2p link through the launcher's fault proxies. Each round cuts para 2001's
group off for `--cut-blocks` relay blocks, heals, and follows the chain for a while. Per round it
prints: the cut and heal block numbers, whether 2001 was included during the cut (it must not be),
relay blocks from the heal to 2001's first inclusion, para 2000's inclusions in the 15 blocks to
the heal, and the largest finality lag (relay blocks from a block to its finality) after the heal.

Prints figures; asserts nothing. Run:
`nice .venv/bin/python benchmarks/partition.py [--rounds 9] [--cut-blocks 12]` (about 35 relay
blocks, ~40 s, per round).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import trio

from node.cluster import Cluster, default_network
from relay.core.config import HostConfiguration

WINDOW = 15
FOLLOW_AFTER_HEAL = 12  # relay blocks watched after a heal for the resume and finality


def _included(blocks: list, para_id: int) -> list[int]:
    return [b.number for b in blocks if b.of("CandidateIncluded", para_id)]


async def _round(cluster: Cluster, group: list[str], cut_blocks: int) -> dict[str, object]:
    cluster.partition(group)
    cut = await cluster.best_number()
    await cluster.wait_relay_height(cut + cut_blocks)
    cluster.heal()
    healed = await cluster.best_number()
    finalized_at = await cluster.follow_finality(healed + FOLLOW_AFTER_HEAL)
    blocks = await cluster.best_chain(await cluster.best_number() - cut + WINDOW)
    included = _included(blocks, 2001)
    during = [n for n in included if cut + 1 < n <= healed]
    after = [n for n in included if n > healed]
    other = [n for n in _included(blocks, 2000) if healed - WINDOW < n <= healed]
    lags = [finalized_at[n] - n if n in finalized_at else None
            for n in range(healed + 1, healed + FOLLOW_AFTER_HEAL - 2)]
    known = [lag for lag in lags if lag is not None]
    return {"cut": cut, "healed": healed, "during": during,
            "resume": after[0] - healed if after else None, "other": len(other),
            "max_lag": max(known) if known and len(known) == len(lags) else None}


async def main(rounds: int, cut_blocks: int) -> None:
    host = HostConfiguration(slot_ms=1000, max_validators_per_core=2,
                             group_rotation_frequency=10_000)
    run_dir = Path(tempfile.mkdtemp(prefix="partition-"))
    async with Cluster(default_network(host, validators=7), run_dir, faults=True) as cluster:
        await cluster.wait_relay_height(WINDOW + 5)
        group = await cluster.backing_group(2001)
        print(f"run directory {run_dir}; cutting off {', '.join(group)} (para 2001's group) "
              f"for {cut_blocks} relay blocks, {rounds} rounds")
        print(f"{'round':>5} {'cut':>5} {'healed':>6} {'2001 during':>11} {'resumed after':>13} "
              f"{'2000 per 15':>11} {'max finality lag':>16}")
        results = []
        for i in range(rounds):
            r = await _round(cluster, group, cut_blocks)
            results.append(r)
            print(f"{i + 1:>5} {r['cut']:>5} {r['healed']:>6} {r['during']!s:>11} "
                  f"{r['resume']!s:>13} {r['other']:>11} {r['max_lag']!s:>16}", flush=True)
        resumes = [r["resume"] for r in results if isinstance(r["resume"], int)]
        print(f"resumed in {len(resumes)} of {rounds} rounds; relay blocks from heal to 2001's "
              f"inclusion: {sorted(resumes)} (median "
              f"{statistics.median(resumes) if resumes else '-'}); crashed: {[n.name for n in cluster.crashed()]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--cut-blocks", type=int, default=12)
    args = parser.parse_args()
    trio.run(main, args.rounds, args.cut_blocks)
