"""Candidate backing on a validator: the validator side of the collator protocol (Declare,
adverts within limits, fetching collations), seconding after really re-executing the candidate,
statements within the backing group, and backed candidates made known to every validator (the
block authors) by gossip.

Flow for a candidate at relay parent RP on core C (group G = the group backing C at RP):
1. a collator that declared its para advertises; a member of G that has room at RP and whose
   prospective view could hold the candidate fetches the collation, validates it, seconds it and
   tells the collator and the rest of G (direct `StatementMessage`);
2. another member of G, seeing a Seconded it cannot place, fetches the receipt and validation data
   (`FetchAttested`) and the PoV (`FetchPoV`) from the sender, validates, and sends its Valid;
3. whoever sees the candidate reach the backing threshold gossips it with its statements
   (`AttestedCandidate` on the BACKED topic); every validator imports it into its table and its
   prospective view, so whichever validator authors next can put it in its block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from proto.candidate import (
    CandidateReceipt,
    CommittedCandidateReceipt,
    PersistedValidationData,
    PoV,
    head_hash,
)
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.messages import (
    AdvertiseCollation,
    AttestedCandidate,
    CollationResponse,
    CollationSeconded,
    Declare,
    FetchAttested,
    FetchCollation,
    FetchPoV,
    PoVResponse,
    StatementMessage,
)
from proto.network import (
    ACCEPT,
    BENEFIT_MINOR,
    COST_INVALID_SIGNATURE,
    COST_MAJOR,
    COST_MALICIOUS,
    COST_UNEXPECTED_MESSAGE,
    IGNORE,
    Kind,
    PeerId,
    RequestError,
    Topic,
    Verdict,
    deliver_nothing,
    reject,
)
from proto.relay_block import RelayHeader
from proto.statements import CompactStatement, SignedStatement, SigningContext, StatementKind
from relay.core import runtime as rt
from relay.core.backing_table import BackingError, BackingErrorKind, BackingTable, CandidateVotes
from relay.core.candidate_validation import CollationInvalid, validate_collation
from relay.core.prospective.fragment_chain import HypotheticalCandidate
from relay.core.provisioner import backing_group, cores_backed_by
from relay.core.state import RelayState
from relay.service.availability import Availability
from relay.service.validator_context import ValidatorContext

LEARN_ROUNDS = 3
MAX_UNPLACED = 1024


@dataclass(frozen=True)
class KnownCollation:
    receipt: CommittedCandidateReceipt
    pvd: PersistedValidationData
    pov: PoV


class Backing:
    def __init__(self, v: ValidatorContext, availability: Availability) -> None:
        self.v = v
        self.availability = availability
        self.tables: dict[bytes, BackingTable] = {}  # by relay parent
        self.declared: dict[PeerId, int] = {}  # collator peer -> para
        self.adverts: dict[tuple[PeerId, bytes], set[bytes]] = {}  # (collator, rp) -> candidates
        self.seconded: dict[bytes, set[bytes]] = {}  # relay parent -> what we seconded there
        self.collations: dict[bytes, KnownCollation] = {}  # candidates we validated
        self.in_progress: set[bytes] = set()
        # Statements for candidates we cannot place yet (no receipt), by candidate and signer.
        self.unplaced: dict[bytes, dict[int, SignedStatement]] = {}
        self.published: dict[bytes, int] = {}  # candidate -> votes in our last BACKED gossip
        self.invalid = 0
        self._nursery: trio.Nursery | None = None
        net = v.net
        net.on_direct(Declare, self._on_declare)
        net.on_direct(AdvertiseCollation, self._on_advert)
        net.gossip.subscribe(Topic.STATEMENT, self._validate_statement, deliver_nothing)
        net.serve(Kind.ATTESTED, self._serve_attested)
        net.serve(Kind.POV, self._serve_pov)
        net.gossip.subscribe(Topic.BACKED, self._validate_backed, deliver_nothing)
        net.peers.add_listener(self)

    def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    # -- peers ----------------------------------------------------------------------------------

    def peer_connected(self, peer: PeerId) -> None:
        if peer not in self.v.relay_peers:
            self._spawn(self._expect_declare, peer)

    async def _expect_declare(self, peer: PeerId) -> None:
        """A peer that is not a relay node must declare itself a collator within a sixth of a slot
        (polkadot's 1 s at 6 s) or be dropped: idle connections cost us slots."""
        await trio.sleep(self.v.slot_s / 6)
        if self.v.net.peers.is_connected(peer) and peer not in self.declared:
            self.v.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            await self.v.net.peers.disconnect(peer)

    def peer_disconnected(self, peer: PeerId) -> None:
        self.declared.pop(peer, None)

    # -- relay parents --------------------------------------------------------------------------

    def _context(self, relay_parent: bytes) -> tuple[RelayState, int, SigningContext] | None:
        state, header = self.v.chain.state(relay_parent), self.v.chain.header(relay_parent)
        if state is None or header is None:
            return None
        return state, header.number, SigningContext(rt.session_index_for_child(state),
                                                    relay_parent)

    def _table(self, relay_parent: bytes) -> BackingTable | None:
        table = self.tables.get(relay_parent)
        if table is None:
            ctx = self._context(relay_parent)
            if ctx is None:
                return None
            state = ctx[0]
            table = self.tables[relay_parent] = BackingTable(
                ctx[2], state.validators, state.config.max_candidate_depth + 1)
        return table

    def on_leaf(self, header: RelayHeader) -> None:
        """Forget relay parents that left every leaf's scope and are below finality."""
        keep_from = self.v.chain.finalized.number - 2
        for rp in list(self.tables):
            h = self.v.chain.header(rp)
            if h is None or h.number < keep_from:
                self.tables.pop(rp, None)
                self.seconded.pop(rp, None)
        if len(self.unplaced) > MAX_UNPLACED:
            self.unplaced = {h: held for h, held in self.unplaced.items() if h in self.in_progress}
        for key in [k for k in self.adverts if k[1] not in self.tables
                    and self.v.chain.header(k[1]) is None]:
            del self.adverts[key]
        for c in [c for c, known in self.collations.items()
                  if (hd := self.v.chain.header(known.receipt.descriptor.relay_parent)) is None
                  or hd.number < keep_from]:
            del self.collations[c]
            self.published.pop(c, None)

    # -- collator protocol (validator side) -----------------------------------------------------

    async def _on_declare(self, peer: PeerId, msg: Declare) -> None:
        if msg.collator_id != peer or not msg.check(self.v.net.peer_id):
            self.v.net.peers.report(peer, COST_MALICIOUS)
            return
        if peer in self.declared:
            # The same Declare again is a collator unsure its first one arrived: harmless. A
            # second para on one connection is not.
            if self.declared[peer] != msg.para_id:
                self.v.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            return
        best = self.v.chain.state(self.v.chain.best_hash)
        if best is None or msg.para_id not in best.para_ids:
            await self.v.net.peers.disconnect(peer)
            return
        self.declared[peer] = msg.para_id

    async def _on_advert(self, peer: PeerId, msg: AdvertiseCollation) -> None:
        para = self.declared.get(peer)
        if para is None:
            self.v.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            return
        ctx = self._context(msg.relay_parent)
        if ctx is None or not self.v.prospective.is_relay_parent_allowed(para, msg.relay_parent):
            return  # out of our view: not the collator's fault if it is just ahead of us
        state, number, _ = ctx
        key = (peer, msg.relay_parent)
        seen = self.adverts.setdefault(key, set())
        if msg.candidate_hash not in seen:
            # Distinct candidates per collator and relay parent are capped by the claim queue;
            # a repeated advert (a retry after loss) costs nothing.
            if len(seen) >= state.config.lookahead:
                self.v.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
                return
            seen.add(msg.candidate_hash)
        cq = rt.claim_queue(state)
        ours = [c for c in cores_backed_by(state, self.v.index, number) if para in cq.get(c, [])]
        if not ours:
            self.v.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            return
        h = msg.candidate_hash
        if h in self.collations or h in self.in_progress or not self._room_at(msg.relay_parent):
            return
        hypo = HypotheticalCandidate(h, para, msg.relay_parent, msg.parent_head_data_hash)
        if not self.v.prospective.get_hypothetical_membership(hypo):
            return
        assert self._nursery is not None
        self.in_progress.add(h)
        self._nursery.start_soon(self._fetch_and_second, peer, para, msg)

    def _room_at(self, relay_parent: bytes) -> bool:
        table = self._table(relay_parent)
        return table is not None and \
            len(self.seconded.get(relay_parent, ())) < table.seconding_limit

    async def _fetch_and_second(self, peer: PeerId, para: int, msg: AdvertiseCollation) -> None:
        try:
            raw = await self.v.net.request(peer, Kind.COLLATION,
                                           FetchCollation(msg.relay_parent, para, msg.candidate_hash))
            response = decode(raw, CollationResponse)
        except (RequestError, DecodeError):
            self._done_with(msg.relay_parent, msg.candidate_hash)
            return
        try:
            await self._second(peer, para, msg, response)
        finally:
            self._done_with(msg.relay_parent, msg.candidate_hash)

    def _done_with(self, relay_parent: bytes, h: bytes) -> None:
        """A fetch ended; if it left us without the candidate while group members vouch for it,
        learn it from them instead."""
        self.in_progress.discard(h)
        if h in self.collations or not self.unplaced.get(h):
            return
        self.in_progress.add(h)
        self._spawn(self._learn_candidate, relay_parent, h)

    async def _second(self, peer: PeerId, para: int, msg: AdvertiseCollation,
                      response: CollationResponse) -> None:
        receipt, d = response.receipt, response.receipt.descriptor
        if d.para_id != para:
            self.v.net.peers.report(peer, COST_MALICIOUS)
            return
        parent_head = response.parent_head_data
        if receipt.hash() != msg.candidate_hash or d.relay_parent != msg.relay_parent \
                or parent_head is None or head_hash(parent_head) != msg.parent_head_data_hash:
            self.v.net.peers.report(peer, COST_MAJOR)
            return
        pvd = self.v.prospective.get_prospective_validation_data(
            para, d.relay_parent, msg.parent_head_data_hash, parent_head)
        ctx = self._context(d.relay_parent)
        if pvd is None or ctx is None or not self._room_at(d.relay_parent):
            return
        state, number, _ = ctx
        if d.core_index not in cores_backed_by(state, self.v.index, number):
            self.v.net.peers.report(peer, COST_MAJOR)
            return
        committed = self._validate(receipt, response.pov, pvd, state)
        if committed is None:
            self.v.net.peers.report(peer, COST_MAJOR)
            return
        if not self.v.prospective.introduce_seconded_candidate(para, committed, pvd):
            return  # the chain moved on while we validated
        h = committed.hash()
        signed = self._sign(d.relay_parent, StatementKind.SECONDED, h)
        if not self._durably_seconded(d.relay_parent, number, signed):
            return
        self.seconded.setdefault(d.relay_parent, set()).add(h)
        self.v.metrics.seconded.inc()
        self._import(d.relay_parent, signed, committed)
        self._import_unplaced(d.relay_parent, committed)
        self.v.net.peers.report(peer, BENEFIT_MINOR)
        await self.v.net.send_direct(peer, CollationSeconded(d.relay_parent, signed))
        await self._share(d.relay_parent, committed, signed)

    def _validate(self, receipt: CandidateReceipt, pov: PoV, pvd: PersistedValidationData,
                  state: RelayState) -> CommittedCandidateReceipt | None:
        try:
            committed, chunks = validate_collation(receipt, pov, pvd, state.n_validators,
                                                   state.config.execution_timeout_ms)
        except CollationInvalid as exc:
            self.invalid += 1
            self.v.log_event("collation invalid", error=str(exc))
            return None
        self.collations[committed.hash()] = KnownCollation(committed, pvd, pov)
        self.availability.store_all(committed.hash(), committed.descriptor.relay_parent, chunks)
        return committed

    def _durably_seconded(self, relay_parent: bytes, number: int, signed: SignedStatement) -> bool:
        """Write a Seconded to disk before it leaves this node; False if the store holds other
        Seconded statements at this relay parent up to the limit already (made before a
        restart): sending this one would be seconding more than allowed."""
        store, table = self.v.store, self.tables.get(relay_parent)
        if store is None or table is None:
            return True
        raw = encode(signed)
        previous = store.record_seconded(relay_parent, signed.statement.candidate_hash, raw,
                                         relay_parent_number=number,
                                         limit=table.seconding_limit)
        return previous is None or previous == raw

    def _sign(self, relay_parent: bytes, kind: StatementKind, h: bytes) -> SignedStatement:
        ctx = self._context(relay_parent)
        assert ctx is not None
        self.v.metrics.signed_statements.inc()
        return SignedStatement.sign(self.v.key, CompactStatement(kind, h), ctx[2], self.v.index)

    # -- statements -----------------------------------------------------------------------------

    def _group_of(self, receipt: CommittedCandidateReceipt) -> list[int] | None:
        ctx = self._context(receipt.descriptor.relay_parent)
        if ctx is None:
            return None
        return backing_group(ctx[0], receipt.descriptor.core_index, ctx[1])

    def _import(self, relay_parent: bytes, signed: SignedStatement,
                receipt: CommittedCandidateReceipt) -> bool:
        """Into our table (raises `BackingError`); marks it backed in prospective parachains once
        it reaches the threshold. True if the statement was new."""
        table, group = self._table(relay_parent), self._group_of(receipt)
        if table is None or group is None:
            return False
        new = table.import_statement(signed, group, receipt.descriptor.core_index, receipt)
        state = self.v.chain.state(relay_parent)
        if new and state is not None and table.is_backable(receipt.hash(),
                                                           state.config.minimum_backing_votes):
            self.v.prospective.candidate_backed(receipt.descriptor.para_id, receipt.hash())
        return new

    def _import_all(self, relay_parent: bytes, statements: list[SignedStatement],
                    receipt: CommittedCandidateReceipt) -> bool:
        """Seconded statements first (a Valid needs its candidate in the table); True if any
        was new. The first refused statement's `BackingError` stops the import."""
        new = False
        for s in sorted(statements, key=lambda s: s.statement.kind != StatementKind.SECONDED):
            new = self._import(relay_parent, s, receipt) or new
        return new

    async def _share(self, relay_parent: bytes, receipt: CommittedCandidateReceipt,
                     signed: SignedStatement) -> None:
        """Our statement to the rest of the group, the candidate to everyone once backable.
        Statements are gossiped, not sent to the group alone: every validator forwards a
        well-signed statement, so a lost message has other paths to the group."""
        await self.v.net.gossip.publish(Topic.STATEMENT,
                                        encode(StatementMessage(relay_parent, signed)))
        await self._publish_if_backable(relay_parent, receipt.hash())

    async def _publish_if_backable(self, relay_parent: bytes, h: bytes) -> None:
        table, state = self.tables.get(relay_parent), self.v.chain.state(relay_parent)
        known = self.collations.get(h)
        if table is None or state is None or known is None:
            return
        entry = table.candidates.get(h)
        if entry is None or not table.is_backable(h, state.config.minimum_backing_votes):
            return
        if self.published.get(h, 0) >= len(entry.votes):
            return
        self.published[h] = len(entry.votes)
        await self.v.net.gossip.publish(Topic.BACKED, encode(_attested(entry, known.pvd)))

    def _validate_statement(self, _source: PeerId | None, data: bytes) -> Verdict:
        msg = decode(data, StatementMessage)
        signed = msg.statement
        ctx = self._context(msg.relay_parent)
        if ctx is None:
            return IGNORE
        state, number, signing = ctx
        v = signed.validator_index
        if v >= len(self.v.validators):
            return reject(COST_MAJOR)
        if not signed.check(self.v.validators[v], signing):
            return reject(COST_INVALID_SIGNATURE)
        h = signed.statement.candidate_hash
        table = self._table(msg.relay_parent)
        entry = table.candidates.get(h) if table else None
        if entry is not None:
            try:
                self._import(msg.relay_parent, signed, entry.receipt)
            except BackingError:
                return IGNORE
            self._spawn(self._publish_if_backable, msg.relay_parent, h)
        elif self._same_group(state, number, v):
            # Groups are disjoint: a statement from our own group is for a core we back.
            held = self.unplaced.setdefault(h, {})
            if len(held) < len(self.v.validators):
                held[v] = signed
            if h not in self.in_progress:
                self.in_progress.add(h)
                self._spawn(self._learn_candidate, msg.relay_parent, h)
        return ACCEPT

    def _import_unplaced(self, relay_parent: bytes, receipt: CommittedCandidateReceipt) -> None:
        for s in self.unplaced.pop(receipt.hash(), {}).values():
            try:
                self._import(relay_parent, s, receipt)
            except BackingError:
                continue

    def _same_group(self, state: RelayState, number: int, other: int) -> bool:
        mine = cores_backed_by(state, self.v.index, number)
        return any(other in (backing_group(state, c, number) or []) for c in mine)

    def _spawn(self, fn: Any, *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    async def _learn_candidate(self, rp: bytes, h: bytes) -> None:
        """Statements from our group for a candidate we do not have: fetch it from the validators
        that vouched for it (a few rounds: requests get lost), validate it, and vouch too."""
        try:
            for _ in range(LEARN_ROUNDS):
                table = self.tables.get(rp)
                entry = table.candidates.get(h) if table else None
                vouchers = set(self.unplaced.get(h, {})) | set(entry.votes if entry else ())
                for signer in sorted(vouchers - {self.v.index}):
                    if h in self.collations or await self._learn_from(self.v.peer_of(signer), rp, h):
                        return
                await trio.sleep(self.v.slot_s / 30)
        finally:
            self.in_progress.discard(h)

    async def _learn_from(self, peer: PeerId, rp: bytes, h: bytes) -> bool:
        """True once there is nothing more to do (learned, or the candidate is bad); False when
        this peer could not help."""
        try:
            raw = await self.v.net.request(peer, Kind.ATTESTED, FetchAttested(rp, h))
            attested = decode(raw, AttestedCandidate)
        except (RequestError, DecodeError):
            return False
        receipt = attested.receipt
        ctx = self._context(rp)
        group = self._group_of(receipt)
        pvd = attested.persisted_validation_data
        if receipt.hash() != h or receipt.descriptor.relay_parent != rp or ctx is None \
                or group is None or pvd.hash() != receipt.descriptor.persisted_validation_data_hash:
            self.v.net.peers.report(peer, COST_MAJOR)
            return False
        para = receipt.descriptor.para_id
        self.v.prospective.introduce_seconded_candidate(para, receipt, pvd)
        try:
            self._import_all(rp, attested.statements, receipt)
        except BackingError:
            self.v.net.peers.report(peer, COST_MAJOR)
            return False
        self._import_unplaced(rp, receipt)
        if self.v.index not in group or h in self.collations:
            await self._publish_if_backable(rp, h)
            return True
        try:
            raw = await self.v.net.request(peer, Kind.POV, FetchPoV(rp, h))
            pov = decode(raw, PoVResponse).pov
        except (RequestError, DecodeError):
            return False
        if pov is None:
            return False
        if self._validate(receipt.to_plain(), pov, pvd, ctx[0]) is None:
            return True  # invalid: we never vouch for it
        signed = self._sign(rp, StatementKind.VALID, h)
        self._import(rp, signed, receipt)
        await self._share(rp, receipt, signed)
        return True

    async def _serve_attested(self, _peer: PeerId, payload: bytes) -> bytes | None:
        req = decode(payload, FetchAttested)
        known, table = self.collations.get(req.candidate_hash), self.tables.get(req.relay_parent)
        entry = table.candidates.get(req.candidate_hash) if table else None
        if known is None or entry is None:
            return None
        return encode(_attested(entry, known.pvd))

    async def _serve_pov(self, _peer: PeerId, payload: bytes) -> bytes | None:
        req = decode(payload, FetchPoV)
        known = self.collations.get(req.candidate_hash)
        if known is None or known.receipt.descriptor.relay_parent != req.relay_parent:
            return encode(PoVResponse(None))
        return encode(PoVResponse(known.pov))

    # -- backed candidates from anyone ----------------------------------------------------------

    def _validate_backed(self, _source: PeerId | None, data: bytes) -> Verdict:
        attested = decode(data, AttestedCandidate)
        receipt, pvd = attested.receipt, attested.persisted_validation_data
        rp = receipt.descriptor.relay_parent
        if self._context(rp) is None or self._group_of(receipt) is None:
            return IGNORE
        if pvd.hash() != receipt.descriptor.persisted_validation_data_hash:
            return reject(COST_MAJOR)
        try:
            new = self._import_all(rp, attested.statements, receipt)
        except BackingError as exc:
            if exc.kind == BackingErrorKind.InvalidSignature:
                return reject(COST_INVALID_SIGNATURE)
            if exc.kind in (BackingErrorKind.NotInGroup, BackingErrorKind.DoubleVote):
                return reject(COST_MAJOR)
            return IGNORE
        table = self.tables[rp]
        state = self.v.chain.state(rp)
        assert state is not None
        if not table.is_backable(receipt.hash(), state.config.minimum_backing_votes):
            return IGNORE
        para = receipt.descriptor.para_id
        if self.v.prospective.introduce_seconded_candidate(para, receipt, pvd):
            self.v.prospective.candidate_backed(para, receipt.hash())
        return ACCEPT if new else IGNORE


def _attested(entry: CandidateVotes, pvd: PersistedValidationData) -> AttestedCandidate:
    """A candidate with its statements, in group order: what the BACKED gossip and the
    FetchAttested response carry."""
    return AttestedCandidate(entry.receipt, pvd,
                             [entry.votes[m] for m in entry.group if m in entry.votes])
