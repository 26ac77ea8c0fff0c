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


@pytest.mark.parametrize("role", ["validator", "relay-node", "collator"])
def test_a_fresh_node_lists_what_it_has_not_observed(role: str) -> None:
    """What the e2e check (tests/e2e/test_operator_view.py) fails on: a node of each role that
    has done nothing lists its block heights and its role's activity as unobserved, and none of
    the fault counters (exported at 0, which is their healthy value)."""
    from node.metrics import MAY_STAY_ZERO, unobserved

    problems = unobserved(role, NodeMetrics(role, "n").exposition().decode())
    assert "substrate_block_height: not exported" in problems
    assert not [p for p in problems if p.split(":")[0] + "_total" in MAY_STAY_ZERO]
    expected = {"validator": "polkadot_parachain_collation_backing_latency: histogram never "
                             "observed",
                "relay-node": "asyncback_candidates_included: not exported",
                "collator": "asyncback_para_best_height: not exported"}[role]
    assert expected in problems


def test_each_role_exports_its_own_families() -> None:
    def names(role: str) -> set[str]:
        return {f.name for f in NodeMetrics(role, "n").registry.collect()}

    assert "polkadot_parachain_collations_generated" in names("collator") - names("validator")
    assert "polkadot_parachain_bitfields_signed" in names("validator") - names("relay-node")
    assert "polkadot_parachain_collation_inclusion_latency" in names("relay-node") \
        - names("collator")
