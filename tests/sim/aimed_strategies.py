"""Hypothesis strategies for any wire type, built from its msgspec type information: every struct,
union, list, int and bytes field within the bounds its type declares, so every value drawn encodes
to something the strict decoder accepts, and a message type added to `proto` is covered without a
line here.

Random values alone rarely get past the first check of a handler (an unknown relay parent, a bad
signature), so draws are biased toward what the node under test knows (`Known`): 32-byte fields
are often hashes it holds (relay parents, candidates, blocks), ints are often its para ids,
validator and core indices, and signed values are often really signed by a validator for a
relay parent it knows. Unknown values stay in the mix: both sides of every check get exercised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from collator.core.para_runtime import ParaBlock
from proto.candidate import CommittedCandidateReceipt, PersistedValidationData
from proto.codec import encode
from proto.keys import Keypair
from proto.messages import (
    AttestedCandidate,
    BitfieldMessage,
    BlockRequest,
    Declare,
    ParaBlockAnnounce,
    ParaBlockResponse,
    StatementMessage,
)
from proto.relay_block import RelayHeader
from proto.statements import (
    CompactStatement,
    FinalityVote,
    SignedAvailabilityBitfield,
    SignedStatement,
    SigningContext,
    StatementKind,
)

Strategy = st.SearchStrategy[Any]
SMALL_LIST = 4  # lists longer than this find nothing shorter ones do not, and cost time
SMALL_BYTES = 64


@dataclass
class Known:
    """What the node under test knows, to aim draws at."""

    hashes: list[bytes]  # relay blocks (relay parents among them), candidates, para blocks
    numbers: dict[bytes, int]  # relay block hash -> number
    ints: list[int]  # para ids, indices, small numbers that mean something
    validators: list[Keypair]  # index = validator index
    collators: list[Keypair]
    session: int
    targets: list[bytes] = field(default_factory=list)  # peer ids a Declare may be bound to


class WireStrategies:
    def __init__(self, known: Known) -> None:
        self.known = known
        self._cache: dict[Any, Strategy] = {}
        k = known
        hashes = self.hash()
        relay = st.sampled_from(sorted(k.numbers)) if k.numbers else hashes
        validator = st.integers(0, len(k.validators) - 1)
        # Really signed values: the signature checks pass, the logic behind them runs.
        self._signed: dict[type, Callable[[], Strategy]] = {
            SignedStatement: lambda: st.builds(
                lambda kind, h, rp, v: SignedStatement.sign(
                    k.validators[v], CompactStatement(kind, h), SigningContext(k.session, rp), v),
                self.of(CompactStatement).map(lambda c: c.kind), hashes, relay, validator),
            FinalityVote: lambda: st.builds(
                lambda h, v, off: FinalityVote.sign(
                    k.validators[v], h, k.numbers.get(h, 0) + off, k.session, v),
                relay, validator, st.sampled_from([0, 0, 0, 1])),
            SignedAvailabilityBitfield: lambda: st.builds(
                lambda bits, rp, v: SignedAvailabilityBitfield.sign(
                    k.validators[v], bits, SigningContext(k.session, rp), v),
                st.lists(st.booleans(), max_size=SMALL_LIST), relay, validator),
            Declare: lambda: st.builds(
                lambda key, para, target: Declare.sign(key, para, target),
                st.sampled_from(k.collators), self.int(0, 2**32 - 1),
                st.sampled_from(k.targets) if k.targets else hashes),
            RelayHeader: lambda: st.builds(
                lambda hd, v: msgspec.structs.replace(hd, author=v).sealed(k.validators[v]),
                self._generic(RelayHeader), validator),
            # Messages whose parts agree with each other (signed for the relay parent they
            # name, for the candidate they carry): what gets past the consistency checks.
            StatementMessage: lambda: st.builds(
                lambda rp, kind, h, v: StatementMessage(rp, self._statement(kind, h, rp, v)),
                relay, self.of(CompactStatement).map(lambda c: c.kind), hashes, validator),
            BitfieldMessage: lambda: st.builds(
                lambda rp, bits, v: BitfieldMessage(rp, SignedAvailabilityBitfield.sign(
                    k.validators[v], bits, SigningContext(k.session, rp), v)),
                relay, st.lists(st.booleans(), max_size=SMALL_LIST), validator),
            AttestedCandidate: lambda: st.builds(
                self._attested, self._generic(CommittedCandidateReceipt),
                self.of(PersistedValidationData), relay,
                st.lists(st.tuples(self.of(CompactStatement).map(lambda c: c.kind), validator),
                         max_size=SMALL_LIST)),
            BlockRequest: lambda: st.builds(
                BlockRequest, relay, self.int(0, 2**32 - 1), st.integers(1, 128)),
            # Blobs that carry an encoded para block: often a real (decodable) one.
            ParaBlockAnnounce: lambda: st.builds(
                ParaBlockAnnounce, self.int(0, 2**32 - 1), self.of(ParaBlock).map(encode)),
            ParaBlockResponse: lambda: st.builds(
                ParaBlockResponse, self.of(ParaBlock).map(encode)),
        }

    def _statement(self, kind: StatementKind, h: bytes, rp: bytes, v: int) -> SignedStatement:
        return SignedStatement.sign(self.known.validators[v], CompactStatement(kind, h),
                                    SigningContext(self.known.session, rp), v)

    def _attested(self, receipt: CommittedCandidateReceipt, pvd: PersistedValidationData,
                  rp: bytes, votes: list[tuple[StatementKind, int]]) -> AttestedCandidate:
        descriptor = msgspec.structs.replace(receipt.descriptor, relay_parent=rp,
                                             persisted_validation_data_hash=pvd.hash())
        receipt = msgspec.structs.replace(receipt, descriptor=descriptor)
        h = receipt.hash()
        return AttestedCandidate(receipt, pvd, [self._statement(kind, h, rp, v)
                                                for kind, v in votes])

    # -- leaves -----------------------------------------------------------------------------------

    def hash(self) -> Strategy:
        known = st.sampled_from(self.known.hashes) if self.known.hashes else st.nothing()
        return st.one_of(known, st.binary(min_size=32, max_size=32))

    def int(self, lo: int, hi: int) -> Strategy:
        meaningful = [v for v in self.known.ints if lo <= v <= hi]
        options = [st.integers(lo, min(hi, lo + 8)), st.integers(lo, hi)]
        if meaningful:
            options.insert(0, st.sampled_from(meaningful))
        return st.one_of(*options)

    # -- any type -----------------------------------------------------------------------------

    def of(self, tp: Any) -> Strategy:
        """Values of `tp` (a struct class, a union, an annotated primitive)."""
        if tp not in self._cache:
            # deferred: recursive types and the overrides above refer back to `of`
            self._cache[tp] = st.deferred(lambda: self._from_info(mi.type_info(tp)))
        return self._cache[tp]

    def _generic(self, cls: type) -> Strategy:
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        return st.builds(cls, *[self._from_info(f.type) for f in info.fields])

    def _from_info(self, t: mi.Type) -> Strategy:
        if isinstance(t, mi.StructType):
            generic = st.builds(t.cls, *[self._from_info(f.type) for f in t.fields])
            signed = self._signed.get(t.cls)
            return generic if signed is None else st.one_of(signed(), generic)
        if isinstance(t, mi.UnionType):
            return st.one_of(*[self._from_info(x) for x in t.types])
        if isinstance(t, mi.ListType):
            cap = SMALL_LIST if t.max_length is None else min(t.max_length, SMALL_LIST)
            return st.lists(self._from_info(t.item_type), min_size=t.min_length or 0,
                            max_size=max(cap, t.min_length or 0))
        if isinstance(t, mi.BytesType):
            if t.min_length == t.max_length == 32:
                return self.hash()
            lo = t.min_length or 0
            hi = lo + SMALL_BYTES if t.max_length is None else min(t.max_length, lo + SMALL_BYTES)
            return st.binary(min_size=lo, max_size=hi)
        if isinstance(t, mi.IntType):
            lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -(2**63))
            hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 2**63 - 1)
            return self.int(lo, hi)
        if isinstance(t, mi.EnumType):
            return st.sampled_from(list(t.cls))
        if isinstance(t, mi.StrType):
            return st.text(max_size=min(t.max_length or 40, 40))
        if isinstance(t, mi.BoolType):
            return st.booleans()
        if isinstance(t, mi.NoneType):
            return st.none()
        raise NotImplementedError(f"no strategy for {t!r}: teach wire_strategies this type")
