"""A corrupted block record over TCP with real processes (issue 14): a validator is killed, one
relay block below its stored finalized head is overwritten in its sqlite file with a block whose
body does not match its header (what the operator found: `BodyRootMismatch`), and it restarts
while the network goes on. It must say at warning level that it re-syncs the range from peers
(naming the store, table and key), reach the network's finalized block (same hash), and author
only on the network's chain: before the fix it skipped the record at info level, started at
finalized 0 and authored a fork, or exited on a signature refused below its pruning bound.

Relay chain only, five validators at 300 ms slots (finality needs four: it holds with one away).
Heights are relay blocks read over RPC; no wall-clock assertion."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from node.cluster import SyncCluster
from node.cluster.spec import NetworkSpec, NodeSpec
from proto.codec import decode, encode
from proto.keys import dev_name
from proto.relay_block import RelayBlock
from relay.core.config import HostConfiguration

SLOT_MS = 300
VALIDATORS = 5
BELOW_FINALIZED = 3  # the corrupted record is this far below the stored finalized head
DOWN_FOR = 20  # relay blocks the network makes while the validator is away
AFTER = 3 * VALIDATORS  # relay blocks after the return: its slot comes round a few times


def corrupt_below_finalized(store: Path, depth: int) -> tuple[int, str, int]:
    """Overwrite the record `depth` blocks below the stored finalized head with a body that does
    not match its header; returns (its number, its hash, the stored finalized number)."""
    with sqlite3.connect(store) as db:
        h, finalized = db.execute(
            "SELECT hash, number FROM relay_heads WHERE name='finalized'").fetchone()
        for _ in range(depth):
            (h,) = db.execute("SELECT parent_hash FROM relay_blocks WHERE hash=?", (h,)).fetchone()
        number, raw = db.execute("SELECT number, encoded FROM relay_blocks WHERE hash=?",
                                 (h,)).fetchone()
        block = decode(bytes(raw), RelayBlock)
        body = msgspec.structs.replace(block.body, parent_hash=bytes(32))
        db.execute("UPDATE relay_blocks SET encoded=? WHERE hash=?",
                   (encode(msgspec.structs.replace(block, body=body)), h))
    return int(number), "0x" + bytes(h).hex(), int(finalized)


def log_events(log: Path, offset: int) -> list[dict[str, Any]]:
    out = []
    with log.open("rb") as f:
        f.seek(offset)
        for line in f.read().decode(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
    return out


def test_a_corrupted_block_record_is_re_synced_never_forked(tmp_path: Path) -> None:
    names = [dev_name(i) for i in range(VALIDATORS)]
    spec = NetworkSpec(HostConfiguration(slot_ms=SLOT_MS),
                       tuple(NodeSpec(n, "validator") for n in names), name="corrupt-store")
    with SyncCluster(spec, tmp_path) as cluster:
        boot, victim = cluster[names[0]], cluster[names[1]]
        cluster.wait_finalized_height(20, victim)
        victim.kill()
        bad_number, bad_hash, stored_finalized = corrupt_below_finalized(
            victim.base_path / "node.sqlite", BELOW_FINALIZED)
        cluster.wait_relay_height(cluster.best_number(boot) + DOWN_FOR, boot)

        offset = victim.log_path.stat().st_size
        back_at = cluster.best_number(boot)
        victim.restart()
        cluster.wait_relay_height(back_at + AFTER, boot, slack_slots=60)
        cluster.wait_finalized_height(back_at + 1, victim, slack_slots=60)

        events = log_events(victim.log_path, offset)
        warnings = [e for e in events if e.get("level") == "warning"]
        [corrupted] = [e for e in warnings if e["event"] == "corrupted store record"]
        assert corrupted["store"] == str(victim.base_path / "node.sqlite")
        assert corrupted["table"] == "relay_blocks"
        assert corrupted["key"] == f"block #{bad_number} {bad_hash}"
        assert "BodyRootMismatch" in corrupted["error"], corrupted
        assert any(e["event"].startswith(f"re-syncing #{bad_number}..#") and
                   e["event"].endswith(f"from peers after corrupted record block #{bad_number} "
                                       f"{bad_hash}") for e in warnings), warnings
        assert any(e["event"].startswith(f"finalized head #{stored_finalized} re-synced")
                   for e in warnings), warnings
        print(f"\n{victim.name}: record #{bad_number} corrupted ({BELOW_FINALIZED} below its "
              f"finalized #{stored_finalized}), back at network height #{back_at}; re-synced, "
              f"finalized #{cluster.finalized_number(victim)} "
              f"(network #{cluster.finalized_number(boot)})")

        # The network's finalized block, same hash; and finality never went below what it had.
        head = victim.rpc("chain_getFinalizedHead")
        number = int(victim.rpc("chain_getHeader", [head])["number"], 16)
        assert number > back_at and boot.rpc("chain_getBlockHash", [number]) == head
        # Every block it authored since the restart is on the network's chain, or lost a race
        # at the head (slot within a round of the network's block at that height): none on a
        # chain of its own.
        authored = [e for e in events if e.get("event") == "block authored"]
        assert authored, "it authored nothing after re-syncing"
        for e in authored:
            network_hash = boot.rpc("chain_getBlockHash", [int(e["number"])])
            if network_hash != e["hash"]:
                network_slot = boot.rpc("chain_getHeader", [network_hash])["slot"]
                assert abs(network_slot - int(e["slot"])) <= VALIDATORS, (e, network_hash)
            assert int(e["number"]) > stored_finalized
        assert victim.rpc("system_health")["isSyncing"] is False
        assert cluster.crashed() == []
        cluster.assert_no_handler_errors()
        for node in cluster:
            text = node.log_path.read_text(errors="replace")
            assert "disagrees" not in text and "stored block skipped" not in text, node.name
