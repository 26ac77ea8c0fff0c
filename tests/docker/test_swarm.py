"""compose.swarm.yaml on a single-node swarm (the multi-machine path, on one machine): `docker
stack deploy` brings the network up over an overlay network with no start order and no shared
volume, para blocks are included, and `docker stack rm` plus `docker swarm leave --force` leave
nothing behind. The swarm is initialised only if this machine is not in one already, and left only
if this test initialised it; a file lock keeps two test runs on one machine from sharing it.

The stack publishes no port: the relay chain is read over JSON-RPC from inside ferdie's container
(`docker exec`), so parallel runs never compete for host ports."""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from docker_env import SLOT_MS, STARTUP_S, Relay, leftovers, run, unique_name

LOCK = Path("/tmp/asyncback-swarm-test.lock")
WINDOW = 15
# JSON-RPC from inside a container: the image has Python, not curl.
RPC_IN_CONTAINER = (
    "import json,sys,urllib.request as u;"
    "b=json.dumps({'jsonrpc':'2.0','id':1,'method':sys.argv[1],'params':json.loads(sys.argv[2])});"
    "r=u.urlopen(u.Request('http://127.0.0.1:9944/',b.encode(),"
    "{'Content-Type':'application/json'}),timeout=5);print(r.read().decode())"
)


@contextmanager
def single_node_swarm() -> Iterator[bool]:
    """A swarm to deploy on; yields whether this call initialised it."""
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
        had_gwbridge = run("docker", "network", "ls", "-q", "--filter",
                           "name=^docker_gwbridge$").stdout.strip() != ""
        initialised = state != "active"
        if initialised:
            run("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
        try:
            yield initialised
        finally:
            if initialised:
                run("docker", "swarm", "leave", "--force", check=False)
                if not had_gwbridge:  # swarm init made it; leaving does not remove it
                    run("docker", "network", "rm", "docker_gwbridge", check=False)


def ferdie_container(stack: str) -> str:
    deadline = time.monotonic() + STARTUP_S
    while True:
        out = run("docker", "ps", "-q", "--filter",
                  f"label=com.docker.swarm.service.name={stack}_ferdie").stdout.split()
        if out:
            return out[0]
        assert time.monotonic() < deadline, "ferdie's task never started"
        time.sleep(1)


def exec_rpc(container: str) -> Any:
    def call(method: str, params: list[Any] | None = None) -> Any:
        out = run("docker", "exec", container, "python3", "-c", RPC_IN_CONTAINER, method,
                  json.dumps(params or []), check=False, timeout=30)
        if out.returncode != 0:
            raise OSError(out.stderr.strip().splitlines()[-1] if out.stderr else "no answer")
        return json.loads(out.stdout)["result"]
    return call


def remove_stack(stack: str) -> None:
    label = f"com.docker.stack.namespace={stack}"
    run("docker", "stack", "rm", stack, check=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # stack rm returns before its tasks and network go
        left = leftovers(label)
        if not left["containers"] and not left["networks"]:
            break
        time.sleep(1)
    volumes = leftovers(label)["volumes"]  # stack rm keeps volumes: they are data
    if volumes:
        run("docker", "volume", "rm", *volumes, check=False)


def test_stack_deploy_on_a_single_node_swarm_includes_para_blocks_and_leaves_nothing(
        image: str) -> None:
    stack = unique_name("asyncbackstack")
    label = f"com.docker.stack.namespace={stack}"
    with single_node_swarm() as initialised:
        try:
            run("docker", "stack", "deploy", "-c", "compose.swarm.yaml", "--resolve-image",
                "never", stack, env={"ASYNCBACK_IMAGE": image, "SLOT_MS": str(SLOT_MS),
                                     "HEALTHCHECK_INTERVAL": "5s"})
            relay = Relay(exec_rpc(ferdie_container(stack)))
            deadline = time.monotonic() + STARTUP_S
            while True:  # until ferdie serves RPC and both paras have had a block included
                try:
                    best = relay.best()
                    included = relay.included_per_para(max(1, best - 5), best)
                    if all(included.get(p) for p in (2000, 2001)):
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "no para block included on the swarm"
                time.sleep(2)
            start = relay.best()
            relay.wait_for_block(start + WINDOW + 1)
            window = relay.included_per_para(start + 1, start + WINDOW)
            counts = {p: len(window.get(p, [])) for p in (2000, 2001)}
            print(f"\nswarm stack {stack}: window #{start + 1}-#{start + WINDOW}: {counts}")
            for pid in (2000, 2001):
                numbers = window.get(pid, [])
                assert len(numbers) >= 12, (pid, numbers)
                assert numbers == sorted(set(numbers))
        finally:
            remove_stack(stack)
    assert leftovers(label) == {"containers": [], "networks": [], "volumes": []}
    if initialised:
        state = run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
        assert state == "inactive", state
