"""A fork-aware relay block tree: fork choice and vote-based finality.

Fork choice is the longest chain, ties broken by the lower slot and then the lower hash, so every
node picks the same head from the same blocks. A validator's finality vote for a block counts for
the block and all its ancestors; each validator's highest vote is the one that counts; a block is
final once strictly more than two thirds of the validators vote for it or a descendant. Finality
only moves forward along one chain, and every block not descending from the finalized one is
pruned (callers drop the per-block state they keep).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from proto.relay_block import RelayHeader
from proto.statements import FinalityVote

P = TypeVar("P")
MAX_PENDING_VOTES = 1024


class BlockTreeError(ValueError):
    pass


@dataclass
class Node(Generic[P]):
    header: RelayHeader
    payload: P
    children: list[bytes]


class BlockTree(Generic[P]):
    def __init__(self, genesis: RelayHeader, payload: P, validators: Sequence[bytes],
                 session_index: int = 0) -> None:
        h = genesis.hash()
        self.nodes: dict[bytes, Node[P]] = {h: Node(genesis, payload, [])}
        self.validators = tuple(validators)
        self.session_index = session_index
        self.finalized = h
        self.votes: dict[int, FinalityVote] = {}
        self.pending_votes: list[FinalityVote] = []
        # How many of `votes` are above a finalized height, kept as votes come so that a vote
        # before the supermajority's costs no walk of all the votes: `(height, count)`, or None
        # once `votes` is replaced wholesale (recounted when next needed).
        self._above: tuple[int, int] | None = None
        # Fork choice as last made, `(finalized, best)`: every node asks for its best block
        # again and again between two changes of the tree (None once blocks come or go).
        self._best: tuple[bytes, bytes] | None = None

    # -- structure ------------------------------------------------------------------------------

    def add(self, header: RelayHeader, payload: P) -> bool:
        """Insert a block whose parent is known; False if already present."""
        h = header.hash()
        if h in self.nodes:
            return False
        parent = self.nodes.get(header.parent_hash)
        if parent is None:
            raise BlockTreeError(f"unknown parent of block #{header.number}")
        if header.number != parent.header.number + 1:
            raise BlockTreeError("block number does not follow its parent")
        if not self.is_descendant(header.parent_hash, self.finalized):
            raise BlockTreeError(f"block #{header.number} conflicts with finality")
        self.nodes[h] = Node(header, payload, [])
        parent.children.append(h)
        self._best = None
        return True

    def __contains__(self, h: bytes) -> bool:
        return h in self.nodes

    def get(self, h: bytes) -> P | None:
        n = self.nodes.get(h)
        return n.payload if n else None

    def header(self, h: bytes) -> RelayHeader | None:
        n = self.nodes.get(h)
        return n.header if n else None

    def children(self, h: bytes) -> list[bytes]:
        n = self.nodes.get(h)
        return list(n.children) if n else []

    def leaves(self) -> list[bytes]:
        """The blocks with no child. All descend from the finalized block (pruning leaves no
        fork below it), so the walk starts there rather than at genesis: a long chain's
        history costs nothing here."""
        out: list[bytes] = []
        stack = [self.finalized]
        while stack:
            h = stack.pop()
            children = self.nodes[h].children
            if children:
                stack.extend(reversed(children))
            else:
                out.append(h)
        return out

    def ancestors(self, h: bytes, n: int) -> list[bytes]:
        """Up to `n` ancestors of `h`, newest first."""
        out: list[bytes] = []
        node = self.nodes.get(h)
        while node is not None and len(out) < n:
            parent = node.header.parent_hash
            if parent not in self.nodes:
                break
            out.append(parent)
            node = self.nodes[parent]
        return out

    def is_descendant(self, h: bytes, ancestor: bytes) -> bool:
        """True if `h` is `ancestor` or descends from it."""
        anc = self.nodes.get(ancestor)
        node = self.nodes.get(h)
        if anc is None or node is None:
            return False
        while node.header.number > anc.header.number:
            parent = self.nodes.get(node.header.parent_hash)
            if parent is None:
                return False
            node = parent
        return node.header.hash() == ancestor

    def path_above_finalized(self, head: bytes) -> list[bytes]:
        """The blocks from just above the finalized one up to `head`, oldest first (empty for the
        finalized block itself): one walk down the chain. `BlockTreeError` if `head` is unknown
        or does not descend from the finalized block."""
        final = self.nodes[self.finalized].header.number
        path: list[bytes] = []
        node = self.nodes.get(head)
        while node is not None and node.header.number > final:
            path.append(node.header.hash())
            node = self.nodes.get(node.header.parent_hash)
        if node is None or node.header.hash() != self.finalized:
            raise BlockTreeError("head does not descend from the finalized block")
        path.reverse()
        return path

    def block_at(self, number: int, on_chain_of: bytes) -> bytes | None:
        node = self.nodes.get(on_chain_of)
        while node is not None and node.header.number > number:
            node = self.nodes.get(node.header.parent_hash)
        return node.header.hash() if node is not None and node.header.number == number else None

    @property
    def best(self) -> bytes:
        if self._best is not None and self._best[0] == self.finalized:
            return self._best[1]

        def key(h: bytes) -> tuple[int, int, bytes]:
            hd = self.nodes[h].header
            return (-hd.number, hd.slot, h)

        best = min((h for h in self.leaves() if self.is_descendant(h, self.finalized)), key=key)
        self._best = (self.finalized, best)
        return best

    def _subtree(self, root: bytes) -> list[bytes]:
        """`root` and every block descending from it."""
        out, stack = [], [root]
        while stack:
            h = stack.pop()
            out.append(h)
            stack.extend(self.nodes[h].children)
        return out

    # -- finality -------------------------------------------------------------------------------

    def note_vote(self, vote: FinalityVote) -> list[bytes]:
        """Count a signed vote; return the newly finalized blocks, oldest first."""
        v = vote.validator_index
        if not 0 <= v < len(self.validators) or vote.session_index != self.session_index:
            raise BlockTreeError("vote from an unknown validator or session")
        prev = self.votes.get(v)
        if prev is not None and prev.number >= vote.number:
            return []
        if not vote.check(self.validators[v]):
            raise BlockTreeError(f"bad finality vote signature from validator {v}")
        node = self.nodes.get(vote.block_hash)
        if node is None:
            if vote.number <= self.nodes[self.finalized].header.number:
                return []  # for a block already final or pruned: nothing to wait for
            same = [x for x in self.pending_votes if x.validator_index == v]
            if any(x.block_hash == vote.block_hash for x in same):
                return []  # a replay must not push other validators' votes out
            self.pending_votes = [*self.pending_votes, vote][-MAX_PENDING_VOTES:]
            return []
        if node.header.number != vote.number:
            raise BlockTreeError(f"vote of validator {v} names #{vote.number} for block "
                                 f"#{node.header.number}")
        self._count(prev, vote)
        self.votes[v] = vote
        return self._advance()

    def apply_pending_votes(self) -> list[bytes]:
        ready = [x for x in self.pending_votes if x.block_hash in self.nodes]
        self.pending_votes = [x for x in self.pending_votes if x.block_hash not in self.nodes]
        out: list[bytes] = []
        for vote in ready:
            if self.nodes[vote.block_hash].header.number != vote.number:
                continue  # mislabelled vote: never counted
            prev = self.votes.get(vote.validator_index)
            if prev is None or prev.number < vote.number:
                self._count(prev, vote)
                self.votes[vote.validator_index] = vote
        if ready:
            out = self._advance()
        return out

    def _count(self, prev: FinalityVote | None, vote: FinalityVote) -> None:
        """`vote` replaces `prev` (a lower one) as its validator's: one more above the counted
        height if it crosses it."""
        if self._above is None:
            return
        height, count = self._above
        if vote.number > height and (prev is None or prev.number <= height):
            self._above = (height, count + 1)

    def _votes_above(self, final: int) -> int:
        if self._above is None or self._above[0] != final:
            # finality moved (here or in `RelayChain.restore_finalized`) or votes went
            self._above = (final, sum(1 for vote in self.votes.values() if vote.number > final))
        return self._above[1]

    def _advance(self) -> list[bytes]:
        need = 2 * len(self.validators) // 3 + 1
        final = self.nodes[self.finalized].header.number
        if self._votes_above(final) < need:
            # Too few votes above finality to finalize anything: the common case, each vote of
            # a block before the supermajority's, and not worth a walk of every vote.
            return []
        # The highest block that more than 2/3 of the votes descend from. A vote supports every
        # block on its path down to the finalized height: one walk a vote counts them all
        # (linear in the votes, where asking each block for its supporters was quadratic).
        above = [vote for vote in self.votes.values() if vote.number > final]
        support: dict[bytes, int] = {}
        for vote in above:
            h: bytes = vote.block_hash
            node = self.nodes.get(h)
            while node is not None and node.header.number > final:
                support[h] = support.get(h, 0) + 1
                h = node.header.parent_hash
                node = self.nodes.get(h)
        target: bytes | None = None
        for h, count in support.items():
            # Two blocks of one height cannot both have a supermajority (one vote a validator).
            if count >= need and (target is None or self.nodes[h].header.number
                                  > self.nodes[target].header.number):
                target = h
        if target is None:
            return []
        # Counted blocks are all above the finalized height, and every block of the tree is an
        # ancestor or a descendant of the finalized one: `target` descends from it, as
        # `finalize` checks.
        newly = [target, *self.ancestors(target, self.nodes[target].header.number - final - 1)]
        self.finalize(target)
        return list(reversed(newly))

    def remove(self, hashes: Sequence[bytes]) -> list[bytes]:
        """Drop unfinalized blocks, each with its descendants (a revert), and the votes for
        them; the removed hashes. A finalized block never goes."""
        final = self.nodes[self.finalized].header.number
        gone: list[bytes] = []
        for h in hashes:
            node = self.nodes.get(h)
            if node is None or node.header.number <= final:
                continue  # unknown, gone with an earlier one, or final
            parent = self.nodes[node.header.parent_hash]
            parent.children = [c for c in parent.children if c != h]
            for x in self._subtree(h):
                del self.nodes[x]
                gone.append(x)
        self.votes = {v: x for v, x in self.votes.items() if x.block_hash in self.nodes}
        self._above = None
        self._best = None
        return gone

    def finalize(self, target: bytes) -> list[bytes]:
        """Make `target`, a descendant of the finalized block, the finalized one and drop every
        block that neither descends from it nor is its ancestor; the dropped hashes.

        Every block is already an ancestor or a descendant of the finalized block before (each
        finalization prunes, and `add` takes only descendants), so the forks to drop all branch
        off the path between the two: the walk covers the blocks above the old finalized one,
        never the history below it."""
        previous = self.finalized
        if not self.is_descendant(target, previous):
            raise BlockTreeError("a new finalized block must descend from the finalized one")
        if target == previous:
            return []
        self.finalized = target
        target_number = self.nodes[target].header.number
        path = {target, *self.ancestors(target, target_number - self.nodes[previous].header.number)}
        pruned: list[bytes] = []
        walk = [previous]
        while walk:
            node = self.nodes[walk.pop()]
            kept = []
            for c in node.children:
                if c == target:
                    kept.append(c)  # its subtree stays whole
                elif c in path:
                    kept.append(c)
                    walk.append(c)
                else:
                    pruned.extend(self._subtree(c))
            node.children = kept
        for h in pruned:
            del self.nodes[h]
        self.votes = {v: x for v, x in self.votes.items() if x.block_hash in self.nodes}
        self._above = None
        self._best = None
        return pruned
