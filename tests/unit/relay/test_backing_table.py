"""Backing table: quorum, vote order and bits, and every refusal named."""

from __future__ import annotations

import pytest
from relay_fixtures import Chain, make_candidate

from proto.keys import Keypair, dev_name
from proto.statements import (
    AttestationKind,
    CompactStatement,
    SignedStatement,
    SigningContext,
    StatementKind,
)
from relay.core.backing_table import BackingError, BackingTable
from relay.core.inclusion import check_backing_votes

KEYS = [Keypair.from_name(dev_name(i)) for i in range(6)]
GROUP = [2, 3, 4]


def setup() -> tuple[BackingTable, SigningContext, object]:
    chain = Chain(n_validators=6)
    receipt = make_candidate(chain.head, 1000, bytes([1000 % 256, 0]), b"h1")
    ctx = SigningContext(0, receipt.descriptor.relay_parent)
    return BackingTable(ctx, [k.public for k in KEYS], seconding_limit=2), ctx, receipt


def st(v: int, kind: StatementKind, h: bytes, ctx: SigningContext) -> SignedStatement:
    return SignedStatement.sign(KEYS[v], CompactStatement(kind, h), ctx, v)


def test_quorum_votes_in_group_order() -> None:
    table, ctx, receipt = setup()
    h = receipt.hash()  # type: ignore[attr-defined]
    assert table.import_statement(st(3, StatementKind.SECONDED, h, ctx), GROUP, 0, receipt)  # type: ignore[arg-type]
    assert table.attested(h, 2) is None
    assert table.import_statement(st(2, StatementKind.VALID, h, ctx), GROUP, 0)
    backed = table.attested(h, 2)
    assert backed is not None and backed.validator_indices == [True, True, False]
    assert [a.kind for a in backed.validity_votes] == [AttestationKind.EXPLICIT, AttestationKind.IMPLICIT]
    # what the table assembles passes the relay runtime's own vote check
    assert check_backing_votes(backed, GROUP, [k.public for k in KEYS], ctx, 2) == [True, True, False]
    assert not table.import_statement(st(2, StatementKind.VALID, h, ctx), GROUP, 0)  # duplicate
    assert not table.import_statement(st(3, StatementKind.VALID, h, ctx), GROUP, 0)  # Seconded counts


def test_refusals() -> None:
    table, ctx, receipt = setup()
    h = receipt.hash()  # type: ignore[attr-defined]
    with pytest.raises(BackingError, match="NotInGroup"):
        table.import_statement(st(0, StatementKind.SECONDED, h, ctx), GROUP, 0, receipt)  # type: ignore[arg-type]
    with pytest.raises(BackingError, match="UnknownCandidate"):
        table.import_statement(st(2, StatementKind.VALID, h, ctx), GROUP, 0)
    forged = SignedStatement(CompactStatement(StatementKind.SECONDED, h), 2,
                             st(3, StatementKind.SECONDED, h, ctx).signature)
    with pytest.raises(BackingError, match="InvalidSignature"):
        table.import_statement(forged, GROUP, 0, receipt)  # type: ignore[arg-type]
    other_ctx = SigningContext(0, b"\x05" * 32)  # replayed on another relay parent
    with pytest.raises(BackingError, match="InvalidSignature"):
        table.import_statement(st(2, StatementKind.SECONDED, h, other_ctx), GROUP, 0, receipt)  # type: ignore[arg-type]
    table.import_statement(st(2, StatementKind.SECONDED, h, ctx), GROUP, 0, receipt)  # type: ignore[arg-type]
    table.import_statement(st(4, StatementKind.VALID, h, ctx), GROUP, 0)
    with pytest.raises(BackingError, match="DoubleVote"):
        table.import_statement(st(4, StatementKind.SECONDED, h, ctx), GROUP, 0, receipt)  # type: ignore[arg-type]


def test_seconding_limit() -> None:
    table, ctx, _ = setup()
    chain = Chain(n_validators=6)
    receipts = [make_candidate(chain.head, 1000, bytes([1000 % 256, 0]), bytes([9, i])) for i in range(3)]
    for r in receipts[:2]:
        table.import_statement(st(2, StatementKind.SECONDED, r.hash(), ctx), GROUP, 0, r)
    with pytest.raises(BackingError, match="ExcessiveSeconded"):
        table.import_statement(st(2, StatementKind.SECONDED, receipts[2].hash(), ctx), GROUP, 0,
                               receipts[2])
