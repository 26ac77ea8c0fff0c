"""Hands the services what they run on: a network stack over a `Host` (TCP or in-memory) and a
metrics registry, so `relay/service` and `collator/service.py` never construct either (they
name only the interfaces in `proto.ports`). The simulator, the process runner and the tests all
build services through these three functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collator.core.collator_chain import CollatorChain
from collator.service import CollatorService, RelayChainInterface
from node.metrics import NodeMetrics
from node.net.stack import NetworkStack
from node.net.transport import Host
from proto.keys import Keypair
from proto.network import PeerId
from proto.relay_block import RelayHeader
from relay.core.state import RelayState
from relay.service.full_node import RelayNodeService
from relay.service.validator import ValidatorService

Genesis = tuple[RelayHeader, RelayState]


def _net(host: Host, slot_ms: int) -> NetworkStack:
    return NetworkStack(host, slot_ms / 1000)


def relay_node(name: str, host: Host, genesis: Genesis, relay_peers: list[PeerId], *,
               metrics: NodeMetrics | None = None, **kw: Any) -> RelayNodeService:
    return RelayNodeService(name, _net(host, genesis[1].config.slot_ms),
                            metrics or NodeMetrics(RelayNodeService.role, name), genesis,
                            relay_peers, **kw)


def validator(name: str, key: Keypair, host: Host, genesis: Genesis,
              relay_peers: list[PeerId], *, metrics: NodeMetrics | None = None,
              **kw: Any) -> ValidatorService:
    return ValidatorService(name, key, _net(host, genesis[1].config.slot_ms),
                            metrics or NodeMetrics(ValidatorService.role, name), genesis,
                            relay_peers, **kw)


def collator(name: str, key: Keypair, para_id: int, host: Host, chain: CollatorChain,
             relay: RelayChainInterface, slot_ms: int, *, metrics: NodeMetrics | None = None,
             para_peers: Sequence[PeerId] = (), **kw: Any) -> CollatorService:
    return CollatorService(name, key, para_id, _net(host, slot_ms),
                           metrics or NodeMetrics(CollatorService.role, name), chain, relay,
                           slot_ms, para_peers=para_peers, **kw)
