import json
from dataclasses import replace

import pytest

from node.chainspec import spec_from_json
from node.cluster.spec import NetworkSpec, NodeSpec, ParaSpec, default_network
from node.devnet import dev_spec
from relay.core.config import ConfigError, HostConfiguration


def test_default_network_is_the_dev_chain() -> None:
    net = default_network()
    assert [n.name for n in net.validators] == ["alice", "bob", "charlie", "dave", "eve"]
    assert [n.name for n in net.full_nodes] == ["ferdie"]
    assert [c.name for p in net.paras for c in p.collators] == ["collator-2000-0",
                                                                "collator-2001-0"]
    spec = net.chain_spec()
    assert replace(spec, collators={}) == dev_spec(5, 2, 1, HostConfiguration())
    assert [c.name for c in spec.para_authors(2000)] == ["collator-2000-0"]


def test_chain_spec_lists_each_paras_collators_and_round_trips() -> None:
    spec = default_network(collators_per_para=2).chain_spec()
    assert [c.name for c in spec.para_authors(2001)] == ["collator-2001-0", "collator-2001-1"]
    assert spec_from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert "collators" not in dev_spec(5, 2, 1, HostConfiguration()).to_json()


def test_chain_spec_collators_are_checked() -> None:
    doc = default_network().chain_spec().to_json()
    with pytest.raises(ConfigError, match="names para 2999, which it does not list"):
        spec_from_json({**doc, "collators": {"2999": doc["collators"]["2000"]}})
    with pytest.raises(ConfigError, match=r"unknown key.*collator 0 of para 2000: role"):
        spec_from_json({**doc, "collators": {"2000": [{**doc["collators"]["2000"][0],
                                                       "role": "x"}]}})
    with pytest.raises(ConfigError, match="must be a non-empty list"):
        spec_from_json({**doc, "collators": {"2000": []}})


def test_named_validators_and_mixed_cores() -> None:
    net = NetworkSpec(HostConfiguration(max_candidate_depth=6),
                      tuple(NodeSpec(f"validator-{i}", "validator") for i in range(4)),
                      paras=(ParaSpec(2000, 3), ParaSpec(2001, 1), ParaSpec(2002, registered=False)))
    spec = net.chain_spec()
    assert [v.name for v in spec.validators] == [f"validator-{i}" for i in range(4)]
    assert [(p.para_id, p.cores) for p in spec.paras] == [(2000, 3), (2001, 1)]


def test_refusals_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="used twice: alice"):
        NetworkSpec(validators=(NodeSpec("alice", "validator"),),
                    full_nodes=(NodeSpec("alice", "relay-node"),))
    with pytest.raises(ConfigError, match="at least one validator"):
        NetworkSpec()
    with pytest.raises(ConfigError, match="role must be"):
        NodeSpec("x", "miner")
    with pytest.raises(ConfigError, match="collates for 2001"):
        NetworkSpec(validators=(NodeSpec("a", "validator"),),
                    paras=(ParaSpec(2000, collators=(NodeSpec("c", "collator", 2001),)),))
    with pytest.raises(ConfigError, match="provider"):
        NetworkSpec(validators=(NodeSpec("a", "validator"),), provider="k8s")
