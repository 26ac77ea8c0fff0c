"""Node persistence: one SQLite file per node process.

What a node must find again after a crash or a restart:

* relay chain: every imported block (replayed in number order on restart), the best head and the
  finalized head (the finalized number never decreases and never leaves its chain);
* what a validator signed, written *before* it is sent, so a restarted validator re-sends the same
  statement instead of seconding a second candidate at one relay parent, and signs no second
  bitfield at one relay parent nor a second finality vote at one height (slashing protection);
  records at relay parents below a rising bound are pruned (`prune_below`), and signing below it
  is refused;
* a collator's parachain chain and the head the relay chain last included, from which the
  unincluded segment is recomputed.

Durability: the database runs in WAL mode with `synchronous=FULL`, so a commit fsyncs the log
before it returns, and every write method is one transaction committed before it returns: a
write that was acknowledged survives a crash or power loss. Opening a store runs
`PRAGMA integrity_check`; a corrupt file is a `StorageError` naming the file, never skipped.

The API is synchronous on purpose: writes are a few small rows, and the trio services call it
directly from the event loop (a call never awaits, so a cancellation cannot split a transaction).
The special path ":memory:" gives a non-durable store (for tests; the simulator keeps its state in
the services and needs no store).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from proto.errors import SigningRefused
from proto.ports import Head

# Bump when the schema changes, and add to `_MIGRATIONS` the statements that bring a store of the
# previous version up to it.
SCHEMA_VERSION = 2

# Rows fetched per page by `relay_blocks_from`; bounds memory on a long replay.
_REPLAY_PAGE = 256

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    # name is 'best' or 'finalized'
    "CREATE TABLE relay_heads (name TEXT PRIMARY KEY, hash BLOB NOT NULL, number INTEGER NOT NULL)",
    "CREATE TABLE relay_blocks (hash BLOB PRIMARY KEY, number INTEGER NOT NULL,"
    " parent_hash BLOB NOT NULL, encoded BLOB NOT NULL)",
    "CREATE INDEX relay_blocks_by_number ON relay_blocks (number, hash)",
    # seq (the rowid) orders the Seconded statements of one relay parent by signing time.
    "CREATE TABLE seconded (seq INTEGER PRIMARY KEY, relay_parent BLOB NOT NULL,"
    " relay_parent_number INTEGER NOT NULL, candidate_hash BLOB NOT NULL, statement BLOB NOT NULL,"
    " UNIQUE (relay_parent, candidate_hash))",
    "CREATE INDEX seconded_by_number ON seconded (relay_parent_number)",
    "CREATE TABLE signed (kind TEXT NOT NULL, key BLOB NOT NULL, relay_parent_number INTEGER,"
    " payload BLOB NOT NULL, PRIMARY KEY (kind, key))",
    "CREATE INDEX signed_by_number ON signed (relay_parent_number)",
    # block is the whole encoded `ParaBlock`; post_state the encoded state after executing it.
    "CREATE TABLE para_blocks (para_id INTEGER NOT NULL, hash BLOB NOT NULL,"
    " number INTEGER NOT NULL, parent_hash BLOB NOT NULL, block BLOB NOT NULL,"
    " post_state BLOB NOT NULL, PRIMARY KEY (para_id, hash))",
    "CREATE INDEX para_blocks_by_number ON para_blocks (para_id, number, hash)",
    "CREATE TABLE para_included (para_id INTEGER PRIMARY KEY, hash BLOB NOT NULL)",
)

# _MIGRATIONS[v]: the statements that turn a store of schema version v into version v + 1. Opening
# an older store runs every step up to SCHEMA_VERSION in the one transaction that opens it, so a
# store is either fully migrated or left as it was.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # Version 1 named para_blocks' columns `header` and `entries`; they hold the whole block and
    # the post-state.
    1: ("ALTER TABLE para_blocks RENAME COLUMN header TO block",
        "ALTER TABLE para_blocks RENAME COLUMN entries TO post_state"),
}


class StorageError(Exception):
    """The store cannot be opened, or a write would break one of its invariants."""


class BelowPruningBound(StorageError, SigningRefused):
    """A signature asked for at a relay parent whose records were pruned: refused (what was
    signed there is forgotten), and the service asking skips it (`SigningRefused`)."""


@dataclass(frozen=True)
class ParaBlockRecord:
    para_id: int
    number: int
    hash: bytes
    parent_hash: bytes
    encoded_block: bytes
    encoded_post_state: bytes


def _short(h: bytes) -> str:
    return "0x" + h[:8].hex() + ("…" if len(h) > 8 else "")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


class NodeStore:
    """One node's durable state. Not thread-safe: use it from the thread that opened it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._in_memory = os.fspath(path) == ":memory:"
        self._path = os.fspath(path) if self._in_memory else str(Path(path))
        if not self._in_memory:
            self._check_location()
        try:
            conn = sqlite3.connect(self._path, isolation_level=None)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open store {self._path}: {_one_line(e)}") from e
        self._conn: sqlite3.Connection | None = conn
        try:
            self._check_integrity(conn)
            self._set_durability(conn)
            self._check_schema()
        except BaseException:
            self._conn = None
            conn.close()
            raise

    # -- opening ---------------------------------------------------------------------------------

    def _check_location(self) -> None:
        """Turn the usual deployment mistakes into one-line errors before SQLite sees the path
        (SQLite would say only "unable to open database file", or open a read-only file and fail
        at the first write)."""
        path = Path(self._path)
        parent = path.parent
        if not parent.exists():
            raise StorageError(f"cannot open store {path}: directory {parent} does not exist")
        if not parent.is_dir():
            raise StorageError(f"cannot open store {path}: {parent} is not a directory")
        if path.is_dir():
            raise StorageError(f"cannot open store {path}: it is a directory")
        # WAL mode creates the -wal and -shm files beside the database, so the directory must be
        # writable too, not only the file.
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise StorageError(f"cannot open store {path}: file is not readable and writable")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StorageError(f"cannot open store {path}: directory {parent} is not writable")

    def _check_integrity(self, conn: sqlite3.Connection) -> None:
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as e:
            raise StorageError(
                f"store {self._path} is corrupt or not a database: {_one_line(e)}") from e
        if rows != [("ok",)]:
            first = _one_line(Exception(rows[0][0])) if rows else "no result"
            raise StorageError(f"store {self._path} is corrupt: integrity_check: {first}")

    def _set_durability(self, conn: sqlite3.Connection) -> None:
        try:
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            conn.execute("PRAGMA synchronous=FULL")
            synchronous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
        except sqlite3.Error as e:
            raise StorageError(f"cannot open store {self._path}: {_one_line(e)}") from e
        # An in-memory database has no log to put in WAL mode; it is not durable anyway.
        if not self._in_memory and mode != "wal":
            raise StorageError(f"store {self._path}: cannot enable WAL (journal_mode is {mode})")
        if synchronous != 2:
            raise StorageError(f"store {self._path}: cannot set synchronous=FULL")

    def _check_schema(self) -> None:
        with self._write("open") as c:
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                for statement in _SCHEMA:
                    c.execute(statement)
                c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
                c.execute("INSERT INTO meta VALUES ('pruned_below', 0)")
                return
            row = None
            if "meta" in tables:
                row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                raise StorageError(
                    f"store {self._path} is not an asyncback store (no schema version)")
            version = row[0]
            if version != SCHEMA_VERSION and version not in _MIGRATIONS:
                newer = isinstance(version, int) and version > SCHEMA_VERSION
                raise StorageError(
                    f"store {self._path} has {'newer' if newer else 'unknown'} schema version "
                    f"{version!r}; this build reads version {SCHEMA_VERSION}")
            while version != SCHEMA_VERSION:
                for statement in _MIGRATIONS[version]:
                    c.execute(statement)
                version += 1
            c.execute("UPDATE meta SET value=? WHERE key='schema_version'", (version,))

    # -- lifetime --------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    def close(self) -> None:
        """Close the store. Idempotent. Nothing is lost: every write was already committed."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def __enter__(self) -> NodeStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def durability_settings(self) -> dict[str, str | int]:
        """The pragmas this connection really runs with (journal_mode, synchronous: 2 = FULL)."""
        with self._read("durability_settings") as c:
            return {"journal_mode": str(c.execute("PRAGMA journal_mode").fetchone()[0]),
                    "synchronous": int(c.execute("PRAGMA synchronous").fetchone()[0])}

    # -- transactions ----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError(f"store {self._path} is closed")
        return self._conn

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed before the block's caller gets control back.

        BEGIN IMMEDIATE takes the write lock up front, so the read-then-write of a guard (did I
        already sign this?) cannot interleave with another writer. Any exception rolls back.
        """
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"store {self._path}: {what}: {_one_line(e)}") from e

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            yield conn
        except sqlite3.Error as e:
            raise StorageError(f"store {self._path}: {what}: {_one_line(e)}") from e

    # -- relay chain -----------------------------------------------------------------------------

    def put_relay_block(self, hash: bytes, number: int, parent_hash: bytes,
                        encoded_block: bytes) -> None:
        """Store an imported relay block. Storing the same block again is a no-op; the same hash
        with other contents, or a number that does not follow its stored parent, is refused."""
        if number < 0:
            raise StorageError(f"relay block {_short(hash)}: negative number {number}")
        with self._write("put_relay_block") as c:
            row = c.execute("SELECT number, parent_hash, encoded FROM relay_blocks WHERE hash=?",
                            (hash,)).fetchone()
            if row is not None:
                if tuple(row) != (number, parent_hash, encoded_block):
                    raise StorageError(
                        f"relay block {_short(hash)} already stored with other contents")
                return
            parent = c.execute("SELECT number FROM relay_blocks WHERE hash=?",
                               (parent_hash,)).fetchone()
            if parent is not None and parent[0] != number - 1:
                raise StorageError(f"relay block {_short(hash)} #{number}: parent "
                                   f"{_short(parent_hash)} is #{parent[0]}")
            c.execute("INSERT INTO relay_blocks VALUES (?, ?, ?, ?)",
                      (hash, number, parent_hash, encoded_block))

    def relay_block(self, hash: bytes) -> bytes | None:
        with self._read("relay_block") as c:
            row = c.execute("SELECT encoded FROM relay_blocks WHERE hash=?", (hash,)).fetchone()
        return None if row is None else bytes(row[0])

    def relay_block_number(self, hash: bytes) -> int | None:
        with self._read("relay_block_number") as c:
            row = c.execute("SELECT number FROM relay_blocks WHERE hash=?", (hash,)).fetchone()
        return None if row is None else int(row[0])

    def relay_blocks_from(self, number: int) -> Iterator[tuple[bytes, bytes]]:
        """(hash, encoded) of every stored block numbered >= `number`, forks included, by
        number then hash: a parent always comes before its children, so a restarted node can
        re-import them in this order. Read page by page, so the caller may write in between."""
        after: tuple[int, bytes] | None = None
        while True:
            with self._read("relay_blocks_from") as c:
                if after is None:
                    rows = c.execute(
                        "SELECT number, hash, encoded FROM relay_blocks WHERE number >= ?"
                        " ORDER BY number, hash LIMIT ?", (number, _REPLAY_PAGE)).fetchall()
                else:
                    rows = c.execute(
                        "SELECT number, hash, encoded FROM relay_blocks WHERE number >= ? AND"
                        " (number, hash) > (?, ?) ORDER BY number, hash LIMIT ?",
                        (number, after[0], after[1], _REPLAY_PAGE)).fetchall()
            for _, block_hash, encoded in rows:
                yield bytes(block_hash), bytes(encoded)
            if len(rows) < _REPLAY_PAGE:
                return
            after = (rows[-1][0], rows[-1][1])

    def drop_relay_blocks(self, hashes: Iterable[bytes]) -> int:
        """Delete these relay block records (ones that failed their check on replay, and what was
        built on them), so the blocks can be stored again as peers send them; returns how many
        were deleted. A best head naming one of them is forgotten (the next import sets it). The
        finalized head is kept as it is, even when it names a deleted block: finality never goes
        back, and `set_finalized` accepts only its descendants once they are stored again."""
        with self._write("drop_relay_blocks") as c:
            dropped = 0
            for h in hashes:
                dropped += c.execute("DELETE FROM relay_blocks WHERE hash=?", (h,)).rowcount
                c.execute("DELETE FROM relay_heads WHERE name='best' AND hash=?", (h,))
            return dropped

    def set_best(self, hash: bytes) -> None:
        """Record the best head. It must be a stored block (so a restart can replay up to it);
        it may move to another fork or go back (reorg)."""
        with self._write("set_best") as c:
            number = self._stored_number(c, hash, "best head")
            c.execute("INSERT OR REPLACE INTO relay_heads VALUES ('best', ?, ?)", (hash, number))

    def best(self) -> Head | None:
        return self._head("best")

    def set_finalized(self, hash: bytes, number: int) -> None:
        """Record the finalized head. Raises StorageError (and stores nothing) if the block is
        not stored, its number is not `number`, or it is not the current finalized head or a
        descendant of it: finality never goes back and never switches forks. Setting the current
        finalized head again is a no-op."""
        with self._write("set_finalized") as c:
            stored = self._stored_number(c, hash, "finalized head")
            if stored != number:
                raise StorageError(f"finalized head {_short(hash)} is #{stored}, not #{number}")
            row = c.execute("SELECT hash, number FROM relay_heads WHERE name='finalized'").fetchone()
            if row is not None:
                current = Head(bytes(row[0]), int(row[1]))
                if number < current.number:
                    raise StorageError(f"finalized number would decrease from #{current.number} "
                                       f"to #{number}")
                if self._ancestor_at(c, hash, number, current.number) != current.hash:
                    raise StorageError(f"block {_short(hash)} #{number} does not descend from the "
                                       f"finalized head {_short(current.hash)} #{current.number}")
            c.execute("INSERT OR REPLACE INTO relay_heads VALUES ('finalized', ?, ?)",
                      (hash, number))

    def finalized(self) -> Head | None:
        return self._head("finalized")

    def _head(self, name: str) -> Head | None:
        with self._read(name) as c:
            row = c.execute("SELECT hash, number FROM relay_heads WHERE name=?",
                            (name,)).fetchone()
        return None if row is None else Head(bytes(row[0]), int(row[1]))

    @staticmethod
    def _stored_number(c: sqlite3.Connection, hash: bytes, role: str) -> int:
        row = c.execute("SELECT number FROM relay_blocks WHERE hash=?", (hash,)).fetchone()
        if row is None:
            raise StorageError(f"{role} {_short(hash)} is not a stored relay block")
        return int(row[0])

    @staticmethod
    def _ancestor_at(c: sqlite3.Connection, hash: bytes, number: int, target: int) -> bytes:
        """Hash of the ancestor of `hash` (at `number`) numbered `target`, walking parent links."""
        while number > target:
            row = c.execute("SELECT parent_hash FROM relay_blocks WHERE hash=?", (hash,)).fetchone()
            if row is None:
                raise StorageError(f"relay block {_short(hash)} #{number} is missing: cannot "
                                   f"check ancestry")
            hash, number = bytes(row[0]), number - 1
        return hash

    # -- what a validator signed -----------------------------------------------------------------

    def record_seconded(self, relay_parent: bytes, candidate_hash: bytes, statement: bytes, *,
                        relay_parent_number: int | None = None, limit: int = 1) -> bytes | None:
        """Record, before it is sent, that this validator seconds `candidate_hash` at
        `relay_parent`. Returns None if this call stored `statement`: send it. Returns bytes if
        something was already signed and nothing was stored: send those bytes instead of
        `statement`, namely

        * the statement stored earlier for this same candidate (a restart re-sends it), or
        * the earliest Seconded at this relay parent, when `limit` candidates (1 without
          elastic scaling) are already seconded there: this validator must not second another.

        `relay_parent_number` is kept for `prune_below`; when omitted it is looked up among the
        stored relay blocks. A relay parent below the pruning bound is refused, since what was
        signed there has been forgotten.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        with self._write("record_seconded") as c:
            if relay_parent_number is None:
                relay_parent_number = self._stored_number(c, relay_parent, "relay parent")
            self._check_not_pruned(c, relay_parent_number)
            row = c.execute("SELECT statement FROM seconded WHERE relay_parent=? AND"
                            " candidate_hash=?", (relay_parent, candidate_hash)).fetchone()
            if row is not None:
                return bytes(row[0])
            earlier = c.execute("SELECT statement FROM seconded WHERE relay_parent=? ORDER BY seq",
                                (relay_parent,)).fetchall()
            if len(earlier) >= limit:
                return bytes(earlier[0][0])
            c.execute("INSERT INTO seconded (relay_parent, relay_parent_number, candidate_hash,"
                      " statement) VALUES (?, ?, ?, ?)",
                      (relay_parent, relay_parent_number, candidate_hash, statement))
            return None

    def seconded_at(self, relay_parent: bytes) -> list[tuple[bytes, bytes]]:
        """(candidate_hash, statement) seconded at `relay_parent`, in signing order: what a
        restarted validator re-broadcasts."""
        with self._read("seconded_at") as c:
            rows = c.execute("SELECT candidate_hash, statement FROM seconded WHERE relay_parent=?"
                             " ORDER BY seq", (relay_parent,)).fetchall()
        return [(bytes(h), bytes(s)) for h, s in rows]

    def record_signed(self, kind: str, key: bytes, payload: bytes, *,
                      relay_parent_number: int | None = None) -> bytes | None:
        """Generic "signed before sent" log for bitfields, finality votes, Valid statements...:
        `key` names the one thing of `kind` this validator may sign (e.g. the relay parent of a
        bitfield, the slot of a finality vote). Returns None if `payload` was stored now, else the
        payload stored earlier for (kind, key), which is kept: send that one.

        Entries with a `relay_parent_number` are dropped by `prune_below`; entries without one
        are kept forever."""
        if not kind:
            raise ValueError("kind must be a non-empty string")
        with self._write("record_signed") as c:
            if relay_parent_number is not None:
                self._check_not_pruned(c, relay_parent_number)
            row = c.execute("SELECT payload FROM signed WHERE kind=? AND key=?",
                            (kind, key)).fetchone()
            if row is not None:
                return bytes(row[0])
            c.execute("INSERT INTO signed VALUES (?, ?, ?, ?)",
                      (kind, key, relay_parent_number, payload))
            return None

    def signed(self, kind: str, key: bytes) -> bytes | None:
        with self._read("signed") as c:
            row = c.execute("SELECT payload FROM signed WHERE kind=? AND key=?",
                            (kind, key)).fetchone()
        return None if row is None else bytes(row[0])

    def seconded_records(self) -> list[tuple[bytes, bytes, bytes]]:
        """(relay_parent, candidate_hash, statement) of every Seconded held, in signing order:
        what a starting validator checks (`relay.service.signed_records`)."""
        with self._read("seconded_records") as c:
            # CAST: a value a disk or an editor turned into text still reads as bytes (to fail
            # its check there, not here as a unicode error).
            rows = c.execute("SELECT CAST(relay_parent AS BLOB), CAST(candidate_hash AS BLOB),"
                             " CAST(statement AS BLOB) FROM seconded ORDER BY seq").fetchall()
        return [(bytes(r), bytes(h), bytes(s)) for r, h, s in rows]

    def signed_records(self) -> list[tuple[str, bytes, bytes]]:
        """(kind, key, payload) of every other signed record held (bitfields, finality votes)."""
        with self._read("signed_records") as c:
            rows = c.execute("SELECT CAST(kind AS TEXT), CAST(key AS BLOB), CAST(payload AS BLOB)"
                             " FROM signed ORDER BY kind, key").fetchall()
        return [(str(k), bytes(key), bytes(p)) for k, key, p in rows]

    def prune_below(self, number: int) -> int:
        """Forget seconded and signed records at relay parents numbered below `number`; returns
        how many were dropped. The bound only rises, and signing below it is refused from then
        on, so pruning can never let a validator sign twice at one relay parent. Call it with a
        bound no relay parent in scope can be under (e.g. the oldest allowed relay parent)."""
        with self._write("prune_below") as c:
            bound = max(number, self._pruned_below(c))
            c.execute("UPDATE meta SET value=? WHERE key='pruned_below'", (bound,))
            dropped = c.execute("DELETE FROM seconded WHERE relay_parent_number < ?",
                                (bound,)).rowcount
            dropped += c.execute("DELETE FROM signed WHERE relay_parent_number < ?",
                                 (bound,)).rowcount
            return int(dropped)

    def pruned_below(self) -> int:
        with self._read("pruned_below") as c:
            return self._pruned_below(c)

    @staticmethod
    def _pruned_below(c: sqlite3.Connection) -> int:
        return int(c.execute("SELECT value FROM meta WHERE key='pruned_below'").fetchone()[0])

    def _check_not_pruned(self, c: sqlite3.Connection, relay_parent_number: int) -> None:
        bound = self._pruned_below(c)
        if relay_parent_number < bound:
            raise BelowPruningBound(f"relay parent #{relay_parent_number} is below the pruning "
                                    f"bound #{bound}: refusing to sign there")

    # -- collator's parachain chain --------------------------------------------------------------

    def put_para_block(self, para_id: int, number: int, hash: bytes, parent_hash: bytes,
                       encoded_block: bytes, encoded_post_state: bytes) -> None:
        """Store a parachain block (built or imported): the whole encoded block and the encoded
        state after executing it. Idempotent for identical contents. Two blocks at one number (a
        fork) are both kept: `para_block_at` lets a checker see them."""
        if number < 0:
            raise StorageError(f"para {para_id} block {_short(hash)}: negative number {number}")
        with self._write("put_para_block") as c:
            row = c.execute("SELECT number, parent_hash, block, post_state FROM para_blocks"
                            " WHERE para_id=? AND hash=?", (para_id, hash)).fetchone()
            if row is not None:
                if tuple(row) != (number, parent_hash, encoded_block, encoded_post_state):
                    raise StorageError(f"para {para_id} block {_short(hash)} already stored "
                                       f"with other contents")
                return
            parent = c.execute("SELECT number FROM para_blocks WHERE para_id=? AND hash=?",
                               (para_id, parent_hash)).fetchone()
            if parent is not None and parent[0] != number - 1:
                raise StorageError(f"para {para_id} block {_short(hash)} #{number}: parent "
                                   f"{_short(parent_hash)} is #{parent[0]}")
            c.execute("INSERT INTO para_blocks (para_id, hash, number, parent_hash, block,"
                      " post_state) VALUES (?, ?, ?, ?, ?, ?)",
                      (para_id, hash, number, parent_hash, encoded_block, encoded_post_state))

    def para_blocks(self, para_id: int, from_number: int = 0) -> list[ParaBlockRecord]:
        """Blocks of `para_id` numbered >= `from_number`, by number then hash (parents first)."""
        with self._read("para_blocks") as c:
            rows = c.execute("SELECT number, hash, parent_hash, block, post_state FROM para_blocks"
                             " WHERE para_id=? AND number >= ? ORDER BY number, hash",
                             (para_id, from_number)).fetchall()
        return [ParaBlockRecord(para_id, int(n), bytes(h), bytes(p), bytes(b), bytes(st))
                for n, h, p, b, st in rows]

    def para_block(self, para_id: int, hash: bytes) -> ParaBlockRecord | None:
        with self._read("para_block") as c:
            row = c.execute("SELECT number, parent_hash, block, post_state FROM para_blocks"
                            " WHERE para_id=? AND hash=?", (para_id, hash)).fetchone()
        if row is None:
            return None
        n, p, b, st = row
        return ParaBlockRecord(para_id, int(n), bytes(hash), bytes(p), bytes(b), bytes(st))

    def para_block_at(self, para_id: int, number: int) -> list[bytes]:
        """Hashes of the stored blocks of `para_id` at `number`, sorted; more than one means that
        number was produced (or imported) twice."""
        with self._read("para_block_at") as c:
            rows = c.execute("SELECT hash FROM para_blocks WHERE para_id=? AND number=?"
                             " ORDER BY hash", (para_id, number)).fetchall()
        return [bytes(r[0]) for r in rows]

    def set_para_included(self, para_id: int, hash: bytes) -> None:
        """Record the para head the relay chain included last. It must be a stored block of that
        para; it may go back when the relay chain reorganises, so no monotonicity is enforced."""
        with self._write("set_para_included") as c:
            row = c.execute("SELECT 1 FROM para_blocks WHERE para_id=? AND hash=?",
                            (para_id, hash)).fetchone()
            if row is None:
                raise StorageError(f"included head {_short(hash)} is not a stored block of "
                                   f"para {para_id}")
            c.execute("INSERT OR REPLACE INTO para_included VALUES (?, ?)", (para_id, hash))

    def para_included(self, para_id: int) -> Head | None:
        with self._read("para_included") as c:
            row = c.execute("SELECT i.hash, b.number FROM para_included i JOIN para_blocks b"
                            " ON b.para_id = i.para_id AND b.hash = i.hash WHERE i.para_id=?",
                            (para_id,)).fetchone()
        return None if row is None else Head(bytes(row[0]), int(row[1]))
