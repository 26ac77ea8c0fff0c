"""A collator keeps the post-states of its para's blocks only so far below the included block
(`PARA_STATES_KEPT`, 256 by default, 4 here so that a short run passes it many times over): the
state it holds stays bounded however long it runs, and the para's pipeline does not notice
(a block in every relay block, as without pruning)."""

from __future__ import annotations

import pytest

from collator import service as collator_service
from collator.service import CollatorService
from node.report import DEFAULT_WARMUP, window_counts
from node.sim import SimConfig, Simulation, run_sim
from relay.core.config import HostConfiguration

KEPT = 4
RELAY_BLOCKS = 40


def test_a_collator_prunes_old_states_and_its_para_keeps_a_block_per_relay_block(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collator_service, "PARA_STATES_KEPT", KEPT)
    host = HostConfiguration()
    held: dict[str, int] = {}  # per collator, the most post-states it held at any poll
    floors: dict[str, int] = {}

    async def on_poll(sim: Simulation) -> None:
        for name, s in sim.services.items():
            if isinstance(s, CollatorService):
                held[name] = max(held.get(name, 0), len(s.chain.chain.states))
                floors[name] = s.chain.chain.pruned_below

    result = run_sim(SimConfig(relay_blocks=RELAY_BLOCKS, seed=5, host=host), on_poll)
    assert not result.problems, result.problems
    assert held and all(f > RELAY_BLOCKS // 2 for f in floors.values()), floors
    # Below the included block: KEPT; the included block; above it: the unincluded segment (at
    # most depth + 1), and a fork or two abandoned on the way.
    bound = KEPT + 1 + host.max_candidate_depth + 1 + 2
    assert max(held.values()) <= bound, held
    for para in result.para_ids:
        counts = window_counts(result.records, para, DEFAULT_WARMUP)
        assert counts and min(counts) >= 14, (para, counts)
