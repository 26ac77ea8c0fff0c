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
        self.blocks: dict[bytes, tuple[dict[bytes, bytes], ParaHeader]] = {}
        self.children: dict[bytes, list[bytes]] = {}
        self.add(genesis_entries, genesis)

    def add(self, entries: dict[bytes, bytes], header: ParaHeader) -> None:
        h = header.hash()
        if h in self.blocks:
            return
        self.blocks[h] = (entries, header)
        self.children.setdefault(header.parent_hash, []).append(h)

    def __contains__(self, h: bytes) -> bool:
        return h in self.blocks

    def header(self, h: bytes) -> ParaHeader:
        return self.blocks[h][1]

    def state(self, h: bytes) -> dict[bytes, bytes]:
        return self.blocks[h][0]

    def find_parent(
        self, included_hash: bytes, pending_heads: Collection[bytes], min_relay_parent: int,
        max_depth: int,
    ) -> bytes:
        """The block to build on: the deepest usable descendant of the included block (at most
        `max_depth` blocks beyond it), or the included block itself."""
        if included_hash not in self.blocks:
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
