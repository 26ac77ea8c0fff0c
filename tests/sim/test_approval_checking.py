"""Approval checking in the simulator (issue 15): every included candidate is re-checked by
assigned validators (its data from a backer, checked against the erasure root), finality waits
for their approvals, and async backing keeps its throughput. Figures (inclusion→finality in relay
blocks) are printed.

The default network (5 validators, 2 paras) has backing groups {0,1,2} and {3,4}: a candidate
of the first group has two possible checkers, of the second three. More than a third of the
validators approving (2 of 5) approves a candidate whatever `needed_approvals` says, so:
- a no-show among three checkers (alice) is covered: finality moves, later;
- a no-show among two checkers (eve) cannot be: one approval is all there can be, nobody is
  left to cover it, and finality stops at the first block including such a candidate, while
  the chain goes on. Gating means exactly that.
No-shows are malus `no-show` validators. Gossip for blocks not known yet waits, capped per peer.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from simruns import sim_run

from node.net.memory import seed_trio_scheduler
from node.net.stack import NetworkStack
from node.sim import SimConfig, SimResult, Simulation
from proto.approvals import IndirectAssignmentCert, RelayVRFModulo, SignedAssignment
from proto.codec import encode
from proto.keys import Keypair
from proto.messages import AssignmentsMessage
from proto.network import IGNORE, ReputationChange, Topic
from relay.core.config import HostConfiguration
from relay.service.approvals import COST_WAITING_OVER_CAP, MAX_WAITING_PER_PEER
from relay.service.validator import ValidatorService

BLOCKS = 40
PARAS = (2000, 2001)


def _lag(summary: dict[str, Any]) -> float:
    return max(summary["paras"][str(p)]["inclusion_to_finality"]["mean"] for p in PARAS)


def _check_gated_run(result: SimResult, summary: dict[str, Any], label: str) -> None:
    # The invariants include: every candidate of a finalized block was approved under it.
    assert result.problems == [], result.problems
    for p in PARAS:
        s = summary["paras"][str(p)]
        assert s["window_min"] >= 14, (p, s)
    approvals = {n: i["approvals"] for n, i in result.nodes.items() if i["role"] == "validator"}
    print(f"\n{label}: inclusion→finality {[summary['paras'][str(p)]['inclusion_to_finality'] for p in PARAS]}"
          f" relay blocks; window min {[summary['paras'][str(p)]['window_min'] for p in PARAS]};"
          f" approvals {approvals}; finalized #{summary['finalized_number']}")


def _every_finalized_candidate_approved(result: SimResult) -> int:
    finalized = [b for b in result.records if b.finalized]
    included = [(b.hash, i.candidate_hash) for b in finalized for i in b.included]
    assert included
    return len(included)


def test_honest_network_approves_every_candidate_and_finality_follows() -> None:
    result, summary = sim_run(relay_blocks=BLOCKS)
    _check_gated_run(result, summary, "needed_approvals 2")
    assert summary["finalized_number"] >= BLOCKS - 3
    assert _every_finalized_candidate_approved(result) >= 2 * (BLOCKS - 6)
    for name, info in result.nodes.items():
        if info["role"] == "validator":
            # every validator checks and approves what it is assigned, but for a check still in
            # flight when the run stops
            assert info["approvals"] > 0, name
            assert 0 <= info["assignments"] - info["approvals"] <= 1, (name, info)
            assert info["recovered"] >= info["approvals"], (name, info)
            # PoVs are small and every backer answers: each check is one request to a backer,
            # never a third of the chunks (issue 13)
            assert info["recovered_from_backers"] == info["recovered"], (name, info)
            assert info["found_invalid"] == 0
    assert _lag(summary) <= 2


def test_needed_approvals_four_with_ten_validators() -> None:
    """At five validators two approvals are more than a third, whatever `needed_approvals`
    says; at ten (groups of five) four assigned checkers must approve each candidate."""
    result, summary = sim_run(host={"needed_approvals": 4}, validators=10, relay_blocks=30)
    _check_gated_run(result, summary, "needed_approvals 4, 10 validators")
    assert summary["finalized_number"] >= 30 - 4
    included = sum(1 for b in result.records for _ in b.included)
    approvals = sum(i["approvals"] for i in result.nodes.values() if i["role"] == "validator")
    assert approvals >= 4 * (included - 2 * 3)  # the last blocks' checks may still be running
    assert _lag(summary) <= 3


def test_a_no_show_pulls_in_the_next_tranche_and_finality_moves_later() -> None:
    """alice runs malus `no-show`: she announces her assignments and never approves. Her
    candidates wait `no_show_slots` (2 relay blocks) for her, then the next tranche covers her:
    inclusion→finality rises over the honest run's, and stays bounded by about that wait."""
    result, summary = sim_run(relay_blocks=BLOCKS, malus=(("alice", "no-show"),))
    _check_gated_run(result, summary, "no-show alice")
    assert result.nodes["alice"]["assignments"] > 0
    assert result.nodes["alice"]["approvals"] == 0
    assert summary["finalized_number"] >= BLOCKS - 6
    _, honest = sim_run(relay_blocks=BLOCKS)
    assert _lag(summary) > _lag(honest)  # waited no_show_slots for alice before covering her
    no_show_slots = HostConfiguration().no_show_slots
    worst = max(summary["paras"][str(p)]["inclusion_to_finality"]["max"] for p in PARAS)
    assert worst <= no_show_slots + 2, worst  # her wait, a covering check, the vote round


def test_finality_stops_at_a_candidate_nobody_can_approve() -> None:
    """eve never approves; dave is the only other possible checker of group {0,1,2}'s
    candidates: finality stops below the first block including one, the chain does not."""
    result, summary = sim_run(relay_blocks=20, malus=(("eve", "no-show"),))
    assert result.problems == []  # nothing unapproved was finalized
    assert summary["best_number"] == 20
    first = min(b.number for b in result.records for i in b.included)
    assert summary["finalized_number"] < first + 2
    for p in PARAS:
        assert summary["paras"][str(p)]["included_after_warmup"] >= 9  # blocks still included


def test_one_backing_group_of_every_validator_finalizes_without_checkers() -> None:
    """4 validators and one core make one backing group of all four: nobody may check its
    candidates (backers are never assigned), so backing is the only check and finality follows
    the best block, as before approval checking, instead of stopping at the first inclusion."""
    result, summary = sim_run(relay_blocks=20, validators=4, paras=1)
    assert result.problems == [], result.problems
    assert summary["finalized_number"] >= 20 - 3, summary["finalized_number"]
    assert all(i["assignments"] == 0 for i in result.nodes.values() if i["role"] == "validator")


def test_junk_gossip_for_unknown_blocks_is_capped_per_peer_and_charged() -> None:
    """bob floods alice with assignments for blocks that never come (nothing in them can be
    checked before the block is known). Past `MAX_WAITING_PER_PEER` each pushes out bob's own
    oldest and costs him; charlie's waiting message stays, and the run's approvals and finality
    go on."""
    charges: list[tuple[bytes, ReputationChange]] = []
    held: dict[str, int] = {}

    async def flood(sim: Simulation) -> None:
        alice: ValidatorService = sim.services["alice"]
        if held or alice.chain.best.number < 4:
            return
        net = alice.net
        assert isinstance(net, NetworkStack)
        net.peers.add_report_listener(lambda peer, change, _: charges.append((peer, change)))
        validate = net.gossip.validators()[Topic.ASSIGNMENT]

        def assignment(key: Keypair, validator: int, unknown_block: int) -> bytes:
            cert = IndirectAssignmentCert(unknown_block.to_bytes(32, "big"), validator,
                                          RelayVRFModulo(0))
            return encode(AssignmentsMessage([SignedAssignment.sign(key, cert, 0)]))

        bob, charlie = sim.keys["bob"], sim.keys["charlie"]
        assert validate(charlie.public, assignment(charlie, 2, 1 << 40)) == IGNORE  # waits
        for i in range(MAX_WAITING_PER_PEER + 5):
            assert validate(bob.public, assignment(bob, 1, i)) == IGNORE
        room = alice.approvals.waiting
        held.update(bob=room.from_peer(bob.public), charlie=room.from_peer(charlie.public),
                    dropped=room.dropped)

    cfg = SimConfig(relay_blocks=12)
    seed_trio_scheduler(cfg.seed)
    sim = Simulation(cfg, on_poll=flood)
    result = trio.run(sim.main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert held == {"bob": MAX_WAITING_PER_PEER, "charlie": 1, "dropped": 5}
    bob = sim.keys["bob"].public
    assert [c for p, c in charges if p == bob].count(COST_WAITING_OVER_CAP) == 5
    assert all(c != COST_WAITING_OVER_CAP for p, c in charges if p != bob)
    assert result.problems == [], result.problems
    assert sim.services["alice"].chain.finalized.number >= 12 - 3
