"""The description of a test network: which nodes run, in which role, for which paras, under
which host configuration. Everything that starts a network reads one (`Cluster`, `asyncback
testnet`, the zombienet network-file reader, the docker provider), so a network described once
runs the same way natively and in containers.

It is plain data: no ports, paths or processes (those belong to the launcher), and the chain spec
it implies is derived from it (`chain_spec()`), never written beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from node.chainspec import ChainSpec
from node.devnet import FIRST_PARA_ID, network_spec
from proto.keys import dev_name
from relay.core.config import ConfigError, HostConfiguration

ROLES = ("validator", "relay-node", "collator")
PROVIDERS = ("native", "docker")


@dataclass(frozen=True)
class NodeSpec:
    """One process of the network. `args` are extra `asyncback <role>` flags."""

    name: str
    role: str
    para_id: int | None = None  # collators
    args: tuple[str, ...] = ()
    tx_rate: float | None = None  # collators; None: a saturated pool
    blocks_per_relay_parent: int = 0  # collators; 0: one block per core

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"node {self.name}: role must be one of {', '.join(ROLES)}")
        if (self.role == "collator") != (self.para_id is not None):
            raise ConfigError(f"node {self.name}: a para id is for collators, and they need one")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ConfigError(f"node name {self.name!r} cannot name a directory")


@dataclass(frozen=True)
class ParaSpec:
    para_id: int
    cores: int = 1
    collators: tuple[NodeSpec, ...] = ()
    registered: bool = True  # in the relay genesis (zombienet's addToGenesis)


@dataclass(frozen=True)
class NetworkSpec:
    host: HostConfiguration = field(default_factory=HostConfiguration)
    validators: tuple[NodeSpec, ...] = ()
    full_nodes: tuple[NodeSpec, ...] = ()
    paras: tuple[ParaSpec, ...] = ()
    name: str = "asyncback-local"
    provider: str = "native"
    # Names that stand for several nodes (zombienet's node groups), for assertions that name
    # a group and must hold on each of its nodes.
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ConfigError(f"provider must be one of {', '.join(PROVIDERS)}, not "
                              f"{self.provider!r}")
        if not self.validators:
            raise ConfigError("a network needs at least one validator")
        names = [n.name for n in self.nodes()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"node name(s) used twice: {', '.join(twice)}")
        for para in self.paras:
            for c in para.collators:
                if c.para_id != para.para_id:
                    raise ConfigError(f"collator {c.name} is listed under para {para.para_id} "
                                      f"but collates for {c.para_id}")

    def nodes(self) -> list[NodeSpec]:
        """Every node, in start order: validators, full nodes, collators."""
        return [*self.validators, *self.full_nodes,
                *(c for para in self.paras for c in para.collators)]

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes():
            if n.name == name:
                return n
        raise KeyError(name)

    def chain_spec(self) -> ChainSpec:
        """The chain spec every node of this network starts from; `ConfigError` if the relay
        genesis refuses the configuration."""
        registered = [p for p in self.paras if p.registered]
        return network_spec(tuple(v.name for v in self.validators),
                            tuple((p.para_id, p.cores) for p in registered), self.host, self.name,
                            {p.para_id: [c.name for c in p.collators] for p in registered})

    def with_host(self, host: HostConfiguration) -> NetworkSpec:
        return replace(self, host=host)


def default_network(host: HostConfiguration | None = None, *, validators: int = 5,
                    paras: int = 2, collators_per_para: int = 1, cores_per_para: int = 1,
                    full_nodes: int = 1, tx_rate: float | None = None,
                    blocks_per_relay_parent: int = 0) -> NetworkSpec:
    """The default local testnet: validators alice, bob, charlie, dave, eve; relay full node
    ferdie; paras 2000, 2001, ... each with collators `collator-<para>-<k>`."""
    if validators < 1:
        raise ConfigError("a network needs at least one validator")
    vals = tuple(NodeSpec(dev_name(i), "validator") for i in range(validators))
    fulls = tuple(NodeSpec(dev_name(validators + i), "relay-node") for i in range(full_nodes))
    ps = tuple(
        ParaSpec(pid, cores_per_para, tuple(
            NodeSpec(f"collator-{pid}-{k}", "collator", pid, tx_rate=tx_rate,
                     blocks_per_relay_parent=blocks_per_relay_parent)
            for k in range(collators_per_para)))
        for pid in range(FIRST_PARA_ID, FIRST_PARA_ID + paras))
    return NetworkSpec(host or HostConfiguration(), vals, fulls, ps)
