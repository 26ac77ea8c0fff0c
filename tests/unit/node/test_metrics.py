"""The metrics zombienet-style tests read, under polkadot's names: roles as Substrate's role
bits, the block heights, peers, sync state and start time."""

from __future__ import annotations

import pytest

from node.metrics import NodeMetrics
from node.zombienet.runner import parse_series


def series(m: NodeMetrics) -> dict[str, float]:
    out = {}
    for line in m.exposition().decode().splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            name, labels = parse_series(key)
            out[name + "".join(f"{{{k}={v}}}" for k, v in sorted(labels.items()))] = float(value)
    return out


@pytest.mark.parametrize(("role", "bits"), [("validator", 4), ("collator", 4), ("relay-node", 1)])
def test_roles_follow_substrate(role: str, bits: int) -> None:
    assert series(NodeMetrics(role, "n"))["substrate_node_roles"] == bits


def test_what_zombienet_tests_read_is_exported() -> None:
    m = NodeMetrics("validator", "alice", start_time=1.7e9)
    m.block_height.labels("best").set(12)
    m.block_height.labels("finalized").set(10)
    m.major_syncing.set(0)
    s = series(m)
    assert s["substrate_block_height{status=best}"] == 12
    assert s["substrate_block_height{status=finalized}"] == 10
    assert s["substrate_sub_libp2p_is_major_syncing"] == 0
    assert s["substrate_sub_libp2p_peers_count"] == 0
    assert s["process_start_time_seconds"] == 1.7e9
