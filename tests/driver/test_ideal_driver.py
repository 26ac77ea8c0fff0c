"""The pure driver (no trio, no sockets): an ideal network through the cores for 40 relay blocks.

Per para, in every 15-block window after warm-up: async backing (depth 3, ancestry 2) includes 15,
sync backing (depth 0, ancestry 0) 7 or 8, three cores for one para 45. Sync backing falls out of
the parameters: the same code runs all three.
"""

from __future__ import annotations

import pytest

from node.ideal import IdealNetwork
from node.invariants import check_invariants
from node.report import summarize
from node.run_config import RunConfig
from relay.core.config import HostConfiguration, sync_backing

WARMUP = 10


def run(cfg: RunConfig) -> dict:  # type: ignore[type-arg]
    net = IdealNetwork(cfg)
    records = net.run()
    host = cfg.host
    assert check_invariants(records, host.allowed_ancestry_len, host.max_candidate_depth) == []
    assert len(records) == cfg.relay_blocks
    return summarize(records, net.collators, warmup=WARMUP)["paras"]


@pytest.fixture(scope="module")
def async_run() -> dict:  # type: ignore[type-arg]
    return run(RunConfig())


@pytest.fixture(scope="module")
def sync_run() -> dict:  # type: ignore[type-arg]
    return run(RunConfig(host=sync_backing(HostConfiguration())))


def test_async_backing_includes_a_candidate_every_relay_block(async_run: dict) -> None:  # type: ignore[type-arg]
    for para in ("2000", "2001"):
        s = async_run[para]
        assert (s["window_min"], s["window_max"]) == (15, 15)
        assert s["backing_to_inclusion"]["max"] == 1  # backed in N, included in N+1
        assert s["relay_parent_age_at_backing"]["max"] <= 3


def test_sync_backing_includes_every_other_relay_block(sync_run: dict) -> None:  # type: ignore[type-arg]
    for para in ("2000", "2001"):
        s = sync_run[para]
        assert 7 <= s["window_min"] <= s["window_max"] <= 8
        assert s["relay_parent_age_at_backing"]["max"] == 1  # the relay parent is the parent


def test_async_blockspace_is_about_eight_times_sync(async_run: dict, sync_run: dict) -> None:  # type: ignore[type-arg]
    for para in ("2000", "2001"):
        blocks = async_run[para]["included_per_relay_block"] / sync_run[para]["included_per_relay_block"]
        txs = async_run[para]["txs_per_relay_block"] / sync_run[para]["txs_per_relay_block"]
        assert blocks >= 1.9
        assert txs >= 7.5


def test_elastic_scaling_three_cores_for_one_para() -> None:
    s = run(RunConfig(paras=1, cores_per_para=3,
                        host=HostConfiguration(max_candidate_depth=6)))["2000"]
    assert s["window_min"] == 45


def test_extra_core_without_extra_blocks_neither_helps_nor_harms() -> None:
    s = run(RunConfig(paras=1, cores_per_para=2, blocks_per_relay_parent=1))["2000"]
    assert 14 <= s["window_min"] <= s["window_max"] <= 15


def test_invariant_checker_catches_a_broken_chain() -> None:
    net = IdealNetwork(RunConfig(relay_blocks=12))
    records = net.run()
    included = next(r for r in records if r.included)
    included.included[0].para_number += 5
    problems = check_invariants(records, 2, 3)
    assert any("do not chain" in p for p in problems)


def test_invariant_checker_catches_a_finalized_candidate_nobody_approved() -> None:
    records = IdealNetwork(RunConfig(relay_blocks=12)).run()
    for r in records:
        r.finalized = True
    approved = {(r.hash, i.candidate_hash) for r in records for i in r.included}
    assert check_invariants(records, 2, 3, approved=approved) == []
    block = next(r for r in records if r.included)
    missing = (block.hash, block.included[0].candidate_hash)
    problems = check_invariants(records, 2, 3, approved=approved - {missing})
    assert problems == [f"block #{block.number}: finalized with {missing[1][:10]} of para "
                        f"{block.included[0].para_id} not approved"]
    # unfinalized, it may wait for its checkers
    block.finalized = False
    later = [r for r in records if r.number > block.number]
    for r in later:
        r.finalized = False
    assert check_invariants(records, 2, 3, approved=approved - {missing}) == []
