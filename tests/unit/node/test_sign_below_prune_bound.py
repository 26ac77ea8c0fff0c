"""A validator asked to sign at a relay parent below its store's pruning bound (a paused
validator finishing queued work, or one whose chain fell back behind what it had pruned) signs
nothing there and goes on, with a log line saying why: the store's refusal used to end the
process ("relay parent #499 is below the pruning bound #950")."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from node import wiring
from node.devnet import dev_genesis
from node.net.memory import MemoryNetwork
from node.storage import BelowPruningBound, NodeStore
from proto.errors import SigningRefused
from proto.messages import FRAME_MAX
from proto.relay_block import ParachainsInherentData
from proto.statements import StatementKind
from relay.core import runtime as rt
from relay.core.config import HostConfiguration
from relay.service.validator import ValidatorService

BOUND = 100


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, object]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def log(event: str, **kw: object) -> None:
            self.lines.append((level, event, kw))
        return log


def validator_with_pruned_store(tmp_path: Path, log: Log) -> tuple[ValidatorService, NodeStore]:
    dev = dev_genesis(4, 1, 1, HostConfiguration())
    store = NodeStore(tmp_path / "node.sqlite")
    network = MemoryNetwork(random.Random(0), FRAME_MAX)
    key = dev.keys[0]
    node = wiring.validator("alice", key, network.add_host(key.public), dev.relay,
                            [k.public for k in dev.keys], log=log, store=store)
    parent, state = dev.relay
    for slot in range(1, 4):
        author = dev.keys[rt.expected_author(state, slot)]
        block, state, _, _ = rt.build_block(
            parent, state, ParachainsInherentData([], [], parent.hash()), slot, author)
        node._persist(node.chain.import_block(block).imported)
        parent = block.header
    store.prune_below(BOUND)
    return node, store


def test_the_store_refusal_is_a_signing_refused() -> None:
    assert issubclass(BelowPruningBound, SigningRefused)


def test_a_bitfield_below_the_prune_bound_is_skipped_not_fatal(tmp_path: Path) -> None:
    log = Log()
    node, store = validator_with_pruned_store(tmp_path, log)
    header = node.chain.best
    with pytest.raises(BelowPruningBound):  # what the store says to anyone asking
        store.record_signed("bitfield", header.hash(), b"x", relay_parent_number=header.number)

    async def main() -> None:
        await node.availability._sign_later(header)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert node.availability.signed == 0 and header.hash() not in node.availability.bitfields
    [(level, event, kw)] = [line for line in log.lines if "not signed" in line[1]]
    assert (level, event, kw["number"]) == ("info", "bitfield not signed", header.number)
    assert f"below the pruning bound #{BOUND}" in str(kw["reason"])
    store.close()


def test_a_seconded_statement_below_the_prune_bound_is_not_sent(tmp_path: Path) -> None:
    log = Log()
    node, store = validator_with_pruned_store(tmp_path, log)
    rp = node.chain.best_hash
    per = node.backing._rp(rp)
    assert per is not None
    signed = node.backing._sign(per, StatementKind.SECONDED, bytes(32))
    assert node.backing._durably_seconded(rp, per, signed) is False
    assert store.seconded_at(rp) == []
    assert [e for _, e, _ in log.lines if e == "not seconded"] == ["not seconded"]
    store.close()


def test_a_finality_vote_is_not_a_relay_parent_record_and_is_still_signed(tmp_path: Path
                                                                          ) -> None:
    log = Log()
    node, store = validator_with_pruned_store(tmp_path, log)

    async def main() -> None:
        await node._vote(node.chain.best)

    trio.run(main)
    assert node.votes_signed == 1
    assert store.signed("finality", node.chain.best.number.to_bytes(8, "big")) is not None
    store.close()
