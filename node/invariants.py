"""The invariants every run checks (testing.md), over a run's relay-block records. Each violation
is a message naming the block and candidate."""

from __future__ import annotations

from collections.abc import Collection, Sequence, Set

from node.report import BlockRecord


def check_invariants(
    blocks: Sequence[BlockRecord], allowed_ancestry_len: int, max_candidate_depth: int, *,
    concluded_invalid: Collection[str] = (),
    approved: Set[tuple[str, str]] | None = None,
) -> list[str]:
    """`concluded_invalid`: candidate hashes (0x-hex) some validator saw concluded invalid in a
    dispute; no finalized block may include one (backing one may be final: approval checkers
    find garbage only once it is included, and the runtime frees it from its core). `approved`: the (block hash, candidate
    hash) pairs the validators' approval checking approved; given, every candidate a finalized
    block included must be among them."""
    problems: list[str] = []
    backed_at: dict[str, int] = {}
    last_number: dict[int, int] = {}
    unincluded: dict[int, int] = {}
    prev_hash: str | None = None
    for b in blocks:
        if prev_hash is not None and b.parent_hash != prev_hash:
            problems.append(f"block #{b.number}: does not extend the previous block")
        prev_hash = b.hash
        for inc in b.included:
            if inc.candidate_hash not in backed_at:
                problems.append(f"block #{b.number}: included {inc.candidate_hash[:10]} of para "
                                f"{inc.para_id} was never backed")
            elif backed_at[inc.candidate_hash] != inc.backed_in:
                problems.append(f"block #{b.number}: {inc.candidate_hash[:10]} backed_in mismatch")
            expected = last_number.get(inc.para_id)
            if expected is not None and inc.para_number != expected + 1:
                problems.append(f"block #{b.number}: para {inc.para_id} included #{inc.para_number} "
                                f"after #{expected}: heads do not chain")
            last_number[inc.para_id] = inc.para_number
            unincluded[inc.para_id] = unincluded.get(inc.para_id, 0) - 1
        for bk in b.backed:
            backed_at[bk.candidate_hash] = b.number
            age = b.number - bk.relay_parent_number
            if age > allowed_ancestry_len + 1:
                problems.append(f"block #{b.number}: {bk.candidate_hash[:10]} of para {bk.para_id} "
                                f"has relay parent age {age} > {allowed_ancestry_len + 1}")
            unincluded[bk.para_id] = unincluded.get(bk.para_id, 0) + 1
        for para, n in unincluded.items():
            if n > max_candidate_depth + 1:
                problems.append(f"block #{b.number}: para {para} has {n} candidates unincluded "
                                f"(depth {max_candidate_depth})")
        if b.finalized:
            for h, para in [(c.candidate_hash, c.para_id) for c in b.included]:
                if h in concluded_invalid:
                    problems.append(f"block #{b.number}: finalized, yet it holds {h[:10]} of "
                                    f"para {para}, concluded invalid")
    finalized = [b for b in blocks if b.finalized]
    if finalized and finalized != list(blocks[: len(finalized)]):
        problems.append("finalized blocks are not a prefix of the best chain")
    if approved is not None:
        problems += [f"block #{b.number}: finalized with {inc.candidate_hash[:10]} of para "
                     f"{inc.para_id} not approved" for b in finalized for inc in b.included
                     if (b.hash, inc.candidate_hash) not in approved]
    return problems
