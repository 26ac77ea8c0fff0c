"""Property: the best chain does not depend on the order in which a validator hears about
candidates. Fork choice is by lower candidate hash precisely so that validators who saw seconded
and backed statements in different orders still offer the block author the same chain (§3.6).

Each generated candidate produces a head no other candidate produces. With two candidates sharing
an output head, the reference's `MultiplePaths` rule makes the outcome order dependent (whichever
path is in the chain first keeps the other out), so those sets are excluded on purpose.
"""

from __future__ import annotations

import contextlib
from random import Random

from fc_fixtures import X, Y, Z, entry, scope
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.core.prospective.candidate_storage import CandidateEntry, CandidateStorage
from relay.core.prospective.fragment_chain import ChainError, FragmentChain

HEADS = [bytes([0x0A + i]) for i in range(7)]


@st.composite
def candidate_sets(draw: st.DrawFn) -> list[CandidateEntry]:
    outputs = draw(st.lists(st.sampled_from(HEADS[1:]), unique=True, min_size=1, max_size=6))
    out = []
    for head in outputs:
        parent = draw(st.sampled_from([h for h in HEADS if h != head]))
        rp = draw(st.sampled_from([X, Y, Z]))
        out.append(entry(rp, parent, head, backed=False))
    return out


def final_best_chain(depth: int, order: list[CandidateEntry], back_order: list[int]) -> list[bytes]:
    """Introduce every candidate in `order`, back them in `back_order`, return the best chain."""
    chain = FragmentChain.populate(scope(max_depth=depth), CandidateStorage())
    for c in order:
        with contextlib.suppress(ChainError):  # refused ones are simply not kept
            chain.try_adding_seconded_candidate(c)
    for i in back_order:
        chain.candidate_backed(order[i].candidate_hash)
    return chain.best_chain_vec()


@settings(max_examples=300, deadline=None)
@given(candidate_sets(), st.integers(0, 3), st.randoms(use_true_random=False))
def test_best_chain_is_independent_of_arrival_order(
    candidates: list[CandidateEntry], depth: int, rnd: Random
) -> None:
    first = list(candidates)
    second = list(candidates)
    rnd.shuffle(second)
    back_first = list(range(len(first)))
    back_second = list(range(len(second)))
    rnd.shuffle(back_first)
    rnd.shuffle(back_second)
    assert final_best_chain(depth, first, back_first) == final_best_chain(depth, second, back_second)


def test_interleaved_seconding_and_backing_reach_the_same_chain() -> None:
    """A concrete case of the property: a lower-hash fork backed after the chain formed re-orgs
    it, and the same fork heard first keeps the other branch out from the start."""
    a = entry(X, b"\x0a", b"\x0b", backed=False)
    fork = next(e for e in (entry(X, b"\x0a", bytes([0x0b, n]), backed=False) for n in range(256))
                if e.candidate_hash < a.candidate_hash)
    child = entry(Y, b"\x0b", b"\x0c", backed=False)
    chain_one = final_best_chain(2, [a, child, fork], [0, 1, 2])
    chain_two = final_best_chain(2, [fork, a, child], [0, 1, 2])
    assert chain_one == chain_two == [fork.candidate_hash]
