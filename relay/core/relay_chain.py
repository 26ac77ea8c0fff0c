"""A relay node's copy of the relay chain: blocks re-executed on import, fork choice and finality,
and blocks that arrived before their parent held until it comes (pure; the services feed it).

`import_block` either applies fully or raises and leaves everything unchanged. A block whose
parent is unknown is kept aside (bounded) and imported as soon as the parent is; the caller is
told which parent to ask its peers for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proto.relay_block import RelayBlock, RelayHeader
from proto.statements import FinalityVote
from relay.core import runtime as rt
from relay.core.block_tree import BlockTree, BlockTreeError
from relay.core.chain_store import ChainStore
from relay.core.config import HostConfiguration
from relay.core.events import RelayEvent
from relay.core.state import RelayState

MAX_ORPHANS = 256
# Post-states are kept this many blocks below finality (prospective parachains looks back at
# most `allowed_ancestry_len` blocks; the margin covers slow peers' queries).
STATE_KEEP_BELOW_FINALIZED = 32
# Bodies are kept this many blocks below finality by a node whose store holds them (see
# `forget_bodies_below`): the subsystems read the bodies of new blocks only.
BODIES_KEEP_BELOW_FINALIZED = 64


@dataclass
class ImportOutcome:
    imported: list[bytes] = field(default_factory=list)  # in import order
    missing_parent: bytes | None = None  # ask peers for this one
    duplicate: bool = False


class RelayChain:
    def __init__(self, genesis: RelayHeader, state: RelayState) -> None:
        self.genesis = genesis
        self.store = ChainStore()
        self.store.add(genesis, state)
        self.tree: BlockTree[None] = BlockTree(genesis, None, state.validators,
                                               state.session_index)
        self.blocks: dict[bytes, RelayBlock] = {}
        self.events: dict[bytes, list[RelayEvent]] = {genesis.hash(): []}
        self._orphans: dict[bytes, RelayBlock] = {}  # by hash
        self._config = state.config  # the best block's, kept for when its state is not at hand

    # -- queries ------------------------------------------------------------------------------

    @property
    def config(self) -> HostConfiguration:
        """The host configuration in force at the best block."""
        state = self.store.states.get(self.tree.best)
        if state is not None:
            self._config = state.config
        return self._config

    def __contains__(self, block_hash: bytes) -> bool:
        return block_hash in self.store.headers

    @property
    def best_hash(self) -> bytes:
        return self.tree.best

    @property
    def best(self) -> RelayHeader:
        return self.store.headers[self.tree.best]

    def state(self, block_hash: bytes) -> RelayState | None:
        return self.store.states.get(block_hash)

    def header(self, block_hash: bytes) -> RelayHeader | None:
        return self.store.headers.get(block_hash)

    @property
    def finalized(self) -> RelayHeader:
        return self.store.headers[self.tree.finalized]

    def chain_to(self, head: bytes) -> list[RelayHeader]:
        """Headers from block 1 to `head` on its chain, oldest first."""
        out: list[RelayHeader] = []
        h = self.store.headers.get(head)
        while h is not None and h.number > 0:
            out.append(h)
            h = self.store.headers.get(h.parent_hash)
        return list(reversed(out))

    def headers_from(self, head: bytes, from_number: int, limit: int) -> list[RelayHeader]:
        """Up to `limit` headers from `from_number` on `head`'s chain, oldest first."""
        return [h for h in self.chain_to(head) if h.number >= from_number][:limit]

    def forget_bodies_below(self, number: int) -> int:
        """Drop the bodies of blocks numbered below `number` (headers and events stay): a node
        whose store holds them reads them back from there, and its memory stays bounded however
        long it runs. How many went."""
        gone = [h for h, b in self.blocks.items() if b.header.number < number]
        for h in gone:
            del self.blocks[h]
        return len(gone)

    # -- updates ------------------------------------------------------------------------------

    def add_authored(self, block: RelayBlock, state: RelayState,
                     events: list[RelayEvent]) -> None:
        self._insert(block, state, events)

    def import_block(self, block: RelayBlock) -> ImportOutcome:
        """Re-execute and add `block` (and any orphans waiting for it). Raises
        `BlockImportError`/`InherentError`/`BlockTreeError` for a block that breaks a rule."""
        h = block.header.hash()
        if h in self.store.headers:
            return ImportOutcome(duplicate=True)
        parent = self.store.headers.get(block.header.parent_hash)
        if parent is None:
            if block.header.number <= self.finalized.number:
                raise BlockTreeError(f"block #{block.header.number} is below finality")
            if len(self._orphans) >= MAX_ORPHANS:
                self._orphans.pop(next(iter(self._orphans)))
            self._orphans[h] = block
            return ImportOutcome(missing_parent=block.header.parent_hash)
        outcome = ImportOutcome()
        self._import_known_parent(block, parent)
        outcome.imported.append(h)
        # Orphans that now connect, parents before children.
        progress = True
        while progress:
            progress = False
            for oh, orphan in list(self._orphans.items()):
                p = self.store.headers.get(orphan.header.parent_hash)
                if p is None:
                    continue
                del self._orphans[oh]
                if oh in self.store.headers:
                    continue  # arrived again by another path (catch-up) and imported then
                try:
                    self._import_known_parent(orphan, p)
                except (ValueError, KeyError):
                    continue  # a bad orphan is dropped; its sender is not known any more
                outcome.imported.append(oh)
                progress = True
        return outcome

    def _import_known_parent(self, block: RelayBlock, parent: RelayHeader) -> None:
        parent_state = self.store.states.get(parent.hash())
        if parent_state is None:
            raise BlockTreeError(f"the state of block #{parent.number} was pruned")
        if not self.tree.is_descendant(parent.hash(), self.tree.finalized):
            raise BlockTreeError(f"block #{block.header.number} conflicts with finality")
        state, events = rt.import_block(parent, parent_state, block)
        self._insert(block, state, events)

    def _insert(self, block: RelayBlock, state: RelayState, events: list[RelayEvent]) -> None:
        self.tree.add(block.header, None)
        h = block.header.hash()
        self.store.add(block.header, state)
        self.blocks[h] = block
        self.events[h] = events

    def note_vote(self, vote: FinalityVote) -> list[bytes]:
        """Count a finality vote (`BlockTreeError` if it is bad); newly finalized blocks."""
        newly = self.tree.note_vote(vote)
        if newly:
            self._prune_states()
        return newly

    def revert(self, hashes: list[bytes]) -> list[bytes]:
        """Take unfinalized blocks (with their descendants: `disputes.revert.blocks_to_revert`)
        out of fork choice: a block including a candidate concluded invalid. Their states go, so
        nothing imports or builds on them again; headers, bodies and events stay for those who
        ask what happened. The removed hashes."""
        gone = self.tree.remove(hashes)
        for h in gone:
            self.store.states.pop(h, None)
        return gone

    def restore_finalized(self, block_hash: bytes) -> bool:
        """Finality this node had reached before a restart (from its own store): the votes that
        proved it are gone, the fact is not. False if the block is unknown or off our chain."""
        if block_hash not in self.tree:
            return False
        try:
            self.tree.finalize(block_hash)
        except BlockTreeError:  # off the chain this node finalized since
            return False
        self._prune_states()
        return True

    def apply_pending_votes(self) -> list[bytes]:
        newly = self.tree.apply_pending_votes()
        if newly:
            self._prune_states()
        return newly

    def _prune_states(self) -> None:
        """Drop post-states of blocks off the finalized chain and far below finality; headers,
        blocks and events stay (peers catching up ask for them, reports read them)."""
        keep_from = self.finalized.number - STATE_KEEP_BELOW_FINALIZED
        for h in list(self.store.states):
            header = self.store.headers[h]
            if h not in self.tree or (header.number < keep_from and header.number > 0):
                del self.store.states[h]
