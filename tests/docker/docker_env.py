"""What the docker tests share: Docker itself (its absence fails a test, it never skips one), the
image built by `scripts/build-image`, a compose project with its own name and free host ports,
JSON-RPC to published ports, and the check that a project or stack left nothing behind.

Waits are counted in relay blocks read over RPC; the only timeouts are for containers coming up
and going away, and they fail a test only when a whole stage never happens."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from node.cluster import docker_provider
from node.cluster.compose import default_extras, docker_nodes
from node.cluster.handle import ClusterError
from node.cluster.ports import PortAllocator
from node.cluster.spec import default_network

ROOT = Path(__file__).resolve().parents[2]
# One tag per checkout: two checkouts testing at once do not run each other's code.
IMAGE = "asyncback:test-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
SLOT_MS = 1000
STARTUP_S = 240  # containers up and healthy; a network that never comes up fails here


def compose_command() -> list[str]:
    """The launcher's own choice (`docker-compose`, else the `docker compose` plugin); having
    neither fails the docker tests, it does not skip them."""
    try:
        return docker_provider.compose_command()
    except ClusterError as exc:
        pytest.fail(f"{exc}: the docker tests need one")


def require_docker() -> None:
    """Fail (never skip) when Docker or Compose is missing or the daemon is down."""
    if shutil.which("docker") is None:
        pytest.fail("docker is not installed: the docker tests need Docker Engine")
    compose_command()
    out = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"the Docker daemon does not answer: {out.stderr.strip()}")


def run(*args: str, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **(env or {})})
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out


def build_image() -> float:
    """`scripts/build-image IMAGE`; the seconds it took."""
    started = time.monotonic()
    run("./scripts/build-image", IMAGE, timeout=1200)
    return time.monotonic() - started


def unique_name(prefix: str) -> str:
    return f"{prefix}{os.getpid()}{uuid.uuid4().hex[:6]}"


def rpc(port: int, method: str, params: list[Any] | None = None, timeout: float = 5.0) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", body.encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        doc = json.loads(resp.read())
    if "error" in doc:
        raise AssertionError(f"{method}: {doc['error']}")
    return doc["result"]


class Relay:
    """A relay node's chain, read over JSON-RPC (`call` does one request)."""

    def __init__(self, call: Any, slot_ms: int = SLOT_MS) -> None:
        self.call = call
        self.slot_ms = slot_ms

    def best(self) -> int:
        return int(self.call("chain_getHeader")["number"], 16)

    def finalized(self) -> int:
        return int(self.call("chain_getHeader", [self.call("chain_getFinalizedHead")])["number"],
                   16)

    def wait_for_block(self, number: int, slack_slots: int = 30) -> None:
        """Until the best block reaches `number`; a chain that stops moving fails."""
        best = self.best()
        deadline = time.monotonic() + (number - best + slack_slots) * self.slot_ms / 1000
        while best < number:
            assert time.monotonic() < deadline, f"relay chain stuck at #{best}, wanted #{number}"
            time.sleep(self.slot_ms / 4000)
            best = self.best()

    def events(self, first: int, last: int) -> list[tuple[int, dict[str, Any]]]:
        out = []
        for n in range(first, last + 1):
            for e in self.call("parachain_events", [self.call("chain_getBlockHash", [n])]) or []:
                out.append((n, e))
        return out

    def included_per_para(self, first: int, last: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for _, e in self.events(first, last):
            if e["type"] == "CandidateIncluded":
                out.setdefault(e["para_id"], []).append(e["para_number"])
        return out


def built_candidates(log_text: str) -> set[str]:
    """Candidate hashes a collator logged as built ("collation built"), from its JSON lines
    (`docker-compose logs` prefixes each with the container name)."""
    out = set()
    for line in log_text.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            doc = json.loads(line[start:])
        except ValueError:
            continue
        if doc.get("event") == "collation built":
            out.add(doc["candidate"])
    return out


@dataclass
class ComposeProject:
    """`docker-compose -p NAME` over the repository's docker-compose.yml, each published port
    on a free host port, the image under test."""

    name: str
    settings: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    allocator: PortAllocator = field(default_factory=PortAllocator)

    def __post_init__(self) -> None:
        for node in docker_nodes(default_network(), default_extras()):
            for env, _, _ in node.ports():
                self.ports[env] = self.allocator.allocate()

    @property
    def env(self) -> dict[str, str]:
        return {"ASYNCBACK_IMAGE": IMAGE, **self.settings,
                **{k: str(v) for k, v in self.ports.items()}}

    def compose(self, *args: str, check: bool = True, timeout: float = 600
                ) -> subprocess.CompletedProcess[str]:
        return run(*compose_command(), "-p", self.name, *args, env=self.env, check=check,
                   timeout=timeout)

    def container(self, service: str) -> str:
        """The service's container id (v1 and v2 name containers differently; labels agree)."""
        out = run("docker", "ps", "-a", "-q", "--filter",
                  f"label=com.docker.compose.project={self.name}", "--filter",
                  f"label=com.docker.compose.service={service}")
        ids = out.stdout.split()
        return ids[0] if ids else "absent"

    def health(self, service: str) -> str:
        out = run("docker", "inspect", "--format", "{{.State.Health.Status}}",
                  self.container(service), check=False)
        return out.stdout.strip() or "absent"

    def wait_healthy(self, services: list[str]) -> None:
        deadline = time.monotonic() + STARTUP_S
        while True:
            status = {s: self.health(s) for s in services}
            if all(v == "healthy" for v in status.values()):
                return
            assert time.monotonic() < deadline, f"not healthy after {STARTUP_S} s: {status}"
            time.sleep(1)

    def restarts(self, service: str) -> int:
        out = run("docker", "inspect", "--format", "{{.RestartCount}}", self.container(service))
        return int(out.stdout.strip())

    def down(self) -> None:
        profiles = [a for e in default_extras() for a in ("--profile", e.profile)]
        self.compose(*profiles, "down", "-v", "--remove-orphans", "-t", "5", check=False)
        self.allocator.close()


def leftovers(label: str) -> dict[str, list[str]]:
    """Containers, networks and volumes that still carry `label` (key=value)."""
    out = {}
    for kind, args in (("containers", ["ps", "-a"]), ("networks", ["network", "ls"]),
                       ("volumes", ["volume", "ls"])):
        res = run("docker", *args, "--filter", f"label={label}", "--format", "{{.Names}}"
                  if kind == "containers" else "{{.Name}}")
        out[kind] = res.stdout.split()
    return out
