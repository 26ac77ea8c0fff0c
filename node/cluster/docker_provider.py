"""The docker provider: a `Cluster`'s nodes as the containers of one compose project, so the
waits, the `.zndsl` runner and `asyncback testnet` run unchanged over containers.

Starting. The network's compose file is `compose.compose_file` with the chain spec the cluster
wrote bind-mounted read-only (no `genesis` service: any `NetworkSpec` runs, whatever its node
names), written to `run_dir/docker-compose.yml` under a project name of its own
(`asyncback-<random>`); every node's RPC and Prometheus ports are published on 127.0.0.1 at
free host ports (from a `PortAllocator`, written into the file), p2p stays inside the compose
network. Every service starts at once (`docker-compose up -d --no-deps`; a collator retries its
relay node's RPC until it answers) and entering returns once each node answers RPC. The generated
file has no healthcheck, dependency or restart policy: a container that exits is a crash the
cluster sees (a restart policy would hide it), and no `asyncback health` runs every few seconds
in every container.

While it runs. A task of the trio run polls `docker inspect` (each node's container state: a
node is alive while its container runs or is paused, crashed when it exited and the harness did
not stop it) and copies each container's log into `run_dir/<name>.log` (`docker logs`: the node's
JSON lines as they are, with no prefix; whole, so the copy always starts with the first line).
`kill`, `pause`/`resume`, `stop` and `restart` are `docker-compose kill -s SIG`, `pause`/`unpause`,
`stop` and `start` of the node's service: the container, its volume and its ports stay, so a
restarted node comes back on the same chain and URLs.

Stopping, whatever happened before (a failed start, an exception, Ctrl-C): the logs are copied
a last time, `docker-compose down -v` removes the containers, network and volumes, and a sweep
removes whatever still carries the project's label. A launcher killed outright (SIGKILL) leaves
its project running: `docker-compose -p PROJECT -f run_dir/docker-compose.yml down -v` (both
in `network.json`) removes it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from node.cluster.compose import P2P, PROMETHEUS, RPC, compose_file, docker_nodes, to_yaml
from node.cluster.handle import ClusterError, NodeBase, NodeFailed
from node.cluster.http import NodeUnreachable
from node.cluster.ports import PortAllocator
from node.cluster.provider import Cluster
from node.cluster.spec import NodeSpec
from node.rpc.errors import RpcError
from relay.core.config import ConfigError

DEFAULT_IMAGE = "asyncback:dev"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
WATCH_S = 1.0  # container states polled this often
LOGS_EVERY = 2  # logs copied every this many polls
POLL_S = 0.25
COMMAND_TIMEOUT_S = 300.0
ALIVE = ("running", "paused", "restarting")


def compose_command() -> list[str]:
    """`docker-compose` (1.29 on these machines), else the `docker compose` plugin (v2)."""
    if shutil.which("docker-compose") is not None:
        return ["docker-compose"]
    if shutil.which("docker") is not None and subprocess.run(
            ["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    raise ClusterError("the docker provider needs docker-compose or the docker compose plugin")


@dataclass
class ContainerHandle(NodeBase):
    """A node run as the container of its compose service."""

    # `ports`: rpc and prometheus on this machine; p2p stays inside the compose network.
    provider: DockerProvider
    container: str = ""  # its id, once created
    status: str = "created"  # docker's State.Status, as last seen
    exit_code: int = 0

    @property
    def service(self) -> str:
        return self.spec.name

    @property
    def launched(self) -> bool:
        return bool(self.container)

    @property
    def alive(self) -> bool:
        return self.launched and self.status in ALIVE

    @property
    def returncode(self) -> int | None:
        return None if not self.container or self.alive else self.exit_code

    @property
    def bootnode(self) -> str:
        return f"0x{self.identity.hex()}@{self.service}:{P2P}"

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "container": self.container, "service": self.service,
                "status": self.status,
                "volume": f"{self.provider.project}_{self.service}-data"}

    # -- faults: the service's container, through docker-compose ---------------------------------

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """`docker-compose kill -s SIG`; the node counts as stopped by the harness."""
        self.stopped_by_harness = True
        if self.paused:
            self.resume()
        self.provider.compose_now("kill", "-s", signal.Signals(sig).name, self.service)
        self.provider.inspect_now()

    def pause(self) -> None:
        """`docker-compose pause`: the container's processes frozen, its slots missed."""
        if self.alive:
            self.provider.compose_now("pause", self.service)
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.provider.compose_now("unpause", self.service)
            self.paused = False

    async def restart(self, startup_timeout_s: float = 60.0) -> None:
        """`docker-compose stop`, then `start`: the same container, volume and ports."""
        await self.stop()
        await self.provider.start_services([self], startup_timeout_s, "start")

    async def stop(self, timeout_s: float = 10.0) -> None:
        self.stopped_by_harness = True
        if not self.container:
            return
        if self.paused:
            self.resume()
        await self.provider.compose("stop", "-t", str(int(timeout_s)), self.service)
        await self.provider.inspect()


class DockerProvider:
    kind = "docker"

    def __init__(self, ports: PortAllocator | None = None, image: str | None = None) -> None:
        self.ports = ports or PortAllocator("127.0.0.1")
        self.image = image or os.environ.get("ASYNCBACK_IMAGE") or DEFAULT_IMAGE
        self.project = f"asyncback-{uuid.uuid4().hex[:10]}"
        self.compose_path: Path | None = None
        self.handles: dict[str, ContainerHandle] = {}
        self._copies = 0  # log copies so far: each gets a temporary file of its own
        self._env = {**os.environ, "ASYNCBACK_IMAGE": self.image}
        self._epoch = 0  # bumped by every action: a poll begun before one is stale
        self._watch: trio.CancelScope | None = None
        self._stopping = False

    # -- running docker ---------------------------------------------------------------------------

    def _argv(self, args: Sequence[str]) -> list[str]:
        assert self.compose_path is not None
        return [*compose_command(), "-p", self.project, "-f", str(self.compose_path), *args]

    async def compose(self, *args: str, check: bool = True) -> str:
        """Run `docker-compose -p PROJECT -f FILE ARGS`; its stdout. In a session of its own, so
        a Ctrl-C meant for the launcher does not stop it halfway."""
        self._epoch += 1
        return await self._run(self._argv(args), check)

    def compose_now(self, *args: str) -> None:
        """The same, blocking (for the handles' synchronous faults)."""
        self._epoch += 1
        out = subprocess.run(self._argv(args), capture_output=True, text=True,
                             env=self._env, start_new_session=True, timeout=COMMAND_TIMEOUT_S)
        if out.returncode != 0:
            raise ClusterError(f"docker-compose {' '.join(args)}: {out.stderr.strip()[-500:]}")

    async def _run(self, argv: list[str], check: bool = True) -> str:
        with trio.move_on_after(COMMAND_TIMEOUT_S):
            out = await trio.run_process(argv, capture_stdout=True, capture_stderr=True,
                                         check=False, env=self._env, start_new_session=True)
            if check and out.returncode != 0:
                raise ClusterError(f"{' '.join(argv[:2])} ... {' '.join(argv[-3:])} exited "
                                   f"{out.returncode}: {out.stderr.decode(errors='replace')[-800:]}")
            return str(out.stdout.decode(errors="replace"))
        raise ClusterError(f"{' '.join(argv)} did not return within {COMMAND_TIMEOUT_S:.0f} s")

    async def inspect(self) -> None:
        """Every node's container id and state, in two docker calls."""
        epoch = self._epoch
        listed = await self._run(["docker", "ps", "-a", "--filter",
                                  f"label={PROJECT_LABEL}={self.project}", "--format",
                                  f'{{{{.ID}}}} {{{{.Label "{SERVICE_LABEL}"}}}}'])
        ids: dict[str, str] = {}  # service -> short container id
        for line in listed.splitlines():
            if len(line.split()) == 2:
                short, service = line.split()
                ids[service] = short
        states: dict[str, tuple[str, int, str]] = {}
        if ids:
            out = await self._run(["docker", "inspect", "--format",
                                   "{{.Id}} {{.State.Status}} {{.State.ExitCode}}",
                                   *ids.values()], check=False)
            for line in out.splitlines():
                cid, status, code = line.split()
                states[cid[:12]] = (status, int(code), cid)
        if epoch != self._epoch:
            return  # an action ran meanwhile: the next poll sees its effect
        self._apply(ids, states)

    def inspect_now(self) -> None:
        """`inspect`, blocking (after a synchronous fault)."""
        listed = subprocess.run(["docker", "ps", "-a", "--filter",
                                 f"label={PROJECT_LABEL}={self.project}", "--format",
                                 f'{{{{.ID}}}} {{{{.Label "{SERVICE_LABEL}"}}}} {{{{.State}}}}'],
                                capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        for line in listed.stdout.splitlines():
            cid, service, status = line.split()
            handle = self.handles.get(service)
            if handle is not None:
                handle.container, handle.status = handle.container or cid, status

    def _apply(self, ids: dict[str, str], states: dict[str, tuple[str, int, str]]) -> None:
        for service, short in ids.items():
            handle = self.handles.get(service)
            if handle is None or short[:12] not in states:
                continue
            status, code, full = states[short[:12]]
            handle.container, handle.status, handle.exit_code = full, status, code
            handle.paused = status == "paused"

    async def copy_logs(self) -> None:
        """Each container's log, whole, into its node's log file (replaced atomically)."""
        for handle in list(self.handles.values()):
            if not handle.container:
                continue
            # One temporary file per copy: the periodic copy and the teardown's may overlap.
            self._copies += 1
            tmp = handle.log_path.with_suffix(f".log.{self._copies}.tmp")
            with tmp.open("wb") as out:
                done = await trio.run_process(["docker", "logs", handle.container], stdout=out,
                                              stderr=subprocess.STDOUT, check=False)
            if done.returncode == 0:
                tmp.replace(handle.log_path)
            else:
                tmp.unlink(missing_ok=True)

    async def _watch_containers(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._watch = scope
            polls = 0
            while not self._stopping:
                await trio.sleep(WATCH_S)
                polls += 1
                try:
                    await self.inspect()
                    if polls % LOGS_EVERY == 0:
                        await self.copy_logs()
                except Exception:  # docker busy for a moment, or a log gone: the next poll
                    continue

    # -- the provider -----------------------------------------------------------------------------

    async def start(self, cluster: Cluster) -> None:
        spec = cluster.spec
        try:
            await self._run(["docker", "image", "inspect", "--format", "{{.Id}}", self.image])
        except ClusterError:
            raise ClusterError(f"no image {self.image} here: build it with scripts/build-image "
                               "(or name another in ASYNCBACK_IMAGE)") from None
        self.compose_path = cluster.run_dir / "docker-compose.yml"
        try:
            doc = compose_file(spec, chain_spec=cluster.chain_spec_path)
        except ConfigError as exc:
            raise ClusterError(f"the network as a compose file: {exc}") from None
        for d in docker_nodes(spec):
            self._handle(cluster, d.spec)
        driver = (await self._run(["docker", "info", "--format", "{{.CgroupDriver}}"],
                                  check=False)).strip()
        self._publish(doc, own_cgroups=driver == "cgroupfs")
        self.compose_path.write_text(to_yaml(doc) + "\n")
        trio.lowlevel.spawn_system_task(self._watch_containers)
        # All at once: a collator retries its relay node's RPC until it answers, and a second
        # round would cost a docker-compose run (seconds) of relay blocks without collators.
        await self.start_services(list(self.handles.values()), cluster.startup_timeout_s, "up")
        await self.copy_logs()  # each log holds at least "node started" from the start on

    def _handle(self, cluster: Cluster, spec: NodeSpec) -> ContainerHandle:
        handle = ContainerHandle(spec, "127.0.0.1",
                                 {"p2p": P2P, "rpc": self.ports.allocate(),
                                  "prometheus": self.ports.allocate()},
                                 cluster.run_dir / f"{spec.name}.log", self)
        self.handles[spec.name] = handle
        cluster.nodes[spec.name] = handle
        return handle

    def _publish(self, doc: dict[str, Any], own_cgroups: bool) -> None:
        """Each node's RPC and Prometheus on its own host port; nothing restarts a container;
        the launcher, not healthchecks, orders the start.

        `own_cgroups` (Docker's cgroupfs driver): each container in a CPU group of its own
        under the root one. By default that driver puts every container under one `/docker`
        group, which competes for the CPU as one process would: on a busy machine the whole
        network then gets one process's share where native nodes get one each, and slots are
        missed (measured: 2-12 para blocks per 15-block window at load 14 on 2 cores, against
        15 natively). Under the root group a node competes as the process it is."""
        for name, svc in doc["services"].items():
            if own_cgroups:
                svc["cgroup_parent"] = "/"
            handle = self.handles[name]
            svc["ports"] = [f"127.0.0.1:{handle.ports['rpc']}:{RPC}",
                            f"127.0.0.1:{handle.ports['prometheus']}:{PROMETHEUS}"]
            svc["restart"] = "no"
            svc.pop("healthcheck", None)
            svc.pop("depends_on", None)

    async def start_services(self, handles: list[ContainerHandle], timeout_s: float,
                             verb: str) -> None:
        """`up -d --no-deps` (first start) or `start` (restart) the handles' services; returns
        once each node answers RPC. `NodeFailed` for a container that exits or a node that does
        not answer within `timeout_s`."""
        services = [h.service for h in handles]
        for h in handles:
            h.starting()
        try:
            await self.compose(*(("up", "-d", "--no-deps") if verb == "up" else ("start",)),
                               *services)
        except ClusterError as exc:
            raise ClusterError(f"starting {', '.join(services)}: {exc}") from None
        await self.inspect()
        waiting = list(handles)
        with trio.move_on_after(timeout_s):
            while waiting:
                for h in list(waiting):
                    if h.crashed:
                        await self.copy_logs()
                        raise NodeFailed(h.name, f"its container exited with status "
                                                 f"{h.exit_code} before it started",
                                         h.log_path)
                    try:
                        if await h.rpc("system_name", timeout_s=2.0) == h.name:
                            waiting.remove(h)
                    except (NodeUnreachable, RpcError, OSError, ValueError):
                        pass
                if waiting:
                    await trio.sleep(POLL_S)
                    await self.inspect()
            return
        await self.copy_logs()
        late = waiting[0]
        raise NodeFailed(late.name, f"did not answer RPC within {timeout_s:.0f} s "
                                    f"(container {late.status})", late.log_path)

    async def add_collator(self, cluster: Cluster, spec: NodeSpec) -> NodeBase:
        raise ClusterError("the docker provider starts the nodes its network file lists; add "
                           "collators to the NetworkSpec (or run `docker-compose --profile` "
                           "over the repository's docker-compose.yml)")

    @trio.lowlevel.enable_ki_protection
    async def stop(self, cluster: Cluster) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        try:
            if self.compose_path is not None and self.compose_path.exists():
                try:
                    await self.inspect()
                    await self.copy_logs()
                finally:
                    for h in self.handles.values():
                        h.stopped_by_harness = True
                    await self.compose("down", "-v", "--remove-orphans", "-t",
                                       str(int(cluster.stop_timeout_s)), check=False)
                    for h in self.handles.values():
                        h.status = "removed"
        finally:
            await self.sweep()
            self.ports.close()

    async def sweep(self) -> None:
        """Remove whatever still carries the project's label: containers, networks, volumes."""
        label = f"label={PROJECT_LABEL}={self.project}"
        for listing, removing in ((["ps", "-a", "-q"], ["rm", "-f", "-v"]),
                                  (["network", "ls", "-q"], ["network", "rm"]),
                                  (["volume", "ls", "-q"], ["volume", "rm", "-f"])):
            left = (await self._run(["docker", *listing, "--filter", label],
                                    check=False)).split()
            if left:
                await self._run(["docker", *removing, *left], check=False)

    def network_json(self) -> dict[str, Any]:
        return {"provider": self.kind, "launcher_pid": os.getpid(), "project": self.project,
                "compose_file": str(self.compose_path) if self.compose_path else None,
                "image": self.image}


def leftovers(project: str) -> dict[str, list[str]]:
    """What still carries the project's label (for tests and a manual check)."""
    out = {}
    for kind, args in (("containers", ["ps", "-a"]), ("networks", ["network", "ls"]),
                       ("volumes", ["volume", "ls"])):
        res = subprocess.run(["docker", *args, "-q", "--filter",
                              f"label={PROJECT_LABEL}={project}"],
                             capture_output=True, text=True, check=True)
        out[kind] = res.stdout.split()
    return out

