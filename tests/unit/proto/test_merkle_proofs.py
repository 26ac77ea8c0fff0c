"""Merkle proofs over erasure chunks: every leaf's proof verifies, and any change to the leaf,
its index, the root or any proof element makes it fail. (The leaf count is not committed in the
root: it comes from context, the number of validators.)"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from proto.merkle import merkle_proof, merkle_proofs, merkle_root, verify_proof

leaves_st = st.lists(st.binary(max_size=24), min_size=1, max_size=50, unique=True)


@settings(max_examples=200, deadline=None)
@given(leaves_st)
def test_every_leaf_proof_verifies(leaves: list[bytes]) -> None:
    root = merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        assert verify_proof(root, leaf, i, len(leaves), merkle_proof(leaves, i))
    # All proofs from one build of the tree are the same proofs.
    assert merkle_proofs(leaves) == (root, [merkle_proof(leaves, i) for i in range(len(leaves))])


@settings(max_examples=300, deadline=None)
@given(leaves_st, st.data())
def test_any_change_breaks_the_proof(leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    root = merkle_root(leaves)
    i = data.draw(st.integers(0, n - 1))
    leaf, proof = leaves[i], merkle_proof(leaves, i)
    assert not verify_proof(root, leaf + b"\x00", i, n, proof)
    other = data.draw(st.integers(0, n - 1).filter(lambda j: j != i)) if n > 1 else None
    if other is not None:
        assert not verify_proof(root, leaf, other, n, proof)  # unique leaves: wrong position
    flipped_root = bytes([root[0] ^ 1]) + root[1:]
    assert not verify_proof(flipped_root, leaf, i, n, proof)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = bytes([bad[k][0] ^ 0x80]) + bad[k][1:]
        assert not verify_proof(root, leaf, i, n, bad)
        assert not verify_proof(root, leaf, i, n, proof[:-1])
    assert not verify_proof(root, leaf, i, n, [*proof, b"\x00" * 32])


def test_out_of_range_indices_never_verify() -> None:
    leaves = [b"a", b"b", b"c"]
    root = merkle_root(leaves)
    proof = merkle_proof(leaves, 2)
    assert not verify_proof(root, b"c", 3, 3, proof)
    assert not verify_proof(root, b"c", -1, 3, proof)
