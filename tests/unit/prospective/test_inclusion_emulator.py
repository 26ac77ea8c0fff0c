"""Spec §7 scenarios 22–25: constraint modifications and fragment checks (polkadot-sdk
`inclusion_emulator` tests)."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from proto.candidate import CandidateCommitments, OutboundHrmpMessage, PersistedValidationData
from proto.ump_signals import SelectCore, with_signals
from relay.core.constraints import (
    Constraints,
    InboundHrmpLimitations,
    OutboundHrmpChannelLimitations,
)
from relay.core.prospective.inclusion_emulator import (
    ConstraintModifications,
    FragmentValidityError,
    HrmpWatermarkUpdate,
    ModificationError,
    OutboundHrmpChannelModification,
    RelayChainBlockInfo,
    apply_modifications,
    check_against_constraints,
    check_modifications,
)

PARA_A, PARA_B, PARA_C = 1, 2, 3
CODE = b"\x0c" * 32


def constraints(**changes: object) -> Constraints:
    base = Constraints(
        min_relay_parent_number=5, max_pov_size=1000, max_code_size=1000, max_head_data_size=100,
        ump_remaining=10, ump_remaining_bytes=1024, max_ump_num_per_candidate=5,
        dmp_remaining_messages=(), hrmp_inbound=InboundHrmpLimitations((6, 8)),
        hrmp_channels_out={PARA_A: OutboundHrmpChannelLimitations(512, 5)},
        max_hrmp_num_per_candidate=5, required_parent=b"\x01\x02\x03",
        validation_code_hash=CODE, upgrade_restriction=False, future_validation_code=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def chan(b: int, m: int) -> OutboundHrmpChannelModification:
    return OutboundHrmpChannelModification(b, m)


def test_s7_22_stack_modifications() -> None:
    a = ConstraintModifications(
        required_parent=b"a", hrmp_watermark=HrmpWatermarkUpdate.head(1),
        outbound_hrmp={PARA_A: chan(100, 5), PARA_B: chan(100, 5)},
        ump_messages_sent=6, ump_bytes_sent=1000, dmp_messages_processed=5,
        code_upgrade_applied=True)
    b = ConstraintModifications(
        required_parent=b"b", hrmp_watermark=HrmpWatermarkUpdate.trunk(2),
        outbound_hrmp={PARA_B: chan(100, 5), PARA_C: chan(100, 5)},
        ump_messages_sent=6, ump_bytes_sent=1000, dmp_messages_processed=5,
        code_upgrade_applied=False)
    c = a.stack(b)
    assert c.required_parent == b"b"
    assert c.hrmp_watermark == HrmpWatermarkUpdate.trunk(2)
    assert dict(c.outbound_hrmp) == {PARA_A: chan(100, 5), PARA_B: chan(200, 10),
                                     PARA_C: chan(100, 5)}
    assert (c.ump_messages_sent, c.ump_bytes_sent, c.dmp_messages_processed) == (12, 2000, 10)
    assert c.code_upgrade_applied
    assert ConstraintModifications.identity().stack(a).stack(b) == c


def test_s7_23_trunk_and_head_watermarks() -> None:
    c = constraints()

    def wm(update: HrmpWatermarkUpdate) -> tuple[int, ...]:
        m = ConstraintModifications(hrmp_watermark=update)
        return apply_modifications(c, m).hrmp_inbound.valid_watermarks

    assert wm(HrmpWatermarkUpdate.trunk(6)) == (6, 8)
    with pytest.raises(ModificationError) as e:
        check_modifications(c, ConstraintModifications(hrmp_watermark=HrmpWatermarkUpdate.trunk(7)))
    assert e.value.kind == "DisallowedHrmpWatermark" and e.value.fields["block_number"] == 7
    assert wm(HrmpWatermarkUpdate.trunk(8)) == (8,)
    assert wm(HrmpWatermarkUpdate.head(5)) == (6, 8)
    assert wm(HrmpWatermarkUpdate.head(7)) == (8,)


def _err(c: Constraints, m: ConstraintModifications) -> ModificationError:
    with pytest.raises(ModificationError) as e:
        check_modifications(c, m)
    return e.value


def test_s7_24_limit_checks() -> None:
    c = constraints()
    assert _err(c, ConstraintModifications(outbound_hrmp={PARA_B: chan(1, 1)})).kind == "NoSuchHrmpChannel"
    e = _err(c, ConstraintModifications(outbound_hrmp={PARA_A: chan(1, 6)}))
    assert (e.kind, e.fields["messages_remaining"], e.fields["messages_submitted"]) == (
        "HrmpMessagesOverflow", 5, 6)
    e = _err(c, ConstraintModifications(outbound_hrmp={PARA_A: chan(513, 1)}))
    assert (e.kind, e.fields["bytes_remaining"], e.fields["bytes_submitted"]) == (
        "HrmpBytesOverflow", 512, 513)
    assert _err(c, ConstraintModifications(ump_messages_sent=11)).kind == "UmpMessagesOverflow"
    assert _err(c, ConstraintModifications(ump_bytes_sent=1025)).kind == "UmpBytesOverflow"
    assert _err(c, ConstraintModifications(dmp_messages_processed=6)).kind == "DmpMessagesUnderflow"
    queued = constraints(dmp_remaining_messages=(1, 4, 8, 10))
    after = apply_modifications(queued, ConstraintModifications(dmp_messages_processed=2))
    assert after.dmp_remaining_messages == (8, 10)
    assert _err(c, ConstraintModifications(code_upgrade_applied=True)).kind == \
        "AppliedNonexistentCodeUpgrade"
    # within every limit: applies and spends the budgets
    ok = apply_modifications(c, ConstraintModifications(
        outbound_hrmp={PARA_A: chan(12, 2)}, ump_messages_sent=3, ump_bytes_sent=100))
    assert ok.hrmp_channels_out[PARA_A] == OutboundHrmpChannelLimitations(500, 3)
    assert (ok.ump_remaining, ok.ump_remaining_bytes) == (7, 924)


RP = RelayChainBlockInfo(hash=b"\xbe" * 32, number=6, storage_root=b"\xdb" * 32)


def commitments(**changes: object) -> CandidateCommitments:
    base = CandidateCommitments(upward_messages=[], horizontal_messages=[],
                                new_validation_code=None, head_data=b"\x01\x02\x03\x04",
                                processed_downward_messages=0, hrmp_watermark=RP.number)
    return msgspec.structs.replace(base, **changes)


def pvd(c: Constraints, rp: RelayChainBlockInfo = RP) -> PersistedValidationData:
    return PersistedValidationData(c.required_parent, rp.number, rp.storage_root, c.max_pov_size)


def kind(c: Constraints, comm: CandidateCommitments, code: bytes = CODE,
         p: PersistedValidationData | None = None, rp: RelayChainBlockInfo = RP) -> str | None:
    try:
        check_against_constraints(rp, c, comm, code, p if p is not None else pvd(c, rp))
    except FragmentValidityError as e:
        return e.kind
    return None


def test_s7_25_fragment_checks() -> None:
    c = constraints()
    assert kind(c, commitments()) is None
    assert kind(c, commitments(), code=b"\x0d" * 32) == "ValidationCodeMismatch"
    other_rp = RelayChainBlockInfo(b"\xbf" * 32, 7, b"\xdc" * 32)
    assert kind(c, commitments(), p=pvd(c, other_rp)) == "PersistedValidationDataMismatch"
    assert kind(c, commitments(new_validation_code=b"\0" * 1001)) == "CodeSizeTooLarge"
    old = RelayChainBlockInfo(b"\xbe" * 32, 3, b"\xdb" * 32)
    with pytest.raises(FragmentValidityError) as e:
        check_against_constraints(old, c, commitments(hrmp_watermark=3), CODE, pvd(c, old))
    assert (e.value.kind, e.value.fields) == ("RelayParentTooOld", {"min": 5, "got": 3})
    many_hrmp = [OutboundHrmpMessage(PARA_A + i, b"x") for i in range(6)]
    assert kind(c, commitments(horizontal_messages=many_hrmp)) == "HrmpMessagesPerCandidateOverflow"
    assert kind(c, commitments(upward_messages=[b"u"] * 6)) == "UmpMessagesPerCandidateOverflow"
    restricted = constraints(upgrade_restriction=True)
    assert kind(restricted, commitments(new_validation_code=b"\x01")) == "CodeUpgradeRestricted"
    unsorted = [OutboundHrmpMessage(PARA_B, b"x"), OutboundHrmpMessage(PARA_A, b"y")]
    assert kind(c, commitments(horizontal_messages=unsorted)) == "HrmpMessagesDescendingOrDuplicate"
    # UMP signals after the separator do not count towards the per-candidate maximum
    signalled = with_signals([b"u"] * 5, [SelectCore(0, 0)])
    assert kind(c, commitments(upward_messages=signalled)) is None
    # DMP advancement: a message sent at or before the relay parent must be processed
    dmq = constraints(dmp_remaining_messages=(RP.number,))
    assert kind(dmq, commitments()) == "DmpAdvancementRule"
    assert kind(constraints(dmp_remaining_messages=(RP.number + 1,)), commitments()) is None
    assert kind(dmq, commitments(processed_downward_messages=1)) is None


def test_malformed_signal_section_counts_only_real_messages() -> None:
    c = constraints()
    bad_signals = [b"u", b"", b"not a signal"]
    # one real message: within the per-candidate maximum (the relay runtime refuses the signals)
    assert kind(c, commitments(upward_messages=bad_signals)) is None
