"""What the validator's subsystems (`backing.py`, `availability.py`) see of the validator: its
identity, its chain and prospective view, the network, the store-backed "sign once" log and the
metrics. A Protocol, so each subsystem depends on this shape and not on `ValidatorService` (which
builds them: the other direction)."""

from __future__ import annotations

from typing import Any, Protocol

from proto.keys import Keypair
from proto.network import PeerId
from proto.ports import Metrics, Network, RelayStore
from relay.core.prospective.view import ProspectiveParachains
from relay.core.relay_chain import RelayChain


class ValidatorContext(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def key(self) -> Keypair: ...

    @property
    def index(self) -> int: ...

    @property
    def validators(self) -> tuple[bytes, ...]: ...

    @property
    def relay_peers(self) -> set[PeerId]: ...

    @property
    def slot_s(self) -> float: ...

    @property
    def chain(self) -> RelayChain: ...

    @property
    def prospective(self) -> ProspectiveParachains: ...

    @property
    def net(self) -> Network: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def store(self) -> RelayStore | None: ...

    def peer_of(self, validator_index: int) -> PeerId: ...

    def upcoming_authors(self, count: int = ...) -> list[PeerId]:
        """The block authors of the next slots."""
        ...

    def sign_once(self, kind: str, key: bytes, payload: bytes, number: int | None
                  ) -> bytes | None:
        """`payload`, written to the store before it is sent, or what was signed before; None
        if the store refuses to sign at relay parent `number` (below its pruning bound)."""
        ...

    def log_event(self, event: str, **kw: Any) -> None: ...

    def log_error(self, event: str, **kw: Any) -> None: ...

    @property
    def is_syncing(self) -> bool:
        """Major sync: far behind the best block a peer has shown (nothing to back then)."""
        ...

    def is_history(self, number: int) -> bool:
        """Block `number` is catch-up, not the chain's head: nothing is signed for it."""
        ...
