"""Disputes in the simulated network (issue 15, polkadot-sdk's 0004-parachains-garbage-candidate
shape): malus validators back garbage or dispute honest candidates; figures in relay blocks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import trio
import trio.testing

from node import wiring
from node.net.memory import seed_trio_scheduler
from node.sim import SimConfig, SimResult, Simulation
from relay.core.config import HostConfiguration
from relay.core.events import CandidateEvent, DisputeResult, EventKind, OffenceEvent, OffenceKind
from relay.service.pov_execution import InlineExecution, approval_deadline_s, deadline_s
from relay.service.validator import ValidatorService

T = TypeVar("T")

_cache: dict[Any, tuple[Simulation, SimResult]] = {}


def dispute_run(malus: tuple[tuple[str, str], ...], validators: int = 4, relay_blocks: int = 30,
                minimum_backing_votes: int = 1, paras: int = 2) -> tuple[Simulation, SimResult]:
    key = (malus, validators, relay_blocks, minimum_backing_votes, paras)
    if key not in _cache:
        cfg = SimConfig(validators=validators, paras=paras, relay_blocks=relay_blocks,
                        host=HostConfiguration(minimum_backing_votes=minimum_backing_votes),
                        malus=malus)
        seed_trio_scheduler(cfg.seed)
        sim = Simulation(cfg)
        result = trio.run(sim.main, clock=trio.testing.MockClock(autojump_threshold=0))
        _cache[key] = (sim, result)
    return _cache[key]


def validators_of(sim: Simulation) -> dict[str, ValidatorService]:
    return {n: s for n, s in sim.services.items() if isinstance(s, ValidatorService)}


def backed_anywhere(sim: Simulation, kind: EventKind = EventKind.BACKED) -> dict[bytes, int]:
    """Every candidate the observer saw backed (or `kind`) in any block it imported (reverted
    ones too): candidate hash -> the block number."""
    chain = sim.services["relay-0"].chain
    out: dict[bytes, int] = {}
    for h, events in chain.events.items():
        header = chain.header(h)
        for e in events:
            if isinstance(e, CandidateEvent) and e.kind is kind and header is not None:
                out[e.candidate_hash] = header.number
    return out


def included_per_para(result: SimResult, first: int, last: int) -> dict[int, int]:
    out = {p: 0 for p in result.para_ids}
    for rec in result.records:
        if first <= rec.number <= last:
            for inc in rec.included:
                out[inc.para_id] += 1
    return out


def metric(s: ValidatorService, name: str, labels: dict[str, str] | None = None) -> float:
    value = s.metrics.registry.get_sample_value(name, labels or {})  # type: ignore[attr-defined]
    return value or 0.0


def test_garbage_backed_alone_is_disputed_reverted_and_its_backer_disabled() -> None:
    sim, result = dispute_run((("alice", "suggest-garbage-candidate"),))
    assert result.problems == []  # includes: nothing finalized holds a candidate concluded invalid
    vals = validators_of(sim)
    garbage = set(vals["alice"].backing.garbage)
    on_chain = {h: n for h, n in backed_anywhere(sim).items() if h in garbage}
    assert garbage and on_chain, "the malus got garbage into a block"
    final_chain = {c.candidate_hash for r in result.records for c in r.backed}
    for h, number in on_chain.items():
        for name, v in vals.items():
            assert v.disputes.concluded.get(h) is DisputeResult.INVALID, (name, number)
            # every validator's chain reverted the block that had backed it
            assert any(r.candidate_hash == h and r.backed_in == number
                       for r in v.disputes.reverts), name
        assert "0x" + h.hex() not in final_chain
    for name, v in vals.items():
        assert v.disputes.finalized_invalid == 0, name
        assert metric(v, "polkadot_parachain_candidate_disputes_total") >= len(on_chain)
        assert metric(v, "polkadot_parachain_candidate_dispute_concluded",
                      {"validity": "invalid"}) >= len(on_chain)
    observer = sim.services["relay-0"].chain
    best = observer.state(observer.best_hash)
    assert best is not None and best.disabled == frozenset({0})  # alice
    offences = [e for evs in observer.events.values() for e in evs
                if isinstance(e, OffenceEvent)]
    assert any(o.kind is OffenceKind.ForInvalidBacked and o.offenders == (0,) for o in offences)
    assert any("There is an offence reported" in o.describe() for o in offences)
    # the paras keep making progress: in the last 10 blocks every para gets at least 7 in
    assert all(n >= 7 for n in included_per_para(result, 21, 30).values()), \
        included_per_para(result, 21, 30)
    assert result.records[-1].number == 30 and sum(r.finalized for r in result.records) >= 28


def test_a_dispute_against_an_honest_candidate_concludes_valid_and_punishes_the_disputer() -> None:
    sim, result = dispute_run((("alice", "dispute-valid"),))
    assert result.problems == []
    vals = validators_of(sim)
    valid = [h for h, r in vals["bob"].disputes.concluded.items() if r is DisputeResult.VALID]
    assert valid
    for name, v in vals.items():
        assert v.disputes.reverts == [], name
        for h in valid:
            assert v.disputes.concluded[h] is DisputeResult.VALID, name
        assert metric(v, "polkadot_parachain_candidate_dispute_concluded",
                      {"validity": "valid"}) >= 1
    observer = sim.services["relay-0"].chain
    best = observer.state(observer.best_hash)
    assert best is not None and best.disabled == frozenset({0})
    offences = [e for evs in observer.events.values() for e in evs
                if isinstance(e, OffenceEvent)]
    assert [o.kind for o in offences] == [OffenceKind.AgainstValid]
    # the dispute cost no throughput: every block from #5 on includes every para
    assert included_per_para(result, 5, 30) == {p: 26 for p in result.para_ids}
    assert sum(r.finalized for r in result.records) >= 28


def test_garbage_a_whole_group_backed_is_disputed_by_an_approval_checker() -> None:
    """7 validators, 3 paras: groups {alice, bob, charlie}, {dave, eve}, {ferdie, george}. dave
    seconds garbage and eve vouches for it, the whole group and the threshold of 2: no honest
    backer sees it, so it is backed, made available and included. An approval checker re-executes
    it (the data from a backer, matching the erasure root), finds it invalid and raises the
    dispute with the backing votes of the block that backed it; the five honest validators are
    the supermajority that concludes it."""
    sim, result = dispute_run((("dave", "suggest-garbage-candidate"), ("eve", "back-garbage")),
                              validators=7, relay_blocks=20, minimum_backing_votes=2, paras=3)
    assert result.problems == []  # includes: no finalized block included it
    vals = validators_of(sim)
    garbage = set(vals["dave"].backing.garbage)
    on_chain = {h: n for h, n in backed_anywhere(sim, EventKind.INCLUDED).items()
                if h in garbage}
    assert on_chain, "the colluding group got garbage included"
    backers = {"dave", "eve"}
    for h in on_chain:
        raised = {name: v.disputes.raised.get(h) for name, v in vals.items()}
        approval_raisers = {name for name, how in raised.items() if how == "approval"}
        assert approval_raisers, raised
        assert not approval_raisers & backers
        assert "backing" not in raised.values(), raised  # no honest backer saw it
        for name in approval_raisers:
            assert vals[name].approvals.invalid_found >= 1, name
        for name, v in vals.items():
            assert v.disputes.concluded.get(h) is DisputeResult.INVALID, name
            assert any(r.candidate_hash == h for r in v.disputes.reverts), name
            assert v.disputes.finalized_invalid == 0, name
    final_included = {c.candidate_hash for r in result.records for c in r.included}
    assert not final_included & {"0x" + h.hex() for h in garbage}
    observer = sim.services["relay-0"].chain
    best = observer.state(observer.best_hash)
    assert best is not None and best.disabled == frozenset({3, 4})  # dave and eve
    offences = [e for evs in observer.events.values() for e in evs
                if isinstance(e, OffenceEvent)]
    assert any(o.kind is OffenceKind.ForInvalidBacked and o.offenders == (3, 4)
               for o in offences)
    # Participants held their chunks of the included candidate (a small one): each took the
    # data from a backer in one request. The colluders' copy matches the erasure root (it is the
    # garbage the chain committed to), so it is what the chunks would have rebuilt.
    assert sum(v.disputes.participated for v in vals.values()) >= 1
    for name, v in vals.items():
        assert v.disputes.recovered_from_backers == v.disputes.participated, name
    assert result.records[-1].number == 20 and sum(r.finalized for r in result.records) >= 18
    # the honest groups' paras go on: in the last 8 blocks two paras get in every block
    assert sum(included_per_para(result, 13, 20).values()) >= 2 * 8


@pytest.mark.slow
def test_two_colluding_garbage_backers_in_one_group_of_twenty_validators() -> None:
    # 20 validators, 4 paras: groups of 5; alice and bob (group 0) both second the garbage, so
    # it has the two votes the default threshold asks; the three honest members dispute it.
    sim, result = dispute_run((("alice", "suggest-garbage-candidate"),
                               ("bob", "suggest-garbage-candidate")),
                              validators=20, relay_blocks=16, minimum_backing_votes=2, paras=4)
    assert result.problems == []
    vals = validators_of(sim)
    garbage = set(vals["alice"].backing.garbage) | set(vals["bob"].backing.garbage)
    on_chain = {h: n for h, n in backed_anywhere(sim).items() if h in garbage}
    assert on_chain
    for h, number in on_chain.items():
        for name, v in vals.items():
            assert v.disputes.concluded.get(h) is DisputeResult.INVALID, name
            assert any(r.candidate_hash == h and r.backed_in == number
                       for r in v.disputes.reverts), name
    observer = sim.services["relay-0"].chain
    best = observer.state(observer.best_hash)
    assert best is not None and best.disabled == frozenset({0, 1})
    assert all(n >= 5 for n in included_per_para(result, 10, 16).values())


class RecordingExecution(InlineExecution):
    """Inline, as the simulation runs it, noting each re-execution's deadline."""

    def __init__(self) -> None:
        self.deadlines: list[float] = []

    async def run(self, deadline: float, fn: Callable[..., T], *args: object) -> T:
        self.deadlines.append(deadline)
        return await super().run(deadline, fn, *args)


def test_approval_checks_and_dispute_participation_re_execute_through_the_pov_execution(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What a real validator hands worker threads (`ThreadedExecution`) must carry every
    re-execution, not only backing's: the approval checks and the dispute votes of a garbage
    run each pass through it, under the approval deadline."""
    executions: dict[str, RecordingExecution] = {}
    make_validator = wiring.validator

    def validator(name: str, *args: Any, **kw: Any) -> ValidatorService:
        executions[name] = RecordingExecution()
        return make_validator(name, *args, pov_execution=executions[name], **kw)

    monkeypatch.setattr(wiring, "validator", validator)
    cfg = SimConfig(validators=4, paras=2, relay_blocks=12,
                    host=HostConfiguration(minimum_backing_votes=1),
                    malus=(("alice", "suggest-garbage-candidate"),))
    seed_trio_scheduler(cfg.seed)
    sim = Simulation(cfg)
    result = trio.run(sim.main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert result.problems == []
    timeout_ms = cfg.host.execution_timeout_ms
    vals = validators_of(sim)
    for name, v in vals.items():
        calls = executions[name].deadlines
        checks = calls.count(approval_deadline_s(timeout_ms))
        assert calls.count(deadline_s(timeout_ms)) > 0, name  # backing
        assert checks >= v.approvals.approvals_sent + v.approvals.invalid_found \
            + v.disputes.participated, (name, len(calls))
    assert sum(v.approvals.approvals_sent for v in vals.values()) > 0
    assert sum(v.disputes.participated for v in vals.values()) >= 2  # the others joined in
