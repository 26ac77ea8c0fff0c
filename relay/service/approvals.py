"""Approval checking on a validator (polkadot-sdk's approval-voting and approval-distribution):
the trio shell around `relay.core.approval.ApprovalVoting`.

- Every imported relay block is tracked with the candidates it included (its `CandidateIncluded`
  events); this validator's assignments to them come from the pure core.
- Each tick (a twelfth of a slot) the core re-counts the blocks not yet approved: own assignments
  that are due are gossiped (`Topic.ASSIGNMENT`) and their candidates checked: the available data
  is recovered (`recovery.py`: a small one whole from a backer, else from erasure chunks), the PoV
  re-executed with the backers' validation (`validate_collation`, off the event loop through
  `pov_execution.py`; a timeout is no verdict: not approved, not disputed), and a signed approval
  gossiped (`Topic.APPROVAL`). A checker that stays silent `no_show_slots` is a no-show and the core pulls
  the next tranche in.
- Others' assignments and approvals are checked and imported as they arrive. Gossip does not keep
  order: one for a block not imported yet, or an approval ahead of its assignment, waits and is
  tried again when the block or an assignment comes. Nothing about such a message can be checked
  before its block is known, so the waiting room is bounded twice: `MAX_WAITING` in all (the
  oldest goes) and `MAX_WAITING_PER_PEER` per peer that sent them, so one peer's junk for blocks
  that never come cannot push out the others' messages: over its cap, that peer's oldest goes and
  it is charged (not while we catch up, when honest peers are ahead of us by design).
- Assignments and approvals travel the validators' gossip grid (every validator counts them all:
  about two copies each), a tick's assignments of one block in one message and approvals done
  close together in one. Gossip is fire-and-forget: what this validator sent for a block that
  finality leaves behind is sent again every slot, along the grid and, further behind, to every
  validator, so peers that were cut off when it first went out get it (the receivers' seen-cache
  drops the copies the others already have). Polkadot's approval-distribution does the same on a
  peer's view change and with its aggression levels.
- `voting.is_approved(block)` is the approval rule of the validator's finality vote.

A candidate that fails re-execution is not approved, and `on_invalid` raises a dispute about it
(polkadot's approval voting issuing an invalid statement to the dispute coordinator): the valid
side is the backing votes the disputes subsystem took from the block that backed it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

import trio

from proto.approvals import IndirectSignedApprovalVote, SignedAssignment
from proto.candidate import CandidateReceipt
from proto.codec import decode_shared, encode
from proto.messages import ApprovalsMessage, AssignmentsMessage
from proto.network import (
    ACCEPT,
    COST_INVALID_SIGNATURE,
    COST_MAJOR,
    COST_MINOR,
    IGNORE,
    PeerId,
    ReputationChange,
    Topic,
    Verdict,
    deliver_nothing,
    reject,
)
from proto.relay_block import RelayHeader
from relay.core.approval.criteria import IncludedCandidate, SessionInfo
from relay.core.approval.ticks import TICKS_PER_SLOT
from relay.core.approval.voting import (
    ApprovalCheckError,
    ApprovalCheckErrorKind,
    ApprovalCheckResult,
    ApprovalVoting,
    ApprovalVotingError,
    ApprovalWork,
    AssignmentCheckError,
    AssignmentCheckErrorKind,
    AssignmentCheckResult,
)
from relay.core.approval.waiting import Added, Waiting, WaitingRoom
from relay.core.candidate_validation import CollationInvalid, validate_collation
from relay.core.events import EventKind
from relay.service.availability import Availability
from relay.service.pov_execution import (
    ExecutionTimedOut,
    InlineExecution,
    PovExecution,
    approval_deadline_s,
)
from relay.service.recovery import AvailabilityRecovery
from relay.service.validator_context import ValidatorContext

RECOVERY_ATTEMPTS = 6  # failed recoveries (a slot apart) before it says so; it goes on retrying
MAX_WAITING = 4096  # gossip held for a block or an assignment not seen yet (oldest dropped)
MAX_WAITING_PER_PEER = 512  # of those, from one peer (its oldest dropped, the peer charged)
COST_WAITING_OVER_CAP = ReputationChange(COST_MINOR.value, "approval gossip over the waiting cap")
APPROVED_KEPT = 4096  # (block, candidate) pairs remembered as approved, for invariant checks
RESEND_LAG = 2  # blocks below the best before what we sent for one goes out again, on the grid
AGGRESSION_LAG = 4  # ... and to every validator
APPROVAL_COALESCE_SLOTS = 1 / 60  # how long an approval waits for this node's others of its block

OnApproved = Callable[[], Awaitable[None]]
OnInvalid = Callable[[CandidateReceipt], None]


class ApprovalChecking:
    def __init__(self, v: ValidatorContext, availability: Availability, epoch: float, *,
                 approve: bool = True, execution: PovExecution | None = None) -> None:
        """`approve` False makes a no-show: it announces its assignments and never approves (a
        validator that crashed mid-check, or malus `no-show`). `execution`: where PoVs are
        re-executed (inline unless told otherwise, as the simulation wants)."""
        self.v = v
        self.execution = execution or InlineExecution()
        self.epoch = epoch
        self.approve = approve
        self.voting = ApprovalVoting(v.key)
        self.recovery = AvailabilityRecovery(v, availability)
        self.on_approved: OnApproved | None = None
        self.on_invalid: OnInvalid | None = None
        self.approved: OrderedDict[tuple[bytes, bytes], None] = OrderedDict()
        self.approvals_sent = 0
        self.assignments_sent = 0
        self.invalid_found = 0
        self.timed_out = 0
        # Gossip waiting for its block or for its assignment, with the peer it came from.
        self.waiting: WaitingRoom[PeerId] = WaitingRoom(MAX_WAITING, MAX_WAITING_PER_PEER)
        # What this validator gossiped, by block: (topic, message) to send again until final.
        self._sent: dict[bytes, list[tuple[int, bytes]]] = {}
        # Approvals issued and not sent yet, by block: those done within
        # `APPROVAL_COALESCE_SLOTS` of the first go out together (polkadot coalesces a checker's
        # approvals of one block into one message too).
        self._approvals_due: dict[bytes, list[IndirectSignedApprovalVote]] = {}
        self._nursery: trio.Nursery | None = None
        v.net.gossip.subscribe(Topic.ASSIGNMENT, self._validate_assignments, deliver_nothing)
        v.net.gossip.subscribe(Topic.APPROVAL, self._validate_approvals, deliver_nothing)

    def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        nursery.start_soon(self._tick_loop)

    # -- time -------------------------------------------------------------------------------------

    def tick_now(self) -> int:
        # The tiny margin keeps a slot's first tick from landing one short in floating point.
        return int((trio.current_time() - self.epoch) * TICKS_PER_SLOT / self.v.slot_s + 1e-9)

    def _tick_time(self, tick: int) -> float:
        return self.epoch + tick * self.v.slot_s / TICKS_PER_SLOT

    # -- blocks -----------------------------------------------------------------------------------

    def on_block(self, header: RelayHeader) -> None:
        """Track an imported relay block and the candidates it included, and any unfinalized
        ancestor not tracked yet: blocks caught up after a partition or a restart are checked
        like any other (an approval is no equivocation risk), or finality would wait forever
        on candidates only this node may check."""
        chain = self.v.chain
        untracked: list[RelayHeader] = []
        hd: RelayHeader | None = header
        while hd is not None and hd.number > chain.finalized.number \
                and hd.hash() not in self.voting.blocks:
            untracked.append(hd)
            hd = chain.header(hd.parent_hash)
        for hd in reversed(untracked):
            self._track(hd)

    def _track(self, header: RelayHeader) -> None:
        h = header.hash()
        chain = self.v.chain
        state = chain.state(h)
        if state is None:
            return
        scheduler = state.scheduler
        session = SessionInfo.from_config(state.config, state.validators, scheduler.groups,
                                          scheduler.n_cores)
        included = [IncludedCandidate(e.candidate_hash, e.core, e.group)
                    for e in chain.events.get(h, []) if e.kind is EventKind.INCLUDED]
        try:
            fresh = self.voting.import_block(h, header.parent_hash, header.number, header.slot,
                                             state.session_index, session, included)
        except ApprovalVotingError as exc:  # the runtime never includes two on a core
            self.v.log_event("approval: block not tracked", number=header.number, error=str(exc))
            return
        if fresh:
            self._retry_waiting(h)

    # -- the clock --------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            tick = self.tick_now()
            await self.process_tick(tick)
            if tick % TICKS_PER_SLOT == TICKS_PER_SLOT // 2:
                await self._send_again()
            await trio.sleep_until(self._tick_time(tick + 1))

    async def _publish(self, block_hash: bytes, topic: int, data: bytes) -> None:
        self._sent.setdefault(block_hash, []).append((topic, data))
        await self.v.net.gossip.publish(topic, data)

    async def _send_again(self) -> None:
        """What we sent for a block that finality leaves behind goes out again: along the grid
        from `RESEND_LAG` blocks below the best (a neighbour that lost it passes it on), to every
        validator from `AGGRESSION_LAG` (polkadot's aggression: a validator cut off from the grid
        paths, a partition healed). A block finality keeps up with costs nothing more."""
        self._sent = {h: m for h, m in self._sent.items() if h in self.voting.blocks}
        best = self.v.chain.best.number
        everyone = [p for p in self.v.validators if p != self.v.key.public]
        for block_hash in sorted(self._sent, key=lambda h: self.voting.blocks[h].number):
            lag = best - self.voting.blocks[block_hash].number
            if lag < RESEND_LAG:
                continue
            for topic, data in list(self._sent[block_hash]):
                if lag >= AGGRESSION_LAG:
                    await self.v.net.gossip.send_to(topic, data, everyone)
                else:
                    await self.v.net.gossip.publish(topic, data)

    async def process_tick(self, tick: int) -> None:
        self.voting.prune_finalized(self.v.chain.finalized.number)
        out = self.voting.process_tick(tick)
        for block_hash, candidate_hash in out.approved_candidates:
            self.approved[(block_hash, candidate_hash)] = None
            while len(self.approved) > APPROVED_KEPT:
                self.approved.popitem(last=False)
        # One message per block for this tick's assignments: every validator handles each
        # message, so fewer, fuller ones.
        by_block: dict[bytes, list[SignedAssignment]] = {}
        for signed in out.assignments:
            self.assignments_sent += 1
            by_block.setdefault(signed.assignment.block_hash, []).append(signed)
        for block_hash, signed_list in by_block.items():
            await self._publish(block_hash, Topic.ASSIGNMENT,
                                encode(AssignmentsMessage(signed_list)))
        for work in out.work:
            assert self._nursery is not None
            self._nursery.start_soon(self._check, work)
        if out.approved_blocks and self.on_approved is not None:
            await self.on_approved()

    # -- checking a candidate ---------------------------------------------------------------------

    async def _check(self, work: ApprovalWork) -> None:
        events = [e for e in self.v.chain.events.get(work.block_hash, [])
                  if e.kind is EventKind.INCLUDED]
        if not 0 <= work.candidate_index < len(events):
            return
        event = events[work.candidate_index]
        state = self.v.chain.state(work.block_hash)
        if state is None:
            return  # pruned: the block is final or gone
        receipt = event.receipt
        n = len(state.validators)
        # Retried a slot apart for as long as the block waits for approval: a checker cut off
        # from the chunk holders (a partition) checks once it is back, where a checker that gave
        # up would leave a candidate with no other possible checker unapproved for good.
        groups = state.scheduler.groups
        backers = groups[event.group] if 0 <= event.group < len(groups) else ()
        attempt = 0
        while (data := await self.recovery.recover(work.candidate_hash,
                                                   receipt.descriptor.erasure_root, n,
                                                   backers)) is None:
            attempt += 1
            if attempt == RECOVERY_ATTEMPTS:  # said once; it goes on trying
                self.v.log_event("approval: recovery failing, retrying each slot",
                                 candidate="0x" + work.candidate_hash.hex())
            await trio.sleep(self.v.slot_s)
            if work.block_hash not in self.voting.blocks:
                return  # finalized or dropped meanwhile
        timeout_ms = state.config.execution_timeout_ms
        try:
            await self.execution.run(approval_deadline_s(timeout_ms), validate_collation, receipt,
                                     data.pov, data.validation_data, n, timeout_ms)
        except ExecutionTimedOut as exc:  # no verdict: the next tranche covers us
            self.timed_out += 1
            self.v.log_event("approval: re-execution timed out, not approved", error=str(exc),
                             candidate="0x" + work.candidate_hash.hex())
            return
        except CollationInvalid as exc:
            self.invalid_found += 1
            self.v.log_event("approval: candidate invalid", error=str(exc),
                             candidate="0x" + work.candidate_hash.hex())
            if self.on_invalid is not None:
                self.on_invalid(receipt)
            return
        if not self.approve:
            return
        try:
            vote = self.voting.issue_approval(work.block_hash, work.candidate_index)
        except ApprovalVotingError:
            return  # the block was finalized or dropped while we checked
        self.approvals_sent += 1
        self.v.metrics.approvals_produced.inc()
        due = self._approvals_due.setdefault(work.block_hash, [])
        due.append(vote)
        if len(due) == 1:  # the first since the last send: the others done by then join it
            try:
                await trio.sleep(self.v.slot_s * APPROVAL_COALESCE_SLOTS)
            finally:
                # Taken even if this task is cancelled, so later approvals start afresh.
                votes = self._approvals_due.pop(work.block_hash, [])
            if votes and work.block_hash in self.voting.blocks:
                await self._publish(work.block_hash, Topic.APPROVAL,
                                    encode(ApprovalsMessage(votes)))

    # -- gossip in --------------------------------------------------------------------------------

    def _validate_assignments(self, source: PeerId | None, data: bytes) -> Verdict:
        msg = decode_shared(data, AssignmentsMessage)
        tick = self.tick_now()  # the assignments of one message arrived together
        voting = self.voting
        # The usual message, all for a block we track and all good, is checked at once (once for
        # all the simulated nodes); only its import is this node's.
        tranches = voting.check_assignments(data, msg.assignments)
        if tranches is None:
            return _combine([self._import_assignment(a, data, source, tick)
                             for a in msg.assignments])
        if not self.waiting.awaiting_assignments():
            # Nothing waits for an assignment: importing them all at once is importing them one
            # by one (only an accepted one's retries could interleave).
            accepted = voting.import_assignments(msg.assignments, tranches, tick)
            return ACCEPT if accepted else IGNORE  # what `_combine` makes of these verdicts
        accepted = False
        for signed, tranche in zip(msg.assignments, tranches, strict=True):
            if voting.import_assignment(signed, tranche, tick) is AssignmentCheckResult.Accepted:
                accepted = True
                self._assigned(signed)
        return ACCEPT if accepted else IGNORE

    def _import_assignment(self, signed: SignedAssignment, raw: bytes,
                           source: PeerId | None, tick: int) -> Verdict:
        K = AssignmentCheckErrorKind
        try:
            result = self.voting.check_and_import_assignment(signed, tick)
        except AssignmentCheckError as exc:
            if exc.kind is K.UnknownBlock:
                self._wait(Topic.ASSIGNMENT, signed.assignment.block_hash, raw, source)
                return IGNORE
            return reject(COST_MAJOR)
        if result is AssignmentCheckResult.Accepted:
            self._assigned(signed)
            return ACCEPT
        return IGNORE  # a duplicate, or a tranche far ahead of our clock

    def _assigned(self, signed: SignedAssignment) -> None:
        """An assignment was accepted: the approvals that waited for it are tried again."""
        if self.waiting.awaiting_assignments():
            a = signed.assignment
            self._retry(self.waiting.take_awaiting(a.block_hash, a.validator))

    def _validate_approvals(self, source: PeerId | None, data: bytes) -> Verdict:
        msg = decode_shared(data, ApprovalsMessage)
        votes = msg.approvals
        if not self.voting.check_approvals(data, votes):
            return _combine([self._import_approval(a, data, source) for a in votes])
        # All for a block we track and signed by their validators (checked once for all the
        # simulated nodes): this node imports each, or holds it for its checker's assignment.
        accepted, unassigned = self.voting.import_approvals(votes)
        for vote in unassigned:
            self._wait(Topic.APPROVAL, vote.block_hash, data, source, awaits=vote.validator)
        return ACCEPT if accepted else IGNORE  # what `_combine` makes of these verdicts

    def _import_approval(self, vote: IndirectSignedApprovalVote, raw: bytes,
                         source: PeerId | None) -> Verdict:
        K = ApprovalCheckErrorKind
        try:
            result = self.voting.check_and_import_approval(vote)
        except ApprovalCheckError as exc:
            if exc.kind is K.UnknownBlock:
                self._wait(Topic.APPROVAL, vote.block_hash, raw, source)
                return IGNORE
            if exc.kind is K.NoAssignment:  # its checker's assignment is late
                self._wait(Topic.APPROVAL, vote.block_hash, raw, source, awaits=vote.validator)
                return IGNORE
            if exc.kind is K.InvalidSignature:
                return reject(COST_INVALID_SIGNATURE)
            return reject(COST_MAJOR)
        return ACCEPT if result is ApprovalCheckResult.Accepted else IGNORE

    def _wait(self, topic: int, block_hash: bytes, raw: bytes, source: PeerId | None,
              awaits: int | None = None) -> None:
        added = self.waiting.add(topic, block_hash, raw, source, awaits)
        if added is Added.OVER_PEER_CAP and source is not None and not self.v.is_syncing:
            self.v.net.peers.report(source, COST_WAITING_OVER_CAP)

    def _retry_waiting(self, block_hash: bytes) -> None:
        """Try again what waited for `block_hash`."""
        self._retry(self.waiting.take(block_hash))

    def _retry(self, ready: list[Waiting[PeerId]]) -> None:
        # Assignments first: an approval needs its checker's assignment. What still cannot be
        # imported waits again, still counted against the peer that sent it; what turns out bad
        # now that it can be checked costs that peer what it would have cost on arrival.
        for w in sorted(ready, key=lambda w: w.topic != Topic.ASSIGNMENT):
            if w.topic == Topic.ASSIGNMENT:
                verdict = self._validate_assignments(w.source, w.raw)
            else:
                verdict = self._validate_approvals(w.source, w.raw)
            if verdict.cost is not None and w.source is not None:
                self.v.net.peers.report(w.source, verdict.cost)


def _combine(verdicts: list[Verdict]) -> Verdict:
    """A batch is rejected with its worst item's cost, forwarded if anything in it was new."""
    rejected = [v for v in verdicts if v.cost is not None]
    if rejected:
        return min(rejected, key=lambda v: v.cost.value if v.cost else 0)
    if any(v is ACCEPT for v in verdicts):
        return ACCEPT
    return IGNORE if verdicts else reject(COST_MINOR)
