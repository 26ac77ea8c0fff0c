"""Compose and Swarm files for a `NetworkSpec`: the docker side of the network description.

`compose_file` gives what `docker-compose up` runs on one machine: a one-shot `genesis` service
writes the chain spec into a shared volume, every node is a service on one named network with a
named volume, `asyncback health` is each service's healthcheck, and each node's ports are
published on 127.0.0.1 at host ports taken from environment variables with defaults (so two
networks on one machine can run side by side). Extra nodes behind a compose profile (another
collator of a running para, the collator of a para registered at genesis with none) join a running
network with `docker-compose --profile NAME up -d`.

`swarm_file` gives what `docker stack deploy` runs over an overlay network on any number of
machines. Swarm has no start order and no volume shared between machines, so every container
makes the chain spec itself before it starts (`asyncback genesis` is deterministic: the same
parameters give the same bytes everywhere), each para's collators are one replicated service
(`docker service scale`), and each validator's placement is a constraint from the environment.

The files at the repository root are `write_files(default_network(...))` (tests keep them in sync).
The chain spec comes from `asyncback genesis` flags, so the network's validators must be the dev
names in order (alice, bob, ...), its paras 2000, 2001, ... with the same cores each, and its host
configuration one the genesis flags can express; anything else is a `ConfigError`.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.cluster.spec import NetworkSpec, NodeSpec, default_network
from node.devnet import FIRST_PARA_ID
from proto.keys import dev_name
from relay.core.config import ConfigError, HostConfiguration, default_execution_ms

IMAGE = "${ASYNCBACK_IMAGE:-asyncback:dev}"
NETWORK = "asyncback"
P2P, RPC, PROMETHEUS = 30333, 9944, 9615  # inside every container
SPEC_DIR = "/spec"
DATA_DIR = "/data"
HEALTH_TEST = ["CMD", "asyncback", "health"]
HEALTH: dict[str, Any] = {"test": HEALTH_TEST, "interval": "${HEALTHCHECK_INTERVAL:-10s}",
                          "timeout": "10s", "retries": 3, "start_period": "120s"}
# Swarm lists a task in its service's DNS only once it is healthy, so there a node without peers
# yet must count as healthy (or none would ever find another).
SWARM_HEALTH = {**HEALTH, "test": [*HEALTH_TEST, "--ignore-peers"]}
SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Extra:
    """A node outside the default `up`, started with `docker-compose --profile PROFILE up -d`."""

    profile: str
    node: NodeSpec
    summary: str


@dataclass(frozen=True)
class Parameter:
    """An environment variable the files read, with its default and what it sets."""

    name: str
    default: str
    help: str

    def ref(self) -> str:
        return f"${{{self.name}:-{self.default}}}"


# -- the chain spec: `asyncback genesis` flags for a network ---------------------------------

def _derived_depth(cores: int) -> int:
    return max(3, 2 * cores)  # node.cli.make_host's default


def genesis_parameters(net: NetworkSpec) -> list[Parameter]:
    """The `asyncback genesis` settings as environment variables; `ConfigError` when the network
    is not one `asyncback genesis --validators N --paras N ...` makes."""
    from node.cli.common import make_host

    names = [v.name for v in net.validators]
    if names != [dev_name(i) for i in range(len(names))]:
        raise ConfigError("the docker files make the chain spec with `asyncback genesis`, whose "
                          f"validators are the dev names in order ({dev_name(0)}, {dev_name(1)}, "
                          f"...), not {', '.join(names)}")
    registered = [p for p in net.paras if p.registered]
    if [p.para_id for p in registered] != list(range(FIRST_PARA_ID,
                                                     FIRST_PARA_ID + len(registered))):
        raise ConfigError(f"the docker files register paras {FIRST_PARA_ID}, "
                          f"{FIRST_PARA_ID + 1}, ... in order, not "
                          f"{', '.join(str(p.para_id) for p in registered)}")
    cores = {p.cores for p in registered} or {1}
    if len(cores) != 1:
        raise ConfigError("the docker files give every para the same number of cores")
    core_count = cores.pop()
    host = net.host
    sync = host.max_candidate_depth == 0 and host.allowed_ancestry_len == 0
    depth = None if sync or host.max_candidate_depth == _derived_depth(core_count) \
        else host.max_candidate_depth
    lookahead = None if host.lookahead == max(1, host.allowed_ancestry_len + 1) else host.lookahead
    execution = None if host.execution_timeout_ms == default_execution_ms(host) \
        else host.execution_timeout_ms
    rebuilt = make_host(depth, host.allowed_ancestry_len, lookahead, host.slot_ms, execution,
                        cores_per_para=core_count, sync=sync)
    if _normalised(rebuilt) != _normalised(host):
        differ = [k for k, v in _normalised(host).to_mapping().items()
                  if _normalised(rebuilt).to_mapping()[k] != v]
        raise ConfigError("asyncback genesis has no flag for the host configuration's "
                          f"{', '.join(differ)}")
    params = [
        Parameter("SLOT_MS", str(host.slot_ms), "relay-chain slot in milliseconds (Aura)"),
        Parameter("MAX_CANDIDATE_DEPTH", "" if depth is None else str(depth),
                  "unincluded candidates per para (empty: 3, or 2 x cores)"),
        Parameter("ALLOWED_ANCESTRY_LEN", str(host.allowed_ancestry_len),
                  "how old a relay parent may be, in relay blocks"),
        Parameter("CORES_PER_PARA", str(core_count), "cores each para holds (elastic scaling)"),
        Parameter("SYNC", "true" if sync else "false",
                  "sync backing: depth 0 and ancestry 0 whatever the two above say"),
        Parameter("PARAS", str(len(registered)),
                  f"paras registered at genesis, ids from {FIRST_PARA_ID}"),
    ]
    if lookahead is not None:
        params.append(Parameter("LOOKAHEAD", str(lookahead), "claim queue length"))
    if execution is not None:
        params.append(Parameter("EXECUTION_MS", str(execution), "para block execution budget"))
    return params


def _normalised(host: HostConfiguration) -> HostConfiguration:
    return host.replace(backing_execution_timeout_ms=host.execution_timeout_ms)


def _genesis_env(net: NetworkSpec) -> dict[str, str]:
    env = {"ASYNCBACK_GENESIS_VALIDATORS": str(len(net.validators))}
    for p in genesis_parameters(net):
        env[f"ASYNCBACK_GENESIS_{p.name}"] = p.ref()
    if net.name != "asyncback-local":
        env["ASYNCBACK_GENESIS_NAME"] = net.name
    return env


# -- nodes -----------------------------------------------------------------------------------

def _env_name(node: str, what: str) -> str:
    return f"{re.sub(r'[^A-Z0-9]', '_', node.upper())}_{what}_PORT"


@dataclass(frozen=True)
class DockerNode:
    """One node as a service: its command and its published ports (env name, default)."""

    spec: NodeSpec
    index: int  # position among all nodes, for default host ports
    rpc_index: int  # position among the nodes whose RPC is published (all but validators)
    relay_node: str  # collators: the full node whose RPC they attach to
    bootnodes: tuple[str, ...]
    para_bootnodes: tuple[str, ...] = ()  # collators: the other collators of the para

    @property
    def name(self) -> str:
        return self.spec.name

    def args(self, chain: str, name: str | None = None, public_host: str | None = None
             ) -> list[str]:
        n = self.spec
        args = [n.role, "--chain", chain, "--name", name or n.name, "--base-path", DATA_DIR,
                "--listen-host", "0.0.0.0", "--public-host", public_host or n.name,
                "--port", str(P2P), "--rpc-port", str(RPC), "--prometheus-port", str(PROMETHEUS)]
        if self.bootnodes:
            args += ["--bootnodes", ",".join(self.bootnodes)]
        if n.role == "collator":
            args += ["--para-id", str(n.para_id),
                     "--relay-chain-rpc-url", f"ws://{self.relay_node}:{RPC}"]
            if n.tx_rate is not None:
                args += ["--tx-rate", str(n.tx_rate)]
            if n.blocks_per_relay_parent:
                args += ["--blocks-per-relay-parent", str(n.blocks_per_relay_parent)]
            if self.para_bootnodes:
                args += ["--para-bootnodes", ",".join(self.para_bootnodes)]
        return [*args, *n.args]

    def ports(self) -> list[tuple[str, int, int]]:
        """(environment variable, default host port, container port)."""
        out = [(_env_name(self.name, "P2P"), P2P + self.index, P2P)]
        if self.spec.role != "validator":
            out.append((_env_name(self.name, "RPC"), RPC + self.rpc_index, RPC))
        out.append((_env_name(self.name, "PROMETHEUS"), PROMETHEUS + self.index, PROMETHEUS))
        return out


def docker_nodes(net: NetworkSpec, extras: Sequence[Extra] = ()) -> list[DockerNode]:
    relay_nodes = [n.name for n in net.full_nodes or net.validators]
    out: list[DockerNode] = []
    collators = [c for p in net.paras for c in p.collators] + [e.node for e in extras]
    for i, node in enumerate([*net.validators, *net.full_nodes, *collators]):
        if not SERVICE_NAME.match(node.name):
            raise ConfigError(f"node name {node.name!r} is not a compose service name "
                              "(lower-case letters, digits, '-' and '_')")
        if node.role == "collator":
            # Spread collators over the full nodes (validators when there are none).
            k = sum(1 for d in out if d.spec.role == "collator")
            relay = relay_nodes[k % len(relay_nodes)]
            boots: tuple[str, ...] = (f"{relay}:{P2P}",)
        else:
            relay = ""
            boots = tuple(f"{b}:{P2P}" for b in
                          [b for b in [net.validators[0].name,
                                       (net.full_nodes or net.validators)[0].name,
                                       *(v.name for v in net.validators[1:2])]
                           if b != node.name][:2])
            boots = tuple(dict.fromkeys(boots))
        rpc_index = sum(1 for d in out if d.spec.role != "validator")
        # The other collators of its para that run whenever it runs (an extra node started
        # later finds the others; they learn it from its first block).
        extra_names = {e.node.name for e in extras}
        para = tuple(f"{c.name}:{P2P}" for c in collators
                     if c.para_id == node.para_id and c.name != node.name
                     and (c.name not in extra_names or node.name in extra_names)) \
            if node.role == "collator" else ()
        out.append(DockerNode(node, i, rpc_index, relay, boots, para))
    return out


# -- docker-compose.yml ----------------------------------------------------------------------

GENESIS_SCRIPT = (
    "asyncback genesis --out /tmp/spec.json"
    f" && if [ -e {SPEC_DIR}/spec.json ] && ! cmp -s /tmp/spec.json {SPEC_DIR}/spec.json;"
    " then echo 'error: the volumes hold a chain made with other parameters"
    " (docker-compose down -v removes it)' >&2; exit 1; fi"
    f" && cp /tmp/spec.json {SPEC_DIR}/spec.json"
)


def compose_file(net: NetworkSpec, extras: Sequence[Extra] = (),
                 chain_spec: Path | None = None) -> dict[str, Any]:
    """With `chain_spec` (a file on this machine), every node mounts it read-only instead of a
    `genesis` service making one: any network whose chain spec `NetworkSpec.chain_spec()` makes
    runs, not only those `asyncback genesis` flags express (the docker provider's case)."""
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    spec_mount = f"{chain_spec}:{SPEC_DIR}/spec.json:ro"
    if chain_spec is None:
        services["genesis"] = {
            "image": IMAGE,
            "entrypoint": ["sh", "-c", Folded(GENESIS_SCRIPT)],
            "environment": _genesis_env(net),
            "volumes": [f"spec:{SPEC_DIR}"],
            "network_mode": "none",
        }
        volumes["spec"] = None
        spec_mount = f"spec:{SPEC_DIR}:ro"
    profiles = {e.node.name: e.profile for e in extras}
    for d in docker_nodes(net, extras):
        svc: dict[str, Any] = {"image": IMAGE}
        if d.name in profiles:
            svc["profiles"] = [profiles[d.name]]
        svc["command"] = Folded(" ".join(d.args(f"{SPEC_DIR}/spec.json")))
        svc["volumes"] = [f"{d.name}-data:{DATA_DIR}", spec_mount]
        svc["networks"] = [NETWORK]
        svc["ports"] = [f"127.0.0.1:${{{env}:-{default}}}:{inside}"
                        for env, default, inside in d.ports()]
        svc["healthcheck"] = dict(HEALTH)
        depends: dict[str, Any] = {} if chain_spec is not None else \
            {"genesis": {"condition": "service_completed_successfully"}}
        if d.spec.role == "collator":
            depends[d.relay_node] = {"condition": "service_healthy"}
        if depends:
            svc["depends_on"] = depends
        svc["restart"] = "unless-stopped"
        services[d.name] = svc
        volumes[f"{d.name}-data"] = None
    return {"services": services, "networks": {NETWORK: None}, "volumes": volumes}


# -- compose.swarm.yaml ----------------------------------------------------------------------

def _swarm_command(net: NetworkSpec, args: list[str]) -> list[str]:
    """Make the chain spec in the container, then become the node."""
    # Double quotes: `$NODE_NAME` and `$(hostname -i)` (written `$$` for compose) expand.
    quoted = " ".join(a if re.match(r"^[\w./:,=@-]+$", a) else f'"{a}"' for a in args)
    return ["sh", "-c",
            Folded(f"asyncback genesis --out /tmp/spec.json && exec asyncback {quoted}")]


def swarm_file(net: NetworkSpec) -> dict[str, Any]:
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    genesis_env = _genesis_env(net)
    nodes = docker_nodes(net)
    for d in nodes:
        if d.spec.role == "collator":
            continue
        services[d.name] = {
            "image": IMAGE,
            "entrypoint": _swarm_command(net, d.args("/tmp/spec.json")),
            "environment": genesis_env,
            "volumes": [f"{d.name}-data:{DATA_DIR}"],
            "networks": [NETWORK],
            "healthcheck": dict(SWARM_HEALTH),
            "deploy": {
                "endpoint_mode": "dnsrr",
                "placement": {"constraints": [
                    f"${{{_placement_env(d.name)}:-node.platform.os == linux}}"]},
                "restart_policy": {"condition": "any", "delay": "5s"},
            },
        }
        volumes[f"{d.name}-data"] = None
    # One replicated service per para: `docker service scale STACK_collator-2000=3`. Each
    # replica names itself by its task slot (its dev key derives from that name) and announces
    # its own address (the service name resolves to every replica).
    by_para: dict[int, list[DockerNode]] = {}
    for d in nodes:
        if d.spec.role == "collator":
            by_para.setdefault(d.spec.para_id or 0, []).append(d)
    for pid, ds in by_para.items():
        service = f"collator-{pid}"
        # The service name resolves to every replica: each finds the others through it.
        one = DockerNode(ds[0].spec, ds[0].index, ds[0].rpc_index, ds[0].relay_node,
                         ds[0].bootnodes, (f"{service}:{P2P}",))
        args = one.args("/tmp/spec.json", name="$$NODE_NAME", public_host="$$(hostname -i)")
        args[args.index("--base-path") + 1] = f"{DATA_DIR}/$$NODE_NAME"
        services[service] = {
            "image": IMAGE,
            "entrypoint": _swarm_command(net, args),
            "environment": {**genesis_env, "NODE_NAME": f"collator-{pid}-{{{{.Task.Slot}}}}"},
            "volumes": [f"{service}-data:{DATA_DIR}"],
            "networks": [NETWORK],
            "healthcheck": dict(SWARM_HEALTH),
            "deploy": {
                "endpoint_mode": "dnsrr",
                "replicas": len(ds),
                "restart_policy": {"condition": "any", "delay": "5s"},
            },
        }
        volumes[f"{service}-data"] = None
    return {"services": services,
            "networks": {NETWORK: {"driver": "overlay", "attachable": True}},
            "volumes": volumes}


def _placement_env(name: str) -> str:
    return f"{re.sub(r'[^A-Z0-9]', '_', name.upper())}_PLACEMENT"


# -- .env.example ----------------------------------------------------------------------------

def env_example(net: NetworkSpec, extras: Sequence[Extra] = ()) -> str:
    lines = [
        "# Settings of docker-compose.yml (docker-compose reads a file named .env beside it;",
        "# `docker stack deploy` reads none: export them in the shell). Every line shows the",
        "# default; uncomment to change.",
        "",
        "# ASYNCBACK_IMAGE=asyncback:dev        # image to run (scripts/build-image makes it)",
        "# HEALTHCHECK_INTERVAL=10s             # how often `asyncback health` runs",
        "",
        "# Chain spec (made once by the genesis service; change them only with `down -v`):",
    ]
    for p in genesis_parameters(net):
        lines.append(f"# {p.name}={p.default}".ljust(38) + f" # {p.help}")
    lines += ["", "# Host ports, all on 127.0.0.1 (the container ports are always "
              f"{P2P} p2p, {RPC} RPC, {PROMETHEUS} Prometheus):"]
    for d in docker_nodes(net, extras):
        lines += [f"# {env}={default}" for env, default, _ in d.ports()]
    lines += ["", "# docker stack deploy: where each validator and relay node runs (a Swarm "
              "placement constraint),", "# e.g. ALICE_PLACEMENT=node.hostname==machine-1"]
    lines += [f"# {_placement_env(d.name)}=node.platform.os == linux"
              for d in docker_nodes(net) if d.spec.role != "collator"]
    return "\n".join(lines) + "\n"


# -- YAML ------------------------------------------------------------------------------------

class Folded(str):
    """A long string written as a folded block (`>-`): lines joined by single spaces."""


_PLAIN = re.compile(r"^[A-Za-z0-9_./@-][A-Za-z0-9_./:@-]*$")
_NOT_PLAIN = re.compile(r"^(true|false|yes|no|on|off|null|~|[-+.]?\d[\d_.eE+-]*)$", re.I)
WIDTH = 96


def _scalar(value: Any, flow: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and not _NOT_PLAIN.match(text) and not text.endswith(":") \
            and not (flow and ":" in text):
        return text
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _folded(text: str, indent: int) -> list[str]:
    pad, lines, line = " " * indent, [], ""
    for word in text.split(" "):
        if line and len(pad) + len(line) + 1 + len(word) > WIDTH:
            lines.append(pad + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, pad + line]


def _flow(items: list[Any]) -> str | None:
    """`[a, b]` for a short list of plain scalars; None when it needs block style."""
    if any(isinstance(i, (dict, list, Folded)) for i in items):
        return None
    return "[" + ", ".join(_scalar(i, flow=True) for i in items) + "]"


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and scalars (what compose files need, nothing more)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            head = f"{pad}{_scalar(key)}:"
            if isinstance(item, Folded):
                lines += [f"{head} >-", *_folded(item, indent + 2)]
            elif isinstance(item, list) and item:
                flow = _flow(item)
                if flow is not None and len(head) + 1 + len(flow) <= WIDTH:
                    lines.append(f"{head} {flow}")
                else:
                    lines += [head, to_yaml(item, indent + 2)]
            elif isinstance(item, dict) and item:
                lines += [head, to_yaml(item, indent + 2)]
            elif isinstance(item, (dict, list)):
                lines.append(f"{head} {'{}' if isinstance(item, dict) else '[]'}")
            else:
                text = _scalar(item)
                lines.append(f"{head} {text}" if text else head)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Folded):
                lines += [f"{pad}- >-", *_folded(item, indent + 2)]
            elif isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}- {to_yaml(item, indent + 2).lstrip()}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
    return "\n".join(lines)


# -- the files at the repository root --------------------------------------------------------

HEADER = """\
# Generated by `python -m node.cluster.compose` from the default network in
# node/cluster/spec.py; edit the generator, not this file (a test checks they agree).
"""


def default_extras() -> list[Extra]:
    return [
        Extra("extra-collator", NodeSpec("collator-2000-1", "collator", 2000),
              "a second collator for para 2000"),
        Extra("new-para", NodeSpec("collator-2002-0", "collator", 2002),
              "the collator of para 2002 (start the network with PARAS=3)"),
    ]


def root_files(net: NetworkSpec | None = None) -> dict[str, str]:
    """File name → text, as committed at the repository root."""
    net = net or default_network()
    extras = default_extras()
    usage = "".join(f"#   docker-compose --profile {e.profile} up -d   # {e.summary}\n"
                    for e in extras)
    return {
        "docker-compose.yml": HEADER + "#\n#   docker-compose up -d      # the testnet; settings: "
                              ".env.example\n" + usage + "#   docker-compose down -v    "
                              "# stop it and remove its volumes\n"
                              + to_yaml(compose_file(net, extras)) + "\n",
        "compose.swarm.yaml": HEADER + "#\n#   docker stack deploy -c compose.swarm.yaml "
                              "--resolve-image never asyncback\n"
                              + to_yaml(swarm_file(net)) + "\n",
        ".env.example": env_example(net, extras),
    }


def main(argv: Sequence[str] = ()) -> None:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[2]
    for name, text in root_files().items():
        (out / name).write_text(text)
        print(out / name)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
