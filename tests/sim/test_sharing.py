"""Sharing pure work among the simulated nodes changes how much is computed, never the run."""

from __future__ import annotations

from dataclasses import asdict

from node.report import summarize
from node.sim import SimConfig, SimResult, run_sim
from proto.keys import SIGNATURE_CHECKS
from proto.shared_work import sharing_active


def _run(sharing: bool) -> tuple[SimResult, int]:
    before = SIGNATURE_CHECKS.performed
    result = run_sim(SimConfig(validators=6, paras=2, relay_blocks=16, seed=11, loss=0.02,
                               sharing=sharing))
    assert not sharing_active()  # the simulator uninstalls it: nothing leaks to other code
    return result, SIGNATURE_CHECKS.performed - before


def test_report_is_identical_with_and_without_sharing() -> None:
    (on, on_sigs), (off, off_sigs) = _run(True), _run(False)
    assert on.problems == [] and off.problems == []
    assert [asdict(r) for r in on.records] == [asdict(r) for r in off.records]
    assert summarize(on.records, on.para_ids, segment_lengths=on.segment_lengths,
                     collator_segment_lengths=on.collator_segment_lengths) == \
        summarize(off.records, off.para_ids, segment_lengths=off.segment_lengths,
                  collator_segment_lengths=off.collator_segment_lengths)
    assert on.nodes == off.nodes and on.network == off.network
    # ... and the work really was shared: each kind reused, far fewer Ed25519 verifications.
    assert off.shared_work == {}
    # (Approval checkers take these small candidates whole from a backer: the erasure root
    # check of that data is what they share, not a rebuild from chunks.)
    assert all(on.shared_work[k]["reused"] > 0 for k in ("ed25519", "collation", "relay_block",
                                                   "erasure_root", "pending_chain",
                                                   "block_backing_votes", "dispute_statements",
                                                   "decode", "assignment_batch",
                                                   "approval_batch", "approval_block"))
    assert on_sigs * 2 < off_sigs
