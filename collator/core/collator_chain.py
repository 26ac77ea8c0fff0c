"""What a collator decides when a relay block arrives (spec §4.5, cumulus' lookahead collator):
on which parent to build, whether the runtime will accept another block now (the
`can_build_upon` runtime API), and how many blocks to build in a row for the para's cores.

`CollatorChain` wraps the block store (`ParaChain`) with the included head the relay chain
reports; `collate` builds up to one block per assigned core on the deepest usable parent, each on
the previous one, stopping as soon as the runtime would refuse (segment full, velocity reached).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from collator.core.collation import Collation, RelayParentData, build_collation
from collator.core.consensus_hook import BlockInvalid
from collator.core.para_chain import ParaChain
from collator.core.para_runtime import ParaHeader
from collator.core.parachain_system import hook_of, load_segment, slot_info_of
from collator.core.relay_view import read_relay_view
from collator.core.tx_pool import TxPool
from proto.hashing import blake2_256


def can_build_upon(entries: dict[bytes, bytes], included_hash: bytes, relay_slot: int) -> bool:
    """The runtime API `can_build_upon` evaluated on a block's post-state `entries`."""
    segment, _ = load_segment(entries)
    return hook_of(entries).can_build_upon(included_hash, relay_slot, slot_info_of(entries),
                                           segment)


@dataclass(frozen=True)
class CollationTarget:
    """Where the next collation goes: the relay parent, the para's cores there, and the relay
    chain's view of the para (included head and heads pending availability)."""

    relay_parent: RelayParentData
    cores: tuple[int, ...]
    session_index: int
    n_validators: int
    max_pov_size: int
    min_relay_parent_number: int  # oldest relay parent still allowed (ancestry lookback)
    max_depth: int  # unincluded capacity: how far beyond the included block parents may be


class CollatorChain:
    def __init__(self, chain: ParaChain, included_hash: bytes) -> None:
        self.chain = chain
        self.included_hash = included_hash
        # every block of the store carries the para id; the genesis is always there
        self.para_id = next(iter(chain.headers.values())).para_id

    def note_included(self, head_data: bytes) -> None:
        """The relay chain's latest included head for the para (from a relay block)."""
        self.included_hash = blake2_256(head_data)

    def best(self, pending_heads: Collection[bytes], min_relay_parent: int, max_depth: int
             ) -> bytes:
        return self.chain.find_parent(self.included_hash, pending_heads, min_relay_parent,
                                      max_depth)

    def unincluded_segment(self) -> list[ParaHeader]:
        """Blocks built on the included block and not yet included, oldest first, along the
        deepest branch (ties to the lower hash, as the parent choice breaks them); empty while
        the included block is unknown here."""
        included = self.included_hash
        if included not in self.chain:
            return []
        best: list[bytes] = []
        # Depth-first over descendants; the paths are short (bounded by the segment capacity
        # plus abandoned forks), so carrying each path is cheap.
        stack: list[list[bytes]] = [[included]]
        while stack:
            path = stack.pop()
            if len(path) - 1 > len(best) or (len(path) - 1 == len(best) and path[1:] < best):
                best = path[1:]
            stack.extend([*path, child] for child in self.chain.children.get(path[-1], []))
        return [self.chain.header(h) for h in best]

    def can_build_upon(self, parent_hash: bytes, relay_slot: int) -> bool:
        """Gate before authoring on `parent_hash`. Building on the included block itself is
        always allowed (as cumulus skips the API then): nothing is unincluded."""
        if parent_hash == self.included_hash:
            return True
        if parent_hash not in self.chain:
            return False
        return can_build_upon(self.chain.state(parent_hash), self.included_hash, relay_slot)

    def collate(self, target: CollationTarget, pool: TxPool,
                pending_heads: Collection[bytes] = ()) -> list[Collation]:
        """Build up to one block per core on top of each other, and add them to the chain."""
        rp = target.relay_parent
        if not target.cores or self.included_hash not in self.chain:
            return []  # no core here, or the included block is unknown to us (still syncing)
        relay_slot = read_relay_view(rp.storage_root, rp.proof, self.para_id).relay_slot
        parent = self.best(pending_heads, target.min_relay_parent_number, target.max_depth)
        built: list[Collation] = []
        for selector, core in enumerate(target.cores):
            if not self.can_build_upon(parent, relay_slot):
                break
            entries, header = self.chain.state(parent), self.chain.header(parent)
            txs = pool.ready(entries, len(pool))
            try:
                col = build_collation(entries, header, rp, txs, core,
                                      selector if len(target.cores) > 1 else None,
                                      target.session_index, target.n_validators,
                                      target.max_pov_size)
            except BlockInvalid:
                break  # the runtime refuses another block now
            self.chain.add(col.entries, col.block.header)
            built.append(col)
            parent = col.block.header.hash()
        return built
