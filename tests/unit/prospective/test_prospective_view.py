"""The prospective-parachains view over real relay blocks: leaf activation with ancestry,
pending candidates, introduce/back/backable queries, PVD lookup, pruning of deactivated leaves."""

from __future__ import annotations

import sys
from pathlib import Path

from proto.candidate import head_hash
from relay.core.chain_store import ChainStore
from relay.core.prospective.fragment_chain import HypotheticalCandidate
from relay.core.prospective.view import ProspectiveParachains

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "relay"))
from relay_fixtures import Chain, back, make_candidate

PARA = 1000
GENESIS_HEAD = bytes([PARA % 256, 0])


def store_of(chain: Chain) -> ChainStore:
    store = ChainStore()
    for h, s in zip(chain.headers, chain.states, strict=True):
        store.add(h, s)
    return store


def test_introduce_back_and_query() -> None:
    chain = Chain()
    chain.empty_blocks(3)
    leaf = chain.head
    view = ProspectiveParachains()
    view.activate_leaf(leaf.hash(), store_of(chain))
    # ancestry 2: the leaf and its two parents are allowed relay parents
    assert view.allowed_relay_parents(PARA) == {chain.headers[i].hash() for i in (1, 2, 3)}
    assert view.get_minimum_relay_parents(leaf.hash()) == [(PARA, 1)]
    rp = chain.headers[2]
    c1 = make_candidate(rp, PARA, GENESIS_HEAD, b"one")
    pvd = view.get_prospective_validation_data(PARA, rp.hash(), head_hash(GENESIS_HEAD))
    assert pvd is not None and pvd.hash() == c1.descriptor.persisted_validation_data_hash
    hypo = HypotheticalCandidate(c1.hash(), PARA, rp.hash(), head_hash(GENESIS_HEAD))
    assert view.get_hypothetical_membership(hypo) == [leaf.hash()]
    assert view.introduce_seconded_candidate(PARA, c1, pvd)
    assert view.get_backable_candidates(leaf.hash(), PARA, 1, []) == []
    view.candidate_backed(PARA, c1.hash())
    assert view.get_backable_candidates(leaf.hash(), PARA, 1, []) == [(c1.hash(), rp.hash())]
    # too old a relay parent has no membership anywhere
    old = make_candidate(chain.headers[0], PARA, GENESIS_HEAD, b"old")
    stale = HypotheticalCandidate(old.hash(), PARA, chain.headers[0].hash(), head_hash(GENESIS_HEAD))
    assert view.get_hypothetical_membership(stale) == []
    assert view.candidate_counts() == {"best_chain": 1, "unconnected": 0}


def test_new_leaf_inherits_candidates_and_sees_pending_ones() -> None:
    chain = Chain()
    view = ProspectiveParachains()
    store = store_of(chain)
    view.activate_leaf(chain.head.hash(), store)
    rp = chain.head
    c1 = make_candidate(rp, PARA, GENESIS_HEAD, b"one")
    pvd = view.get_prospective_validation_data(PARA, rp.hash(), head_hash(GENESIS_HEAD))
    assert pvd is not None
    view.introduce_seconded_candidate(PARA, c1, pvd)
    view.candidate_backed(PARA, c1.hash())
    c2 = make_candidate(rp, PARA, b"one", b"two")
    pvd2 = view.get_prospective_validation_data(PARA, rp.hash(), head_hash(b"one"))
    assert pvd2 is not None
    view.introduce_seconded_candidate(PARA, c2, pvd2)
    chain.block([back(chain, c1, 0, rp.number)])  # c1 is now pending availability
    store = store_of(chain)
    view.activate_leaf(chain.head.hash(), store)
    view.deactivate_leaf(rp.hash())
    assert view.active_leaves() == [chain.head.hash()]
    chain_view = view.leaves[chain.head.hash()].chains[PARA]
    assert chain_view.best_chain_vec() == [c1.hash()]  # pending, so not offered for backing again
    assert view.get_backable_candidates(chain.head.hash(), PARA, 2, [c1.hash()]) == []
    view.candidate_backed(PARA, c2.hash())  # c2 carried over from the previous leaf
    assert view.get_backable_candidates(chain.head.hash(), PARA, 2, [c1.hash()]) == [
        (c2.hash(), rp.hash())]


def test_update_leaves_retains_the_replaced_leaf_while_reachable() -> None:
    chain = Chain()
    view = ProspectiveParachains()
    view.activate_leaf(chain.head.hash(), store_of(chain))
    parent = chain.head
    chain.block()
    view.update_leaves([chain.head.hash()], [parent.hash()], store_of(chain))
    assert view.active_leaves() == [chain.head.hash()]
    assert parent.hash() in view.retained  # still an allowed relay parent of the new leaf
    c1 = make_candidate(parent, PARA, GENESIS_HEAD, b"one")
    pvd = view.get_prospective_validation_data(PARA, parent.hash(), head_hash(GENESIS_HEAD))
    assert pvd is not None and view.introduce_seconded_candidate(PARA, c1, pvd)
    assert view.retained[parent.hash()].chains[PARA].contains_unconnected_candidate(c1.hash())
    for _ in range(3):  # once no active leaf reaches it, the retained state goes
        prev = chain.head
        chain.block()
        view.update_leaves([chain.head.hash()], [prev.hash()], store_of(chain))
    assert parent.hash() not in view.retained
