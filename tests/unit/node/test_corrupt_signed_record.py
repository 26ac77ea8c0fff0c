"""A corrupted record of what a validator signed (issue 14): the validator refuses to start with
an error naming the store, the table and the key, and saying why it refuses (a validator that
forgets what it signed may sign twice: equivocation). The records are made by the real validator
(a Seconded, a bitfield and a finality vote written before they would be sent) and corrupted with
sqlite3 afterwards, as a disk or an operator would; sound records start the validator as before."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from node import wiring
from node.devnet import DevGenesis, dev_genesis
from node.net.memory import MemoryNetwork
from node.storage import NodeStore
from proto.codec import encode
from proto.errors import CorruptRecord
from proto.messages import FRAME_MAX
from proto.relay_block import ParachainsInherentData
from proto.statements import FinalityVote, StatementKind
from relay.core import runtime as rt
from relay.core.config import HostConfiguration
from relay.service.validator import ValidatorService

CANDIDATE = bytes(range(32))


def validator(dev: DevGenesis, store: NodeStore, index: int = 0) -> ValidatorService:
    key = dev.keys[index]
    network = MemoryNetwork(random.Random(0), FRAME_MAX)
    return wiring.validator(f"v{index}", key, network.add_host(key.public), dev.relay,
                            [k.public for k in dev.keys], store=store)


@pytest.fixture
def signed_store(tmp_path: Path) -> tuple[DevGenesis, Path]:
    """A store holding three relay blocks and, at the best one, a Seconded, a bitfield and a
    finality vote of validator 0."""
    dev = dev_genesis(4, 1, 1, HostConfiguration())
    path = tmp_path / "node.sqlite"
    store = NodeStore(path)
    node = validator(dev, store)
    parent, state = dev.relay
    for slot in range(1, 4):
        author = dev.keys[rt.expected_author(state, slot)]
        block, state, _, _ = rt.build_block(
            parent, state, ParachainsInherentData([], [], parent.hash()), slot, author)
        node._persist(node.chain.import_block(block).imported)
        parent = block.header
    best = node.chain.best
    per = node.backing._rp(best.hash())
    assert per is not None
    assert node.backing._durably_seconded(
        best.hash(), per, node.backing._sign(per, StatementKind.SECONDED, CANDIDATE))

    async def sign() -> None:
        await node.availability._sign_later(best)
        await node._vote(best)

    trio.run(sign, clock=trio.testing.MockClock(autojump_threshold=0))
    assert node.availability.signed == 1 and node.votes_signed == 1
    store.close()
    return dev, path


def flip_last_bit(db: sqlite3.Connection, kind: str) -> None:
    [(payload,)] = db.execute("SELECT payload FROM signed WHERE kind=?", (kind,)).fetchall()
    db.execute("UPDATE signed SET payload=? WHERE kind=?",
               (payload[:-1] + bytes([payload[-1] ^ 1]), kind))


def test_sound_signed_records_start_the_validator(signed_store: tuple[DevGenesis, Path]) -> None:
    dev, path = signed_store
    with NodeStore(path) as store:
        assert len(store.seconded_records()) == 1 and len(store.signed_records()) == 2
        node = validator(dev, store)
        assert node.chain.best.number == 3


def vote_at(dev: DevGenesis, number: int) -> bytes:
    return encode(FinalityVote.sign(dev.keys[0], bytes(32), number, 0, 0))


# case -> (how the store is corrupted, the table, part of the key, part of the problem named)
CORRUPTIONS: dict[str, tuple[Callable[[sqlite3.Connection, DevGenesis], object], str, str, str]] = {
    "garbage Seconded": (
        lambda db, dev: db.execute("UPDATE seconded SET statement=?", (b"\x00garbage",)),
        "seconded", f"candidate 0x{CANDIDATE.hex()}", "does not decode as a signed statement"),
    "Seconded for another candidate": (
        lambda db, dev: db.execute("UPDATE seconded SET candidate_hash=?", (bytes(32),)),
        "seconded", f"candidate 0x{bytes(32).hex()}", "not the one its key names"),
    "truncated bitfield": (
        lambda db, dev: db.execute("UPDATE signed SET payload=substr(payload, 1, 10)"
                                   " WHERE kind='bitfield'"),
        "signed", "kind 'bitfield'", "does not decode as a signed bitfield"),
    "bitfield with a bit of its signature flipped": (
        lambda db, dev: flip_last_bit(db, "bitfield"),
        "signed", "kind 'bitfield'", "does not verify under this validator's key"),
    "finality vote with a bit of its signature flipped": (
        lambda db, dev: flip_last_bit(db, "finality"),
        "signed", "kind 'finality'", "does not verify under this validator's key"),
    "finality vote for another height": (
        lambda db, dev: db.execute("UPDATE signed SET payload=? WHERE kind='finality'",
                                   (vote_at(dev, 2),)),
        "signed", f"key 0x{(3).to_bytes(8, 'big').hex()}", "votes at #2"),
    "bitfield overwritten by text that is not UTF-8": (
        lambda db, dev: db.execute("UPDATE signed SET payload=CAST(x'ff00ff' AS TEXT)"
                                   " WHERE kind='bitfield'"),
        "signed", "kind 'bitfield'", "does not decode as a signed bitfield"),
    "a kind nobody signs": (
        lambda db, dev: db.execute("UPDATE signed SET kind='approval' WHERE kind='finality'"),
        "signed", "kind 'approval'", "never signs"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_corrupt_signed_record_refuses_to_start_naming_store_table_and_key(
        signed_store: tuple[DevGenesis, Path], case: str) -> None:
    dev, path = signed_store
    make, table, key, problem = CORRUPTIONS[case]
    with sqlite3.connect(path) as db:
        make(db, dev)
    with NodeStore(path) as store, pytest.raises(CorruptRecord) as raised:
        validator(dev, store)
    err = raised.value
    assert (err.store, err.table) == (str(path), table)
    assert key in err.key
    assert problem in err.problem
    message = str(err)
    assert str(path) in message and f"table {table}" in message
    assert "refusing to start" in message and "equivocation" in message


def test_another_validators_store_is_refused(signed_store: tuple[DevGenesis, Path]) -> None:
    """A base path reused with another key: what it holds was not signed by this validator."""
    dev, path = signed_store
    with NodeStore(path) as store, pytest.raises(CorruptRecord) as raised:
        validator(dev, store, index=1)
    assert "signed as validator 0, and this validator is 1" in raised.value.problem
