"""Assignment criteria: the stand-in relay VRF, RelayVRFModulo in tranche 0, RelayVRFDelay over
the delay tranches, no checking of one's own group's candidates, and certificates that every
validator can verify and nobody can bend."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from approval_fixtures import session

from proto.approvals import AssignmentCert, RelayVRFDelay, RelayVRFModulo
from relay.core.approval.criteria import (
    IncludedCandidate,
    InvalidAssignment,
    InvalidAssignmentReason,
    check_assignment_cert,
    compute_assignments,
    relay_vrf_delay_tranche,
    relay_vrf_modulo_core,
    relay_vrf_story,
)

S = session(10, 5)  # groups {0,1} {2,3} {4,5} {6,7} {8,9}, one per core
STORY = relay_vrf_story(b"\x07" * 32)
LEAVING = [IncludedCandidate(bytes([c]) * 32, c, c) for c in range(5)]  # core c backed by group c


def test_stand_in_vrf_is_deterministic_per_validator_block_and_input() -> None:
    a, b = S.validators[0], S.validators[1]
    assert relay_vrf_modulo_core(a, STORY, 0, 1000) == relay_vrf_modulo_core(a, STORY, 0, 1000)
    other_block = relay_vrf_story(b"\x08" * 32)
    draws = {relay_vrf_modulo_core(key, story, sample, 2**20)
             for key in (a, b) for story in (STORY, other_block) for sample in (0, 1)}
    assert len(draws) == 8  # key, block and sample each change the draw


def test_relay_vrf_modulo_assigns_tranche_zero_to_the_drawn_cores() -> None:
    for v in range(10):
        mine = compute_assignments(S, v, STORY, LEAVING)
        drawn = {relay_vrf_modulo_core(S.validators[v], STORY, s, 5): s
                 for s in reversed(range(S.relay_vrf_modulo_samples))}
        for core, sample in drawn.items():
            if core == v // 2:
                continue  # its own group's candidate
            assert mine[core].tranche == 0 and mine[core].cert == RelayVRFModulo(sample)


def test_relay_vrf_delay_gives_every_other_core_a_tranche_in_range() -> None:
    for v in range(10):
        mine = compute_assignments(S, v, STORY, LEAVING)
        assert set(mine) == set(range(5)) - {v // 2}  # every core but its group's
        for core, a in mine.items():
            assert 0 <= a.tranche < S.n_delay_tranches and a.validator_index == v
            if isinstance(a.cert, RelayVRFDelay):
                assert a.cert.core_index == core
                assert a.tranche == relay_vrf_delay_tranche(S.validators[v], STORY, core, 25, 0)


def test_zeroth_delay_tranche_width_folds_early_draws_into_tranche_zero() -> None:
    keys = [bytes([i]) * 32 for i in range(200)]
    narrow = Counter(relay_vrf_delay_tranche(k, STORY, 0, 10, 0) for k in keys)
    wide = Counter(relay_vrf_delay_tranche(k, STORY, 0, 10, 30) for k in keys)
    assert set(narrow) <= set(range(10)) and set(wide) <= set(range(10))
    assert wide[0] > 100 > narrow[0]  # 31 of 40 outcomes are tranche 0, against 1 of 10


def test_no_assignments_to_own_backing_group_or_without_cores_or_key() -> None:
    only_own = [IncludedCandidate(b"\x01" * 32, 2, 1)]  # validators 2, 3 backed it
    assert compute_assignments(S, 2, STORY, only_own) == {}
    assert set(compute_assignments(S, 0, STORY, only_own)) == {2}
    assert compute_assignments(session(4, 0), 0, STORY, []) == {}
    assert compute_assignments(S, 10, STORY, LEAVING) == {}  # not a validator of the session


def test_computed_assignments_pass_the_certificate_check() -> None:
    for v in range(10):
        for core, a in compute_assignments(S, v, STORY, LEAVING).items():
            assert check_assignment_cert(core, v, S, STORY, a.cert, core) == a.tranche


def _an_assignment(kind: type) -> tuple[int, int, RelayVRFModulo | RelayVRFDelay]:
    for v in range(10):
        for core, a in compute_assignments(S, v, STORY, LEAVING).items():
            if isinstance(a.cert, kind):
                return v, core, a.cert
    raise AssertionError(f"no {kind.__name__} assignment drawn")


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda v, c, cert: (v + 10, c, cert, c), InvalidAssignmentReason.ValidatorIndexOutOfBounds),
    (lambda v, c, cert: (v, 5, cert, c), InvalidAssignmentReason.CoreIndexOutOfBounds),
    (lambda v, c, cert: (v, c, cert, v // 2), InvalidAssignmentReason.IsInBackingGroup),
    (lambda v, c, cert: (v, c, RelayVRFModulo(2), c), InvalidAssignmentReason.SampleOutOfBounds),
])
def test_certificate_check_rejects_each_broken_rule(
        mutate: Callable[..., tuple[int, int, AssignmentCert, int]],
        reason: InvalidAssignmentReason) -> None:
    v, core, cert = _an_assignment(RelayVRFModulo)
    v2, core2, cert2, group = mutate(v, core, cert)
    with pytest.raises(InvalidAssignment) as err:
        check_assignment_cert(core2, v2, S, STORY, cert2, group)
    assert err.value.kind is reason


def test_a_certificate_cannot_be_moved_to_another_core_or_block() -> None:
    v, core, cert = _an_assignment(RelayVRFModulo)
    other = next(c for c in range(5) if c != core and c != v // 2)
    with pytest.raises(InvalidAssignment) as err:
        check_assignment_cert(other, v, S, STORY, cert, other)
    assert err.value.kind is InvalidAssignmentReason.VRFModuloCoreIndexMismatch
    v, core, delay = _an_assignment(RelayVRFDelay)
    with pytest.raises(InvalidAssignment) as err:
        check_assignment_cert(other if other != core else (core + 1) % 5, v, S, STORY, delay, 9)
    assert err.value.kind is InvalidAssignmentReason.VRFDelayCoreIndexMismatch
    # the same delay certificate under another block's story gives that block's tranche, not ours
    story2 = relay_vrf_story(b"\x09" * 32)
    assert check_assignment_cert(core, v, S, story2, delay, 9) == relay_vrf_delay_tranche(
        S.validators[v], story2, core, 25, 0)
