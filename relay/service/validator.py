"""The validator: a relay full node with a session key that authors blocks in its slots, votes
for finality, and runs the parachain subsystems: prospective parachains (driven by new leaves
and backed candidates), backing with the collator protocol (`backing.py`), availability
(`availability.py`) and approval checking (`approvals.py`). Its finality vote goes to the highest
block whose included candidates are all approved (the approved ancestor of its best block) and
below which no block backed a disputed candidate, so finality waits for the checkers.

Slots are wall-aligned to the network's start: slot k begins at k × slot length, and its author
is validator k mod n (Aura). The author builds on its best block with the bitfields signed for
that block and the backable candidates its prospective view offers (the provisioner).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import trio

from proto.codec import decode, encode
from proto.errors import SigningRefused
from proto.keys import Keypair
from proto.messages import FinalityVoteMessage
from proto.network import PeerId, Topic
from proto.ports import Metrics, Network, RelayStore
from proto.relay_block import ParachainsInherentData, RelayHeader
from proto.statements import FinalityVote
from relay.core import runtime as rt
from relay.core.block_tree import BlockTreeError
from relay.core.events import EventKind
from relay.core.finality_vote import vote_target
from relay.core.prospective.view import ProspectiveParachains
from relay.core.provisioner import select_candidates
from relay.core.state import RelayState
from relay.service.approvals import ApprovalChecking
from relay.service.availability import Availability
from relay.service.backing import Backing
from relay.service.disputes import Disputes
from relay.service.full_node import RelayNodeService
from relay.service.malus import MALUS_MODES
from relay.service.pov_execution import InlineExecution, PovExecution
from relay.service.signed_records import FINALITY, check_signed_records

AUTHORED_KEPT = 4096
# Bitfields and backed candidates go to the next two authors: the second builds on the same
# parent if the first misses its slot.
UPCOMING_AUTHORS = 2  # authored block hashes remembered (bounded: a node runs for months)


class ValidatorService(RelayNodeService):
    role = "validator"

    def __init__(self, name: str, key: Keypair, net: Network, metrics: Metrics,
                 genesis: tuple[RelayHeader, RelayState], relay_peers: list[PeerId], *,
                 log: Any = None, epoch: float = 0.0, store: RelayStore | None = None,
                 pov_execution: PovExecution | None = None,
                 malus: str | None = None) -> None:
        """`malus`: a misbehaviour for tests (relay/service/malus.py)."""
        super().__init__(name, net, metrics, genesis, relay_peers, log=log, store=store)
        if malus is not None and malus not in MALUS_MODES:
            raise ValueError(f"{name}: unknown malus mode {malus!r} (modes: "
                             f"{', '.join(MALUS_MODES)})")
        self.malus = malus
        self.key = key
        state = genesis[1]
        if key.public not in state.validators:
            raise ValueError(f"{name}: key is not in the validator set")
        self.index = state.validators.index(key.public)
        if store is not None:  # before anything is signed: the records say what must not be
            check_signed_records(store, self.chain, key.public, self.index)
        self.validators = state.validators
        self.epoch = epoch
        self.prospective = ProspectiveParachains()
        self.availability = Availability(self)
        # Inline unless told otherwise (the simulation); real nodes re-execute in worker threads,
        # one pool for backing, approval checks and dispute participation.
        execution = pov_execution or InlineExecution()
        self.disputes = Disputes(self, self.availability, self._after_revert, malus, execution)
        self.backing = Backing(self, self.availability, execution, self.disputes.raise_invalid,
                               malus)
        self.approvals = ApprovalChecking(self, self.availability, epoch,
                                          approve=malus != "no-show", execution=execution)
        self.approvals.on_approved = self._vote_approved
        self.approvals.on_invalid = self.disputes.raise_from_approval
        self.authored = 0
        # The latest blocks authored (hashes, oldest first): what tests check against the chain.
        self.authored_blocks: deque[bytes] = deque(maxlen=AUTHORED_KEPT)
        self._voted_number = 0
        self.votes_signed = 0

    def peer_of(self, validator_index: int) -> PeerId:
        return self.validators[validator_index]

    def upcoming_authors(self, count: int = UPCOMING_AUTHORS) -> list[PeerId]:
        """The authors of the next `count` slots (round robin, known in advance): who needs the
        bitfields and backed candidates to put in their blocks."""
        state = self.chain.state(self.chain.best_hash)
        if state is None:
            return []
        slot = self.current_slot()
        return [self.peer_of(rt.expected_author(state, slot + k)) for k in range(1, count + 1)]

    async def start_roles(self, nursery: trio.Nursery) -> None:
        self.backing.start(nursery)
        self.availability.start(nursery)
        self.disputes.start(nursery)
        self.approvals.start(nursery)
        nursery.start_soon(self._author_loop)
        nursery.start_soon(self._missed_slot_loop)
        # The best block (genesis, or what a restart re-imported) is the first leaf.
        await self.on_imported([self.chain.best_hash])

    # -- leaves ---------------------------------------------------------------------------------

    async def on_imported(self, hashes: list[bytes]) -> None:
        for h in hashes:
            header = self.chain.header(h)
            if header is None or self.chain.state(h) is None:
                continue
            # Prospective parachains follows the leaves of the tree: a new block replaces its
            # parent as a leaf (forks keep both until finality prunes one).
            activated = [h] if self.chain.state(h) is not None else []
            deactivated = [header.parent_hash] if header.parent_hash in self.prospective.leaves \
                else []
            self.prospective.update_leaves(activated, deactivated, self.chain.store)
            self.backing.on_leaf(header)
            self.availability.on_leaf(header)
            self.approvals.on_block(header)
            self.disputes.on_leaf(header)  # last: a block backing a bad candidate may go
        self._prune_stale_leaves()
        counts = self.prospective.candidate_counts()
        for kind, n in counts.items():
            self.metrics.prospective_candidates.labels(kind).set(n)

    def _prune_stale_leaves(self) -> None:
        finalized = self.chain.tree.finalized
        stale = [leaf for leaf in self.prospective.leaves
                 if leaf not in self.chain.tree or not self.chain.tree.is_descendant(leaf, finalized)]
        if stale:
            self.prospective.update_leaves([], stale, self.chain.store)

    async def on_new_best(self, header: RelayHeader) -> None:
        await super().on_new_best(header)
        self.metrics.block_height.labels("best").set(header.number)
        await self._vote_approved()

    async def _after_revert(self) -> None:
        """Blocks went (a candidate concluded invalid) or a dispute ended: leaves, the best block
        and finality votes follow the chain as it is now."""
        self._prune_stale_leaves()
        best = self.chain.best_hash
        if best not in self.prospective.leaves:
            await self.on_imported([best])
        if best != self._last_best:
            self._last_best = best
            await self.on_new_best(self.chain.best)
        else:
            await self._vote_approved()

    # -- finality -------------------------------------------------------------------------------

    async def _vote_approved(self) -> None:
        """Vote for the highest block of the best chain that it and every unfinalized block below
        it pass both voting rules: its candidates approved (polkadot's approval-checking voting
        rule) and none it backed under dispute or concluded invalid. One walk of the chain
        serves both rules (`relay.core.finality_vote`)."""
        best = self.chain.best
        if self.is_history(best.number):  # a vote is for the chain's head
            return
        try:
            path = self.chain.tree.path_above_finalized(best.hash())
        except BlockTreeError:
            return
        target = vote_target(path, self.approvals.voting.is_approved,
                             self.disputes.backs_nothing_disputed)
        self.metrics.approval_checking_finality_lag.set(len(path) - target.approved)
        self.metrics.disputes_finality_lag.set(len(path) - target.allowed)
        if target.allowed == 0:
            return  # nothing above the finalized block to vote for
        header = self.chain.header(path[target.allowed - 1])
        if header is not None:
            await self._vote(header)

    async def _vote(self, header: RelayHeader) -> None:
        if header.number <= self._voted_number:
            return
        self._voted_number = header.number
        self.votes_signed += 1
        state = self.chain.state(header.hash())
        session = state.session_index if state is not None else 0
        vote = FinalityVote.sign(self.key, header.hash(), header.number, session, self.index)
        # Never two votes at one height (a restart on another fork would be an equivocation):
        # what was signed before is what goes out.
        raw = self.sign_once(FINALITY, header.number.to_bytes(8, "big"), encode(vote), None)
        if raw is None:
            return
        vote = decode(raw, FinalityVote)
        try:
            self.chain.note_vote(vote)
        except BlockTreeError:
            return
        self.metrics.block_height.labels("finalized").set(self.chain.finalized.number)
        await self.net.gossip.publish(Topic.FINALITY, encode(FinalityVoteMessage(vote)))

    def sign_once(self, kind: str, key: bytes, payload: bytes, number: int | None
                  ) -> bytes | None:
        """`payload`, written to the store before it is sent; or, if this validator signed
        something else under (kind, key) before a restart, that earlier payload; or None if the
        store refuses (relay parent `number` is below its pruning bound, so what was signed there
        is forgotten: a paused validator finishing queued work): send nothing."""
        if self.store is None:
            return payload
        try:
            previous = self.store.record_signed(kind, key, payload, relay_parent_number=number)
        except SigningRefused as exc:
            self.log_event(f"{kind} not signed", number=number, reason=str(exc))
            return None
        return payload if previous is None else previous

    # -- authoring ------------------------------------------------------------------------------

    def current_slot(self) -> int:
        return int((trio.current_time() - self.epoch) // self.slot_s)

    async def _author_loop(self) -> None:
        while True:
            slot = self.current_slot() + 1
            await trio.sleep_until(self.epoch + slot * self.slot_s)
            parent = self.chain.best
            state = self.chain.state(parent.hash())
            if state is None or rt.expected_author(state, slot) != self.index:
                continue
            if slot <= parent.slot:
                continue
            if self.is_behind or self.is_offline or self.is_recovering:
                # Our best is not the chain's head (or we cannot tell yet, or our chain lost a
                # range we had finalized): a block on it would be a fork. Substrate skips the
                # slot the same way.
                why = ("waiting for the network" if self.is_offline else
                       "re-syncing a corrupted range" if self.is_recovering else "catching up")
                self.log_event("slot skipped: " + why, slot=slot, best=parent.number,
                               target=self.best_seen)
                continue
            await self._author(parent, state, slot)

    async def _missed_slot_loop(self) -> None:
        """Bitfields and backed candidates go only to the next two authors. When a slot passes
        without a block (its author down, or cut off with the next one too), they go again to the
        authors from now on, so the next author on the chain does not build an empty block.
        Checked a third into each slot, after a fresh block's bitfield is signed."""
        seen: bytes | None = None
        while True:
            slot = self.current_slot() + 1
            await trio.sleep_until(self.epoch + (slot + 1 / 3) * self.slot_s)
            best = self.chain.best_hash
            if best == seen and not (self.is_behind or self.is_offline or self.is_recovering):
                await self.availability.offer_again()
                await self.backing.offer_backed()
            seen = best

    async def _author(self, parent: RelayHeader, state: RelayState, slot: int) -> None:
        h = parent.hash()
        bitfields = self.availability.bitfields_for(h)
        candidates = select_candidates(state, h, self.prospective, self.backing.tables, bitfields)
        # A candidate concluded invalid never goes in again, nor what builds on it.
        cut: set[int] = set()
        kept = []
        for b in candidates:
            para = b.candidate.descriptor.para_id
            if para in cut or self.disputes.concluded_invalid(b.hash()):
                cut.add(para)
                continue
            kept.append(b)
        candidates = kept
        inherent = ParachainsInherentData(bitfields, candidates, h,
                                          self.disputes.inherent_disputes(state))
        block, post, events, filtered = rt.build_block(parent, state, inherent, slot, self.key)
        if filtered:
            self.log_event("inherent filtered", number=block.header.number, filtered=filtered)
        self.chain.add_authored(block, post, events)
        self.authored += 1
        self.authored_blocks.append(block.header.hash())
        self.log_event("block authored", number=block.header.number, slot=slot,
                       hash="0x" + block.header.hash().hex(), backed=len(candidates),
                       included=sum(e.kind is EventKind.INCLUDED for e in events),
                       bitfields=len(bitfields))
        self.notify_imported([block.header.hash()])
        await self.publish_block(block)


__all__ = ["ValidatorService"]
