import pytest

from node.cluster.spec import NetworkSpec, NodeSpec, ParaSpec, default_network
from node.devnet import dev_spec
from relay.core.config import ConfigError, HostConfiguration


def test_default_network_is_the_dev_chain() -> None:
    net = default_network()
    assert [n.name for n in net.validators] == ["alice", "bob", "charlie", "dave", "eve"]
    assert [n.name for n in net.full_nodes] == ["ferdie"]
    assert [c.name for p in net.paras for c in p.collators] == ["collator-2000-0",
                                                                "collator-2001-0"]
    assert net.chain_spec() == dev_spec(5, 2, 1, HostConfiguration())


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
