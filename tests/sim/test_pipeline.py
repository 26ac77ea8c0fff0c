"""The seed table from the trio services over the in-memory network (issue 3's must-shows):
async backing includes a block per relay block per para, sync every other one, elastic scaling
one per core, and a saturated pool carries ~8x the transactions under async backing."""

from __future__ import annotations

from simruns import SYNC, sim_run


def _para(summary: dict, para: int) -> dict:
    return summary["paras"][str(para)]


def test_async_backing_includes_a_block_per_relay_block_for_each_para() -> None:
    result, summary = sim_run(relay_blocks=40)
    assert result.problems == []
    for para in (2000, 2001):
        s = _para(summary, para)
        assert s["window_min"] == s["window_max"] == 15, s
        assert s["included_one_block_after_backing"] == 1.0
    # finality waits for approval checking: the last few blocks are still being checked
    assert summary["finalized_number"] >= 37


def test_sync_backing_includes_every_other_relay_block() -> None:
    result, summary = sim_run(host=SYNC, relay_blocks=40)
    assert result.problems == []
    for para in (2000, 2001):
        s = _para(summary, para)
        assert 7 <= s["window_min"] <= s["window_max"] <= 8, s


def test_saturated_blockspace_async_over_sync_is_about_eight_fold() -> None:
    _, fast = sim_run(relay_blocks=40)
    _, slow = sim_run(host=SYNC, relay_blocks=40)
    for para in (2000, 2001):
        ratio = _para(fast, para)["txs_per_relay_block"] / _para(slow, para)["txs_per_relay_block"]
        assert ratio >= 7.5, ratio


def test_three_cores_give_one_para_three_blocks_per_relay_block() -> None:
    result, summary = sim_run(paras=1, cores_per_para=3, relay_blocks=40,
                              host={"max_candidate_depth": 6})
    assert result.problems == []
    assert _para(summary, 2000)["window_min"] >= 44


def test_second_core_with_one_block_per_relay_parent_still_gives_a_block_per_relay_block() -> None:
    result, summary = sim_run(paras=1, cores_per_para=2, blocks_per_relay_parent=1,
                              relay_blocks=40, host={"max_candidate_depth": 4})
    assert result.problems == []
    assert 14 <= _para(summary, 2000)["window_min"] <= _para(summary, 2000)["window_max"] <= 15


def test_twelve_cores_for_one_para_with_24_validators() -> None:
    # One 15-block window after warm-up: 26 relay blocks (the heaviest run of the suite).
    result, summary = sim_run(validators=24, paras=1, cores_per_para=12, relay_blocks=26,
                              host={"max_candidate_depth": 24})
    assert result.problems == []
    assert _para(summary, 2000)["window_min"] >= 175
