"""Properties of whole runs: for any depth, ancestry, cores and validator count, included heads
chain by parent head and every run invariant holds; throughput never exceeds one candidate per
core per relay block."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.ideal import IdealNetwork
from node.invariants import check_invariants
from node.run_config import RunConfig
from relay.core.config import HostConfiguration


@settings(max_examples=10, deadline=None)
@given(depth=st.integers(0, 5), ancestry=st.integers(0, 3), cores=st.integers(1, 3),
       validators=st.integers(3, 7), per_rp=st.integers(0, 2))
def test_any_parameters_keep_the_invariants(depth: int, ancestry: int, cores: int,
                                            validators: int, per_rp: int) -> None:
    host = HostConfiguration(max_candidate_depth=depth, allowed_ancestry_len=ancestry,
                             lookahead=ancestry + 1)
    cfg = RunConfig(validators=validators, paras=1, cores_per_para=cores, relay_blocks=14,
                      host=host, blocks_per_relay_parent=per_rp)
    net = IdealNetwork(cfg)
    records = net.run()
    assert check_invariants(records, ancestry, depth) == []
    included = [i for r in records for i in r.included]
    assert [i.para_number for i in included] == list(range(1, len(included) + 1))
    assert all(len(r.included) <= cores and len(r.backed) <= cores for r in records)
    assert included, "the pipeline must make progress"
