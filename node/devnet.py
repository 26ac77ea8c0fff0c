"""A development network's genesis: validators with keys derived from dev names, parachains
with their runtime genesis (velocity and capacity from their cores, the execution budget from the
slot), and the relay genesis that registers them. Shared by the ideal driver, the simulator and the
chain specs real processes start from (`asyncback genesis` writes one, `node/runner.py` reads it
back through `relay_genesis` and `para_setup`), so all of them start from the very same chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collator.core.collation import genesis_header
from collator.core.collator_chain import CollatorChain
from collator.core.para_chain import ParaChain
from collator.core.para_runtime import ParaHeader
from collator.core.pvf import genesis_state
from node.chainspec import ChainSpec, ValidatorEntry
from proto.keys import Keypair, dev_name
from proto.relay_block import RelayHeader
from relay.core import runtime as rt
from relay.core.config import ConfigError, HostConfiguration, ParaGenesis
from relay.core.state import RelayState

FIRST_PARA_ID = 2000


@dataclass(frozen=True)
class ParaSetup:
    para_id: int
    cores: tuple[int, ...]
    entries: dict[bytes, bytes]
    header: ParaHeader

    def new_chain(self) -> CollatorChain:
        """A collator's chain store, holding only the genesis block."""
        return CollatorChain(ParaChain(dict(self.entries), self.header), self.header.hash())


@dataclass(frozen=True)
class DevGenesis:
    keys: tuple[Keypair, ...]
    relay: tuple[RelayHeader, RelayState]
    paras: dict[int, ParaSetup]
    registered: tuple[ParaGenesis, ...]  # as the relay genesis (and a chain spec) lists them

    @property
    def host(self) -> HostConfiguration:
        return self.relay[1].config


def dev_genesis(validators: int, paras: int, cores_per_para: int, host: HostConfiguration,
                first_para_id: int = FIRST_PARA_ID) -> DevGenesis:
    """Raises `ConfigError` for a configuration the relay genesis refuses."""
    keys = tuple(Keypair.from_name(dev_name(i)) for i in range(validators))
    registered, setups = [], {}
    core = 0
    for k in range(paras):
        pid = first_para_id + k
        pg = ParaGenesis(pid, cores=cores_per_para)
        entries = genesis_state(pid, pg.effective_velocity(), pg.effective_capacity(host),
                                host.slot_ms, pg.effective_execution_ms(host))
        header = genesis_header(pid, entries)
        registered.append(ParaGenesis(pid, header.head_data(), cores=cores_per_para))
        setups[pid] = ParaSetup(pid, tuple(range(core, core + cores_per_para)), entries, header)
        core += cores_per_para
    relay = rt.genesis(rt.RelayGenesis(tuple(k.public for k in keys), tuple(registered), host))
    return DevGenesis(keys, relay, setups, tuple(registered))


def dev_spec(validators: int, paras: int, cores_per_para: int, host: HostConfiguration,
             name: str = "asyncback-local") -> ChainSpec:
    """A chain spec for a dev network: validators alice, bob, ... and paras from 2000."""
    return network_spec(tuple(dev_name(i) for i in range(validators)),
                        tuple((FIRST_PARA_ID + k, cores_per_para) for k in range(paras)),
                        host, name)


def network_spec(validator_names: Sequence[str], paras: Sequence[tuple[int, int]],
                 host: HostConfiguration, name: str = "asyncback-local",
                 collators: Mapping[int, Sequence[str]] | None = None) -> ChainSpec:
    """A chain spec for named validators (keys derive from the names) and `(para_id, cores)`
    pairs, cores assigned in the order the paras are listed; `collators` names each para's
    authoring collators (keys from the names too). `ConfigError` for a para id listed twice or
    a configuration the relay genesis refuses."""
    ids = [pid for pid, _ in paras]
    if len(set(ids)) != len(ids):
        raise ConfigError("a para id is listed twice")
    if len(set(validator_names)) != len(validator_names):
        raise ConfigError("a validator name is listed twice")
    registered = []
    for pid, cores in paras:
        pg = ParaGenesis(pid, cores=cores)
        entries = genesis_state(pid, pg.effective_velocity(), pg.effective_capacity(host),
                                host.slot_ms, pg.effective_execution_ms(host))
        registered.append(ParaGenesis(pid, genesis_header(pid, entries).head_data(), cores=cores))
    validators = tuple(ValidatorEntry(n, Keypair.from_name(n).public) for n in validator_names)
    authors = {pid: tuple(ValidatorEntry(n, Keypair.from_name(n).public) for n in names)
               for pid, names in (collators or {}).items() if names}
    spec = ChainSpec(name, "local", validators, tuple(registered), host, authors)
    relay_genesis(spec)  # the relay genesis checks the configuration against the paras
    return spec


def relay_genesis(spec: ChainSpec) -> tuple[RelayHeader, RelayState]:
    return rt.genesis(rt.RelayGenesis(tuple(v.public for v in spec.validators), spec.paras,
                                      spec.host))


def para_setup(spec: ChainSpec, para_id: int) -> ParaSetup:
    """A collator's genesis for `para_id`, checked against the head the chain spec registers;
    `ConfigError` if the para is not in the spec or its runtime would start elsewhere."""
    para = next((p for p in spec.paras if p.para_id == para_id), None)
    if para is None:
        raise ConfigError(f"para {para_id} is not in the chain spec (paras: "
                          f"{', '.join(str(p.para_id) for p in spec.paras) or 'none'})")
    host = spec.host
    entries = genesis_state(para_id, para.effective_velocity(), para.effective_capacity(host),
                            host.slot_ms, para.effective_execution_ms(host))
    header = genesis_header(para_id, entries)
    if header.head_data() != para.genesis_head:
        raise ConfigError(f"para {para_id}: the chain spec's genesis head is not this runtime's")
    first = sum(p.cores for p in spec.paras[: spec.paras.index(para)])
    return ParaSetup(para_id, tuple(range(first, first + para.cores)), entries, header)
