"""Integration tests against a network of asyncback processes, with the `cluster` fixture that
asyncback's pytest plugin gives any project that installs asyncback (no conftest needed).

    pytest examples/test_with_cluster.py

The marker describes the network with `asyncback sim`'s flags, or names a zombienet network
file. Waits and assertions count relay blocks, never seconds.
"""

import pytest


@pytest.mark.asyncback_network(validators=4, paras=1, slot_ms=1000)
def test_async_backing_includes_a_para_block_in_every_relay_block(cluster):
    cluster.wait_para_height(2000, 12)  # past the warm-up
    # With async backing a para block is included in (nearly) every relay block.
    counts = cluster.assert_para_throughput(10, {2000: range(9, 11)})
    assert counts[2000] >= 9
    assert cluster.assert_finality_lag(3) <= 3
    # Every node answers JSON-RPC and exports Substrate's metrics.
    validator = cluster.by_role("validator")[0]
    assert validator.metrics()["substrate_node_roles"] == 4
    assert validator.rpc("parachain_getParaHead", [2000])["number"] >= 12


@pytest.mark.asyncback_network("sync-backing.toml", slot_ms=1000)
def test_sync_backing_from_a_zombienet_file(cluster):
    cluster.wait_para_height(2000, 6)  # past the warm-up
    counts = cluster.assert_para_throughput(10, {2000: range(4, 7)})
    assert counts[2000] <= 6  # a para block every other relay block
