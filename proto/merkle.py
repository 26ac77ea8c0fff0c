"""Binary merkle tree with inclusion proofs.

Used for the erasure root (one leaf per chunk) and for the relay state root (one leaf per sorted
key/value entry). Leaves and inner nodes are hashed under different prefixes so a proof can never
pass an inner node off as a leaf. An odd node at the end of a level is promoted unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from proto.hashing import ZERO_HASH, blake2_256

_LEAF = b"\x00"
_NODE = b"\x01"
MAX_PROOF_LEN = 64


def leaf_hash(data: bytes) -> bytes:
    return blake2_256(_LEAF + data)


def _node(left: bytes, right: bytes) -> bytes:
    return blake2_256(_NODE + left + right)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    level = [leaf_hash(x) for x in leaves]
    levels = [level]
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root over the leaves' data in order; the empty tree's root is the zero hash."""
    if not leaves:
        return ZERO_HASH
    return _levels(leaves)[-1][0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Sibling hashes from the leaf at `index` up to (not including) the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} of {len(leaves)}")
    return _proof(_levels(leaves), index)


def merkle_proofs(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """(root, every leaf's proof) from one build of the tree: a proof per leaf built on its own
    rebuilt the tree each time, n² log n hashes for the n chunks of an erasure coding."""
    if not leaves:
        return ZERO_HASH, []
    levels = _levels(leaves)
    return levels[-1][0], [_proof(levels, i) for i in range(len(leaves))]


def _proof(levels: list[list[bytes]], index: int) -> list[bytes]:
    proof: list[bytes] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def verify_proof(
    root: bytes, data: bytes, index: int, count: int, proof: Sequence[bytes]
) -> bool:
    """True iff `data` is leaf `index` of a `count`-leaf tree whose root is `root`."""
    if not 0 <= index < count or len(proof) > MAX_PROOF_LEN:
        return False
    h = leaf_hash(data)
    width = count
    it = iter(proof)
    while width > 1:
        sibling = index ^ 1
        if sibling < width:
            s = next(it, None)
            if s is None:
                return False
            h = _node(h, s) if index % 2 == 0 else _node(s, h)
        index //= 2
        width = (width + 1) // 2
    return next(it, None) is None and h == root
