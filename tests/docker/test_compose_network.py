"""The testnet of docker-compose.yml at 1 s slots, one project for every check (issue 11): up,
every service healthy; each para >= 14 included in a 15-block window, read from ferdie's
published RPC; `docker-compose stop bob`: finality goes on and both paras keep >= 12; a second
collator of para 2000 attached with its profile gets its own candidates backed within 5 relay
blocks; `docker-compose down -v` leaves no container, network or volume of the project.

The tests run in file order on one network (module-scoped), each stage after the last."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from docker_env import (
    SLOT_MS,
    ComposeProject,
    Relay,
    built_candidates,
    leftovers,
    rpc,
    unique_name,
)

NODES = ["alice", "bob", "charlie", "dave", "eve", "ferdie", "collator-2000-0", "collator-2001-0"]
PARAS = (2000, 2001)
WINDOW = 15
WARMUP = 5  # relay blocks after every service is healthy before a window starts


class Network:
    def __init__(self, project: ComposeProject) -> None:
        self.project = project
        self.relay = Relay(lambda m, p=None: rpc(project.ports["FERDIE_RPC_PORT"], m, p))

    def window_after(self, start: int) -> dict[int, list[int]]:
        """Included per para in relay blocks start+1 .. start+WINDOW, once they exist."""
        self.relay.wait_for_block(start + WINDOW + 1)
        return self.relay.included_per_para(start + 1, start + WINDOW)


@pytest.fixture(scope="module")
def testnet(image: str) -> Iterator[Network]:
    project = ComposeProject(unique_name("asyncbacktest"),
                             {"SLOT_MS": str(SLOT_MS), "HEALTHCHECK_INTERVAL": "5s"})
    try:
        started = time.monotonic()
        project.compose("up", "-d")
        project.wait_healthy(NODES)
        print(f"\nall {len(NODES)} services healthy {time.monotonic() - started:.0f} s after up")
        yield Network(project)
    finally:
        project.down()


def test_every_service_is_healthy_and_each_para_includes_14_per_window(testnet: Network) -> None:
    start = testnet.relay.best() + WARMUP
    included = testnet.window_after(start)
    print(f"\nwindow #{start + 1}-#{start + WINDOW}: "
          f"{ {p: len(included.get(p, [])) for p in PARAS} }")
    for pid in PARAS:
        numbers = included.get(pid, [])
        assert len(numbers) >= 14, (pid, numbers)
        assert numbers == sorted(set(numbers))
    assert testnet.relay.finalized() >= start + WINDOW - 3
    for node in NODES:
        assert testnet.project.health(node) == "healthy", node


def test_with_bob_stopped_the_chain_finalizes_and_each_para_keeps_12(testnet: Network) -> None:
    testnet.project.compose("stop", "bob")
    stopped_at = testnet.relay.best()
    finalized_before = testnet.relay.finalized()
    start = stopped_at + 1
    included = testnet.window_after(start)
    print(f"\nbob stopped at #{stopped_at}; window #{start + 1}-#{start + WINDOW}: "
          f"{ {p: len(included.get(p, [])) for p in PARAS} }")
    for pid in PARAS:
        assert len(included.get(pid, [])) >= 12, (pid, included.get(pid))
    finalized = testnet.relay.finalized()
    assert finalized > finalized_before and finalized >= start + WINDOW - 3, finalized


def test_an_attached_collator_gets_its_candidates_backed_within_5_relay_blocks(
        testnet: Network) -> None:
    project = testnet.project
    project.compose("--profile", "extra-collator", "up", "-d", "collator-2000-1")
    port = project.ports["COLLATOR_2000_1_RPC_PORT"]
    deadline = time.monotonic() + 120
    while True:  # its process is up and serving
        try:
            rpc(port, "system_health")
            break
        except OSError:
            assert time.monotonic() < deadline, "collator-2000-1 never answered RPC"
            time.sleep(0.2)
    attached_at = testnet.relay.best()
    testnet.relay.wait_for_block(attached_at + 6)
    built = built_candidates(project.compose("logs", "--no-color", "collator-2000-1").stdout)
    backed = [n for n, e in testnet.relay.events(attached_at + 1, attached_at + 6)
              if e["type"] == "CandidateBacked" and e["candidate_hash"] in built]
    print(f"\ncollator-2000-1 serving at #{attached_at}; its candidates backed at {backed}")
    assert backed and backed[0] <= attached_at + 5, (attached_at, backed, len(built))
    project.wait_healthy(["collator-2000-1"])


def test_no_node_crashed_and_down_leaves_no_container_network_or_volume(
        testnet: Network) -> None:
    # A crash would hide behind `restart: unless-stopped`: count the restarts.
    restarts = {n: testnet.project.restarts(n) for n in [*NODES, "collator-2000-1"]}
    assert set(restarts.values()) == {0}, restarts
    testnet.project.down()
    left = leftovers(f"com.docker.compose.project={testnet.project.name}")
    assert left == {"containers": [], "networks": [], "volumes": []}, left
