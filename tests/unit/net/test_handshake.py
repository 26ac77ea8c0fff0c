"""The pure handshake and record cipher: who is refused at which message, and that any tampering
with handshake messages or records is detected. No sockets, no clock, fixed ephemeral secrets."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given
from hypothesis import strategies as st
from impostor import Impostor

from node.chainspec import ChainSpec, dev_validators
from node.net import handshake as hs
from node.net.handshake import (
    FINISH_LEN,
    HANDSHAKE_FRAME_CAP,
    HELLO_LEN,
    REPLY_LEN,
    DialerHandshake,
    HandshakeError,
    HandshakeResult,
    IdentityNotAllowed,
    InvalidIdentityProof,
    MalformedHandshake,
    RecordAuthenticationError,
    ResponderHandshake,
    SecureChannel,
    SelfConnection,
    TamperedHandshake,
    UnexpectedIdentity,
    VersionMismatch,
    WrongGenesis,
    frame_handshake_message,
)
from proto.errors import DecodeError
from proto.hashing import blake2_256
from proto.keys import Keypair

SPEC = ChainSpec(name="test", id="test", validators=dev_validators(3), paras=())
OTHER_SPEC = ChainSpec(name="test", id="other", validators=dev_validators(3), paras=())
GENESIS = SPEC.genesis_id()
ALICE, BOB, CHARLIE = (Keypair.from_name(n) for n in ("alice", "bob", "charlie"))
MALLORY = Keypair.from_name("mallory")


def secret(label: str) -> bytes:
    """A fixed ephemeral secret: the handshake takes its randomness from the caller."""
    return blake2_256(b"ephemeral/" + label.encode())


def dialer(key: object = ALICE, genesis: bytes = GENESIS, label: str = "d",
           **kw: object) -> DialerHandshake:
    return DialerHandshake(key, genesis, secret(label), **kw)  # type: ignore[arg-type]


def responder(key: object = BOB, genesis: bytes = GENESIS, label: str = "r",
              **kw: object) -> ResponderHandshake:
    return ResponderHandshake(key, genesis, secret(label), **kw)  # type: ignore[arg-type]


def complete(d: DialerHandshake, r: ResponderHandshake) -> tuple[HandshakeResult, HandshakeResult]:
    reply = r.on_hello(d.start())
    finish, at_dialer = d.on_reply(reply)
    return at_dialer, r.on_finish(finish)


def established() -> tuple[SecureChannel, SecureChannel]:
    at_dialer, at_responder = complete(dialer(), responder())
    return at_dialer.channel, at_responder.channel


# -- success ------------------------------------------------------------------------------------


def test_handshake_authenticates_both_ends_and_channels_work_both_ways() -> None:
    at_dialer, at_responder = complete(dialer(expected=BOB.public), responder())
    assert at_dialer.remote == BOB.public
    assert at_responder.remote == ALICE.public
    for i in range(5):
        assert at_responder.channel.open(at_dialer.channel.seal(b"ping %d" % i)) == b"ping %d" % i
        assert at_dialer.channel.open(at_responder.channel.seal(b"pong %d" % i)) == b"pong %d" % i
    assert at_dialer.channel.sent == at_dialer.channel.received == 5


def test_messages_fit_the_handshake_frame_cap_and_are_deterministic_given_the_ephemerals() -> None:
    d1, r1 = dialer(), responder()
    hello = d1.start()
    reply = r1.on_hello(hello)
    finish, _ = d1.on_reply(reply)
    assert (len(hello), len(reply), len(finish)) == (HELLO_LEN, REPLY_LEN, FINISH_LEN)
    assert max(HELLO_LEN, REPLY_LEN, FINISH_LEN) <= HANDSHAKE_FRAME_CAP
    assert frame_handshake_message(hello)[4:] == hello
    # Same secrets in, same bytes out: the module draws no randomness of its own.
    d2, r2 = dialer(), responder()
    assert d2.start() == hello and r2.on_hello(hello) == reply


def test_identities_and_plaintext_never_appear_on_the_wire() -> None:
    d, r = dialer(), responder()
    hello = d.start()
    reply = r.on_hello(hello)
    finish, at_dialer = d.on_reply(reply)
    r.on_finish(finish)
    wire = hello + reply + finish + at_dialer.channel.seal(b"secret statement")
    for needle in (ALICE.public, BOB.public, b"secret statement"):
        assert needle not in wire


def test_responder_policy_admits_roster_members() -> None:
    roster = {v.public for v in SPEC.validators}
    _, at_responder = complete(
        dialer(), responder(accept_identity=lambda peer: peer in roster))
    assert at_responder.remote == ALICE.public


# -- refusals -----------------------------------------------------------------------------------


def test_impostor_responder_is_refused_at_message_2() -> None:
    d = dialer(expected=CHARLIE.public)
    reply = responder(Impostor(CHARLIE, MALLORY)).on_hello(d.start())
    with pytest.raises(InvalidIdentityProof):
        d.on_reply(reply)
    # Naming no expected identity does not make a forged proof acceptable.
    d = dialer()
    with pytest.raises(InvalidIdentityProof):
        d.on_reply(responder(Impostor(CHARLIE, MALLORY)).on_hello(d.start()))


def test_dialer_expecting_one_validator_refuses_another_at_message_2() -> None:
    d = dialer(expected=CHARLIE.public)
    with pytest.raises(UnexpectedIdentity, match="expected peer"):
        d.on_reply(responder(BOB).on_hello(d.start()))


def test_impostor_dialer_is_refused_at_message_3() -> None:
    d, r = dialer(Impostor(CHARLIE, MALLORY)), responder()
    finish, _ = d.on_reply(r.on_hello(d.start()))
    with pytest.raises(InvalidIdentityProof):
        r.on_finish(finish)


def test_identity_outside_the_roster_is_refused_at_message_3() -> None:
    roster = {ALICE.public, BOB.public}
    d, r = dialer(MALLORY), responder(accept_identity=lambda peer: peer in roster)
    finish, _ = d.on_reply(r.on_hello(d.start()))
    with pytest.raises(IdentityNotAllowed):
        r.on_finish(finish)


def test_wrong_genesis_is_refused_by_either_side() -> None:
    other = OTHER_SPEC.genesis_id()
    assert other != GENESIS
    with pytest.raises(WrongGenesis):
        responder().on_hello(dialer(genesis=other).start())
    # A reply from a responder on another chain (to some dialer of that chain).
    foreign_reply = responder(genesis=other).on_hello(dialer(genesis=other).start())
    d = dialer()
    d.start()
    with pytest.raises(WrongGenesis):
        d.on_reply(foreign_reply)


def test_other_version_is_refused() -> None:
    with pytest.raises(VersionMismatch):
        responder().on_hello(dialer(version=hs.PROTOCOL_VERSION - 1).start())


def test_connecting_to_oneself_is_refused() -> None:
    d = dialer(BOB)
    with pytest.raises(SelfConnection):
        d.on_reply(responder(BOB).on_hello(d.start()))


def test_low_order_ephemeral_is_malformed() -> None:
    hello = bytearray(dialer().start())
    hello[-32:] = bytes(32)
    with pytest.raises(MalformedHandshake):
        responder().on_hello(bytes(hello))
    assert issubclass(MalformedHandshake, DecodeError)


def test_a_handshake_object_is_single_use() -> None:
    d, r = dialer(), responder()
    d.on_reply(r.on_hello(d.start()))
    with pytest.raises(RuntimeError):
        d.start()
    with pytest.raises(RuntimeError):
        responder().on_finish(bytes(FINISH_LEN))


# -- man in the middle --------------------------------------------------------------------------


def test_mitm_substituting_the_dialer_ephemeral_is_detected_by_the_dialer() -> None:
    d, r = dialer(expected=BOB.public), responder()
    hello = d.start()
    mallory_hello = dialer(MALLORY, label="m").start()
    spliced_hello = hello[:-32] + mallory_hello[-32:]
    reply = r.on_hello(spliced_hello)
    with pytest.raises(TamperedHandshake):
        d.on_reply(reply)


def test_mitm_substituting_the_responder_ephemeral_is_detected_by_the_dialer() -> None:
    d, r = dialer(), responder()
    reply = r.on_hello(d.start())
    mallory_reply = responder(MALLORY, label="m").on_hello(dialer(label="x").start())
    spliced = reply[:38] + mallory_reply[38:70] + reply[70:]
    assert spliced != reply
    with pytest.raises(TamperedHandshake):
        d.on_reply(spliced)


def test_full_splice_through_a_proxy_aborts_both_ends() -> None:
    """Mallory runs one handshake with each end and forwards the identity proofs between them."""
    # Toward a dialer that expects Bob, Mallory cannot prove Bob's identity over her ephemeral.
    alice = dialer(ALICE, expected=BOB.public)
    with pytest.raises(UnexpectedIdentity):
        alice.on_reply(responder(MALLORY, label="m1").on_hello(alice.start()))

    # A dialer that names no one finishes with Mallory (she is who she proves to be) ...
    alice = dialer(ALICE, label="d2")
    m_toward_alice = responder(MALLORY, label="m2")
    hello_a = alice.start()
    reply_a = m_toward_alice.on_hello(hello_a)
    finish_a, _ = alice.on_reply(reply_a)
    # ... and Mallory, who knows that session's keys, unseals Alice's identity proof ...
    alice_proof = _unseal_finish(secret("m2"), hello_a, reply_a, MALLORY.public, finish_a)
    assert alice_proof[:32] == ALICE.public
    # ... forwarded as is, it does not open under Bob's keys ...
    m_toward_bob, bob = dialer(MALLORY, label="m3"), responder(BOB, label="r2")
    hello_b = m_toward_bob.start()
    reply_b = bob.on_hello(hello_b)
    with pytest.raises(TamperedHandshake):
        bob.on_finish(finish_a)
    # ... and resealed under the keys of Mallory's session with Bob, the signature covers the
    # wrong ephemerals and the wrong responder.
    bob = responder(BOB, label="r2")
    assert bob.on_hello(hello_b) == reply_b
    with pytest.raises(InvalidIdentityProof):
        bob.on_finish(_seal_finish(secret("m3"), hello_b, reply_b, BOB.public, alice_proof))


def test_relay_that_swaps_in_its_own_identity_cannot_seal_it() -> None:
    """Unknown key share: Mallory relays both ephemerals untouched but claims the dialer's session
    as hers, with her own valid signature over the (public) transcript."""
    alice, bob = dialer(ALICE), responder(BOB)
    hello = alice.start()
    reply = bob.on_hello(hello)
    alice.on_reply(reply)
    transcript = _prefix(hello, reply) + BOB.public + MALLORY.public
    mallory_proof = MALLORY.public + MALLORY.sign(hs.DIALER_DOMAIN, transcript)
    # She cannot derive the finish key (she holds neither ephemeral secret); any key she guesses
    # yields a proof that does not open.
    wrong_key = blake2_256(b"guess")
    forged = ChaCha20Poly1305(wrong_key).encrypt(bytes(12), mallory_proof,
                                                 _prefix(hello, reply) + BOB.public)
    with pytest.raises(TamperedHandshake):
        bob.on_finish(forged)


# Mallory's view of a session she is part of: she holds one of the two ephemeral secrets, so she
# derives the same handshake keys as the honest end (recomputed here with the module's helpers).
def _prefix(hello: bytes, reply: bytes) -> bytes:
    return hs._transcript(hs.PROTOCOL_VERSION, GENESIS, hello[-32:], _reply_ephemeral(reply))


def _reply_ephemeral(reply: bytes) -> bytes:
    return reply[hs._HEADER_LEN: hs._HEADER_LEN + hs.EPHEMERAL_LEN]


def _finish_key(own_secret: bytes, hello: bytes, reply: bytes) -> bytes:
    private, public = hs._ephemeral(own_secret)
    peer = _reply_ephemeral(reply) if public == hello[-32:] else hello[-32:]
    shared = hs._shared_secret(private, peer)
    return hs._hkdf_pair(shared, _prefix(hello, reply), hs._HANDSHAKE_KEYS_INFO)[1]


def _unseal_finish(own_secret: bytes, hello: bytes, reply: bytes, responder_id: bytes,
                   finish: bytes) -> bytes:
    key = _finish_key(own_secret, hello, reply)
    return ChaCha20Poly1305(key).decrypt(bytes(12), finish, _prefix(hello, reply) + responder_id)


def _seal_finish(own_secret: bytes, hello: bytes, reply: bytes, responder_id: bytes,
                 proof: bytes) -> bytes:
    key = _finish_key(own_secret, hello, reply)
    return ChaCha20Poly1305(key).encrypt(bytes(12), proof, _prefix(hello, reply) + responder_id)


# -- tampering with handshake bytes --------------------------------------------------------------


@given(which=st.sampled_from(["hello", "reply", "finish"]), data=st.data())
def test_any_modified_handshake_byte_fails_the_handshake(which: str, data: st.DataObject) -> None:
    d, r = dialer(), responder()

    def mutate(message: bytes) -> bytes:
        i = data.draw(st.integers(0, len(message) - 1), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        return message[:i] + bytes([message[i] ^ (1 << bit)]) + message[i + 1:]

    with pytest.raises(HandshakeError):
        hello = d.start()
        reply = r.on_hello(mutate(hello) if which == "hello" else hello)
        finish, _ = d.on_reply(mutate(reply) if which == "reply" else reply)
        r.on_finish(mutate(finish) if which == "finish" else finish)


@given(junk=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_handshake_errors(junk: bytes) -> None:
    for attempt in (lambda: responder().on_hello(junk),
                    lambda: _started(dialer()).on_reply(junk),
                    lambda: _greeted(responder()).on_finish(junk)):
        with pytest.raises(HandshakeError):
            attempt()


def _started(d: DialerHandshake) -> DialerHandshake:
    d.start()
    return d


def _greeted(r: ResponderHandshake) -> ResponderHandshake:
    r.on_hello(dialer(label="g").start())
    return r


# -- record cipher ------------------------------------------------------------------------------


@given(data=st.data())
def test_any_bit_flip_in_a_record_is_detected(data: st.DataObject) -> None:
    sender, receiver = established()
    record = sender.seal(b"a backing statement")
    i = data.draw(st.integers(0, len(record) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = record[:i] + bytes([record[i] ^ (1 << bit)]) + record[i + 1:]
    with pytest.raises(RecordAuthenticationError):
        receiver.open(flipped)
    # The stream cannot resynchronise: even the genuine record is refused now.
    with pytest.raises(RecordAuthenticationError):
        receiver.open(record)


def test_replayed_record_is_detected() -> None:
    sender, receiver = established()
    record = sender.seal(b"one")
    assert receiver.open(record) == b"one"
    with pytest.raises(RecordAuthenticationError):
        receiver.open(record)


def test_reordered_records_are_detected() -> None:
    sender, receiver = established()
    first, second = sender.seal(b"1"), sender.seal(b"2")
    with pytest.raises(RecordAuthenticationError):
        receiver.open(second)
    assert first  # never delivered: the channel is dead


def test_dropped_record_is_detected() -> None:
    sender, receiver = established()
    records = [sender.seal(bytes([i])) for i in range(3)]
    assert receiver.open(records[0]) == b"\x00"
    with pytest.raises(RecordAuthenticationError):
        receiver.open(records[2])


def test_records_are_bound_to_direction_and_session() -> None:
    at_dialer, _ = established()
    own = at_dialer.seal(b"reflected")
    with pytest.raises(RecordAuthenticationError):
        at_dialer.open(own)  # reflected back at its sender
    other_dialer, other_responder = complete(dialer(label="d9"), responder(label="r9"))
    with pytest.raises(RecordAuthenticationError):
        other_responder.channel.open(at_dialer.seal(b"cross-session"))
    assert issubclass(RecordAuthenticationError, DecodeError)
    assert other_dialer.remote == BOB.public


# -- purity -------------------------------------------------------------------------------------

FORBIDDEN = {"trio", "socket", "time", "random", "os", "subprocess", "asyncio", "threading",
             "secrets"}


def test_handshake_module_is_pure() -> None:
    path = Path(__file__).resolve().parents[3] / "node" / "net" / "handshake.py"
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported & FORBIDDEN == set()
    assert "node" in imported  # the walk did find the imports
