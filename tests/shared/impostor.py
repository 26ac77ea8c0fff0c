"""An identity that claims one key and signs with another, for the tests that check a node refuses
it: the in-process handshake and TCP tests (tests/unit/net) and the impersonation of a validator on
its real p2p port (tests/e2e). Anything that takes a `Keypair` to sign with accepts it."""

from __future__ import annotations

from dataclasses import dataclass

from proto.keys import Keypair


@dataclass(frozen=True)
class Impostor:
    """Claims `claimed`'s public key but can only sign with its own key `real`."""

    claimed: Keypair
    real: Keypair

    @property
    def public(self) -> bytes:
        return self.claimed.public

    def sign(self, domain: bytes, payload: bytes) -> bytes:
        return self.real.sign(domain, payload)
