"""Frames per relay block at two network sizes (6 validators / 2 paras and 18 / 6: three times
the validators): what has a known audience (statements within a backing group, bitfields and
backed candidates to the next authors, blocks, the collator protocol) grows about linearly with
the network, and a message on the validators' grid costs at most about 2n frames, not a flood's
5n. Counts of frames, never time.

Not asserted, because the protocol needs them quadratic: every validator counts every finality
vote, approval assignment and approval (n messages of ~2n frames a relay block), and erasure
chunks go from every candidate to every validator (n × candidates, candidates growing with n).
"""

from __future__ import annotations

from simruns import sim_run

from node.net.gossip import DEFAULT_GRID_EXTRA

SMALL, LARGE = (6, 2), (18, 6)
BLOCKS = 12
# Frames whose count is fixed by the audience, not by the network's size. ChainStatus is left
# out: one per relay connection at start-up (n² once, not per block).
LINEAR = ("gossip/statement", "gossip/bitfield", "gossip/backed", "gossip/block",
          "direct/AdvertiseCollation", "direct/CollationSeconded", "direct/Declare",
          "request/collation", "pov_response/collation")


def _run(size: tuple[int, int]) -> tuple[dict[str, float], int, int]:
    """Frames per relay block by lane/topic, validators, finality votes signed."""
    validators, paras = size
    result, _ = sim_run(validators=validators, paras=paras, relay_blocks=BLOCKS)
    assert result.problems == []
    blocks = len(result.records)
    per_block = {k: frames / blocks for k, (frames, _) in result.traffic.items()}
    votes = sum(info.get("votes", 0) for info in result.nodes.values())
    return per_block, validators, votes


def test_known_audience_traffic_grows_linearly_and_grid_messages_cost_about_2n_frames() -> None:
    small, n_small, votes_small = _run(SMALL)
    large, n_large, votes_large = _run(LARGE)
    growth = n_large / n_small
    linear_small = sum(small.get(k, 0) for k in LINEAR)
    linear_large = sum(large.get(k, 0) for k in LINEAR)
    assert linear_small > 0
    assert linear_large / linear_small <= 1.5 * growth, (small, large)
    # Finality votes travel the grid: at most 2(n - 1) frames among the validators, the extra
    # random peers, and one to the relay node (the observer), per vote.
    for per_block, n, votes in ((small, n_small, votes_small), (large, n_large, votes_large)):
        frames = per_block["gossip/finality"] * BLOCKS
        assert votes > 0
        assert frames / votes <= 2 * (n - 1) + DEFAULT_GRID_EXTRA + 1, (n, frames, votes)
