"""The network the pytest plugin's marker describes (no cluster started here; the fixture itself
runs in tests/e2e/test_zombienet.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cluster.spec import default_network
from node.pytest_plugin import network_from_marker

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def mark(*args: object, **kwargs: object) -> pytest.Mark:
    return pytest.mark.asyncback_network(*args, **kwargs).mark


def test_flags_like_the_sim_and_one_second_slots() -> None:
    spec = network_from_marker(mark(validators=4, paras=1, cores_per_para=3), Path("."))
    assert [v.name for v in spec.validators] == ["alice", "bob", "charlie", "dave"]
    assert [(p.para_id, p.cores) for p in spec.paras] == [(2000, 3)]
    assert spec.host.slot_ms == 1000 and spec.host.max_candidate_depth == 6
    sync = network_from_marker(mark(sync=True, slot_ms=500), Path(".")).host
    assert (sync.max_candidate_depth, sync.allowed_ancestry_len, sync.slot_ms) == (0, 0, 500)
    assert network_from_marker(None, Path(".")).host.slot_ms == 1000


def test_a_network_file_relative_to_the_test_or_a_spec() -> None:
    spec = network_from_marker(mark("sync-backing.toml"), EXAMPLES)
    assert spec.host.allowed_ancestry_len == 0 and spec.host.slot_ms == 1000
    assert spec.groups["validator"] == tuple(f"validator-{i}" for i in range(4))
    given = default_network(validators=2, paras=1)
    assert network_from_marker(mark(spec=given), Path(".")) is given


@pytest.mark.parametrize(("marker", "message"), [
    (mark(validatros=3), "unknown keyword(s) validatros"),
    (mark("a.toml", "b.toml"), "one network file or one spec="),
    (mark("sync-backing.toml", paras=3), "only slot_ms applies, not paras"),
    (mark(spec="not a spec"), "spec= takes a NetworkSpec"),
    (mark("missing.toml"), "missing.toml: no such network file"),
    (mark(validators=0), "at least one validator"),
])
def test_what_it_cannot_use_is_a_usage_error(marker: pytest.Mark, message: str) -> None:
    with pytest.raises(pytest.UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        network_from_marker(marker, EXAMPLES)
