"""node/storage.py: round-trips, the invariants the store enforces, and crash behaviour.

Crash tests do not need a special file system: a commit under WAL + synchronous=FULL is in the
-wal file before the call returns, so copying the files of a store that is still open (never
closed, never checkpointed) is what a restarted process finds after a kill. A torn -wal tail and
a real SIGKILL of a writing process are tested too (testing.md items 27-30).
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from node.storage import SCHEMA_VERSION, Head, NodeStore, StorageError

REPO_ROOT = Path(__file__).resolve().parents[3]
GENESIS_PARENT = b"\0" * 32


def h(label: object) -> bytes:
    return hashlib.blake2b(repr(label).encode(), digest_size=32).digest()


def put_chain(store: NodeStore, length: int, fork: str = "main",
              parent: bytes = GENESIS_PARENT, start: int = 0) -> list[bytes]:
    """Store blocks start..start+length-1 on top of `parent`; returns their hashes."""
    hashes = []
    for number in range(start, start + length):
        block = h((fork, number))
        store.put_relay_block(block, number, parent, b"block %d %s" % (number, fork.encode()))
        hashes.append(block)
        parent = block
    return hashes


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "node.db"


# -- relay chain ----------------------------------------------------------------------------------


def test_relay_block_round_trip(db: Path) -> None:
    with NodeStore(db) as store:
        store.put_relay_block(h(1), 0, GENESIS_PARENT, b"genesis")
        assert store.relay_block(h(1)) == b"genesis"
        assert store.relay_block_number(h(1)) == 0
        assert store.relay_block(h(2)) is None
        assert store.relay_block_number(h(2)) is None
    with NodeStore(db) as store:
        assert store.relay_block(h(1)) == b"genesis"


def test_put_relay_block_is_idempotent_and_refuses_conflicts(db: Path) -> None:
    with NodeStore(db) as store:
        store.put_relay_block(h(1), 0, GENESIS_PARENT, b"genesis")
        store.put_relay_block(h(1), 0, GENESIS_PARENT, b"genesis")
        assert list(store.relay_blocks_from(0)) == [(h(1), b"genesis")]
        with pytest.raises(StorageError, match="other contents"):
            store.put_relay_block(h(1), 0, GENESIS_PARENT, b"something else")
        with pytest.raises(StorageError, match="parent"):
            store.put_relay_block(h(2), 5, h(1), b"gap")
        with pytest.raises(StorageError, match="negative"):
            store.put_relay_block(h(3), -1, GENESIS_PARENT, b"")
        assert store.relay_block(h(1)) == b"genesis"
        assert store.relay_block(h(2)) is None


def test_relay_blocks_from_replays_parents_first_across_forks_and_pages(db: Path) -> None:
    with NodeStore(db) as store:
        main = put_chain(store, 600)
        side = put_chain(store, 3, fork="side", parent=main[9], start=10)
        replay = list(store.relay_blocks_from(0))
        assert len(replay) == 603
        position = {block: i for i, (block, _) in enumerate(replay)}
        numbers = [store.relay_block_number(block) for block, _ in replay]
        assert numbers == sorted(numbers)
        for chain in (main, side):
            for parent, child in itertools.pairwise(chain):
                assert position[parent] < position[child]
        assert position[main[9]] < position[side[0]]
        assert [b for b, _ in store.relay_blocks_from(598)] == main[598:]
        assert list(store.relay_blocks_from(10_000)) == []


def test_relay_blocks_from_allows_writes_while_iterating(db: Path) -> None:
    with NodeStore(db) as store:
        main = put_chain(store, 300)
        seen = []
        for block, _ in store.relay_blocks_from(0):
            seen.append(block)
            if len(seen) == 1:
                store.set_best(main[-1])
        assert seen == main


def test_best_and_finalized_survive_a_restart(db: Path) -> None:
    with NodeStore(db) as store:
        assert store.best() is None
        assert store.finalized() is None
        chain = put_chain(store, 5)
        store.set_best(chain[4])
        store.set_finalized(chain[2], 2)
    with NodeStore(db) as store:
        assert store.best() == Head(chain[4], 4)
        assert store.finalized() == (chain[2], 2)


def test_best_may_reorg_but_must_be_stored(db: Path) -> None:
    with NodeStore(db) as store:
        main = put_chain(store, 5)
        side = put_chain(store, 1, fork="side", parent=main[1], start=2)
        store.set_best(main[4])
        store.set_best(side[0])
        assert store.best() == Head(side[0], 2)
        with pytest.raises(StorageError, match="not a stored relay block"):
            store.set_best(h("unknown"))
        assert store.best() == Head(side[0], 2)


def test_finalized_never_decreases_nor_switches_fork(db: Path) -> None:
    with NodeStore(db) as store:
        main = put_chain(store, 6)
        side = put_chain(store, 3, fork="side", parent=main[1], start=2)
        store.set_finalized(main[3], 3)
        store.set_finalized(main[3], 3)  # same head again: no-op
        with pytest.raises(StorageError, match="decrease"):
            store.set_finalized(main[2], 2)
        with pytest.raises(StorageError, match="does not descend"):
            store.set_finalized(side[2], 4)
        with pytest.raises(StorageError, match="does not descend"):
            store.set_finalized(side[1], 3)  # same number, other fork
        with pytest.raises(StorageError, match="not #5"):
            store.set_finalized(main[4], 5)
        with pytest.raises(StorageError, match="not a stored relay block"):
            store.set_finalized(h("unknown"), 9)
        assert store.finalized() == Head(main[3], 3)
        store.set_finalized(main[5], 5)
    with NodeStore(db) as store:
        assert store.finalized() == Head(main[5], 5)
        with pytest.raises(StorageError, match="decrease"):
            store.set_finalized(main[4], 4)


def test_finalized_ancestry_needs_the_blocks_in_between(db: Path) -> None:
    with NodeStore(db) as store:
        main = put_chain(store, 3)
        store.set_finalized(main[0], 0)
        # #10 is stored but its ancestors #3..#9 are not: finality cannot be checked.
        store.put_relay_block(h("far"), 10, h("missing"), b"far")
        with pytest.raises(StorageError, match="missing"):
            store.set_finalized(h("far"), 10)
        assert store.finalized() == Head(main[0], 0)


# -- what a validator signed ----------------------------------------------------------------------


def test_seconding_guard_returns_the_earlier_statement(db: Path) -> None:
    with NodeStore(db) as store:
        rp = h("rp")
        assert store.record_seconded(rp, h("a"), b"seconded a", relay_parent_number=7) is None
        # A second candidate at the same relay parent: nothing stored, the first one comes back.
        assert store.record_seconded(rp, h("b"), b"seconded b", relay_parent_number=7) \
            == b"seconded a"
        # The same candidate again (a re-send): the stored bytes come back.
        assert store.record_seconded(rp, h("a"), b"seconded a'", relay_parent_number=7) \
            == b"seconded a"
        assert store.seconded_at(rp) == [(h("a"), b"seconded a")]
        # Another relay parent is independent.
        assert store.record_seconded(h("rp2"), h("b"), b"b at rp2", relay_parent_number=8) is None


def test_seconding_guard_survives_a_restart(db: Path) -> None:
    """Item 29: a validator restarted between "seconded" and broadcast re-sends the same
    statement and never seconds a second candidate at that relay parent."""
    rp = h("rp")
    with NodeStore(db) as store:
        assert store.record_seconded(rp, h("a"), b"seconded a", relay_parent_number=3) is None
        # ...killed here, before the statement went out.
    with NodeStore(db) as store:
        assert store.seconded_at(rp) == [(h("a"), b"seconded a")]
        assert store.record_seconded(rp, h("b"), b"seconded b", relay_parent_number=3) \
            == b"seconded a"
        assert store.record_seconded(rp, h("a"), b"seconded a", relay_parent_number=3) \
            == b"seconded a"
        assert store.seconded_at(rp) == [(h("a"), b"seconded a")]


def test_seconding_limit_above_one_for_elastic_scaling(db: Path) -> None:
    with NodeStore(db) as store:
        rp = h("rp")
        assert store.record_seconded(rp, h("a"), b"A", relay_parent_number=1, limit=2) is None
        assert store.record_seconded(rp, h("b"), b"B", relay_parent_number=1, limit=2) is None
        assert store.record_seconded(rp, h("c"), b"C", relay_parent_number=1, limit=2) == b"A"
        assert store.record_seconded(rp, h("b"), b"B", relay_parent_number=1, limit=2) == b"B"
        # A lower limit later is still honoured: two are already there.
        assert store.record_seconded(rp, h("d"), b"D", relay_parent_number=1) == b"A"
        assert store.seconded_at(rp) == [(h("a"), b"A"), (h("b"), b"B")]
        with pytest.raises(ValueError):
            store.record_seconded(rp, h("e"), b"E", relay_parent_number=1, limit=0)


def test_seconding_looks_up_the_relay_parent_number(db: Path) -> None:
    with NodeStore(db) as store:
        chain = put_chain(store, 4)
        assert store.record_seconded(chain[3], h("a"), b"A") is None
        assert store.prune_below(3) == 0
        assert store.prune_below(4) == 1
        with pytest.raises(StorageError, match="not a stored relay block"):
            store.record_seconded(h("unknown"), h("a"), b"A")


def test_record_signed_keeps_the_first_payload(db: Path) -> None:
    with NodeStore(db) as store:
        assert store.signed("bitfield", h(1)) is None
        assert store.record_signed("bitfield", h(1), b"bits 1", relay_parent_number=1) is None
        assert store.record_signed("bitfield", h(1), b"bits 2", relay_parent_number=1) == b"bits 1"
        assert store.record_signed("vote", h(1), b"vote") is None  # kinds are separate
        with pytest.raises(ValueError):
            store.record_signed("", h(1), b"x")
    with NodeStore(db) as store:
        assert store.signed("bitfield", h(1)) == b"bits 1"
        assert store.signed("vote", h(1)) == b"vote"
        assert store.record_signed("vote", h(1), b"other vote") == b"vote"


def test_prune_below(db: Path) -> None:
    with NodeStore(db) as store:
        for n in range(5):
            store.record_seconded(h(("rp", n)), h("c"), b"S%d" % n, relay_parent_number=n)
            store.record_signed("bitfield", h(("rp", n)), b"B%d" % n, relay_parent_number=n)
        store.record_signed("vote", h("slot 1"), b"V")  # no number: never pruned
        assert store.prune_below(3) == 6
        assert store.pruned_below() == 3
        assert store.seconded_at(h(("rp", 2))) == []
        assert store.seconded_at(h(("rp", 3))) == [(h("c"), b"S3")]
        assert store.signed("bitfield", h(("rp", 2))) is None
        assert store.signed("bitfield", h(("rp", 4))) == b"B4"
        assert store.signed("vote", h("slot 1")) == b"V"
        # What was forgotten cannot be signed again.
        with pytest.raises(StorageError, match="pruning bound"):
            store.record_seconded(h(("rp", 2)), h("d"), b"D", relay_parent_number=2)
        with pytest.raises(StorageError, match="pruning bound"):
            store.record_signed("bitfield", h(("rp", 2)), b"B", relay_parent_number=2)
        assert store.prune_below(1) == 0  # the bound never goes down
        assert store.pruned_below() == 3
    with NodeStore(db) as store:
        assert store.pruned_below() == 3
        with pytest.raises(StorageError, match="pruning bound"):
            store.record_seconded(h(("rp", 2)), h("d"), b"D", relay_parent_number=2)


# -- collator's parachain chain -------------------------------------------------------------------


def put_para_chain(store: NodeStore, para_id: int, length: int, fork: str = "main",
                   parent: bytes = GENESIS_PARENT, start: int = 0) -> list[bytes]:
    hashes = []
    for number in range(start, start + length):
        block = h((para_id, fork, number))
        store.put_para_block(para_id, number, block, parent, b"block%d" % number, b"state%d" % number)
        hashes.append(block)
        parent = block
    return hashes


def test_para_blocks_round_trip_and_survive_a_restart(db: Path) -> None:
    with NodeStore(db) as store:
        chain = put_para_chain(store, 2000, 4)
        put_para_chain(store, 2001, 2)
        store.set_para_included(2000, chain[1])
    with NodeStore(db) as store:
        blocks = store.para_blocks(2000)
        assert [b.hash for b in blocks] == chain
        assert [b.number for b in blocks] == [0, 1, 2, 3]
        assert blocks[2].parent_hash == chain[1]
        assert (blocks[2].encoded_block, blocks[2].encoded_post_state) == (b"block2", b"state2")
        assert [b.hash for b in store.para_blocks(2000, from_number=2)] == chain[2:]
        assert len(store.para_blocks(2001)) == 2
        assert store.para_blocks(2002) == []
        assert store.para_block(2000, chain[3]) == blocks[3]
        assert store.para_block(2001, chain[3]) is None
        assert store.para_included(2000) == Head(chain[1], 1)
        assert store.para_included(2001) is None


def test_para_block_at_detects_a_number_produced_twice(db: Path) -> None:
    with NodeStore(db) as store:
        chain = put_para_chain(store, 2000, 3)
        assert store.para_block_at(2000, 2) == [chain[2]]
        other = put_para_chain(store, 2000, 1, fork="other", parent=chain[1], start=2)
        assert store.para_block_at(2000, 2) == sorted([chain[2], other[0]])
        assert store.para_block_at(2000, 7) == []
        assert store.para_block_at(2001, 2) == []


def test_put_para_block_is_idempotent_and_refuses_conflicts(db: Path) -> None:
    with NodeStore(db) as store:
        chain = put_para_chain(store, 2000, 2)
        store.put_para_block(2000, 1, chain[1], chain[0], b"block1", b"state1")
        assert store.para_block_at(2000, 1) == [chain[1]]
        with pytest.raises(StorageError, match="other contents"):
            store.put_para_block(2000, 1, chain[1], chain[0], b"block1", b"other state")
        with pytest.raises(StorageError, match="parent"):
            store.put_para_block(2000, 5, h("x"), chain[1], b"", b"")
        with pytest.raises(StorageError, match="not a stored block of para 2001"):
            store.set_para_included(2001, chain[1])


def test_para_included_may_go_back_on_a_relay_reorg(db: Path) -> None:
    with NodeStore(db) as store:
        chain = put_para_chain(store, 2000, 3)
        store.set_para_included(2000, chain[2])
        store.set_para_included(2000, chain[1])
        assert store.para_included(2000) == Head(chain[1], 1)


# -- opening, durability, errors ------------------------------------------------------------------


def test_wal_and_synchronous_full_are_set(db: Path) -> None:
    with NodeStore(db) as store:
        assert store.durability_settings() == {"journal_mode": "wal", "synchronous": 2}
        # journal_mode=WAL is persistent: another connection sees it in the file.
        raw = sqlite3.connect(db)
        try:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            raw.close()


def test_schema_version_is_recorded(db: Path) -> None:
    NodeStore(db).close()
    raw = sqlite3.connect(db)
    try:
        row = raw.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    finally:
        raw.close()
    assert row == (SCHEMA_VERSION,)


@pytest.mark.parametrize(("version", "words"), [(SCHEMA_VERSION + 98, "newer schema version"),
                                                (0, "unknown schema version"),
                                                ("one", "unknown schema version")])
def test_refuses_another_schema_version(db: Path, version: object, words: str) -> None:
    NodeStore(db).close()
    raw = sqlite3.connect(db)
    with raw:
        raw.execute("UPDATE meta SET value=? WHERE key='schema_version'", (version,))
    raw.close()
    with pytest.raises(StorageError, match=words) as err:
        NodeStore(db)
    assert str(db) in str(err.value)


# The DDL of schema version 1, as that version created a store (para_blocks named its whole-block
# column `header` and its post-state column `entries`). Kept verbatim: a store written by that
# version must open under this one.
_SCHEMA_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE relay_heads (name TEXT PRIMARY KEY, hash BLOB NOT NULL, number INTEGER NOT NULL)",
    "CREATE TABLE relay_blocks (hash BLOB PRIMARY KEY, number INTEGER NOT NULL,"
    " parent_hash BLOB NOT NULL, encoded BLOB NOT NULL)",
    "CREATE INDEX relay_blocks_by_number ON relay_blocks (number, hash)",
    "CREATE TABLE seconded (seq INTEGER PRIMARY KEY, relay_parent BLOB NOT NULL,"
    " relay_parent_number INTEGER NOT NULL, candidate_hash BLOB NOT NULL, statement BLOB NOT NULL,"
    " UNIQUE (relay_parent, candidate_hash))",
    "CREATE INDEX seconded_by_number ON seconded (relay_parent_number)",
    "CREATE TABLE signed (kind TEXT NOT NULL, key BLOB NOT NULL, relay_parent_number INTEGER,"
    " payload BLOB NOT NULL, PRIMARY KEY (kind, key))",
    "CREATE INDEX signed_by_number ON signed (relay_parent_number)",
    "CREATE TABLE para_blocks (para_id INTEGER NOT NULL, hash BLOB NOT NULL,"
    " number INTEGER NOT NULL, parent_hash BLOB NOT NULL, header BLOB NOT NULL,"
    " entries BLOB NOT NULL, PRIMARY KEY (para_id, hash))",
    "CREATE INDEX para_blocks_by_number ON para_blocks (para_id, number, hash)",
    "CREATE TABLE para_included (para_id INTEGER PRIMARY KEY, hash BLOB NOT NULL)",
)


def _write_v1_store(path: Path) -> dict[str, list[tuple]]:
    """A store as schema version 1 wrote it, with rows in every table; returns those rows."""
    rp = [h(("v1", n)) for n in range(3)]
    rows: dict[str, list[tuple]] = {
        "meta": [("schema_version", 1), ("pruned_below", 1)],
        "relay_blocks": [(rp[n], n, rp[n - 1] if n else GENESIS_PARENT, b"relay block %d" % n)
                         for n in range(3)],
        "relay_heads": [("best", rp[2], 2), ("finalized", rp[1], 1)],
        "seconded": [(1, rp[2], 2, h("c"), b"seconded c")],
        "signed": [("bitfield", rp[2], 2, b"bits"), ("finality", b"\0" * 8, None, b"vote")],
        "para_blocks": [(2000, h(("p", n)), n, h(("p", n - 1)) if n else GENESIS_PARENT,
                         b"para block %d" % n, b"post-state %d" % n) for n in range(2)],
        "para_included": [(2000, h(("p", 0)))],
    }
    _raw_store(path, _SCHEMA_V1, rows)
    return rows


def _raw_store(path: Path, schema: tuple[str, ...], rows: dict[str, list[tuple]]) -> None:
    raw = sqlite3.connect(path)
    with raw:
        for statement in schema:
            raw.execute(statement)
        for table, table_rows in rows.items():
            for row in table_rows:
                raw.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)
    raw.close()


def _table_rows(path: Path) -> dict[str, list[tuple]]:
    raw = sqlite3.connect(path)
    try:
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(raw.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        raw.close()


def _columns(path: Path, table: str) -> list[str]:
    raw = sqlite3.connect(path)
    try:
        return [r[1] for r in raw.execute(f"PRAGMA table_info({table})")]
    finally:
        raw.close()


def test_a_version_1_store_is_migrated_and_keeps_every_row(db: Path) -> None:
    written = _write_v1_store(db)
    with NodeStore(db) as store:
        # every row reads back through the API, the para columns under their new names
        assert [(b.encoded_block, b.encoded_post_state) for b in store.para_blocks(2000)] == [
            (b"para block %d" % n, b"post-state %d" % n) for n in range(2)]
        assert store.para_included(2000) == Head(h(("p", 0)), 0)
        assert list(store.relay_blocks_from(0)) == [(r[0], r[3]) for r in written["relay_blocks"]]
        assert (store.best(), store.finalized()) == (Head(h(("v1", 2)), 2), Head(h(("v1", 1)), 1))
        assert store.seconded_at(h(("v1", 2))) == [(h("c"), b"seconded c")]
        assert store.signed("bitfield", h(("v1", 2))) == b"bits"
        assert store.signed("finality", b"\0" * 8) == b"vote"
        assert store.pruned_below() == 1
    assert _columns(db, "para_blocks") == [
        "para_id", "hash", "number", "parent_hash", "block", "post_state"]
    written["meta"] = [("schema_version", SCHEMA_VERSION), ("pruned_below", 1)]
    assert _table_rows(db) == {t: sorted(r, key=repr) for t, r in written.items()}
    # the next open is an ordinary one, and the migrated store takes new writes
    with NodeStore(db) as store:
        store.put_para_block(2000, 2, h(("p", 2)), h(("p", 1)), b"para block 2", b"post-state 2")
        assert [b.number for b in store.para_blocks(2000)] == [0, 1, 2]


def test_a_failed_migration_leaves_the_store_as_it_was(db: Path) -> None:
    """The migration runs in the transaction that opens the store: when a step fails (here on a
    damaged version-1 store whose para_blocks lacks the `entries` column, after `header` was
    already renamed) nothing is changed."""
    damaged = tuple(s.replace(" entries BLOB NOT NULL,", "") for s in _SCHEMA_V1)
    _raw_store(db, damaged, {"meta": [("schema_version", 1), ("pruned_below", 0)],
                             "para_blocks": [(2000, h("p0"), 0, GENESIS_PARENT, b"block")]})
    before = _table_rows(db)
    with pytest.raises(StorageError, match="entries") as err:
        NodeStore(db)
    assert str(db) in str(err.value) and "\n" not in str(err.value)
    assert _table_rows(db) == before
    assert _columns(db, "para_blocks") == ["para_id", "hash", "number", "parent_hash", "header"]


def test_refuses_a_foreign_sqlite_database(db: Path) -> None:
    raw = sqlite3.connect(db)
    with raw:
        raw.execute("CREATE TABLE t (x)")
    raw.close()
    with pytest.raises(StorageError, match="not an asyncback store"):
        NodeStore(db)


def _populated_file(path: Path) -> bytes:
    with NodeStore(path) as store:
        put_chain(store, 200)
    return path.read_bytes()


def _flip_page_header(data: bytes) -> bytes:
    # Page 2 is a b-tree page; its header's cell-content offset (bytes 5-6) pointing outside the
    # page is structural damage integrity_check must report.
    page = 4096
    return data[:page + 5] + b"\xff\xff" + data[page + 7:]


@pytest.mark.parametrize("damage", [
    pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
    pytest.param(lambda data: data[:1000], id="truncated-in-first-page"),
    pytest.param(lambda data: b"\x5a\xa5" * (len(data) // 2), id="garbage"),
    pytest.param(_flip_page_header, id="mid-file-bit-flip"),
])
def test_corrupt_file_is_an_error_naming_the_file(tmp_path: Path, damage: object) -> None:
    data = _populated_file(tmp_path / "good.db")
    bad = tmp_path / "bad.db"
    bad.write_bytes(damage(data))  # type: ignore[operator]
    with pytest.raises(StorageError) as err:
        NodeStore(bad)
    message = str(err.value)
    assert str(bad) in message
    assert "corrupt" in message
    assert "\n" not in message


def test_location_errors_are_one_line(tmp_path: Path) -> None:
    cases = {
        tmp_path / "missing" / "node.db": "does not exist",
        tmp_path: "is a directory",
    }
    (tmp_path / "a-file").write_text("")
    cases[tmp_path / "a-file" / "node.db"] = "not a directory"
    for path, words in cases.items():
        with pytest.raises(StorageError, match=words) as err:
            NodeStore(path)
        assert str(path) in str(err.value)
        assert "\n" not in str(err.value)


def test_closed_store_refuses_calls(db: Path) -> None:
    store = NodeStore(db)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        store.relay_block(h(1))
    with pytest.raises(StorageError, match="closed"):
        store.put_relay_block(h(1), 0, GENESIS_PARENT, b"")
    with NodeStore(db) as store:
        pass
    with pytest.raises(StorageError, match="closed"):
        store.best()


def test_in_memory_store_for_simulations() -> None:
    with NodeStore(":memory:") as store:
        chain = put_chain(store, 3)
        store.set_finalized(chain[2], 2)
        assert store.finalized() == Head(chain[2], 2)


# -- crashes --------------------------------------------------------------------------------------


def _copy_live_files(src: Path, dst_dir: Path) -> Path:
    """What is on disk right now for a store that was never closed (the -shm index is rebuilt
    from the log on open, so it is not copied)."""
    dst_dir.mkdir()
    for suffix in ("", "-wal"):
        source = Path(str(src) + suffix)
        if source.exists():
            shutil.copyfile(source, dst_dir / (src.name + suffix))
    return dst_dir / src.name


def test_committed_writes_survive_a_crash(tmp_path: Path) -> None:
    """Item 30: every acknowledged commit is present after a crash; the DB opens, integrity ok."""
    db = tmp_path / "node.db"
    store = NodeStore(db)
    chain = put_chain(store, 20)
    store.set_best(chain[-1])
    store.set_finalized(chain[15], 15)
    store.record_seconded(chain[19], h("a"), b"A")
    store.put_para_block(2000, 0, h("p0"), GENESIS_PARENT, b"block", b"state")
    # A second process reading the same files sees every commit while the writer is still open.
    with NodeStore(db) as reader:
        assert reader.finalized() == Head(chain[15], 15)
    crashed = _copy_live_files(db, tmp_path / "after-crash")
    store.close()
    with NodeStore(crashed) as restarted:
        assert [b for b, _ in restarted.relay_blocks_from(0)] == chain
        assert restarted.best() == Head(chain[-1], 19)
        assert restarted.finalized() == Head(chain[15], 15)
        assert restarted.seconded_at(chain[19]) == [(h("a"), b"A")]
        assert restarted.para_block_at(2000, 0) == [h("p0")]


def test_torn_log_tail_loses_only_the_unfinished_commit(tmp_path: Path) -> None:
    db = tmp_path / "node.db"
    store = NodeStore(db)
    chain = put_chain(store, 10)
    crashed = _copy_live_files(db, tmp_path / "after-crash")
    store.close()
    wal = Path(str(crashed) + "-wal")
    wal.write_bytes(wal.read_bytes()[:-100])  # the last commit's frame was half written
    with NodeStore(crashed) as restarted:
        assert [b for b, _ in restarted.relay_blocks_from(0)] == chain[:9]
        put_chain(restarted, 1, parent=chain[8], start=9)  # and the node carries on


_WRITER = """
import sys
from node.storage import NodeStore
store = NodeStore(sys.argv[1])
parent = bytes(32)
for number in range(100000):
    block = number.to_bytes(32, "big")
    store.put_relay_block(block, number, parent, b"x" * 64)
    store.set_best(block)
    if number % 4 == 0:
        store.set_finalized(block, number)
    print(number, flush=True)
    parent = block
"""


def test_sigkill_mid_write_keeps_every_acknowledged_commit(tmp_path: Path) -> None:
    """Item 27 at unit level: kill -9 a process writing in a loop; after a restart the best and
    finalized heads are at least the last acknowledged ones and every acknowledged block is
    there."""
    db = tmp_path / "node.db"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(db)], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    acknowledged = -1
    try:
        for line in writer.stdout:
            acknowledged = int(line)
            if acknowledged >= 30:
                writer.send_signal(signal.SIGKILL)
                break
        rest = writer.stdout.read().split()  # lines printed before the kill landed
        acknowledged = max([acknowledged, *map(int, rest)])
    finally:
        writer.kill()
        writer.wait()
    assert acknowledged >= 30
    with NodeStore(db) as restarted:
        stored = [int.from_bytes(b, "big") for b, _ in restarted.relay_blocks_from(0)]
        assert stored[: acknowledged + 1] == list(range(acknowledged + 1))
        best = restarted.best()
        finalized = restarted.finalized()
        assert best is not None and best.number >= acknowledged
        assert finalized is not None and finalized.number >= acknowledged - acknowledged % 4


# -- invariants under random operations -----------------------------------------------------------


class StoreMachine(RuleBasedStateMachine):
    """Random puts, head moves, seconding and restarts against a plain model."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "node.db"
        self.store = NodeStore(self.path)
        self.blocks: dict[bytes, tuple[int, bytes]] = {}  # hash -> (number, parent)
        self.order: list[bytes] = []
        self.best: Head | None = None
        self.finalized: Head | None = None
        self.finalized_numbers: list[int] = []
        self.seconded: dict[bytes, list[tuple[bytes, bytes]]] = {}

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    def _pick(self, index: int) -> bytes:
        return self.order[index % len(self.order)]

    def _descends(self, block: bytes, ancestor: Head) -> bool:
        number = self.blocks[block][0]
        while number > ancestor.number:
            block = self.blocks[block][1]
            number -= 1
        return block == ancestor.hash

    @initialize(payload=st.binary(max_size=16))
    def put_genesis(self, payload: bytes) -> None:
        self.put_block(0, True, payload)

    @rule(parent_index=st.integers(0, 10**6), on_genesis=st.booleans(),
          payload=st.binary(max_size=16))
    def put_block(self, parent_index: int, on_genesis: bool, payload: bytes) -> None:
        # on_genesis makes another block #0: an unrelated fork finality must never switch to.
        if on_genesis:
            parent, number = GENESIS_PARENT, 0
        else:
            parent = self._pick(parent_index)
            number = self.blocks[parent][0] + 1
        block = h(("block", len(self.order)))
        self.store.put_relay_block(block, number, parent, payload)
        self.store.put_relay_block(block, number, parent, payload)  # idempotent
        self.blocks[block] = (number, parent)
        self.order.append(block)

    @rule(index=st.integers(0, 10**6))
    def set_best(self, index: int) -> None:
        block = self._pick(index)
        self.store.set_best(block)
        self.best = Head(block, self.blocks[block][0])

    @rule(index=st.integers(0, 10**6))
    def set_finalized(self, index: int) -> None:
        block = self._pick(index)
        number = self.blocks[block][0]
        allowed = self.finalized is None or self._descends(block, self.finalized)
        if allowed:
            self.store.set_finalized(block, number)
            self.finalized = Head(block, number)
        else:
            with pytest.raises(StorageError):
                self.store.set_finalized(block, number)
        self.finalized_numbers.append(self.finalized.number if self.finalized else -1)

    @rule(index=st.integers(0, 10**6), candidate=st.integers(0, 3), limit=st.integers(1, 2))
    def second(self, index: int, candidate: int, limit: int) -> None:
        relay_parent = self._pick(index)
        statement = b"stmt %d at " % candidate + relay_parent[:4]
        done = self.seconded.setdefault(relay_parent, [])
        earlier = dict(done)
        if h(candidate) in earlier:
            expected: bytes | None = earlier[h(candidate)]
        elif len(done) >= limit:
            expected = done[0][1]
        else:
            expected = None
            done.append((h(candidate), statement))
        assert self.store.record_seconded(relay_parent, h(candidate), statement,
                                          limit=limit) == expected

    @rule()
    def restart(self) -> None:
        self.store.close()
        self.store = NodeStore(self.path)

    @invariant()
    def heads_match_the_model(self) -> None:
        assert self.store.best() == self.best
        assert self.store.finalized() == self.finalized
        assert self.finalized_numbers == sorted(self.finalized_numbers)

    @invariant()
    def replay_has_every_block_parents_first(self) -> None:
        replay = [b for b, _ in self.store.relay_blocks_from(0)]
        assert sorted(replay) == sorted(self.order)
        position = {b: i for i, b in enumerate(replay)}
        for block, (_, parent) in self.blocks.items():
            if parent in position:
                assert position[parent] < position[block]

    @invariant()
    def seconded_matches_the_model(self) -> None:
        for relay_parent, done in self.seconded.items():
            assert self.store.seconded_at(relay_parent) == done


StoreMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
test_store_invariants = StoreMachine.TestCase
