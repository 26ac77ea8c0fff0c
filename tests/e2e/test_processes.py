"""End to end with real processes on 127.0.0.1 (issue 4's must-shows), slot 1 s: 4 validators,
a relay node and a collator per para attached to it over JSON-RPC. Everything is counted in relay
blocks read from the relay node's RPC."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from cluster import NAMES, Cluster
from impostor import Impostor

from node.chainspec import load_spec
from node.net.tcp import HandshakeRefused, TcpHost
from proto.keys import Keypair
from proto.messages import FRAME_MAX

WARMUP, WINDOW = 10, 15


def start_network(tmp: Path, *genesis_args: str) -> Cluster:
    cluster = Cluster(tmp)
    cluster.genesis("--validators", "4", "--paras", "2", *genesis_args)
    boot = cluster.add(NAMES[0], "validator")
    for name in NAMES[1:4]:
        cluster.add(name, "validator", bootnode=boot)
    relay = cluster.add("relay", "relay-node", bootnode=boot)
    for pid in (2000, 2001):
        cluster.add(f"collator-{pid}", "collator", "--para-id", str(pid),
                    "--relay-chain-rpc-url", f"ws://127.0.0.1:{relay.rpc}", bootnode=relay)
    return cluster


@pytest.fixture
def async_net(tmp_path: Path) -> Iterator[Cluster]:
    cluster = start_network(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


def window(cluster: Cluster) -> dict[int, list[int]]:
    relay = cluster.nodes["relay"]
    cluster.wait_for_block(relay, WARMUP + WINDOW + 1)
    return cluster.included_per_para(relay, WARMUP + 1, WARMUP + WINDOW)


def test_async_backing_over_tcp_includes_at_least_14_per_window(async_net: Cluster) -> None:
    included = window(async_net)
    for pid in (2000, 2001):
        numbers = included.get(pid, [])
        assert len(numbers) >= 14, (pid, numbers)
        assert numbers == sorted(set(numbers))  # heads chain, none twice
    relay = async_net.nodes["relay"]
    assert async_net.finalized_number(relay) >= WARMUP + WINDOW - 3


def test_sync_backing_over_tcp_includes_7_to_8_per_window(tmp_path: Path) -> None:
    cluster = start_network(tmp_path, "--sync")
    try:
        included = window(cluster)
        for pid in (2000, 2001):
            assert 7 <= len(included.get(pid, [])) <= 8, (pid, included)
    finally:
        cluster.stop()


def test_killed_nodes_restart_from_disk_and_catch_up(async_net: Cluster) -> None:
    relay, bob = async_net.nodes["relay"], async_net.nodes["bob"]
    collator = async_net.nodes["collator-2000"]
    async_net.wait_for_block(relay, 8)
    bob.kill()
    collator.kill()
    async_net.wait_for_block(relay, 12)
    finalized_before = async_net.finalized_number(relay)
    bob.start()
    collator.start()
    restarted_at = async_net.best_number(relay)
    async_net.wait_for_block(relay, restarted_at + 8)
    # bob caught up and the chain kept finalizing
    async_net.wait_for_block(bob, async_net.best_number(relay) - 1)
    assert async_net.finalized_number(relay) > finalized_before
    # para 2000 resumed within 5 relay blocks of the restart, no number produced twice
    backed = [e for n in range(restarted_at + 1, restarted_at + 6)
              for e in relay.rpc_call("parachain_events", [relay.rpc_call("chain_getBlockHash", [n])])
              if e["type"] == "CandidateBacked" and e["para_id"] == 2000]
    assert backed, "para 2000 did not resume within 5 relay blocks"
    numbers = async_net.included_per_para(relay, 1, async_net.best_number(relay))[2000]
    assert numbers == sorted(set(numbers))


def test_hostile_bytes_on_a_validators_p2p_port_do_not_stop_the_chain(async_net: Cluster) -> None:
    relay, alice = async_net.nodes["relay"], async_net.nodes["alice"]
    async_net.wait_for_block(relay, 4)
    for payload in (b"\x00garbage\xff" * 100, struct.pack(">I", 2**31) + b"\x00" * 64):
        with socket.create_connection(("127.0.0.1", alice.p2p), timeout=5) as s:
            s.sendall(payload)
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass  # the node closes the connection
            except (TimeoutError, ConnectionResetError):
                pass
    refused = trio.run(impersonate, async_net, "bob", alice.p2p)
    assert isinstance(refused, HandshakeRefused), refused
    before = async_net.best_number(relay)
    async_net.wait_for_block(relay, before + 3)
    assert alice.alive()


async def impersonate(cluster: Cluster, victim: str, port: int) -> BaseException | None:
    genesis_id = load_spec(cluster.spec).genesis_id()
    host = TcpHost(Impostor(Keypair.from_name(victim), Keypair.from_name("mallory")), genesis_id,
                   FRAME_MAX)
    try:
        await host.dial_address("127.0.0.1", port)
    except HandshakeRefused as exc:
        return exc
    return None


@pytest.mark.parametrize("problem", ["unknown key", "port in use", "missing file"])
def test_bad_configuration_exits_nonzero_with_one_line(tmp_path: Path, problem: str) -> None:
    import subprocess

    from cluster import ASYNCBACK, ROOT

    cluster = Cluster(tmp_path)
    cluster.genesis("--validators", "4", "--paras", "1")
    spec = cluster.spec
    port_args: list[str] = []
    blocker = socket.socket()
    try:
        if problem == "unknown key":
            text = spec.read_text().replace('"name"', '"nmae"', 1)
            spec.write_text(text)
            expected = "nmae"
        elif problem == "port in use":
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            port_args = ["--port", str(blocker.getsockname()[1])]
            expected = "in use"
        else:
            spec = tmp_path / "absent.json"
            expected = "does not exist"
        out = subprocess.run([*ASYNCBACK, "validator", "--chain", str(spec), "--name", "alice",
                              "--base-path", str(tmp_path / "d"), "--rpc-port", "0",
                              "--prometheus-port", "0", *port_args],
                             cwd=ROOT, capture_output=True, timeout=60)
    finally:
        blocker.close()
    err = out.stderr.decode().strip().splitlines()
    assert out.returncode != 0
    assert len(err) == 1 and expected in err[0], err
