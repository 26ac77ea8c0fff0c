"""Checking, when a validator starts, the records of what it signed before it stopped.

A validator writes what it signs to its store before sending it (`ValidatorContext.sign_once`,
`Backing._durably_seconded`), and after a restart sends that record again instead of signing
something new under the same key: a second bitfield at a relay parent, a second finality vote at
a height, or a Seconded beyond the limit at a relay parent would be an equivocation (slashable in
Polkadot). A record it cannot read back is worse than none: the node would crash on it at the
first signature there, or sign anew. So every record is checked at start, as block records are
(`restore`): it must decode as what its table holds, name the key it is stored under, carry this
validator's index, and verify under this validator's key (where the relay parent is in the
restored chain, which gives the signing context; finality votes carry theirs). The first record
that fails is a `CorruptRecord` and the node does not start: unlike a block, what was signed
cannot be fetched again from peers, and starting without it risks signing twice.
"""

from __future__ import annotations

from proto.codec import decode
from proto.errors import CorruptRecord, DecodeError
from proto.ports import RelayStore
from proto.statements import (
    FinalityVote,
    SignedAvailabilityBitfield,
    SignedStatement,
    SigningContext,
    StatementKind,
)
from relay.core import runtime as rt
from relay.core.relay_chain import RelayChain

SECONDED_TABLE = "seconded"
SIGNED_TABLE = "signed"
BITFIELD = "bitfield"  # key: the relay block's hash the bitfield is signed for
FINALITY = "finality"  # key: the block number voted for, 8 bytes big-endian

REFUSAL = ("; refusing to start: a validator that forgets what it signed may sign a second, "
           "conflicting message at the same place (equivocation, a slashable offence). Restore "
           "the store from a backup, or delete this record only once the relay chain is past it")


def check_signed_records(store: RelayStore, chain: RelayChain, public: bytes, index: int) -> None:
    """Raise `CorruptRecord` for the first stored signed record that fails its check."""
    for relay_parent, candidate_hash, raw in store.seconded_records():
        key = f"relay parent 0x{relay_parent.hex()}, candidate 0x{candidate_hash.hex()}"
        problem = _seconded_problem(chain, relay_parent, candidate_hash, raw, public, index)
        if problem is not None:
            raise CorruptRecord(store.path, SECONDED_TABLE, key, problem + REFUSAL)
    for kind, key_bytes, raw in store.signed_records():
        key = f"kind {kind!r}, key 0x{key_bytes.hex()}"
        problem = _signed_problem(chain, kind, key_bytes, raw, public, index)
        if problem is not None:
            raise CorruptRecord(store.path, SIGNED_TABLE, key, problem + REFUSAL)


def _context(chain: RelayChain, relay_parent: bytes) -> SigningContext | None:
    """The context signed under at `relay_parent`, if the restored chain holds it."""
    state = chain.state(relay_parent)
    return None if state is None else SigningContext(rt.session_index_for_child(state),
                                                     relay_parent)


def _ours(validator_index: int, index: int) -> str | None:
    if validator_index != index:
        return f"is signed as validator {validator_index}, and this validator is {index}"
    return None


def _seconded_problem(chain: RelayChain, relay_parent: bytes, candidate_hash: bytes,
                      raw: bytes, public: bytes, index: int) -> str | None:
    try:
        signed = decode(raw, SignedStatement)
    except DecodeError as exc:
        return f"does not decode as a signed statement: {exc}"
    if signed.statement.kind != StatementKind.SECONDED:
        return f"holds a {signed.statement.kind.name} statement, not a Seconded"
    if signed.statement.candidate_hash != candidate_hash:
        return (f"seconds candidate 0x{signed.statement.candidate_hash.hex()}, not the one its "
                f"key names")
    ctx = _context(chain, relay_parent)
    if ctx is not None and not signed.check(public, ctx):
        return _ours(signed.validator_index, index) or (
            "has a signature that does not verify under this validator's key")
    return _ours(signed.validator_index, index)


def _signed_problem(chain: RelayChain, kind: str, key: bytes, raw: bytes, public: bytes,
                    index: int) -> str | None:
    if kind == BITFIELD:
        try:
            bitfield = decode(raw, SignedAvailabilityBitfield)
        except DecodeError as exc:
            return f"does not decode as a signed bitfield: {exc}"
        ctx = _context(chain, key)
        if ctx is not None and not bitfield.check(public, ctx):
            return _ours(bitfield.validator_index, index) or (
                "has a signature that does not verify under this validator's key for the relay "
                "block its key names")
        return _ours(bitfield.validator_index, index)
    if kind == FINALITY:
        try:
            vote = decode(raw, FinalityVote)
        except DecodeError as exc:
            return f"does not decode as a finality vote: {exc}"
        if len(key) != 8 or vote.number != int.from_bytes(key, "big"):
            return f"votes at #{vote.number}, not at the height its key names"
        if not vote.check(public):
            return _ours(vote.validator_index, index) or (
                "has a signature that does not verify under this validator's key")
        return _ours(vote.validator_index, index)
    return "is of a kind this validator never signs"
