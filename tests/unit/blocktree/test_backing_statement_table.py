"""Backing statement table of one relay parent: quorum, bits and votes in group order, named
refusals (non-member, forged or replayed signature, double vote, unknown candidate, seconding
limit), idempotent duplicates. What it assembles must pass the relay runtime's own vote check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.candidate import (
    CandidateCommitments,
    CandidateDescriptor,
    CommittedCandidateReceipt,
    head_hash,
)
from proto.keys import Keypair, dev_name
from proto.statements import (
    AttestationKind,
    CompactStatement,
    SignedStatement,
    SigningContext,
    StatementKind,
)
from relay.core.backing_table import BackingError, BackingTable
from relay.core.config import HostConfiguration
from relay.core.inclusion import InclusionError, check_backing_votes

KEYS = [Keypair.from_name(dev_name(i)) for i in range(8)]
PUBLICS = [k.public for k in KEYS]
RELAY_PARENT = b"\x11" * 32
CTX = SigningContext(3, RELAY_PARENT)
GROUP = [5, 2, 6]  # group order is not index order: bits and votes must follow the group
CORE = 1
SECONDED, VALID = StatementKind.SECONDED, StatementKind.VALID
LIMIT = HostConfiguration().max_candidate_depth + 1


def receipt(tag: bytes) -> CommittedCandidateReceipt:
    commitments = CandidateCommitments([], [], None, b"head-" + tag, 0, 0)
    descriptor = CandidateDescriptor(1000, RELAY_PARENT, 0, CORE, CTX.session_index,
                                     b"\x02" * 32, b"\x03" * 32, b"\x04" * 32,
                                     head_hash(commitments.head_data), b"\x05" * 32)
    return CommittedCandidateReceipt(descriptor, commitments)


def signed(v: int, kind: StatementKind, candidate_hash: bytes,
           ctx: SigningContext = CTX) -> SignedStatement:
    return SignedStatement.sign(KEYS[v], CompactStatement(kind, candidate_hash), ctx, v)


def new_table(limit: int = LIMIT) -> BackingTable:
    return BackingTable(CTX, PUBLICS, seconding_limit=limit)


def test_quorum_with_votes_and_bits_in_group_order() -> None:
    table, r = new_table(), receipt(b"a")
    h = r.hash()
    assert table.import_statement(signed(6, SECONDED, h), GROUP, CORE, r) is True
    assert table.attested(h, 2) is None and not table.is_backable(h, 2)
    assert table.import_statement(signed(5, VALID, h), GROUP, CORE) is True
    backed = table.attested(h, 2)
    assert backed is not None and table.is_backable(h, 2)
    assert backed.candidate == r and backed.core_index == CORE
    assert backed.validator_indices == [True, False, True]  # members 5 and 6, in group order
    assert [a.kind for a in backed.validity_votes] == [AttestationKind.EXPLICIT,
                                                       AttestationKind.IMPLICIT]
    assert backed.validity_votes[0].signature == signed(5, VALID, h).signature
    assert backed.validity_votes[1].signature == signed(6, SECONDED, h).signature
    # the relay runtime accepts exactly what the table built
    assert check_backing_votes(backed, GROUP, PUBLICS, CTX, 2) == [True, False, True]
    # a quorum of 3 is not reached yet; the third member's vote reaches it
    assert table.attested(h, 3) is None
    table.import_statement(signed(2, VALID, h), GROUP, CORE)
    full = table.attested(h, 3)
    assert full is not None and full.validator_indices == [True, True, True]
    assert check_backing_votes(full, GROUP, PUBLICS, CTX, 3) == [True, True, True]


def test_quorum_is_capped_by_the_group_size() -> None:
    table, r = new_table(), receipt(b"solo")
    h = r.hash()
    table.import_statement(signed(4, SECONDED, h), [4], CORE, r)
    backed = table.attested(h, 2)  # effective minimum: min(group of 1, configured 2) = 1
    assert backed is not None and backed.validator_indices == [True]
    assert table.attested(b"\x99" * 32, 1) is None  # unknown candidate


def test_runtime_refuses_a_table_result_below_its_quorum() -> None:
    table, r = new_table(), receipt(b"b")
    h = r.hash()
    table.import_statement(signed(2, SECONDED, h), GROUP, CORE, r)
    single = table.attested(h, 1)
    assert single is not None and single.validator_indices == [False, True, False]
    with pytest.raises(InclusionError, match="InsufficientBacking"):
        check_backing_votes(single, GROUP, PUBLICS, CTX, 2)


def test_signer_outside_the_group_is_refused() -> None:
    table, r = new_table(), receipt(b"c")
    h = r.hash()
    with pytest.raises(BackingError, match="NotInGroup"):
        table.import_statement(signed(0, SECONDED, h), GROUP, CORE, r)
    table.import_statement(signed(5, SECONDED, h), GROUP, CORE, r)
    with pytest.raises(BackingError, match="NotInGroup"):
        table.import_statement(signed(7, VALID, h), GROUP, CORE)
    backed = table.attested(h, 1)
    assert backed is not None and backed.validator_indices == [True, False, False]


def test_forged_and_replayed_signatures_are_refused() -> None:
    table, r = new_table(), receipt(b"d")
    h = r.hash()
    stolen = signed(6, SECONDED, h).signature
    with pytest.raises(BackingError, match="InvalidSignature"):
        table.import_statement(SignedStatement(CompactStatement(SECONDED, h), 5, stolen),
                               GROUP, CORE, r)
    with pytest.raises(BackingError, match="InvalidSignature"):  # signed on another relay parent
        table.import_statement(signed(5, SECONDED, h, SigningContext(3, b"\x22" * 32)),
                               GROUP, CORE, r)
    with pytest.raises(BackingError, match="InvalidSignature"):  # signed in another session
        table.import_statement(signed(5, SECONDED, h, SigningContext(4, RELAY_PARENT)),
                               GROUP, CORE, r)
    valid_as_seconded = SignedStatement(CompactStatement(SECONDED, h), 5,
                                        signed(5, VALID, h).signature)
    with pytest.raises(BackingError, match="InvalidSignature"):  # statement kind is signed too
        table.import_statement(valid_as_seconded, GROUP, CORE, r)
    assert table.attested(h, 1) is None and table.candidates == {}


def test_double_votes_and_duplicates() -> None:
    table, r = new_table(), receipt(b"e")
    h = r.hash()
    assert table.import_statement(signed(5, SECONDED, h), GROUP, CORE, r) is True
    # duplicates are idempotent
    assert table.import_statement(signed(5, SECONDED, h), GROUP, CORE, r) is False
    # a Seconded already is its signer's validity vote: a Valid on top adds nothing
    assert table.import_statement(signed(5, VALID, h), GROUP, CORE) is False
    assert table.import_statement(signed(2, VALID, h), GROUP, CORE) is True
    assert table.import_statement(signed(2, VALID, h), GROUP, CORE) is False
    # a validator that said Valid may not second the same candidate afterwards
    with pytest.raises(BackingError, match="DoubleVote"):
        table.import_statement(signed(2, SECONDED, h), GROUP, CORE, r)
    backed = table.attested(h, 2)
    assert backed is not None and backed.validator_indices == [True, True, False]
    assert [a.kind for a in backed.validity_votes] == [AttestationKind.IMPLICIT,
                                                       AttestationKind.EXPLICIT]


def test_valid_for_an_unknown_candidate_and_seconded_without_receipt() -> None:
    table, r = new_table(), receipt(b"f")
    h = r.hash()
    with pytest.raises(BackingError, match="UnknownCandidate"):
        table.import_statement(signed(5, VALID, h), GROUP, CORE)
    with pytest.raises(BackingError, match="MissingCandidate"):
        table.import_statement(signed(5, SECONDED, h), GROUP, CORE)
    with pytest.raises(BackingError, match="MissingCandidate"):  # a receipt of another candidate
        table.import_statement(signed(5, SECONDED, h), GROUP, CORE, receipt(b"other"))
    assert table.candidates == {}


def test_seconding_limit_per_validator() -> None:
    table = new_table()
    receipts = [receipt(bytes([i])) for i in range(LIMIT + 1)]
    for r in receipts[:LIMIT]:
        assert table.import_statement(signed(5, SECONDED, r.hash()), GROUP, CORE, r)
    extra = receipts[LIMIT]
    with pytest.raises(BackingError, match="ExcessiveSeconded"):
        table.import_statement(signed(5, SECONDED, extra.hash()), GROUP, CORE, extra)
    assert extra.hash() not in table.candidates
    # the limit is per validator: another member may still second it, and 5 may vote Valid
    assert table.import_statement(signed(6, SECONDED, extra.hash()), GROUP, CORE, extra)
    assert table.import_statement(signed(5, VALID, extra.hash()), GROUP, CORE)
    assert table.seconded_by[5] == {r.hash() for r in receipts[:LIMIT]}
    assert table.seconded_by[6] == {extra.hash()}


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(3)), st.integers(0, 2), st.integers(1, 4))
def test_result_does_not_depend_on_arrival_order(order: list[int], seconder: int,
                                                 minimum: int) -> None:
    """Whatever order the group's statements arrive in (the Seconded first, as a Valid needs a
    known candidate), the backed candidate is the same and the runtime accepts it."""
    r = receipt(b"order")
    h = r.hash()
    statements = {m: signed(m, SECONDED if i == seconder else VALID, h)
                  for i, m in enumerate(GROUP)}
    first = GROUP[seconder]
    arrival = [first] + [GROUP[i] for i in order if GROUP[i] != first]
    table = new_table()
    results = []
    for count, member in enumerate(arrival, start=1):
        table.import_statement(statements[member], GROUP, CORE, r)
        backed = table.attested(h, minimum)
        assert (backed is not None) == (count >= min(len(GROUP), minimum))
        results.append(backed)
    final = results[-1]
    assert final is not None
    assert final.validator_indices == [True, True, True]
    assert [a.signature for a in final.validity_votes] == [statements[m].signature for m in GROUP]
    assert check_backing_votes(final, GROUP, PUBLICS, CTX, minimum) == [True, True, True]
