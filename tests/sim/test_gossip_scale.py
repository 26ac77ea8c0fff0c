"""Frames per relay block at two network sizes (6 validators / 2 paras and 18 / 6: three times
the validators): what has a known audience (statements within a backing group, bitfields and
backed candidates to the next authors, blocks, the collator protocol) grows about linearly with
the network, and a message on the validators' grid costs at most about 2n frames, not a flood's
5n. Counts of frames, never time.

The grid's messages stay quadratic, because the protocol needs them: every validator counts every
finality vote, approval assignment and approval (n messages of ~2n copies a relay block). Their
frames do not: batched, a validator sends each grid neighbour one frame per batch window, so the
grid's frames are about n × (its ~2√n links) × the windows a block keeps busy, n·√n (asserted as
frames per validator per grid link staying about level from 6 to 18 validators, while the
messages per link grow; at these small sizes the grid itself is close to all-to-all).
Erasure chunks go from every candidate to every validator (n × candidates, candidates growing
with n): not asserted.
"""

from __future__ import annotations

import math

from simruns import sim_run

from node.net.gossip import DEFAULT_GRID_EXTRA

SMALL, LARGE = (6, 2), (18, 6)
BLOCKS = 12
# Frames whose count is fixed by the audience, not by the network's size. ChainStatus is left
# out: one per relay connection at start-up (n² once, not per block).
LINEAR = ("gossip/statement", "gossip/bitfield", "gossip/backed", "gossip/block",
          "direct/AdvertiseCollation", "direct/CollationSeconded", "direct/Declare",
          "request/collation", "pov_response/collation")


GRID_FRAMES = ("gossip/batch", "gossip/finality", "gossip/assignment", "gossip/approval")
GRID_TOPICS = ("finality", "assignment", "approval")


def _run(size: tuple[int, int]) -> tuple[dict[str, float], int, int, dict[str, int]]:
    """Frames per relay block by lane/topic, validators, finality votes signed, gossip messages
    sent by topic (alone or batched)."""
    validators, paras = size
    result, _ = sim_run(validators=validators, paras=paras, relay_blocks=BLOCKS)
    assert result.problems == []
    blocks = len(result.records)
    per_block = {k: frames / blocks for k, (frames, _) in result.traffic.items()}
    votes = sum(info.get("votes", 0) for info in result.nodes.values())
    return per_block, validators, votes, result.gossip_messages


def test_known_audience_traffic_grows_linearly_and_grid_messages_cost_about_2n_frames() -> None:
    small, n_small, votes_small, messages_small = _run(SMALL)
    large, n_large, votes_large, messages_large = _run(LARGE)
    growth = n_large / n_small
    linear_small = sum(small.get(k, 0) for k in LINEAR)
    linear_large = sum(large.get(k, 0) for k in LINEAR)
    assert linear_small > 0
    assert linear_large / linear_small <= 1.5 * growth, (small, large)
    # Finality votes travel the grid: at most 2(n - 1) copies among the validators, the extra
    # random peers, and one to the relay node (the observer), per vote.
    for messages, n, votes in ((messages_small, n_small, votes_small),
                               (messages_large, n_large, votes_large)):
        assert votes > 0
        assert messages["finality"] / votes <= 2 * (n - 1) + DEFAULT_GRID_EXTRA + 1, (n, votes)
    # The grid's messages grow as n², its frames as n × links: batched, a validator sends each
    # link about one frame per busy window whatever the messages in it.
    frames_per_link, messages_per_link = [], []
    for per_block, n, messages in ((small, n_small, messages_small),
                                   (large, n_large, messages_large)):
        links = n * _links(n)
        frames_per_link.append(sum(per_block.get(k, 0) for k in GRID_FRAMES) / links)
        messages_per_link.append(sum(messages[k] for k in GRID_TOPICS) / BLOCKS / links)
    assert frames_per_link[1] <= 1.5 * frames_per_link[0], frames_per_link
    assert messages_per_link[1] >= 2 * messages_per_link[0], messages_per_link


def _links(n: int) -> int:
    """Peers a validator sends its own grid messages to: its row and column of the
    `ceil(√n)`-wide grid, the extra random validators, the relay node."""
    width = math.ceil(math.sqrt(n))
    return (width - 1) + (math.ceil(n / width) - 1) + DEFAULT_GRID_EXTRA + 1
