"""What shapes a run of the protocol, whichever driver plays it: the ideal driver (`node/ideal.py`,
no network) takes a `RunConfig` as it is; the simulator's `SimConfig` adds the simulated
network's faults to it. One type, so a flag means the same in `ideal` and `sim` and a figure of
one can be set beside the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relay.core.config import HostConfiguration


@dataclass(frozen=True)
class RunConfig:
    validators: int = 5
    paras: int = 2
    collators_per_para: int = 1
    cores_per_para: int = 1
    host: HostConfiguration = field(default_factory=HostConfiguration)
    relay_blocks: int = 40
    blocks_per_relay_parent: int = 0  # 0: the para's velocity (one per core)
    saturate: bool = True  # every pool saturated; else `tx_rate` transactions a second
    tx_rate: float = 0.0

    def to_json(self, mode: str) -> dict[str, Any]:
        return {"mode": mode, "validators": self.validators, "paras": self.paras,
                "collators_per_para": self.collators_per_para,
                "cores_per_para": self.cores_per_para, "relay_blocks": self.relay_blocks,
                "saturate": self.saturate, "tx_rate": self.tx_rate,
                "blocks_per_relay_parent": self.blocks_per_relay_parent,
                **self.host.to_mapping()}
