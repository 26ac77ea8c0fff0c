"""The collator's view of its parachain: every block it built or imported, with its post-state, and
the choice of parent for the next block (cumulus' `find_potential_parents`, spec §4.5).

Candidates for the parent are the included block and its descendants; a descendant is usable when
every block on the path is pending availability on the relay chain or was built on a relay parent
still within the allowed ancestry (anything older can never be backed). The deepest usable block
wins, ties broken by the lower hash.
"""

from __future__ import annotations

from collections.abc import Collection

from collator.core.para_runtime import ParaHeader


class ParaChain:
    def __init__(self, genesis_entries: dict[bytes, bytes], genesis: ParaHeader) -> None:
        self.headers: dict[bytes, ParaHeader] = {}  # every block ever added
        # Post-states, of the blocks not pruned (`prune`): what building and importing need.
        self.states: dict[bytes, dict[bytes, bytes]] = {}
        self.children: dict[bytes, list[bytes]] = {}
        self.pruned_below = 0  # blocks numbered below this have no state here any more
        self.highest = genesis.hash()  # the first block added at the greatest height
        self.add(genesis_entries, genesis)

    def add(self, entries: dict[bytes, bytes], header: ParaHeader) -> None:
        h = header.hash()
        if h in self.headers:
            return
        self.headers[h] = header
        self.states[h] = entries
        self.children.setdefault(header.parent_hash, []).append(h)
        if header.number > self.headers[self.highest].number:
            self.highest = h

    def __contains__(self, h: bytes) -> bool:
        """Known with its post-state: a block one can build on or import a child of."""
        return h in self.states

    def is_pruned(self, h: bytes) -> bool:
        """Known, but below the pruning horizon: history, nothing to build or import on."""
        return h in self.headers and h not in self.states

    def header(self, h: bytes) -> ParaHeader:
        return self.headers[h]

    def state(self, h: bytes) -> dict[bytes, bytes]:
        return self.states[h]

    def prune(self, keep_from: int) -> int:
        """Forget the post-states of blocks numbered below `keep_from`, as Substrate's state
        pruning does (headers stay, for RPC and reports); how many went. A collator's chain
        otherwise grows by a full state copy per block for as long as it runs."""
        if keep_from <= self.pruned_below:
            return 0
        gone = [h for h in self.states if self.headers[h].number < keep_from]
        for h in gone:
            del self.states[h]
        self.pruned_below = keep_from
        return len(gone)

    def find_parent(
        self, included_hash: bytes, pending_heads: Collection[bytes], min_relay_parent: int,
        max_depth: int,
    ) -> bytes:
        """The block to build on: the deepest usable descendant of the included block (at most
        `max_depth` blocks beyond it), or the included block itself."""
        if included_hash not in self:
            return included_hash
        best, best_number = included_hash, self.header(included_hash).number
        frontier, depth = [included_hash], 0
        while frontier and depth < max_depth:
            depth += 1
            nxt = []
            for h in frontier:
                for child in sorted(self.children.get(h, [])):
                    hdr = self.header(child)
                    if hdr.head_data() in pending_heads or hdr.relay_parent_number >= min_relay_parent:
                        nxt.append(child)
                        if hdr.number > best_number or (hdr.number == best_number and child < best):
                            best, best_number = child, hdr.number
            frontier = nxt
        return best
