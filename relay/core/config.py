"""Host configuration and genesis parameters: flat, validated, unknown keys are an error.

Sync backing is not a mode: it is `max_candidate_depth = 0, allowed_ancestry_len = 0`
(with `lookahead = 1`), and everything else follows from those numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the offending key."""


@dataclass(frozen=True)
class HostConfiguration:
    max_candidate_depth: int = 3
    allowed_ancestry_len: int = 2
    lookahead: int = 3
    num_cores: int = 0  # 0: one core per claimed para slot in the genesis assignment
    group_rotation_frequency: int = 10
    paras_availability_period: int = 3
    minimum_backing_votes: int = 2
    max_validators_per_core: int = 0  # 0: no cap
    max_pov_size: int = 5 * 1024 * 1024
    max_head_data_size: int = 20 * 1024
    max_code_size: int = 3 * 1024 * 1024
    max_upward_queue_count: int = 8
    max_upward_queue_size: int = 1024 * 1024
    max_upward_message_size: int = 64 * 1024
    max_upward_message_num_per_candidate: int = 16
    hrmp_max_message_num_per_candidate: int = 10
    validation_upgrade_cooldown: int = 20
    validation_upgrade_delay: int = 10
    slot_ms: int = 6000
    session_length: int = 0  # relay blocks per session; 0: a single session
    # The PVF backing timeout; also the para blocks' execution budget. 0: `default_execution_ms`.
    backing_execution_timeout_ms: int = 0
    # Approval checking and disputes (relay/core/approval, relay/core/disputes). The defaults are
    # the ones polkadot-sdk's local test chain specs (rococo-local, westend-local) carry, made for
    # networks of a handful of validators; production relay chains raise `needed_approvals` (30
    # on Polkadot) and the tranche counts with the validator set.
    needed_approvals: int = 2  # approvals from assigned checkers before a candidate is approved
    relay_vrf_modulo_samples: int = 2  # RelayVRFModulo draws per validator: its tranche-0 cores
    n_delay_tranches: int = 25  # RelayVRFDelay spreads checkers over this many tranches (ticks)
    zeroth_delay_tranche_width: int = 0  # extra delay outcomes folded into tranche 0
    no_show_slots: int = 2  # an assigned checker silent this many slots is a no-show
    dispute_period: int = 6  # sessions after which a candidate can no longer be disputed
    dispute_post_conclusion_acceptance_period: int = 100  # blocks a concluded dispute takes votes

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{f.name} must be a non-negative integer, got {v!r}")
        if self.lookahead < 1:
            raise ConfigError("lookahead must be at least 1")
        if self.minimum_backing_votes < 1:
            raise ConfigError("minimum_backing_votes must be at least 1")
        if self.paras_availability_period < 1:
            raise ConfigError("paras_availability_period must be at least 1")
        if self.slot_ms < 10:
            raise ConfigError("slot_ms must be at least 10")
        if self.group_rotation_frequency < 1:
            raise ConfigError("group_rotation_frequency must be at least 1")
        if self.needed_approvals < 1:
            raise ConfigError("needed_approvals must be at least 1")
        if self.n_delay_tranches < 1:
            raise ConfigError("n_delay_tranches must be at least 1")
        if self.no_show_slots < 1:  # polkadot's ZeroNoShowSlots
            raise ConfigError("no_show_slots must be at least 1")

    @property
    def execution_timeout_ms(self) -> int:
        return self.backing_execution_timeout_ms or default_execution_ms(self)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> HostConfiguration:
        return _from_mapping(cls, data, "host configuration")

    def to_mapping(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def replace(self, **changes: int) -> HostConfiguration:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ParaGenesis:
    """A parachain at genesis: its head, code, and the parachain-runtime constants that shape
    its block production (cumulus' `FixedVelocityConsensusHook<V, C>` and block weight)."""

    para_id: int
    genesis_head: bytes = b""
    validation_code: bytes = b"asyncback-para-runtime-v1"
    cores: int = 1
    velocity: int = 0  # 0: one block per core per relay slot
    unincluded_capacity: int = 0  # 0: max_candidate_depth + 1
    block_execution_ms: int = 0  # 0: the host's execution timeout

    def __post_init__(self) -> None:
        if not 0 <= self.para_id < 2**32:
            raise ConfigError(f"para_id {self.para_id} is not a u32")
        for name in ("cores", "velocity", "unincluded_capacity", "block_execution_ms"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ConfigError(f"para {self.para_id}: {name} must be a non-negative integer")
        if self.cores < 1:
            raise ConfigError(f"para {self.para_id}: cores must be at least 1")

    def effective_velocity(self) -> int:
        return self.velocity or self.cores

    def effective_capacity(self, host: HostConfiguration) -> int:
        return self.unincluded_capacity or host.max_candidate_depth + 1

    def effective_execution_ms(self, host: HostConfiguration) -> int:
        return self.block_execution_ms or host.execution_timeout_ms


def _from_mapping(cls: Any, data: Mapping[str, Any], what: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) in {what}: {', '.join(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def para_from_mapping(data: Mapping[str, Any]) -> ParaGenesis:
    data = dict(data)
    if isinstance(data.get("genesis_head"), str):
        data["genesis_head"] = bytes.fromhex(data["genesis_head"].removeprefix("0x"))
    if isinstance(data.get("validation_code"), str):
        data["validation_code"] = data["validation_code"].encode()
    return _from_mapping(ParaGenesis, data, "parachain")


def default_execution_ms(host: HostConfiguration) -> int:
    """The execution budget deployments pair with these parameters: 2 s of a 6 s slot where a
    candidate may be backed on an older relay parent (async backing raised cumulus'
    `MAXIMUM_BLOCK_WEIGHT` from 0.5 s to 2 s), 0.5 s where it must be built, validated and backed
    within the slot of its relay parent. It is a genesis default, not a protocol branch: any
    explicit `backing_execution_timeout_ms` wins."""
    return host.slot_ms // 3 if host.allowed_ancestry_len > 0 else host.slot_ms // 12


def sync_backing(host: HostConfiguration) -> HostConfiguration:
    """The sync-backing point of the parameter space (spec §2.9), with its 0.5 s-of-6 s budget."""
    return host.replace(
        max_candidate_depth=0,
        allowed_ancestry_len=0,
        lookahead=1,
        backing_execution_timeout_ms=host.slot_ms // 12,
    )

