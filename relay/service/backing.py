"""Candidate backing on a validator: the validator side of the collator protocol (Declare,
adverts within limits, fetching collations), seconding after really re-executing the candidate,
statements within the backing group, and backed candidates sent to the next block authors.

Flow for a candidate at relay parent RP on core C (group G = the group backing C at RP):
1. a collator that declared its para advertises; a member of G that has room at RP and whose
   prospective view could hold the candidate fetches the collation, validates it, seconds it and
   tells the collator and the rest of G (a `StatementMessage` to each member, nobody else);
2. another member of G, seeing a Seconded it cannot place, fetches the receipt and validation data
   (`FetchAttested`) and the PoV (`FetchPoV`) from the sender, validates, and sends its Valid;
3. whoever sees the candidate reach the backing threshold sends it with its statements
   (`AttestedCandidate` on the BACKED topic) to the authors of the next two slots (round robin:
   known in advance), and again at every new leaf while the chain has not taken it; an author
   imports it into its table and its prospective view and can put it in its block.

State is grouped by lifetime, as polkadot's backing keeps it: `PerRelayParent` holds everything
about one relay parent (its statement table and seconding record, the adverts seen for it, the
candidates validated there, statements waiting for their candidate) and is dropped as a unit when
no active leaf's allowed ancestry holds that relay parent any more; what lives longer (a
collator's declared para, fetches in flight) is keyed by peer or task.

Re-execution runs off the event loop under the backing deadline (`pov_execution.py`): a candidate
whose re-execution times out is neither seconded nor voted for, and the timeout is logged.

A candidate a group member vouched for and we find invalid is disputed (`raise_invalid`, the
disputes subsystem). Malus modes (relay/service/malus.py): `suggest-garbage-candidate`
seconds, instead of the collation it validated, one with a garbage PoV (same outputs claimed, an
erasure root that matches the garbage, so it is available); `back-garbage` vouches for anything
its group seconds; `dispute-valid` disputes what it checks instead of vouching.

Spam bound per relay parent: a collator's distinct adverts are capped by the claim queue's length,
each validator seconds at most `max_candidate_depth + 1` candidates, and statements waiting for a
candidate are held only from our own group, at most `MAX_UNPLACED` candidates.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import trio

from proto.availability import make_chunks
from proto.candidate import (
    AvailableData,
    CandidateReceipt,
    CommittedCandidateReceipt,
    PersistedValidationData,
    PoV,
    head_hash,
)
from proto.codec import decode, encode
from proto.errors import DecodeError, SigningRefused
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
from relay.core.candidate_backing import backing_table, import_statements
from relay.core.candidate_validation import CollationInvalid, validate_collation
from relay.core.prospective.fragment_chain import HypotheticalCandidate
from relay.core.provisioner import backing_group, cores_backed_by
from relay.core.state import RelayState
from relay.service.availability import Availability
from relay.service.pov_execution import (
    ExecutionTimedOut,
    InlineExecution,
    PovExecution,
    deadline_s,
)
from relay.service.validator_context import ValidatorContext

LEARN_ROUNDS = 3
RaiseInvalid = Callable[[CandidateReceipt, Sequence[SignedStatement]], None]
MAX_UNPLACED = 256  # candidates per relay parent with statements waiting for their receipt


@dataclass
class KnownCollation:
    """A candidate this validator validated (polkadot's PerCandidateState): what it serves to
    group members and block authors."""

    receipt: CommittedCandidateReceipt
    pvd: PersistedValidationData
    pov: PoV
    published: int = 0  # votes in our last BACKED gossip of it


@dataclass
class PerRelayParent:
    """Everything backing keeps about one relay parent; dropped as a unit."""

    state: RelayState
    number: int
    signing: SigningContext
    table: BackingTable
    seconded: set[bytes] = field(default_factory=set)  # what we seconded here
    adverts: dict[PeerId, set[bytes]] = field(default_factory=dict)  # collator -> candidates
    collations: dict[bytes, KnownCollation] = field(default_factory=dict)
    # Statements for candidates we cannot place yet (no receipt), by candidate and signer.
    unplaced: dict[bytes, dict[int, SignedStatement]] = field(default_factory=dict)
    # Our own statements sent to the group, by candidate: sent again until it is backable.
    shared: dict[bytes, SignedStatement] = field(default_factory=dict)


class Backing:
    def __init__(self, v: ValidatorContext, availability: Availability,
                 execution: PovExecution | None = None,
                 raise_invalid: RaiseInvalid | None = None, malus: str | None = None) -> None:
        self.v = v
        self.availability = availability
        self.execution = execution or InlineExecution()
        self.timed_out = 0  # candidates not backed: re-execution past its deadline
        self.raise_invalid = raise_invalid
        self.malus = malus
        self.garbage: deque[bytes] = deque(maxlen=1024)  # malus: the garbage it seconded
        self.per_relay_parent: dict[bytes, PerRelayParent] = {}
        self.declared: dict[PeerId, int] = {}  # collator peer -> para
        self.in_progress: set[bytes] = set()  # candidates being fetched or learnt
        self.seconded_total = 0
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
        (polkadot's 1 s at 6 s) or be dropped: idle connections cost us slots. Whether it is a
        relay node is asked again at the deadline: a relay node learnt at run time (not in the
        chain spec) connects before discovery has verified what it is, a few milliseconds
        later."""
        await trio.sleep(self.v.slot_s / 6)
        if peer in self.v.relay_peers:
            return
        if self.v.net.peers.is_connected(peer) and peer not in self.declared:
            self.v.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            await self.v.net.peers.disconnect(peer)

    def peer_disconnected(self, peer: PeerId) -> None:
        self.declared.pop(peer, None)

    # -- relay parents --------------------------------------------------------------------------

    @property
    def tables(self) -> dict[bytes, BackingTable]:
        """Each relay parent's statement table (what the block author provisions from)."""
        return {rp: per.table for rp, per in self.per_relay_parent.items()}

    def _rp(self, relay_parent: bytes) -> PerRelayParent | None:
        """The state of a relay parent this node has imported, made on first use."""
        per = self.per_relay_parent.get(relay_parent)
        if per is None:
            state, header = self.v.chain.state(relay_parent), self.v.chain.header(relay_parent)
            if state is None or header is None:
                return None
            signing = SigningContext(rt.session_index_for_child(state), relay_parent)
            per = self.per_relay_parent[relay_parent] = PerRelayParent(
                state, header.number, signing, backing_table(signing, state))
        return per

    def _collation(self, relay_parent: bytes, h: bytes) -> KnownCollation | None:
        per = self.per_relay_parent.get(relay_parent)
        return per.collations.get(h) if per else None

    def on_leaf(self, header: RelayHeader) -> None:
        """Drop every relay parent that no active leaf's allowed ancestry holds any more."""
        in_scope = self.v.prospective.relay_parents_in_scope()
        for rp in [rp for rp in self.per_relay_parent if rp not in in_scope]:
            del self.per_relay_parent[rp]
        self._spawn(self.offer_backed)

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
        if self.v.is_syncing:
            return  # we cannot judge a candidate on a chain we are still catching up with
        per = self._rp(msg.relay_parent)
        if per is None or not self.v.prospective.is_relay_parent_allowed(para, msg.relay_parent):
            return  # out of our view: not the collator's fault if it is just ahead of us
        seen = per.adverts.setdefault(peer, set())
        if msg.candidate_hash not in seen:
            # Distinct candidates per collator and relay parent are capped by the claim queue;
            # a repeated advert (a retry after loss) costs nothing.
            if len(seen) >= per.state.config.lookahead:
                self.v.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
                return
            seen.add(msg.candidate_hash)
        cq = rt.claim_queue(per.state)
        ours = [c for c in cores_backed_by(per.state, self.v.index, per.number)
                if para in cq.get(c, [])]
        if not ours:
            self.v.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            return
        h = msg.candidate_hash
        if h in per.collations or h in self.in_progress or not _room(per):
            return
        hypo = HypotheticalCandidate(h, para, msg.relay_parent, msg.parent_head_data_hash)
        if not self.v.prospective.get_hypothetical_membership(hypo):
            return
        assert self._nursery is not None
        self.in_progress.add(h)
        self._nursery.start_soon(self._fetch_and_second, peer, para, msg)

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
        per = self.per_relay_parent.get(relay_parent)
        if per is None or h in per.collations or not per.unplaced.get(h):
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
        per = self._rp(d.relay_parent)
        if pvd is None or per is None or not _room(per):
            return
        if d.core_index not in cores_backed_by(per.state, self.v.index, per.number):
            self.v.net.peers.report(peer, COST_MAJOR)
            return
        try:
            committed = await self._validate(per, receipt, response.pov, pvd)
        except ExecutionTimedOut:
            return  # ours to be slow or its to be heavy: not seconded, nobody charged
        if committed is None:
            self.v.net.peers.report(peer, COST_MAJOR)
            return
        garbage = self.malus == "suggest-garbage-candidate"
        if garbage:
            committed = self._garbage(per, committed, pvd)
        if self.v.is_syncing:
            return  # fell behind while validating: no statement until caught up
        if not self.v.prospective.introduce_seconded_candidate(para, committed, pvd):
            return  # the chain moved on while we validated
        h = committed.hash()
        signed = self._sign(per, StatementKind.SECONDED, h)
        if not self._durably_seconded(d.relay_parent, per, signed):
            return
        per.seconded.add(h)
        self.seconded_total += 1
        if garbage:
            self.garbage.append(h)
        self.v.metrics.seconded.inc()
        self._import(per, [signed], committed)
        self._import_unplaced(per, committed)
        self.v.net.peers.report(peer, BENEFIT_MINOR)
        if garbage:
            self.v.log_event("malus: seconded garbage", candidate="0x" + h.hex()[:16])
        else:  # the collator never made the garbage one
            await self.v.net.send_direct(peer, CollationSeconded(d.relay_parent, signed))
        await self._share(d.relay_parent, committed, signed)

    async def _validate(self, per: PerRelayParent, receipt: CandidateReceipt, pov: PoV,
                        pvd: PersistedValidationData) -> CommittedCandidateReceipt | None:
        """The committed receipt of a valid candidate (its chunks stored), None if invalid;
        `ExecutionTimedOut` (logged) when re-execution does not finish by the deadline."""
        timeout_ms = per.state.config.execution_timeout_ms
        try:
            committed, chunks = await self.execution.run(
                deadline_s(timeout_ms), validate_collation, receipt, pov, pvd,
                per.state.n_validators, timeout_ms)
        except ExecutionTimedOut as exc:
            self.timed_out += 1
            self.v.log_event("candidate validation timed out", para=receipt.descriptor.para_id,
                             candidate="0x" + receipt.hash().hex()[:16], error=str(exc))
            raise
        except CollationInvalid as exc:
            self.invalid += 1
            self.v.log_event("collation invalid", error=str(exc))
            return None
        per.collations[committed.hash()] = KnownCollation(committed, pvd, pov)
        self.availability.store_all(committed.hash(), committed.descriptor.relay_parent,
                                    AvailableData(pov, pvd), chunks)
        return committed

    def _garbage(self, per: PerRelayParent, committed: CommittedCandidateReceipt,
                  pvd: PersistedValidationData) -> CommittedCandidateReceipt:
        """Malus: the same claimed outputs with a PoV that is no para block. Its chunks are made
        from the garbage, so it passes availability and fails only re-execution."""
        pov = PoV(b"garbage:" + committed.hash())
        return self._store_unchecked(per, committed, pov, pvd, pov_changed=True)

    def _store_unchecked(self, per: PerRelayParent, committed: CommittedCandidateReceipt,
                         pov: PoV, pvd: PersistedValidationData,
                         pov_changed: bool = False) -> CommittedCandidateReceipt:
        """Malus: keep a collation (and its chunks) without its PoV having passed validation."""
        data = AvailableData(pov, pvd)
        root, chunks = make_chunks(data, per.state.n_validators)
        if pov_changed:
            d = msgspec.structs.replace(committed.descriptor, pov_hash=pov.hash(),
                                        erasure_root=root)
            committed = CommittedCandidateReceipt(d, committed.commitments)
        per.collations[committed.hash()] = KnownCollation(committed, pvd, pov)
        self.availability.store_all(committed.hash(), committed.descriptor.relay_parent, data,
                                    chunks)
        return committed

    def _durably_seconded(self, relay_parent: bytes, per: PerRelayParent,
                          signed: SignedStatement) -> bool:
        """Write a Seconded to disk before it leaves this node; False if the store holds other
        Seconded statements at this relay parent up to the limit already (made before a
        restart): sending this one would be seconding more than allowed."""
        store = self.v.store
        if store is None:
            return True
        raw = encode(signed)
        try:
            previous = store.record_seconded(relay_parent, signed.statement.candidate_hash, raw,
                                             relay_parent_number=per.number,
                                             limit=per.table.seconding_limit)
        except SigningRefused as exc:  # a relay parent finality has long left: skip it
            self.v.log_event("not seconded", number=per.number, reason=str(exc))
            return False
        return previous is None or previous == raw

    def _sign(self, per: PerRelayParent, kind: StatementKind, h: bytes) -> SignedStatement:
        self.v.metrics.signed_statements.inc()
        return SignedStatement.sign(self.v.key, CompactStatement(kind, h), per.signing,
                                    self.v.index)

    # -- statements -----------------------------------------------------------------------------

    def _group_of(self, per: PerRelayParent, receipt: CommittedCandidateReceipt) -> list[int] | None:
        return backing_group(per.state, receipt.descriptor.core_index, per.number)

    def _import(self, per: PerRelayParent, statements: list[SignedStatement],
                receipt: CommittedCandidateReceipt) -> bool:
        """Into the relay parent's table (raises `BackingError`); prospective parachains learns
        the candidate is backed once it reaches the threshold. True if a statement was new."""
        group = self._group_of(per, receipt)
        if group is None:
            return False
        # Disabled validators (they lost a dispute) are not heard: their votes would not count
        # on chain, and a candidate only they vouch for must not crowd out another.
        best = self.v.chain.state(self.v.chain.best_hash)
        disabled = best.disabled - {self.v.index} if best is not None else frozenset()
        statements = [s for s in statements if s.validator_index not in disabled]
        if not statements:
            return False
        return import_statements(per.table, statements, group, receipt, self.v.prospective,
                                 per.state.config.minimum_backing_votes)

    async def _share(self, relay_parent: bytes, receipt: CommittedCandidateReceipt,
                     signed: SignedStatement) -> None:
        """Our statement to the rest of the group (nobody else uses it: statement distribution
        v2 keeps full statements within the group), the candidate to the next block authors
        once backable."""
        per = self.per_relay_parent.get(relay_parent)
        group = self._group_of(per, receipt) if per is not None else None
        if group:
            assert per is not None
            per.shared[receipt.hash()] = signed
            await self._to_group(relay_parent, group, signed)
        await self._publish_if_backable(relay_parent, receipt.hash())

    async def _to_group(self, relay_parent: bytes, group: list[int],
                        signed: SignedStatement) -> None:
        """Our statement to the other members of its backing group, the only ones who use it."""
        await self.v.net.gossip.send_to(
            Topic.STATEMENT, encode(StatementMessage(relay_parent, signed)),
            [self.v.peer_of(m) for m in group if m != self.v.index])

    async def _publish_if_backable(self, relay_parent: bytes, h: bytes) -> None:
        per = self.per_relay_parent.get(relay_parent)
        known = per.collations.get(h) if per else None
        if per is None or known is None:
            return
        entry = per.table.candidates.get(h)
        if entry is None or not per.table.is_backable(h, per.state.config.minimum_backing_votes):
            return
        if known.published >= len(entry.votes):
            return
        known.published = len(entry.votes)
        await self.v.net.gossip.send_to(Topic.BACKED, encode(_attested(entry, known.pvd)),
                                        self.v.upcoming_authors())

    async def offer_backed(self) -> None:
        """At each new leaf (and after a slot without a block), what we hold backable and the
        chain has not taken yet, to the authors of the next slots (they change every slot; one
        that already has it drops the copy unread by its seen-cache); and our statements on what
        is not backable yet, to the group again: statements go to the group members alone, so
        one sent before a member's link was up (at start-up, after a partition) is otherwise
        lost and the candidate never reaches its backing threshold."""
        for relay_parent, per in list(self.per_relay_parent.items()):
            for h, signed in list(per.shared.items()):
                known = per.collations.get(h)
                if per.table.is_backable(h, per.state.config.minimum_backing_votes) \
                        or known is None:
                    continue
                group = self._group_of(per, known.receipt)
                if group:
                    await self._to_group(relay_parent, group, signed)
        for per in list(self.per_relay_parent.values()):
            for h, known in list(per.collations.items()):
                entry = per.table.candidates.get(h)
                para = known.receipt.descriptor.para_id
                if entry is None or self.v.prospective.candidate_entry(para, h) is None \
                        or not per.table.is_backable(h, per.state.config.minimum_backing_votes):
                    continue
                await self.v.net.gossip.send_to(Topic.BACKED, encode(_attested(entry, known.pvd)),
                                                self.v.upcoming_authors())

    def _validate_statement(self, source: PeerId | None, data: bytes) -> Verdict:
        msg = decode(data, StatementMessage)
        signed = msg.statement
        per = self._rp(msg.relay_parent)
        if per is None:
            return IGNORE
        v = signed.validator_index
        if v >= len(self.v.validators):
            return reject(COST_MAJOR)
        if not signed.check(self.v.validators[v], per.signing):
            return reject(COST_INVALID_SIGNATURE)
        h = signed.statement.candidate_hash
        entry = per.table.candidates.get(h)
        if entry is not None:
            try:
                self._import(per, [signed], entry.receipt)
            except BackingError:
                return IGNORE
            self._spawn(self._publish_if_backable, msg.relay_parent, h)
        elif self._same_group(per, v):
            # Groups are disjoint: a statement from our own group is for a core we back.
            held = per.unplaced.get(h)
            if held is None and len(per.unplaced) < MAX_UNPLACED:
                held = per.unplaced[h] = {}
            if held is not None and len(held) < len(self.v.validators):
                held[v] = signed
            if h not in self.in_progress:
                self.in_progress.add(h)
                self._spawn(self._learn_candidate, msg.relay_parent, h)
        # A statement has no other path to the group than its members: each passes on what it
        # accepts once (the seen-cache stops the rest), so one lost frame does not cost a vote.
        # A group's size is fixed, so this is O(1) frames per statement, not O(n).
        group = self._group_with(per, v)
        if group:
            self._spawn(self.v.net.gossip.send_to, Topic.STATEMENT, data,
                        [self.v.peer_of(m) for m in group
                         if m not in (self.v.index, v) and self.v.peer_of(m) != source])
        return ACCEPT

    def _import_unplaced(self, per: PerRelayParent, receipt: CommittedCandidateReceipt) -> None:
        for s in per.unplaced.pop(receipt.hash(), {}).values():
            try:
                self._import(per, [s], receipt)
            except BackingError:
                continue

    def _same_group(self, per: PerRelayParent, other: int) -> bool:
        return self._group_with(per, other) is not None

    def _group_with(self, per: PerRelayParent, other: int) -> list[int] | None:
        """Our backing group at this relay parent if validator `other` is in it."""
        for c in cores_backed_by(per.state, self.v.index, per.number):
            group = backing_group(per.state, c, per.number) or []
            if other in group:
                return group
        return None

    def _spawn(self, fn: Any, *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    async def _learn_candidate(self, rp: bytes, h: bytes) -> None:
        """Statements from our group for a candidate we do not have: fetch it from the validators
        that vouched for it (a few rounds: requests get lost), validate it, and vouch too."""
        try:
            for _ in range(LEARN_ROUNDS):
                per = self.per_relay_parent.get(rp)
                if per is None:
                    return  # the relay parent left every leaf's scope
                entry = per.table.candidates.get(h)
                vouchers = set(per.unplaced.get(h, {})) | set(entry.votes if entry else ())
                for signer in sorted(vouchers - {self.v.index}):
                    if h in per.collations or await self._learn_from(self.v.peer_of(signer), rp, h):
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
        per = self._rp(rp)
        group = self._group_of(per, receipt) if per else None
        pvd = attested.persisted_validation_data
        if receipt.hash() != h or receipt.descriptor.relay_parent != rp or per is None \
                or group is None or pvd.hash() != receipt.descriptor.persisted_validation_data_hash:
            self.v.net.peers.report(peer, COST_MAJOR)
            return False
        para = receipt.descriptor.para_id
        self.v.prospective.introduce_seconded_candidate(para, receipt, pvd)
        try:
            self._import(per, attested.statements, receipt)
        except BackingError:
            self.v.net.peers.report(peer, COST_MAJOR)
            return False
        self._import_unplaced(per, receipt)
        if self.v.index not in group or h in per.collations:
            await self._publish_if_backable(rp, h)
            return True
        try:
            raw = await self.v.net.request(peer, Kind.POV, FetchPoV(rp, h))
            pov = decode(raw, PoVResponse).pov
        except (RequestError, DecodeError):
            return False
        if pov is None:
            return False
        try:
            valid = await self._validate(per, receipt.to_plain(), pov, pvd)
        except ExecutionTimedOut:
            return True  # not within the deadline: we do not vouch for it
        if valid is None:
            if self.malus == "back-garbage":
                self._store_unchecked(per, receipt, pov, pvd)
            else:  # invalid: we never vouch for it, and we dispute it
                self._dispute(per, receipt.to_plain(), h)
                return True
        elif self.malus == "dispute-valid":
            self._dispute(per, receipt.to_plain(), h)
            return True
        if self.v.is_syncing:
            return True  # no statement while catching up
        if h not in per.table.candidates:
            return True  # its Seconded went unheard (the seconder is disabled): nothing to back
        signed = self._sign(per, StatementKind.VALID, h)
        self._import(per, [signed], receipt)
        await self._share(rp, receipt, signed)
        return True

    def _dispute(self, per: PerRelayParent, receipt: CandidateReceipt, h: bytes) -> None:
        entry = per.table.candidates.get(h)
        if self.raise_invalid is not None and entry is not None and not self.v.is_syncing:
            self.raise_invalid(receipt, [s for m, s in sorted(entry.votes.items())
                                         if m != self.v.index])

    async def _serve_attested(self, _peer: PeerId, payload: bytes) -> bytes | None:
        req = decode(payload, FetchAttested)
        per = self.per_relay_parent.get(req.relay_parent)
        known = per.collations.get(req.candidate_hash) if per else None
        entry = per.table.candidates.get(req.candidate_hash) if per else None
        if known is None or entry is None:
            return None
        return encode(_attested(entry, known.pvd))

    async def _serve_pov(self, _peer: PeerId, payload: bytes) -> bytes | None:
        req = decode(payload, FetchPoV)
        known = self._collation(req.relay_parent, req.candidate_hash)
        return encode(PoVResponse(known.pov if known else None))

    # -- backed candidates from anyone ----------------------------------------------------------

    def _validate_backed(self, source: PeerId | None, data: bytes) -> Verdict:
        attested = decode(data, AttestedCandidate)
        if not attested.statements:
            return reject(COST_MAJOR)  # never sent by an honest node: backed means votes
        receipt, pvd = attested.receipt, attested.persisted_validation_data
        per = self._rp(receipt.descriptor.relay_parent)
        if per is None or self._group_of(per, receipt) is None:
            return IGNORE
        if pvd.hash() != receipt.descriptor.persisted_validation_data_hash:
            return reject(COST_MAJOR)
        try:
            new = self._import(per, attested.statements, receipt)
        except BackingError as exc:
            if exc.kind == BackingErrorKind.InvalidSignature:
                return reject(COST_INVALID_SIGNATURE)
            if exc.kind in (BackingErrorKind.NotInGroup, BackingErrorKind.DoubleVote):
                return reject(COST_MAJOR)
            return IGNORE
        if not per.table.is_backable(receipt.hash(), per.state.config.minimum_backing_votes):
            return IGNORE
        para = receipt.descriptor.para_id
        if self.v.prospective.introduce_seconded_candidate(para, receipt, pvd):
            self.v.prospective.candidate_backed(para, receipt.hash())
        if not new:
            return IGNORE
        self._spawn(self._pass_on_backed, data, source)
        return ACCEPT

    async def _pass_on_backed(self, data: bytes, source: PeerId | None) -> None:
        """The upcoming authors pass a backed candidate on to each other once: a second path to
        each of them when a frame is lost."""
        await self.v.net.gossip.send_to(Topic.BACKED, data,
                                        [p for p in self.v.upcoming_authors() if p != source])


def _room(per: PerRelayParent) -> bool:
    """Whether we may still second a candidate at this relay parent."""
    return len(per.seconded) < per.table.seconding_limit


def _attested(entry: CandidateVotes, pvd: PersistedValidationData) -> AttestedCandidate:
    """A candidate with its statements, in group order: what the BACKED gossip and the
    FetchAttested response carry."""
    return AttestedCandidate(entry.receipt, pvd,
                             [entry.votes[m] for m in entry.group if m in entry.votes])
