"""Zombienet network files (TOML), as polkadot-sdk's functional tests write them, read unchanged
into a `NetworkSpec`.

A file is first rendered as a template, as zombienet renders it with Nunjucks: Jinja2 reads the
subset such files use (`{{VAR}}` from the environment, an unset one rendering empty;
`{% if not CI_JOB_ID %}…{% endif %}`; `{% for id in range(2000,2003) %}`; arithmetic such as
`{{10000*(id-1999)}}`; the `zombie` filter, whose placeholders only ever land in ignored keys).
Then it is TOML, checked key by key against zombienet's own key set (`keys.py`): a key it does
not define is an error naming its full path; keys that only mean something to other binaries
or providers are accepted and listed once.

What the file sets:
- `[[relaychain.nodes]]`: validators (`validator`, default true) and relay full nodes
  (`validator = false`); `[[relaychain.node_groups]]` (`name`, `count`): validators
  `name-0`, `name-1`, … and a group `name` for assertions. Names get zombienet's treatment:
  whitespace becomes `-`, a name used twice becomes `name-1`, `name-2`, … (and `name` then
  also names the group of them all).
- the host configuration under `relaychain.genesis.runtimeGenesis.patch.configuration.config`
  (see `host_config.py`);
- `[[parachains]]`: `id`; `add_to_genesis`/`addToGenesis` (default true; `register_para`,
  default true, registers a para zombienet would register by extrinsic right after start,
  which asyncback does at genesis; both false leaves it unregistered); `num_cores`
  (zombienet-sdk: cores assigned to the para); collators from `[parachains.collator]`,
  `[[parachains.collators]]` and `[[parachains.collator_groups]]` (`count`);
- a relay node or node group whose `command` starts with `malus MODE` (polkadot-sdk's malus
  binary, as `0004-parachains-garbage-candidate` uses it) runs asyncback validators with
  `--malus MODE` (modes: relay/service/backing.py); any other `command` is ignored;
- `[settings]`: `timeout` (seconds a node may take to start), `provider` (`native`, or `docker`/
  `podman` for asyncback's docker provider; zombienet's default `kubernetes` runs natively).

asyncback's own settings, one table:

    [asyncback]
    slot_ms = 6000              # relay slot; the file's times are read as written for it
    execution_ms = 2000         # para block budget and backing timeout (default: a third
                                #   of the slot, a twelfth when allowed_ancestry_len is 0)
    cores_per_para = 1          # cores for every para that sets none
    tx_rate = 100.0             # transactions/s per collator (default: a saturated pool)
    blocks_per_relay_parent = 0 # cap per collator and relay parent (0: one per core)
    [asyncback.cores]           # cores per para, as a test's core assignment gives them
    2000 = 3

Elastic scaling: polkadot-sdk's tests raise `num_cores` and hand the extra cores to a para from a
js-script at run time, which cannot be read from the file; the cores a para gets here come from
`[asyncback.cores]`, else the para's `num_cores`, else `cores_per_para`, else 1. Cores beyond
what the paras claim stay out (asyncback has no unassigned cores) and are noted.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from node.cluster.spec import NetworkSpec, NodeSpec, ParaSpec
from node.zombienet import read_named_file
from node.zombienet.host_config import HostConfigKeyError, find_config, host_overrides, outside
from node.zombienet.keys import ShapeError, UnknownKeyError, check_keys
from relay.core.config import ConfigError, HostConfiguration

POLKADOT_SLOT_MS = 6000
PROVIDERS = {"native": "native", "docker": "docker", "podman": "docker", "kubernetes": "native"}


class NetworkFileError(ConfigError):
    """A network file that cannot be read; one line naming the file and the key."""


class Invalid(ValueError):
    """A value the file gives that asyncback cannot use; the message names its key."""


@dataclass(frozen=True)
class NetworkFile:
    spec: NetworkSpec
    ignored: tuple[str, ...] = ()  # keys accepted and ignored, `[]` for any array position
    notes: tuple[str, ...] = ()  # where asyncback runs the file differently from zombienet
    timeout_s: float | None = None  # settings.timeout, as written
    written_slot_ms: int = POLKADOT_SLOT_MS  # the slot the file's times are written for

    @property
    def time_scale(self) -> float:
        """Factor for every duration written for this file: below 1 when run at shorter
        slots than it was written for (`asyncback test --slot-ms`)."""
        return self.spec.host.slot_ms / self.written_slot_ms

    def notice(self) -> str | None:
        """The one-line list of ignored keys, if any."""
        if not self.ignored:
            return None
        return "ignored (other binaries' or providers' settings): " + ", ".join(self.ignored)


def load_network(path: str | Path, env: Mapping[str, str] = os.environ) -> NetworkSpec:
    """The network a zombienet TOML file describes; `NetworkFileError` (one line) otherwise."""
    return read_network(path, env).spec


def read_network(path: str | Path, env: Mapping[str, str] = os.environ, *,
                 slot_ms: int | None = None) -> NetworkFile:
    """Read, render and map a network file. `slot_ms` runs it at another relay slot than it
    was written for: durations in it (and an explicit `execution_ms`) scale by the ratio."""
    path = Path(path)
    text = read_named_file(path, "network file", NetworkFileError)
    doc = parse_toml(render(text, env, path), path)
    try:
        ignored = check_keys(doc)
        return _Reader(doc, slot_ms).network(tuple(ignored))
    except UnknownKeyError as exc:
        raise NetworkFileError(f"{path}: unknown key {exc}") from None
    except (Invalid, ShapeError, HostConfigKeyError, ConfigError) as exc:
        raise NetworkFileError(f"{path}: {exc}") from None


def render(text: str, env: Mapping[str, str], path: Path) -> str:
    """The file rendered as zombienet renders it (Nunjucks there, Jinja2 here)."""
    environment = jinja2.Environment(keep_trailing_newline=True, autoescape=False)
    # zombienet replaces these placeholders with a node's address once it runs; asyncback
    # never reads the keys they appear in (args).
    environment.filters["zombie"] = lambda name, key: f"{{{{ZOMBIE:{name}:{key}}}}}"
    try:
        return environment.from_string(text).render(dict(env))
    except jinja2.TemplateSyntaxError as exc:
        raise NetworkFileError(f"{path}:{exc.lineno}: template: {exc.message}") from None
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise NetworkFileError(f"{path}: template: {exc}") from None


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NetworkFileError(f"{path}: not TOML once rendered: {exc}") from None


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # zombienet's `count` may be a string
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise Invalid(f"{where} must be an integer of at least {minimum}, got {value!r}")
    return value


def _flag(table: Mapping[str, Any], names: tuple[str, ...], default: bool, where: str) -> bool:
    """A boolean under any of its names; polkadot-sdk's files also write `"true"`."""
    for name in names:
        if name in table:
            value = table[name]
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise Invalid(f"{where}.{name} must be true or false, got {value!r}")
            return value
    return default


def _name(table: Mapping[str, Any], where: str, default: str | None = None) -> str:
    value = table.get("name", default)
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{where}.name is required (a non-empty string)")
    return "-".join(value.split())


@dataclass
class _Names:
    """zombienet's naming: a name used again becomes `name-1`, `name-2`, …; the bare name
    then names the group of them all."""

    used: dict[str, int] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)

    def unique(self, name: str, group: str | None = None) -> str:
        count = self.used.get(name, 0)
        self.used[name] = count + 1
        unique = name if count == 0 else f"{name}-{count}"
        self.groups.setdefault(group or name, []).append(unique)
        return unique

    def node_groups(self, explicit: set[str]) -> dict[str, tuple[str, ...]]:
        return {g: tuple(members) for g, members in self.groups.items()
                if g in explicit or len(members) > 1}


class _Reader:
    def __init__(self, doc: Mapping[str, Any], slot_ms: int | None) -> None:
        self.doc = doc
        self.own: Mapping[str, Any] = doc.get("asyncback", {})
        self.written_slot = _int(self.own.get("slot_ms", POLKADOT_SLOT_MS), "asyncback.slot_ms",
                                 10)
        self.slot = slot_ms if slot_ms is not None else self.written_slot
        self.names = _Names()
        self.explicit_groups: set[str] = set()
        self.notes: list[str] = []
        self.ignored: list[str] = []  # keys inside `genesis`, which the key walk lets through
        self.used: set[str] = set()  # keys the walk calls ignored that this file uses (malus)

    def network(self, ignored: tuple[str, ...]) -> NetworkFile:
        relay = self.doc.get("relaychain", {})
        validators, full_nodes = self.relay_nodes(relay)
        paras = self.parachains()
        host = self.host(relay, paras)
        settings = self.doc.get("settings", {})
        provider = self.provider(settings)
        timeout = settings.get("timeout")
        if timeout is not None and (not isinstance(timeout, int | float)
                                    or isinstance(timeout, bool) or timeout <= 0):
            raise Invalid(f"settings.timeout must be a positive number, got {timeout!r}")
        chain = relay.get("chain", "rococo-local")
        if not isinstance(chain, str) or not chain:
            raise Invalid("relaychain.chain must be a non-empty string")
        spec = NetworkSpec(host, tuple(validators), tuple(full_nodes), tuple(paras),
                           name=chain, provider=provider,
                           groups=self.names.node_groups(self.explicit_groups))
        spec.chain_spec()  # the relay genesis refuses what it cannot run, here, in one line
        ignored = tuple(sorted({*ignored, *self.ignored} - self.used))
        return NetworkFile(spec, ignored, tuple(self.notes),
                           float(timeout) if timeout is not None else None, self.written_slot)

    def provider(self, settings: Mapping[str, Any]) -> str:
        name = settings.get("provider", "native")
        if name not in PROVIDERS:
            raise Invalid(f"settings.provider must be one of {', '.join(PROVIDERS)}, "
                          f"got {name!r}")
        if name == "kubernetes":
            self.notes.append("settings.provider = kubernetes: runs natively (asyncback's "
                              "providers are native and docker)")
        return PROVIDERS[name]

    def relay_nodes(self, relay: Mapping[str, Any]) -> tuple[list[NodeSpec], list[NodeSpec]]:
        validators: list[NodeSpec] = []
        full_nodes: list[NodeSpec] = []
        for i, node in enumerate(relay.get("nodes", [])):
            where = f"relaychain.nodes[{i}]"
            name = self.names.unique(_name(node, where))
            is_validator = _flag(node, ("validator", "is_validator"), True, where)
            (validators if is_validator else full_nodes).append(
                NodeSpec(name, "validator" if is_validator else "relay-node",
                         args=self.malus(node, where, is_validator)))
        for i, group in enumerate(relay.get("node_groups", [])):
            where = f"relaychain.node_groups[{i}]"
            base = _name(group, where)
            self.explicit_groups.add(base)
            is_validator = _flag(group, ("validator", "is_validator"), True, where)
            args = self.malus(group, where, is_validator)
            for k in range(_int(group.get("count"), f"{where}.count")):
                name = self.names.unique(f"{base}-{k}", group=base)
                (validators if is_validator else full_nodes).append(
                    NodeSpec(name, "validator" if is_validator else "relay-node", args=args))
        return validators, full_nodes

    def malus(self, node: Mapping[str, Any], where: str, is_validator: bool) -> tuple[str, ...]:
        """`command = "malus MODE ..."`: the validator flags that run MODE."""
        from relay.service.malus import MALUS_MODES

        command = node.get("command")
        words = command.split() if isinstance(command, str) else []
        if not words or words[0] != "malus":
            return ()
        mode = words[1] if len(words) > 1 else ""
        if mode not in MALUS_MODES:
            raise Invalid(f"{where}.command: malus mode {mode or '(none)'!r} is not one "
                          f"asyncback has ({', '.join(MALUS_MODES)})")
        if not is_validator:
            raise Invalid(f"{where}.command: a malus node must be a validator")
        self.used.add(re.sub(r"\[\d+\]", "[]", where) + ".command")
        return ("--malus", mode)

    def parachains(self) -> list[ParaSpec]:
        paras = []
        seen: set[int] = set()
        for i, para in enumerate(self.doc.get("parachains", [])):
            where = f"parachains[{i}]"
            if "id" not in para:
                raise Invalid(f"{where}.id is required")
            para_id = _int(para["id"], f"{where}.id")
            if para_id in seen:
                raise Invalid(f"{where}.id: para {para_id} is listed twice")
            seen.add(para_id)
            paras.append(ParaSpec(para_id, self.cores(para, para_id, where),
                                  tuple(self.collators(para, para_id, where)),
                                  self.registered(para, para_id, where)))
        unknown = sorted(set(map(str, self.own_cores())) - {str(p) for p in seen})
        if unknown:
            raise Invalid(f"asyncback.cores names para(s) the file does not define: "
                          f"{', '.join(unknown)}")
        return paras

    def registered(self, para: Mapping[str, Any], para_id: int, where: str) -> bool:
        in_genesis = _flag(para, ("add_to_genesis", "addToGenesis"), True, where)
        by_extrinsic = _flag(para, ("register_para", "registerPara"), True, where)
        if not in_genesis and by_extrinsic:
            self.notes.append(f"para {para_id}: registered at genesis (zombienet registers it "
                              f"by extrinsic after start; asyncback has none)")
        return in_genesis or by_extrinsic

    def own_cores(self) -> dict[int, int]:
        table = self.own.get("cores", {})
        if not isinstance(table, Mapping):
            raise Invalid("asyncback.cores must be a table of para id = cores")
        out = {}
        for key, value in table.items():
            if not str(key).isdigit():
                raise Invalid(f"asyncback.cores.{key}: keys are para ids")
            out[int(key)] = _int(value, f"asyncback.cores.{key}", 1)
        return out

    def cores(self, para: Mapping[str, Any], para_id: int, where: str) -> int:
        own = self.own_cores()
        if para_id in own:
            return own[para_id]
        if "num_cores" in para:
            return _int(para["num_cores"], f"{where}.num_cores", 1)
        return _int(self.own.get("cores_per_para", 1), "asyncback.cores_per_para", 1)

    def collators(self, para: Mapping[str, Any], para_id: int, where: str) -> list[NodeSpec]:
        tx_rate = self.own.get("tx_rate")
        if tx_rate is not None and (not isinstance(tx_rate, int | float)
                                    or isinstance(tx_rate, bool) or tx_rate < 0):
            raise Invalid(f"asyncback.tx_rate must be a non-negative number, got {tx_rate!r}")
        per_rp = _int(self.own.get("blocks_per_relay_parent", 0),
                      "asyncback.blocks_per_relay_parent")

        def collator(name: str, table: Mapping[str, Any], at: str) -> NodeSpec:
            if not _flag(table, ("validator", "is_validator"), True, at):
                self.notes.append(f"{at} ({name}): validator = false, a parachain full node; "
                                  f"it runs as a collator (asyncback has no para full nodes)")
            return NodeSpec(name, "collator", para_id,
                            tx_rate=float(tx_rate) if tx_rate is not None else None,
                            blocks_per_relay_parent=per_rp)

        out = []
        singles = [(f"{where}.collator", para["collator"])] if "collator" in para else []
        if "collator" in para and not isinstance(para["collator"], Mapping):
            raise Invalid(f"{where}.collator must be a table")
        singles += [(f"{where}.collators[{k}]", c) for k, c in enumerate(para.get("collators", []))]
        for at, table in singles:
            out.append(collator(self.names.unique(_name(table, at, "collator")), table, at))
        for k, group in enumerate(para.get("collator_groups", [])):
            at = f"{where}.collator_groups[{k}]"
            base = _name(group, at)
            self.explicit_groups.add(base)
            for n in range(_int(group.get("count"), f"{at}.count")):
                out.append(collator(self.names.unique(f"{base}-{n}", group=base), group, at))
        return out

    def host(self, relay: Mapping[str, Any], paras: list[ParaSpec]) -> HostConfiguration:
        values: dict[str, int] = {}
        cfg_path = "relaychain.genesis"
        genesis = relay.get("genesis", {})
        if not isinstance(genesis, Mapping):
            raise Invalid("relaychain.genesis must be a table")
        found = find_config(genesis, "relaychain.genesis")
        if found is not None:
            cfg_path, config = found
            values, ignored, misplaced = host_overrides(config, cfg_path)
            self.ignored.extend(ignored)
            self.notes.extend(f"{where}: polkadot reads no such field there and neither does "
                              f"asyncback" for where in misplaced)
        self.ignored.extend(outside(genesis, "relaychain.genesis", cfg_path))
        host = HostConfiguration(slot_ms=self.slot).replace(**values)
        if "execution_ms" in self.own:
            budget = _int(self.own["execution_ms"], "asyncback.execution_ms", 1)
            host = host.replace(
                backing_execution_timeout_ms=max(1, budget * self.slot // self.written_slot))
        claimed = sum(p.cores for p in paras if p.registered)
        if host.num_cores and host.num_cores != claimed:
            if host.num_cores < claimed:
                raise Invalid(f"{cfg_path}.num_cores is {host.num_cores} but the paras claim "
                              f"{claimed} cores")
            self.notes.append(f"num_cores {host.num_cores}: the paras claim {claimed}; the "
                              f"other cores are left out (give a para more with "
                              f"[asyncback.cores])")
            host = host.replace(num_cores=0)
        return host
