"""The authenticated key exchange of the TCP transport, and the record cipher it produces. Pure:
no sockets, clocks or randomness; the caller passes each side's fresh X25519 ephemeral secret.

Three messages, dialer D and responder R, each identified by its Ed25519 key (`PeerId`):

    1. D -> R  hello:  MAGIC | version u16 | genesis id | eD
    2. R -> D  reply:  MAGIC | version u16 | genesis id | eR | seal(k_reply,  idR | sigR)
    3. D -> R  finish:                                        seal(k_finish, idD | sigD)

`eD`, `eR` are X25519 ephemeral public keys. Both sides compute the shared secret
`ss = X25519(eD, eR)` and derive, with HKDF-SHA256 over a salt that hashes the version, genesis id
and both ephemerals, the two one-shot handshake keys `k_reply` and `k_finish`. The transcript is the
fixed-width concatenation `LABEL | version | genesis | eD | eR | idR [| idD]`:

- R signs the transcript up to `idR` under `RESPONDER_DOMAIN`; D signs the whole transcript (which
  also names R, the identity D believes it reached) under `DIALER_DOMAIN`. Distinct domains and
  transcripts of different lengths keep one role's signature from being replayed as the other's.
- A substituted ephemeral (man in the middle) breaks the signatures, since they cover both eD and eR.
- Identities travel sealed under keys only the two ephemeral holders can derive. This is the key
  confirmation that a signature alone lacks: without it, an attacker could relay an honest D's
  ephemeral while swapping in its own identity and its own signature over the (public) transcript,
  and R would attribute D's traffic to the attacker (an unknown-key-share). It also hides identities
  from passive observers.

The traffic keys (one ChaCha20-Poly1305 key per direction) come from HKDF over the same secret with
the hash of the full transcript as salt, so they are bound to both identities. Records use a 64-bit
counter nonce per direction: a dropped, replayed, reordered or modified record fails authentication,
and after the first failure the receiving side of the channel stays dead.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.net.transport import TransportError
from proto.errors import DecodeError
from proto.framing import frame
from proto.keys import PUBLIC_KEY_LEN, SIGNATURE_LEN, verify
from proto.network import PeerId

# Raised whenever the wire changes in a way an older node would misread (2: para peers say hello,
# para block responses carry ancestors): a node of another version is refused at the handshake,
# with both versions named, rather than connected and failing request by request.
PROTOCOL_VERSION = 2
MAGIC = b"ABHS"
DIALER_DOMAIN = b"HSDL"
RESPONDER_DOMAIN = b"HSRP"
GENESIS_ID_LEN = 32
EPHEMERAL_LEN = 32
AEAD_TAG_LEN = 16
HANDSHAKE_FRAME_CAP = 256
"""Largest handshake message body; a length prefix above it is refused before the body is read."""

_TRANSCRIPT_LABEL = b"asyncback/handshake"
_HANDSHAKE_KEYS_INFO = b"asyncback/handshake-keys"
_TRAFFIC_KEYS_INFO = b"asyncback/traffic-keys"
_VERSION = struct.Struct(">H")
_HEADER_LEN = len(MAGIC) + _VERSION.size + GENESIS_ID_LEN
_IDENTITY_PROOF_LEN = PUBLIC_KEY_LEN + SIGNATURE_LEN
_SEALED_PROOF_LEN = _IDENTITY_PROOF_LEN + AEAD_TAG_LEN
HELLO_LEN = _HEADER_LEN + EPHEMERAL_LEN
REPLY_LEN = _HEADER_LEN + EPHEMERAL_LEN + _SEALED_PROOF_LEN
FINISH_LEN = _SEALED_PROOF_LEN
_ZERO_NONCE = bytes(12)
MAX_RECORD_COUNTER = 2**64 - 1

IdentityPolicy = Callable[[PeerId], bool]
"""Responder-side admission: True if a dialer proving this identity may connect."""


class Signer(Protocol):
    """What the handshake needs of an identity key (`proto.keys.Keypair` is one)."""

    @property
    def public(self) -> bytes: ...

    def sign(self, domain: bytes, payload: bytes) -> bytes: ...


# -- errors ---------------------------------------------------------------------------------------


class HandshakeError(TransportError):
    """The handshake did not establish a session; the connection must be dropped."""


class MalformedHandshake(HandshakeError, DecodeError):
    """A handshake message that is not well formed (length, magic, key encoding)."""


class VersionMismatch(HandshakeError):
    """The peer speaks another handshake version."""


class WrongGenesis(HandshakeError):
    """The peer runs another chain."""


class TamperedHandshake(HandshakeError):
    """The peer's sealed identity did not open: the two ends derived different keys, so an
    ephemeral key was substituted or a handshake byte modified on the way."""


class InvalidIdentityProof(HandshakeError):
    """The identity signature does not verify: the peer claims a key it does not hold, or signed
    another transcript (an impersonation or splice attempt)."""


class UnexpectedIdentity(HandshakeError):
    """The dialer expected one identity and the responder proved another."""


class IdentityNotAllowed(HandshakeError):
    """The responder's admission policy refuses the dialer's (proven) identity."""


class SelfConnection(HandshakeError):
    """Both ends hold the same identity."""


class RecordAuthenticationError(DecodeError):
    """A record failed AEAD authentication (modified, replayed, reordered or dropped neighbour)."""


class CipherExhausted(TransportError):
    """The 64-bit record counter of one direction is used up; the session must be renewed."""


# -- record cipher --------------------------------------------------------------------------------


class RecordCipher:
    """One direction of a session: ChaCha20-Poly1305 with an implicit 64-bit counter nonce, so the
    receiver accepts records only in exactly the order they were sealed."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a ChaCha20-Poly1305 key is 32 bytes")
        self._aead = ChaCha20Poly1305(key)
        self._counter = 0
        self._failed = False

    @property
    def counter(self) -> int:
        """Records sealed or opened so far in this direction."""
        return self._counter

    def _next_nonce(self) -> bytes:
        if self._counter > MAX_RECORD_COUNTER:
            raise CipherExhausted("record counter exhausted")
        nonce = bytes(4) + self._counter.to_bytes(8, "big")
        self._counter += 1
        return nonce

    def seal(self, plaintext: bytes) -> bytes:
        return self._aead.encrypt(self._next_nonce(), plaintext, None)

    def open(self, ciphertext: bytes) -> bytes:
        if self._failed:
            raise RecordAuthenticationError("the channel already failed; it must be closed")
        if self._counter > MAX_RECORD_COUNTER:
            self._failed = True
            raise RecordAuthenticationError("record counter exhausted")
        nonce = bytes(4) + self._counter.to_bytes(8, "big")
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext, None)
        except InvalidTag:
            # A stream cipher state cannot be resynchronised: the stream is broken from here on.
            self._failed = True
            raise RecordAuthenticationError(
                f"record {self._counter} failed authentication") from None
        self._counter += 1
        return plaintext


class SecureChannel:
    """The two directions of an established session, from one end's point of view."""

    def __init__(self, send_key: bytes, receive_key: bytes) -> None:
        self._send = RecordCipher(send_key)
        self._receive = RecordCipher(receive_key)

    def seal(self, plaintext: bytes) -> bytes:
        """The next outgoing record (ciphertext with its 16-byte tag)."""
        return self._send.seal(plaintext)

    def open(self, ciphertext: bytes) -> bytes:
        """Plaintext of the next incoming record; `RecordAuthenticationError` if it is not exactly
        the record the peer sealed next."""
        return self._receive.open(ciphertext)

    @property
    def sent(self) -> int:
        return self._send.counter

    @property
    def received(self) -> int:
        return self._receive.counter


@dataclass(frozen=True)
class HandshakeResult:
    remote: PeerId
    channel: SecureChannel
    version: int


# -- shared pieces --------------------------------------------------------------------------------


def frame_handshake_message(message: bytes) -> bytes:
    """A handshake message with its u32 length prefix, as it goes on the stream."""
    return frame(message, HANDSHAKE_FRAME_CAP)


def _transcript(version: int, genesis_id: bytes, dialer_ephemeral: bytes,
                responder_ephemeral: bytes, responder_id: bytes = b"", dialer_id: bytes = b"") -> bytes:
    # Every field has a fixed width, so the concatenation is unambiguous.
    return (_TRANSCRIPT_LABEL + _VERSION.pack(version) + genesis_id + dialer_ephemeral
            + responder_ephemeral + responder_id + dialer_id)


def _hkdf_pair(secret: bytes, salt_material: bytes, info: bytes) -> tuple[bytes, bytes]:
    salt = hashlib.sha256(salt_material).digest()
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=info).derive(secret)
    return okm[:32], okm[32:]


def _ephemeral(secret: bytes) -> tuple[X25519PrivateKey, bytes]:
    if len(secret) != 32:
        raise ValueError("an X25519 ephemeral secret is 32 bytes")
    private = X25519PrivateKey.from_private_bytes(secret)
    return private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _shared_secret(private: X25519PrivateKey, peer_public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        # A low-order point yields the all-zero secret, which cryptography refuses.
        raise MalformedHandshake("peer ephemeral key is not a usable X25519 point") from None


def _check_header(message: bytes, expected_len: int, what: str, genesis_id: bytes,
                  version: int) -> None:
    if len(message) != expected_len:
        raise MalformedHandshake(f"{what} is {len(message)} bytes, expected {expected_len}")
    if message[: len(MAGIC)] != MAGIC:
        raise MalformedHandshake(f"{what} does not start with the handshake magic")
    (theirs,) = _VERSION.unpack_from(message, len(MAGIC))
    if theirs != version:
        raise VersionMismatch(f"peer speaks handshake version {theirs}, we speak {version}")
    their_genesis = message[len(MAGIC) + _VERSION.size: _HEADER_LEN]
    if their_genesis != genesis_id:
        raise WrongGenesis(
            f"peer is on chain {their_genesis.hex()[:16]}, we are on {genesis_id.hex()[:16]}")


def _open_identity_proof(key: bytes, sealed: bytes, associated: bytes) -> tuple[bytes, bytes]:
    try:
        proof = ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, sealed, associated)
    except InvalidTag:
        raise TamperedHandshake("the peer's sealed identity does not open under our keys") from None
    return proof[:PUBLIC_KEY_LEN], proof[PUBLIC_KEY_LEN:]


def _check_identity_key(identity: Signer, genesis_id: bytes) -> None:
    if len(identity.public) != PUBLIC_KEY_LEN:
        raise ValueError("identity public key must be 32 bytes")
    if len(genesis_id) != GENESIS_ID_LEN:
        raise ValueError("genesis id must be 32 bytes")


# -- the two roles --------------------------------------------------------------------------------


class _HandshakeRole:
    """What both ends hold: our identity, the chain and version we speak, our ephemeral key, and
    how far the exchange got (single use: a step out of order, or any error, leaves it failed)."""

    def __init__(self, identity: Signer, genesis_id: bytes, ephemeral_secret: bytes,
                 version: int) -> None:
        _check_identity_key(identity, genesis_id)
        self._identity = identity
        self._genesis_id = genesis_id
        self._version = version
        self._private, self._ephemeral = _ephemeral(ephemeral_secret)
        self._state = "new"

    def _step(self, method: str, expected: str, then: str = "failed") -> None:
        """Enter `method` from state `expected`; until it succeeds the handshake is `then`."""
        if self._state != expected:
            raise RuntimeError(f"{method}() called in state {self._state}")
        self._state = then


class DialerHandshake(_HandshakeRole):
    """The dialing side: `start()` gives message 1, `on_reply(message 2)` gives message 3 and the
    session. Single use; any error leaves it unusable."""

    def __init__(self, identity: Signer, genesis_id: bytes, ephemeral_secret: bytes, *,
                 expected: PeerId | None = None, version: int = PROTOCOL_VERSION) -> None:
        super().__init__(identity, genesis_id, ephemeral_secret, version)
        self._expected = expected

    def start(self) -> bytes:
        self._step("start", "new", then="awaiting reply")
        return MAGIC + _VERSION.pack(self._version) + self._genesis_id + self._ephemeral

    def on_reply(self, reply: bytes) -> tuple[bytes, HandshakeResult]:
        self._step("on_reply", "awaiting reply")
        _check_header(reply, REPLY_LEN, "handshake reply", self._genesis_id, self._version)
        responder_ephemeral = reply[_HEADER_LEN: _HEADER_LEN + EPHEMERAL_LEN]
        sealed_proof = reply[_HEADER_LEN + EPHEMERAL_LEN:]

        secret = _shared_secret(self._private, responder_ephemeral)
        prefix = _transcript(self._version, self._genesis_id, self._ephemeral, responder_ephemeral)
        reply_key, finish_key = _hkdf_pair(secret, prefix, _HANDSHAKE_KEYS_INFO)
        responder_id, signature = _open_identity_proof(reply_key, sealed_proof, prefix)

        if responder_id == self._identity.public:
            raise SelfConnection("the responder holds our own identity")
        if self._expected is not None and responder_id != self._expected:
            raise UnexpectedIdentity(
                f"expected peer {self._expected.hex()[:16]}, responder proved {responder_id.hex()[:16]}")
        signed = prefix + responder_id
        if not verify(responder_id, RESPONDER_DOMAIN, signed, signature):
            raise InvalidIdentityProof(
                f"responder's signature for {responder_id.hex()[:16]} does not verify")

        transcript = signed + self._identity.public
        our_signature = self._identity.sign(DIALER_DOMAIN, transcript)
        finish = ChaCha20Poly1305(finish_key).encrypt(
            _ZERO_NONCE, self._identity.public + our_signature, signed)
        to_responder, to_dialer = _hkdf_pair(secret, transcript, _TRAFFIC_KEYS_INFO)
        self._state = "done"
        return finish, HandshakeResult(responder_id, SecureChannel(to_responder, to_dialer),
                                       self._version)


class ResponderHandshake(_HandshakeRole):
    """The accepting side: `on_hello(message 1)` gives message 2, `on_finish(message 3)` gives the
    session. `accept_identity` (None: anyone) decides which proven dialer identities may connect.
    Single use; any error leaves it unusable."""

    def __init__(self, identity: Signer, genesis_id: bytes, ephemeral_secret: bytes, *,
                 accept_identity: IdentityPolicy | None = None,
                 version: int = PROTOCOL_VERSION) -> None:
        super().__init__(identity, genesis_id, ephemeral_secret, version)
        self._accept_identity = accept_identity
        self._signed = b""
        self._secret = b""
        self._finish_key = b""

    def on_hello(self, hello: bytes) -> bytes:
        self._step("on_hello", "new")
        _check_header(hello, HELLO_LEN, "handshake hello", self._genesis_id, self._version)
        dialer_ephemeral = hello[_HEADER_LEN:]

        self._secret = _shared_secret(self._private, dialer_ephemeral)
        prefix = _transcript(self._version, self._genesis_id, dialer_ephemeral, self._ephemeral)
        reply_key, self._finish_key = _hkdf_pair(self._secret, prefix, _HANDSHAKE_KEYS_INFO)
        self._signed = prefix + self._identity.public
        signature = self._identity.sign(RESPONDER_DOMAIN, self._signed)
        sealed = ChaCha20Poly1305(reply_key).encrypt(
            _ZERO_NONCE, self._identity.public + signature, prefix)
        self._state = "awaiting finish"
        return MAGIC + _VERSION.pack(self._version) + self._genesis_id + self._ephemeral + sealed

    def on_finish(self, finish: bytes) -> HandshakeResult:
        self._step("on_finish", "awaiting finish")
        if len(finish) != FINISH_LEN:
            raise MalformedHandshake(f"handshake finish is {len(finish)} bytes, expected {FINISH_LEN}")
        dialer_id, signature = _open_identity_proof(self._finish_key, finish, self._signed)

        if dialer_id == self._identity.public:
            raise SelfConnection("the dialer holds our own identity")
        # The policy runs before the (costlier) signature check; both must pass.
        if self._accept_identity is not None and not self._accept_identity(dialer_id):
            raise IdentityNotAllowed(f"identity {dialer_id.hex()[:16]} is not admitted")
        transcript = self._signed + dialer_id
        if not verify(dialer_id, DIALER_DOMAIN, transcript, signature):
            raise InvalidIdentityProof(
                f"dialer's signature for {dialer_id.hex()[:16]} does not verify")

        to_responder, to_dialer = _hkdf_pair(self._secret, transcript, _TRAFFIC_KEYS_INFO)
        self._state = "done"
        return HandshakeResult(dialer_id, SecureChannel(to_dialer, to_responder), self._version)
