"""Disputes on a validator (polkadot's dispute-coordinator, dispute-distribution and chain
selection's revert, as one trio shell around `relay.core.disputes.DisputeCoordinator`).

- **Raising.** A backer that finds a candidate its group vouched for invalid (`raise_invalid`,
  called by `backing.py`) signs an explicit invalid vote and gossips it with one backing vote
  from the other side (`UncheckedDisputeMessage` on `Topic.DISPUTE`). An approval checker that
  finds an included candidate invalid does the same (`raise_from_approval`, called by
  `approvals.py`), its valid side the backing votes of the block that backed it: the way garbage
  that a whole colluding group backed is caught. `raised` records which of the two raised it here.
- **Participating.** Every validator that learns of a dispute re-validates the candidate once a
  block on its chain has backed it (before that there is no backing group to recover from and
  nothing to revert): the available data is recovered whole from a backer if it is small and
  matches the erasure root (`recovery.py`), else from erasure chunks (all of them from a backer,
  else one from each validator), the PoV re-executed (through `pov_execution.py`; a
  timeout casts no vote), and its vote gossiped.
- **Concluding.** More than two thirds on a side decide. Concluded invalid: every unfinalized
  block that backed or included the candidate goes with its descendants (`chain reverted` in the
  log, the validator moves its leaves and votes to the new best). Block authors put the votes the chain
  has not counted into their blocks (`inherent_disputes`); the runtime then reports and disables
  the losers (relay/core/disputes/onchain.py).
- **Finality.** `backs_nothing_disputed(block)`: finality votes stop below the first block backing
  a candidate that is disputed and not concluded valid.

Malus `dispute-valid` votes invalid on every candidate it checks, and disputes the ones it backs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from proto.availability import ErasureChunk, recover
from proto.candidate import CandidateReceipt
from proto.codec import decode, encode
from proto.disputes import (
    DisputeStatementKind,
    DisputeStatementSet,
    SignedDisputeStatement,
    UncheckedDisputeMessage,
)
from proto.erasure import ErasureError, recovery_threshold
from proto.errors import DecodeError
from proto.messages import ChunkRequest, ChunkResponse
from proto.network import (
    ACCEPT,
    COST_INVALID_SIGNATURE,
    COST_MAJOR,
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
from proto.shared_work import shared
from proto.statements import BackedCandidate, SignedStatement, StatementKind
from relay.core.candidate_validation import CollationInvalid, validate_collation
from relay.core.disputes.coordinator import (
    DisputeCoordinator,
    DisputeError,
    DisputeErrorKind,
    DisputeOutcome,
    DisputeStatus,
)
from relay.core.disputes.revert import blocks_to_revert
from relay.core.disputes.votes import backing_statements
from relay.core.events import CandidateEvent, DisputeResult, EventKind, RelayEvent
from relay.core.state import RelayState
from relay.service.availability import Availability
from relay.service.pov_execution import (
    ExecutionTimedOut,
    InlineExecution,
    PovExecution,
    approval_deadline_s,
)
from relay.service.recovery import AvailabilityRecovery
from relay.service.validator_context import ValidatorContext

MAX_SETS_PER_BLOCK = 16
KEPT_BELOW_FINALIZED = 64  # blocks below finality whose candidates' votes are still kept
# Pruning looks at every candidate kept (at 300 validators / 60 paras ~4,000 a node), so it runs
# once finality has moved this many blocks, not at every block: what is kept stays between
# KEPT_BELOW_FINALIZED and that plus PRUNE_EVERY blocks below finality.
PRUNE_EVERY = 16
RECOVERY_ROUNDS = 3


@dataclass(frozen=True)
class BackedOnChain:
    """Where our chain backed a candidate: what participation recovers the data from."""

    receipt: CandidateReceipt
    block_hash: bytes
    number: int
    session_index: int
    backers: tuple[int, ...]


def _backing_votes(backed_candidates: Sequence[BackedCandidate], events: Sequence[RelayEvent],
                   state: RelayState) -> dict[bytes, tuple[int, tuple[SignedDisputeStatement, ...]]]:
    """Per candidate a block backed: its session and its backers' votes as dispute
    statements."""
    by_hash = {b.hash(): b for b in backed_candidates}
    groups = state.scheduler.groups
    out = {}
    for e in events:
        if not isinstance(e, CandidateEvent) or e.kind is not EventKind.BACKED:
            continue
        backed = by_hash.get(e.candidate_hash)
        if backed is None:
            continue
        session = backed.candidate.descriptor.session_index
        group = groups[e.group] if e.group < len(groups) else []
        out[e.candidate_hash] = (session, tuple(backing_statements(backed, group, session)))
    return out


@dataclass(frozen=True)
class Revert:
    candidate_hash: bytes
    backed_in: int  # the lowest reverted block that backed or included it
    best_before: int  # the best block number when the revert happened
    blocks: int  # how many blocks went


class Disputes:
    def __init__(self, v: ValidatorContext, availability: Availability,
                 on_reverted: Callable[[], Awaitable[None]], malus: str | None = None,
                 execution: PovExecution | None = None) -> None:
        self.v = v
        self.execution = execution or InlineExecution()  # inline: the simulation
        self.availability = availability
        self.recovery = AvailabilityRecovery(v, availability)
        self.on_reverted = on_reverted
        self.malus = malus
        state = v.chain.state(v.chain.best_hash)
        config = v.chain.config
        self.coordinator = DisputeCoordinator(config.dispute_period,
                                              config.dispute_post_conclusion_acceptance_period)
        if state is not None:
            self.coordinator.note_session(state.session_index, state.validators)
        self.backed: dict[bytes, BackedOnChain] = {}  # candidate -> where our chain backed it
        self.participating: set[bytes] = set()
        # Candidates this validator disputed first-hand, and how: "backing" or "approval".
        self.raised: dict[bytes, str] = {}
        self.concluded: dict[bytes, DisputeResult] = {}
        self.reverts: list[Revert] = []
        self.finalized_invalid = 0  # concluded invalid after a block including it was final
        self.participated = 0  # candidates re-executed to vote in their dispute
        self.recovered_from_backers = 0  # of their data, fetched whole from a backer
        self._nursery: trio.Nursery | None = None
        self._pruned_to = 0  # the floor of the last prune
        v.net.gossip.subscribe(Topic.DISPUTE, self._validate_message, deliver_nothing)

    def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    @property
    def now(self) -> int:
        return self.v.chain.best.number

    # -- blocks -------------------------------------------------------------------------------

    def on_leaf(self, header: RelayHeader) -> None:
        """A block joined our chain: note its session and the candidates it backed (their
        backing votes count as valid votes; one concluded invalid reverts it)."""
        h = header.hash()
        state = self.v.chain.state(h)
        block = self.v.chain.blocks.get(h)
        if state is None or block is None:
            return
        self.coordinator.note_session(state.session_index, state.validators)
        events = self.v.chain.events.get(h, [])
        # The same on every node that imported the block: the simulated nodes build them once
        # (`proto.shared_work`), keyed by the block's hash, which commits to its body and state.
        backing = shared("block_backing_votes", h,
                         partial(_backing_votes, block.body.backed_candidates, events, state))
        for e in events:
            if isinstance(e, CandidateEvent) and e.kind is EventKind.INCLUDED:
                self._note_inclusion(e, h, header.number)
            if not isinstance(e, CandidateEvent) or e.kind is not EventKind.BACKED:
                continue
            if e.candidate_hash not in backing:
                continue
            session, votes = backing[e.candidate_hash]
            self.backed[e.candidate_hash] = BackedOnChain(
                e.receipt, h, header.number, session, tuple(v.validator_index for v in votes))
            try:
                outcome = self.coordinator.note_included(session, e.receipt, h, header.number,
                                                         votes, self.now)
            except DisputeError as exc:
                self.v.log_event("backing votes not counted", error=str(exc))
                continue
            self._handle(outcome, e.candidate_hash)
            if self.malus == "dispute-valid" and e.candidate_hash not in self.participating:
                self.participating.add(e.candidate_hash)  # malus: dispute what it checks
                self._spawn(self._participate, session, e.candidate_hash)
            self._participate_if_disputed(session, e.candidate_hash)
        self._prune()

    def _note_inclusion(self, e: CandidateEvent, h: bytes, number: int) -> None:
        """A block of ours included the candidate (made it available): it goes too if the
        candidate concludes invalid. Approval checking finds garbage only once it is included,
        when the block that backed it may be final already; this block cannot be (finality
        waits for its approvals), so reverting it is what keeps the garbage out of the chain
        (the runtime then frees it from its core)."""
        session = e.receipt.descriptor.session_index
        try:
            outcome = self.coordinator.note_included(session, e.receipt, h, number, [], self.now)
        except DisputeError:
            return  # a session too old to dispute
        self._handle(outcome, e.candidate_hash)

    def _prune(self) -> None:
        """Bounded over months: what lies `KEPT_BELOW_FINALIZED` blocks below finality is
        forgotten, votes and all, unless its dispute is still open (an open one about a
        candidate no block took goes as well, that long after we first heard of it)."""
        floor = self.v.chain.finalized.number - KEPT_BELOW_FINALIZED
        if floor < self._pruned_to + PRUNE_EVERY:
            return
        self._pruned_to = floor
        self.backed = {h: b for h, b in self.backed.items() if b.number > floor}
        c = self.coordinator
        for key, votes in list(c.candidates.items()):
            seen = max(votes.included_in.values(), default=votes.noted_at)
            if seen <= floor and not (votes.included_in and votes.status in (
                    DisputeStatus.Active, DisputeStatus.Confirmed)):
                del c.candidates[key]
                self.concluded.pop(key[1], None)
        known = {h for _, h in c.candidates}
        self.raised = {h: how for h, how in self.raised.items() if h in known}

    # -- raising ------------------------------------------------------------------------------

    def raise_invalid(self, receipt: CandidateReceipt, statements: Sequence[SignedStatement],
                      backed: BackedCandidate | None = None) -> None:
        """We found `receipt` invalid; `statements` are its backers' (signed on its relay
        parent): one of them is the valid side of the dispute we raise."""
        if not statements:
            return
        h = receipt.hash()
        session = receipt.descriptor.session_index
        votes = []
        for s in statements:
            kind = DisputeStatementKind.BACKING_SECONDED \
                if s.statement.kind is StatementKind.SECONDED else DisputeStatementKind.BACKING_VALID
            votes.append(SignedDisputeStatement(kind, h, session, s.validator_index,
                                                receipt.descriptor.relay_parent, s.signature))
        try:
            self._handle(self.coordinator.import_statements(session, h, votes, self.now, receipt),
                         h)
        except DisputeError as exc:
            self.v.log_event("dispute not raised", error=str(exc))
            return
        self.raised.setdefault(h, "backing")
        self._spawn(self._vote, session, h, False)

    def raise_from_approval(self, receipt: CandidateReceipt) -> None:
        """An approval check found the included candidate `receipt` invalid. Its backers' votes
        were counted as valid votes when a block of ours backed it (`on_leaf`): our invalid vote
        disputes it, and the message carries one of theirs."""
        h = receipt.hash()
        where = self.backed.get(h)
        if where is None:  # no block of ours backed it: nothing to revert, nobody to answer
            self.v.log_event("dispute not raised: no block on our chain backed it",
                             candidate="0x" + h.hex()[:16])
            return
        if self.coordinator.has_voted(where.session_index, h, self.v.index):
            return  # already in its dispute
        self.raised.setdefault(h, "approval")
        self.v.log_event("dispute raised by approval checking", candidate="0x" + h.hex()[:16])
        self._spawn(self._vote, where.session_index, h, False)

    # -- messages -----------------------------------------------------------------------------

    def _validate_message(self, _source: PeerId | None, data: bytes) -> Verdict:
        msg = decode(data, UncheckedDisputeMessage)
        h = msg.candidate_receipt.hash()
        invalid, valid = msg.invalid_vote, msg.valid_vote
        if invalid.valid or not valid.valid:
            return reject(COST_MAJOR)
        if any(x.candidate_hash != h or x.session_index != msg.session_index
               for x in (invalid, valid)):
            return reject(COST_MAJOR)
        c = self.coordinator
        if c.has_voted(msg.session_index, h, invalid.validator_index) \
                and c.has_voted(msg.session_index, h, valid.validator_index):
            return IGNORE  # nothing new (an echo)
        best = self.v.chain.state(self.v.chain.best_hash)
        if c.status(msg.session_index, h) is None and best is not None \
                and invalid.validator_index in best.disabled:
            return IGNORE  # a disabled validator cannot start a dispute (it lost one before)
        try:
            outcome = c.import_statements(msg.session_index, h, [invalid, valid], self.now,
                                          msg.candidate_receipt)
        except DisputeError as exc:
            if exc.kind == DisputeErrorKind.InvalidSignature:
                return reject(COST_INVALID_SIGNATURE)
            if exc.kind in (DisputeErrorKind.AncientDisputeStatement,
                            DisputeErrorKind.UnknownSession):
                return IGNORE
            return reject(COST_MAJOR)
        self._handle(outcome, h)
        self._participate_if_disputed(msg.session_index, h)
        return ACCEPT

    # -- participation ------------------------------------------------------------------------

    def _participate_if_disputed(self, session: int, h: bytes) -> None:
        c = self.coordinator
        status = c.status(session, h)
        if status is None or c.has_voted(session, h, self.v.index) or h in self.participating:
            return
        if h not in self.backed:
            return  # waits for a block backing it (see the module docstring)
        self.participating.add(h)
        self._spawn(self._participate, session, h)

    async def _participate(self, session: int, h: bytes) -> None:
        try:
            valid = await self._check(self.backed[h])
            if valid is None:
                self.v.log_event("dispute participation: no verdict",
                                 candidate="0x" + h.hex()[:16])
                return
            if self.malus == "dispute-valid":
                valid = False
            await self._vote(session, h, valid)
        finally:
            self.participating.discard(h)

    async def _check(self, where: BackedOnChain) -> bool | None:
        """Recover the candidate's available data and re-execute it; None if unavailable or
        the re-execution timed out."""
        receipt = where.receipt
        h = receipt.hash()
        n = len(self.v.validators)
        root = receipt.descriptor.erasure_root
        chunks: dict[int, ErasureChunk] = {}
        held = self.availability.all.get(h)
        if held is not None:
            chunks = dict(enumerate(held))
        elif (own := self.availability.own.get(h)) is not None:
            chunks[own.index] = own
        need = recovery_threshold(n)
        data = None if held is not None else \
            await self.recovery.from_backers(h, root, n, where.backers)
        if data is not None:
            self.recovered_from_backers += 1
        # Backers hold every chunk; anyone else holds its own.
        order = list(where.backers) + [i for i in range(n) if i not in where.backers]
        for _ in range(RECOVERY_ROUNDS):
            if data is not None or len(chunks) >= need:
                break
            for holder in order:
                if len(chunks) >= need:
                    break
                if holder == self.v.index:
                    continue
                wanted = [i for i in range(n) if i not in chunks] if holder in where.backers \
                    else ([holder] if holder not in chunks else [])
                for index in wanted:
                    if len(chunks) >= need:
                        break
                    chunk = await self._fetch_chunk(holder, h, index)
                    if chunk is None:
                        break
                    chunks[index] = chunk
            else:
                await trio.sleep(self.v.slot_s / 6)
        if data is None:
            try:
                data = recover(list(chunks.values()), n, root)
            except (ErasureError, DecodeError):
                return None
        state = self.v.chain.state(where.block_hash)
        timeout = state.config.execution_timeout_ms if state is not None \
            else self.v.chain.config.execution_timeout_ms
        try:
            await self.execution.run(approval_deadline_s(timeout), validate_collation, receipt,
                                     data.pov, data.validation_data, n, timeout)
        except ExecutionTimedOut as exc:  # no verdict: a loaded machine must not vote invalid
            self.v.log_event("dispute participation: re-execution timed out",
                             candidate="0x" + h.hex()[:16], error=str(exc))
            return None
        except CollationInvalid as exc:
            self.participated += 1
            self.v.log_event("dispute participation: invalid", candidate="0x" + h.hex()[:16],
                             error=str(exc))
            return False
        self.participated += 1
        return True

    async def _fetch_chunk(self, holder: int, h: bytes, index: int) -> ErasureChunk | None:
        try:
            raw = await self.v.net.request(self.v.peer_of(holder), Kind.CHUNK,
                                           ChunkRequest(h, index))
            chunk = decode(raw, ChunkResponse).chunk
        except (RequestError, DecodeError):
            return None
        if chunk is None or chunk.index != index:
            return None
        return chunk

    async def _vote(self, session: int, h: bytes, valid: bool) -> None:
        c = self.coordinator
        if c.has_voted(session, h, self.v.index):
            return
        try:
            own, outcome = c.issue_local_statement(self.v.key, self.v.index, session, h, valid,
                                                   self.now)
        except DisputeError as exc:
            self.v.log_event("dispute vote not cast", error=str(exc))
            return
        self.v.log_event("dispute vote", candidate="0x" + h.hex()[:16], valid=valid)
        self._handle(outcome, h)
        msg = c.dispute_message(session, h, own)
        if msg is not None:
            await self.v.net.gossip.publish(Topic.DISPUTE, encode(msg))
        self._participate_if_disputed(session, h)

    # -- outcomes -----------------------------------------------------------------------------

    def _handle(self, outcome: DisputeOutcome, h: bytes) -> None:
        m = self.v.metrics
        if outcome.initiated:
            m.disputes_total.inc()
            self.v.log_event("dispute initiated", candidate="0x" + h.hex()[:16])
        for result in outcome.concluded:
            self.concluded[h] = result
            m.dispute_concluded.labels(result.value.lower()).inc()
            self.v.log_event("dispute concluded", candidate="0x" + h.hex()[:16],
                             validity=result.value.lower())
        if outcome.revert_from:
            self._revert(h, outcome.revert_from)
        elif outcome.concluded:
            self._spawn(self.on_reverted)  # finality may move again

    def _revert(self, h: bytes, including: frozenset[bytes]) -> None:
        chain = self.v.chain
        plan = blocks_to_revert(chain.tree, including)
        # A final block that only backed it is no harm (the candidate was pending availability
        # there; the runtime frees it); one that included it is a safety failure.
        finalized_inclusions = [b for b in plan.finalized if any(
            isinstance(e, CandidateEvent) and e.kind is EventKind.INCLUDED
            and e.candidate_hash == h for e in chain.events.get(b, []))]
        if finalized_inclusions:
            self.finalized_invalid += len(finalized_inclusions)
            self.v.log_error("a finalized block included a candidate concluded invalid",
                             candidate="0x" + h.hex())
        if not plan.blocks:
            return
        best_before = chain.best.number
        gone = chain.revert(list(plan.blocks))
        if not gone:
            return
        self.reverts.append(Revert(h, min(plan.revert_numbers), best_before, len(gone)))
        self.v.log_event("chain reverted", candidate="0x" + h.hex()[:16],
                         revert_number=min(plan.revert_numbers), blocks=len(gone),
                         best=chain.best.number)
        self._spawn(self.on_reverted)

    # -- what the validator asks --------------------------------------------------------------

    def backs_nothing_disputed(self, block_hash: bytes) -> bool:
        """Whether finality may pass `block_hash` as far as disputes go: it backed no candidate
        that is disputed and not concluded valid (the validator's vote walks its chain once
        with this and the approval rule, `relay.core.finality_vote`)."""
        backed = [e for e in self.v.chain.events.get(block_hash, [])
                  if isinstance(e, CandidateEvent) and e.kind is EventKind.BACKED]
        return not any(self.coordinator.possibly_invalid(
            e.receipt.descriptor.session_index, e.candidate_hash) for e in backed)

    def concluded_invalid(self, h: bytes) -> bool:
        return self.concluded.get(h) is DisputeResult.INVALID

    def inherent_disputes(self, parent_state: RelayState) -> list[DisputeStatementSet]:
        """Every vote on a dispute the chain at `parent_state` has not counted yet."""
        out: list[DisputeStatementSet] = []
        for (session, h), votes in sorted(self.coordinator.candidates.items()):
            onchain = parent_state.disputes.get((session, h))
            # A dispute goes on chain once it matters there: a block of ours backed its
            # candidate, it concluded, or the chain already holds it. One about a candidate no
            # chain took (the honest backers refused it) stays between the validators.
            if not votes.disputed or (onchain is None and h not in self.backed
                                            and h not in self.concluded):
                continue
            counted_for = onchain.validators_for if onchain is not None else frozenset()
            counted_against = onchain.validators_against if onchain is not None else frozenset()
            new = [s for i, s in sorted(votes.valid.items()) if i not in counted_for] + \
                  [s for i, s in sorted(votes.invalid.items()) if i not in counted_against]
            if new:
                out.append(DisputeStatementSet(h, session, new))
            if len(out) >= MAX_SETS_PER_BLOCK:
                break
        return out

    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)
