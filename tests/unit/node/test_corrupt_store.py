"""A corrupted block record in a node's sqlite store (issue 14): never skipped in silence. With
relay peers the node drops the bad record and everything built on it, says so at warning level
naming the store, table and key, holds finality at the newest verified block of its finalized
chain, authors and signs nothing until the re-synced chain holds its stored finalized head again,
and then stores finality onward as before. With no relay peer to re-sync from it refuses to start
with an error naming the store, table and key.

The store is made by the real node (blocks imported and persisted by `RelayNodeService`) and
corrupted with sqlite3 afterwards, as a disk or an operator would."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
import trio
import trio.testing

from node import wiring
from node.devnet import DevGenesis, dev_genesis
from node.net.memory import MemoryNetwork
from node.storage import NodeStore
from proto.codec import encode
from proto.errors import CorruptRecord
from proto.keys import Keypair
from proto.messages import FRAME_MAX
from proto.network import PeerId
from proto.relay_block import ParachainsInherentData, RelayBlock
from proto.statements import FinalityVote
from relay.core import runtime as rt
from relay.core.config import HostConfiguration
from relay.service.full_node import RelayNodeService

LENGTH = 20
FINALIZED = 15


class Log:
    """Every line the node logs, by level."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, object]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def log(event: str, **kw: object) -> None:
            self.lines.append((level, event, kw))
        return log

    def at(self, level: str) -> list[tuple[str, dict[str, object]]]:
        return [(e, kw) for lv, e, kw in self.lines if lv == level]


def chain_of(dev: DevGenesis, length: int) -> list[RelayBlock]:
    parent, state = dev.relay
    blocks = []
    for slot in range(1, length + 1):
        key = dev.keys[rt.expected_author(state, slot)]
        block, state, _, _ = rt.build_block(
            parent, state, ParachainsInherentData([], [], parent.hash()), slot, key)
        blocks.append(block)
        parent = block.header
    return blocks


def node_on(dev: DevGenesis, store: NodeStore, relay_peers: list[PeerId],
            log: Log | None = None) -> RelayNodeService:
    host = MemoryNetwork(random.Random(0), FRAME_MAX).add_host(Keypair.from_name("relay-x").public)
    return wiring.relay_node("relay-x", host, dev.relay, relay_peers, log=log, store=store)


def finalize(dev: DevGenesis, node: RelayNodeService, block: RelayBlock) -> None:
    for i, k in enumerate(dev.keys):
        node.chain.note_vote(FinalityVote.sign(k, block.hash(), block.header.number, 0, i))


@pytest.fixture
def made(tmp_path: Path) -> tuple[DevGenesis, list[RelayBlock], Path]:
    """A store written by a node that imported `LENGTH` blocks and finalized `FINALIZED`."""
    dev = dev_genesis(5, 0, 1, HostConfiguration())
    blocks = chain_of(dev, LENGTH)
    path = tmp_path / "node.sqlite"
    with NodeStore(path) as store:
        node = node_on(dev, store, [k.public for k in dev.keys])
        for block in blocks:
            node._persist(node.chain.import_block(block).imported)
        finalize(dev, node, blocks[FINALIZED - 1])
        node._persist([])
        assert store.finalized() == (blocks[FINALIZED - 1].hash(), FINALIZED)
    return dev, blocks, path


def rewrite(path: Path, number: int, encoded: bytes | None) -> None:
    """What a bad disk does to one record (None: the row is lost)."""
    with sqlite3.connect(path) as db:
        if encoded is None:
            db.execute("DELETE FROM relay_blocks WHERE number=?", (number,))
        else:
            db.execute("UPDATE relay_blocks SET encoded=? WHERE number=?", (encoded, number))


def body_mismatch(block: RelayBlock) -> bytes:
    body = msgspec.structs.replace(block.body, parent_hash=bytes(32))
    return encode(msgspec.structs.replace(block, body=body))


def flipped_byte(block: RelayBlock) -> bytes:
    raw = bytearray(encode(block))
    raw[len(raw) // 2] ^= 0xFF
    return bytes(raw)


def stored_numbers(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [n for (n,) in db.execute("SELECT number FROM relay_blocks ORDER BY number")]


@pytest.mark.parametrize("corrupt", [body_mismatch, flipped_byte])
def test_a_corrupted_record_below_finality_is_dropped_logged_and_re_synced(
        made: tuple[DevGenesis, list[RelayBlock], Path],
        corrupt: Callable[[RelayBlock], bytes]) -> None:
    dev, blocks, path = made
    bad = blocks[9]
    rewrite(path, 10, corrupt(bad))
    log = Log()
    peer = dev.keys[1].public

    async def main() -> None:
        with NodeStore(path) as store:
            node = node_on(dev, store, [k.public for k in dev.keys], log)
            # The bad record and everything after it on its chain are gone, store and memory.
            assert node.chain.best.number == 9 and stored_numbers(path) == list(range(1, 10))
            # Finality held at the newest verified block of the finalized chain, as far as the
            # bad record's own header (if it is sound) links it; the stored finalized head stays
            # what it was (it never goes back).
            held = node.chain.finalized.number
            assert held == 9 or corrupt is flipped_byte
            assert node.chain.finalized.hash() == [dev.relay[0].hash(), *(b.hash() for b in blocks)][held]
            assert store.finalized() == (blocks[FINALIZED - 1].hash(), FINALIZED)
            assert node.is_recovering and node.is_syncing and node.is_history(LENGTH + 100)
            warnings = log.at("warning")
            assert ("corrupted store record", {
                "node": "relay-x", "store": str(path), "table": "relay_blocks",
                "key": f"block #10 0x{bad.hash().hex()}",
                "error": warnings[0][1]["error"]}) == warnings[0]
            assert corrupt is not body_mismatch or "BodyRootMismatch" in str(
                warnings[0][1]["error"]), warnings[0]
            assert warnings[1][0] == (f"re-syncing #10..#{LENGTH} from peers after corrupted "
                                      f"record block #10 0x{bad.hash().hex()}")
            assert warnings[2][0] == (f"finalized head #{FINALIZED} is in the corrupted range: "
                                      f"finality held at #{held} until it is re-synced")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(node._process_imports)
                assert node._import_batch(peer, blocks[9:])  # what a peer sends back
                await trio.testing.wait_all_tasks_blocked()
                assert not node.is_recovering
                assert node.chain.finalized.hash() == blocks[FINALIZED - 1].hash()
                assert stored_numbers(path) == list(range(1, LENGTH + 1))
                # Finality moves on from there and is stored as before.
                finalize(dev, node, blocks[18])
                node.notify_imported([])
                await trio.testing.wait_all_tasks_blocked()
                assert store.finalized() == (blocks[18].hash(), 19)
                nursery.cancel_scope.cancel()

    trio.run(main)
    assert log.at("error") == []


def test_a_corrupted_record_above_finality_keeps_finality(
        made: tuple[DevGenesis, list[RelayBlock], Path]) -> None:
    dev, blocks, path = made
    rewrite(path, 17, body_mismatch(blocks[16]))
    log = Log()
    with NodeStore(path) as store:
        node = node_on(dev, store, [k.public for k in dev.keys], log)
        assert node.chain.finalized.hash() == blocks[FINALIZED - 1].hash()
        assert node.chain.best.number == 16 and not node.is_recovering
    assert log.at("warning")[1][0].startswith(f"re-syncing #17..#{LENGTH} from peers")


def test_a_lost_record_is_named_by_the_key_its_child_points_at(
        made: tuple[DevGenesis, list[RelayBlock], Path]) -> None:
    dev, blocks, path = made
    rewrite(path, 12, None)
    log = Log()
    with NodeStore(path) as store:
        node = node_on(dev, store, [k.public for k in dev.keys], log)
        assert node.chain.best.number == 11 and node.is_recovering
    (_, first), (resync, _) = log.at("warning")[:2]
    assert first["key"] == f"block #12 0x{blocks[11].hash().hex()}"
    assert first["error"] == f"is missing (parent of #13 0x{blocks[12].hash()[:8].hex()}…)"
    assert resync.startswith(f"re-syncing #12..#{LENGTH} from peers")
    assert stored_numbers(path) == list(range(1, 12))


def test_with_no_relay_peer_to_re_sync_from_the_node_refuses_to_start(
        made: tuple[DevGenesis, list[RelayBlock], Path]) -> None:
    dev, blocks, path = made
    rewrite(path, 10, body_mismatch(blocks[9]))
    with NodeStore(path) as store, pytest.raises(CorruptRecord) as caught:
        node_on(dev, store, [])
    message = str(caught.value)
    assert message.startswith(f"store {path}: table relay_blocks, block #10 "
                              f"0x{blocks[9].hash().hex()}: fails re-execution: ")
    assert message.endswith("; no relay peer to re-sync from")
    assert stored_numbers(path) == list(range(1, LENGTH + 1))  # refused: nothing touched
