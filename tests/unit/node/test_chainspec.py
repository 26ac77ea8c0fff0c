from __future__ import annotations

from pathlib import Path

import pytest

from node.chainspec import ChainSpec, dev_validators, load_spec, spec_from_json
from relay.core.config import ConfigError, HostConfiguration, ParaGenesis


def _spec() -> ChainSpec:
    return ChainSpec("t", "t", dev_validators(4), (ParaGenesis(2000, b"\x01"),), HostConfiguration())


def test_round_trip(tmp_path: Path) -> None:
    spec = _spec()
    spec.save(tmp_path / "spec.json")
    again = load_spec(tmp_path / "spec.json")
    assert again == spec
    assert again.genesis_id() == spec.genesis_id()


def test_unknown_key_is_named() -> None:
    data = _spec().to_json()
    data["genesis"]["max_candidate_dept"] = 3
    with pytest.raises(ConfigError, match="max_candidate_dept"):
        spec_from_json(data)
    data = _spec().to_json()
    data["colour"] = "blue"
    with pytest.raises(ConfigError, match="colour"):
        spec_from_json(data)


def test_missing_file_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_spec(tmp_path / "bad.json")


def test_bad_values_rejected() -> None:
    data = _spec().to_json()
    data["genesis"]["lookahead"] = 0
    with pytest.raises(ConfigError, match="lookahead"):
        spec_from_json(data)
    data = _spec().to_json()
    data["validators"][0]["public"] = "0x1234"
    with pytest.raises(ConfigError, match="32 bytes"):
        spec_from_json(data)


def test_genesis_id_changes_with_parameters() -> None:
    a = _spec()
    b = ChainSpec(a.name, a.id, a.validators, a.paras, a.host.replace(max_candidate_depth=0))
    assert a.genesis_id() != b.genesis_id()
