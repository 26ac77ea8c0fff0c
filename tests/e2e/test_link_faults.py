"""Hostile peers and broken links against one network of real processes at 1 s slots, shared by
the checks of this module in order: validators alice..harry (seven, so that two of them cut off
still leave the availability and finality thresholds within reach of the other five), backing
groups of two (`max_validators_per_core = 2`) that do not rotate within the test, relay full node
ferdie, paras 2000 and 2001 with a collator each. The cluster runs with `faults=True`: every p2p
link goes through the launcher's fault proxies (node/cluster/faults.py).

- `asyncback probe-peer` against a validator, the relay node and a collator at once: each keeps
  its node alive and its chain going (exit 0), no node of the network dies, no handler failed,
  and the chain goes on. CI fires for `PROBE_S` = 15 s; the must-show and the README's figures
  are 60 s runs of the same command (`--seconds 60`).
- A partitioned backing group: para 2001's group is cut off from everyone else; 2001 stalls,
  2000 keeps its usual window, and 2001 is included again within 5 relay blocks of the heal.
  The cut lasts `GROUP_CUT_BLOCKS` = 12, past the availability horizon (8 blocks below
  finality): a candidate of 2001 is always pending availability when the cut starts, and its
  backers keep its chunks while any leaf has it pending (relay/service/availability.py), so the
  others fetch them after the heal and 2001 is included again. When availability pruned chunks by
  relay parent alone, a cut of 6 blocks was made available in time only sometimes (3 cuts of 5)
  and one of 12 did not resume (measured once): the core was then freed only by the availability
  timeout at the next group rotation, which this network never reaches.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.cluster import SyncCluster, default_network, process_alive
from relay.core.config import HostConfiguration

PROBE_S = 15
PROBE_RATE = 100
GROUP_CUT_BLOCKS = 12
RESUME_WITHIN = 5
FINAL_WITHIN = 3  # relay blocks from a block after the heal to its finality (as in a healthy run)
FOLLOWED_AFTER_HEAL = RESUME_WITHIN + 4 + FINAL_WITHIN
WINDOW = 15
USUAL = range(14, 16)  # testing.md: >= 14 per 15-block window in processes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    run_dir = tmp_path_factory.mktemp("faults")
    host = HostConfiguration(slot_ms=1000, max_validators_per_core=2,
                             group_rotation_frequency=10_000)
    with SyncCluster(default_network(host, validators=7), run_dir, faults=True) as net:
        yield net
    doc = json.loads((run_dir / "network.json").read_text())
    assert [n["name"] for n in doc["nodes"] if process_alive(n["pid"])] == []


def test_probe_peer_against_a_validator_the_relay_node_and_a_collator(cluster: Any,
                                                                       tmp_path: Path) -> None:
    cluster.wait_relay_height(8)
    targets = [cluster["alice"], cluster.by_role("relay-node")[0], cluster["collator-2000-0"]]
    assert [t.role for t in targets] == ["validator", "relay-node", "collator"]
    heights = {p: cluster.para_height(p) for p in (2000, 2001)}
    probes = {}
    for seed, node in enumerate(targets):
        argv = [sys.executable, "-m", "node.cli", "probe-peer",
                f"{node.host}:{node.ports['p2p']}", "--chain", str(cluster.chain_spec_path),
                "--seconds", str(PROBE_S), "--rate", str(PROBE_RATE), "--seed", str(seed),
                "--rpc-url", node.rpc_url, "--json", str(tmp_path / f"{node.name}.json")]
        probes[node.name] = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True)
    for name, proc in probes.items():
        out, _ = proc.communicate(timeout=PROBE_S + 60)
        print(out)
        assert proc.returncode == 0, f"probe-peer against {name}:\n{out}"
        report = json.loads((tmp_path / f"{name}.json").read_text())
        assert report["survived"] and report["chain_moved"] and report["alive"]
        sent = report["frames_sent"]
        assert sent.get("crafted:attested-no-statements", 0) > 0
        assert any(label.startswith("garbage:") for label in sent)
        assert report["closed_by_target"] > 0  # garbage ends a link, as it must
    assert cluster.crashed() == []
    cluster.assert_no_handler_errors()  # the metric of every node, and its log
    # The chain goes on: both paras grew while probed, and the next window is a usual one.
    for para, height in heights.items():
        assert cluster.para_height(para) > height
    cluster.wait_relay_height(cluster.best_number() + WINDOW)
    cluster.assert_para_throughput(WINDOW, {2000: USUAL, 2001: USUAL})
    cluster.assert_finality_lag(3)


def where_things_stand(cluster: Any, group: list[str], blocks: list[Any]) -> str:
    """What a failed resume looks like: 2001's events, what is pending, the cut-off nodes."""
    events = {b.number: [(e["type"], e["para_number"], e["relay_parent_number"])
                         for e in b.events if e["para_id"] == 2001] for b in blocks}
    pending = cluster.observer.rpc("parachain_backingState", [2001])["pendingAvailability"]
    heads = {n: (cluster.best_number(cluster[n]), cluster.finalized_number(cluster[n]))
             for n in [*group, cluster.observer.name]}
    return f"events {events}; pending {pending}; best/finalized {heads}"


def included_at(blocks: list[Any], para_id: int) -> list[int]:
    return [b.number for b in blocks if b.of("CandidateIncluded", para_id)]


def cut_off(cluster: Any, names: list[str], blocks: int
            ) -> tuple[int, int, list[Any], dict[int, int]]:
    """Partition `names` from the rest for `blocks` relay blocks, heal, and wait long enough to
    see a resume and finality follow; returns the cut and heal block numbers, the best chain
    since before the cut (with a window's worth of blocks to the heal) and, for each block
    finalized after the heal, the best number when it was seen final."""
    cluster.partition(names)
    cut = cluster.best_number()
    cluster.wait_relay_height(cut + blocks)
    cluster.heal()
    healed = cluster.best_number()
    finalized_at = cluster.follow_finality(healed + FOLLOWED_AFTER_HEAL)
    return cut, healed, cluster.best_chain(cluster.best_number() - cut + WINDOW), finalized_at


def check_stall_and_resume(cluster: Any, group: list[str], cut: int, healed: int,
                           blocks: list[Any], finalized_at: dict[int, int]) -> None:
    included = included_at(blocks, 2001)
    # A candidate already available at the cut may still be included in the next block.
    stalled = [n for n in included if cut + 1 < n <= healed]
    resumed = [n for n in included if n > healed]
    other = [n for n in included_at(blocks, 2000) if healed - WINDOW < n <= healed]
    print(f"cut off {', '.join(group)} at #{cut}, healed at #{healed}: 2001 included at "
          f"{[n for n in included if n >= cut - 2]}; 2000 in the {WINDOW} blocks to the heal: "
          f"{len(other)}")
    assert stalled == [], f"para 2001 included at {stalled} while {group} were cut off"
    assert resumed and resumed[0] - healed <= RESUME_WITHIN, \
        f"para 2001 not included within {RESUME_WITHIN} blocks of the heal at #{healed}; " \
        f"{where_things_stand(cluster, group, blocks)}"
    assert len(other) in USUAL, f"para 2000: {len(other)} in the {WINDOW} blocks to the heal"
    # Finality follows: every block from the heal on (the resumed candidates' among them) is
    # final within FINAL_WITHIN relay blocks.
    end = healed + FOLLOWED_AFTER_HEAL
    lags = {n: finalized_at[n] - n if n in finalized_at else None
            for n in range(healed + 1, end - FINAL_WITHIN + 1)}
    print(f"finality after the heal at #{healed} (relay blocks from each block to its finality): "
          f"{lags}")
    assert all(lag is not None and lag <= FINAL_WITHIN for lag in lags.values()), \
        f"finality after the heal at #{healed}: {lags}; {where_things_stand(cluster, group, blocks)}"
    # The cut-off validators rejoined the one chain; nothing died.
    for name in group:
        assert abs(cluster.best_number(cluster[name]) - cluster.best_number()) <= 2
    cluster.assert_para_chains_consistent()
    cluster.assert_no_handler_errors()
    assert cluster.crashed() == []


def test_a_partitioned_backing_group_stalls_its_para_until_the_heal(cluster: Any) -> None:
    cluster.wait_relay_height(WINDOW + 10)  # when run alone; after the probes this is at once
    cluster.assert_para_throughput(WINDOW, {2000: USUAL, 2001: USUAL})
    group = cluster.backing_group(2001)
    assert len(group) == 2 and not set(group) & set(cluster.backing_group(2000))
    cut, healed, blocks, finalized_at = cut_off(cluster, group, GROUP_CUT_BLOCKS)
    check_stall_and_resume(cluster, group, cut, healed, blocks, finalized_at)
