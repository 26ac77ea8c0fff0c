"""Ed25519 identities and signatures over a domain tag plus a payload.

Every signed thing in the protocol names its domain (`b"BKNG"` for backing statements, `b"AVBF"`
for availability bitfields, ...), so a signature can never be replayed as a different kind of
message. Dev keys are derived from names (`alice`, `bob`, ...) so test networks need no key files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from proto.hashing import blake2_256
from proto.shared_work import shared, sharing_active

PUBLIC_KEY_LEN = 32
SIGNATURE_LEN = 64
DEV_NAMES = (
    "alice", "bob", "charlie", "dave", "eve", "ferdie", "george", "harry", "ian", "julia",
    "kate", "liam", "mia", "noah", "olivia", "peter", "quinn", "rose", "sam", "tina",
)


def dev_seed(name: str) -> bytes:
    """The 32-byte seed of a development key: deterministic from the name, never for production."""
    return blake2_256(b"asyncback-dev-key//" + name.encode())


def dev_name(index: int) -> str:
    """Name of the index-th development account: alice, bob, ... then v20, v21, ..."""
    return DEV_NAMES[index] if index < len(DEV_NAMES) else f"v{index}"


@dataclass(frozen=True)
class Keypair:
    seed: bytes
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        pub = self._private().public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        object.__setattr__(self, "public", pub)

    @classmethod
    def from_name(cls, name: str) -> Keypair:
        return cls(dev_seed(name))

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def sign(self, domain: bytes, payload: bytes) -> bytes:
        return self._private().sign(domain + payload)

    def __repr__(self) -> str:  # never print the seed
        return f"Keypair(public=0x{self.public.hex()[:16]}…)"


@dataclass
class SignatureChecks:
    """Process-wide counts of signature checks, for benchmarks (`benchmarks/scale.py`): what the
    code asked for, and the Ed25519 verifications actually run."""

    requested: int = 0
    performed: int = 0


SIGNATURE_CHECKS = SignatureChecks()


def verify(public: bytes, domain: bytes, payload: bytes, signature: bytes) -> bool:
    """True iff `signature` is `public`'s signature of `domain ‖ payload`. Never raises."""
    SIGNATURE_CHECKS.requested += 1
    if not sharing_active():
        return _verify(public, domain, payload, signature)
    return shared("ed25519", (public, domain, payload, signature),
                  lambda: _verify(public, domain, payload, signature))


def _verify(public: bytes, domain: bytes, payload: bytes, signature: bytes) -> bool:
    SIGNATURE_CHECKS.performed += 1
    if len(public) != PUBLIC_KEY_LEN or len(signature) != SIGNATURE_LEN:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, domain + payload)
    except (InvalidSignature, ValueError):
        return False
    return True
