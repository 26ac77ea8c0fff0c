"""Faults injected in the simulated network and nodes; figures in relay blocks per window."""

from __future__ import annotations

from simruns import NodeFault, PartitionFault, sim_run


def test_killing_one_of_five_validators_keeps_finality_and_throughput() -> None:
    result, summary = sim_run(relay_blocks=40, faults=(NodeFault("charlie", 15),))
    assert result.problems == []
    assert summary["finalized_number"] >= 37  # 4 of 5 votes are still more than 2/3
    for para in ("2000", "2001"):
        assert summary["paras"][para]["window_min"] >= 9, summary["paras"][para]
    assert result.nodes["charlie"]["authored"] < result.nodes["alice"]["authored"]


def test_ten_percent_message_loss_keeps_twelve_per_window() -> None:
    result, summary = sim_run(relay_blocks=40, loss=0.1)
    assert result.problems == []
    for para in ("2000", "2001"):
        assert summary["paras"][para]["window_min"] >= 12, summary["paras"][para]


def test_killing_a_paras_only_collator_leaves_the_other_para_alone() -> None:
    result, summary = sim_run(relay_blocks=40, faults=(NodeFault("collator-2000-0", 12),))
    assert result.problems == []
    assert summary["paras"]["2001"]["window_min"] == 15
    after = [i for b in result.records if b.number > 16 for i in b.included if i.para_id == 2000]
    assert after == []


def test_a_partitioned_backer_rejoins_after_the_heal() -> None:
    result, summary = sim_run(relay_blocks=40,
                              partitions=(PartitionFault(("dave",), 12, 20),))
    assert result.problems == []
    assert result.nodes["dave"]["best"] >= 38
    assert summary["finalized_number"] >= 37


def test_two_collators_take_turns_and_sync_each_others_blocks() -> None:
    result, summary = sim_run(relay_blocks=30, collators_per_para=2)
    assert result.problems == []
    for para in ("2000", "2001"):
        assert summary["paras"][para]["window_min"] == 15
        built = [result.nodes[f"collator-{para}-{k}"]["built"] for k in (0, 1)]
        assert min(built) >= 13, built  # para Aura: alternate relay slots, on each other's blocks


def test_a_restarted_collator_resyncs_the_para_chain_from_its_peer() -> None:
    result, summary = sim_run(relay_blocks=40, collators_per_para=2,
                              faults=(NodeFault("collator-2000-1", 14, restart_at=20),))
    assert result.problems == []
    assert summary["paras"]["2000"]["window_min"] >= 12  # only its turns while down are lost
    assert result.nodes["collator-2000-1"]["built"] >= 8  # built again after the restart


def test_a_restarted_sole_collator_resumes_backing_within_five_relay_blocks() -> None:
    result, _ = sim_run(relay_blocks=30, faults=(NodeFault("collator-2000-0", 12, restart_at=18),))
    assert result.problems == []
    resumed = [b.number for b in result.records if 18 < b.number <= 23
               for x in b.backed if x.para_id == 2000]
    assert resumed, "no candidate of para 2000 backed within 5 relay blocks of the restart"
    numbers = [i.para_number for b in result.records for i in b.included if i.para_id == 2000]
    assert numbers == sorted(set(numbers))  # no para block number produced twice


GROUP_CUT = PartitionFault(("charlie", "dave"), 10, 22)  # para 2001's backing group (core 1)
FINAL_AFTER_HEAL = 2  # relay blocks from a block after the heal to its finality


def test_finality_follows_the_chain_within_two_blocks_after_a_backing_groups_partition() -> None:
    """Seven validators, groups of two that do not rotate (tests/e2e/test_link_faults.py's
    network): 2001's group cut off for 12 relay blocks. The candidate pending availability at the
    cut is included after the heal, its relay parent far below finality: availability pruned its
    chunks at inclusion, no checker could rebuild it and finality stopped there for good."""
    result, summary = sim_run(validators=7, relay_blocks=40, partitions=(GROUP_CUT,),
                              host={"max_validators_per_core": 2,
                                    "group_rotation_frequency": 10_000})
    assert result.problems == []
    late = [i for b in result.records if b.number > GROUP_CUT.heal_at for i in b.included
            if i.para_id == 2001 and i.relay_parent_number < GROUP_CUT.at_block]
    assert late, "no candidate backed before the cut was included after the heal"
    lag = {b.number: None if b.finalized_at is None else b.finalized_at - b.number
           for b in result.records
           if GROUP_CUT.heal_at < b.number <= len(result.records) - FINAL_AFTER_HEAL}
    assert all(n is not None and n <= FINAL_AFTER_HEAL for n in lag.values()), lag
    assert summary["finalized_number"] >= 37


def test_two_consecutive_authors_down_cost_the_other_para_nothing() -> None:
    """Bitfields and backed candidates go to the next two authors only. With charlie and dave
    (consecutive in the round robin, and para 2001's group) down, two slots in seven have no block
    and the author after them once got neither, building an empty block: para 2000 lost one
    inclusion in seven (13 per window). They are offered again after a slot without a block."""
    result, summary = sim_run(validators=7, relay_blocks=40,
                              faults=(NodeFault("charlie", 3), NodeFault("dave", 3)),
                              host={"max_validators_per_core": 2,
                                    "group_rotation_frequency": 10_000})
    assert result.problems == []
    assert summary["paras"]["2000"]["window_min"] >= 14, summary["paras"]["2000"]
