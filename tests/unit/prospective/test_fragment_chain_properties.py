"""Property: whatever candidates arrive and get backed, in whatever order, the best chain never
exceeds `max_depth + 1`, starts at the required parent and chains head to head."""

from __future__ import annotations

from fc_fixtures import X, Y, Z, entry, scope
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.candidate import head_hash
from relay.core.prospective.candidate_storage import CandidateStorage
from relay.core.prospective.fragment_chain import ChainError, FragmentChain

HEADS = [bytes([0x0A + i]) for i in range(6)]
step = st.tuples(st.sampled_from(HEADS), st.sampled_from(HEADS), st.sampled_from([X, Y, Z]),
                 st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=25), st.integers(0, 4))
def test_best_chain_bounded_and_chained(steps: list, depth: int) -> None:
    chain = FragmentChain.populate(scope(max_depth=depth), CandidateStorage())
    added = []
    for parent, out, rp, back_now in steps:
        if parent == out:
            continue
        e = entry(rp, parent, out, backed=False)
        try:
            chain.try_adding_seconded_candidate(e)
        except ChainError:
            continue
        added.append(e.candidate_hash)
        if back_now:
            chain.candidate_backed(e.candidate_hash)
        nodes = chain.best_chain.chain
        assert len(nodes) <= depth + 1
        expected_parent = head_hash(chain.scope.base_constraints.required_parent)
        for n in nodes:
            assert n.parent_head_data_hash == expected_parent
            expected_parent = n.output_head_data_hash
        assert len(set(chain.best_chain_vec())) == len(nodes)
    for h in added:  # backing everything later still keeps the bound
        chain.candidate_backed(h)
        assert chain.best_chain_len() <= depth + 1
