"""node/cluster/compose.py: compose and swarm files from a NetworkSpec, checked as data."""

from __future__ import annotations

import pytest

from node.cli.common import make_host
from node.cluster.compose import (
    compose_file,
    default_extras,
    genesis_parameters,
    swarm_file,
    to_yaml,
)
from node.cluster.spec import NetworkSpec, NodeSpec, ParaSpec, default_network
from relay.core.config import ConfigError, HostConfiguration


def env(net: NetworkSpec) -> dict[str, str]:
    return {p.name: p.default for p in genesis_parameters(net)}


def test_default_network_services_ports_and_order() -> None:
    doc = compose_file(default_network(), default_extras())
    services = doc["services"]
    assert list(services) == ["genesis", "alice", "bob", "charlie", "dave", "eve", "ferdie",
                              "collator-2000-0", "collator-2001-0", "collator-2000-1",
                              "collator-2002-0"]
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert all(p.startswith("127.0.0.1:") for p in published)
    assert "127.0.0.1:${FERDIE_RPC_PORT:-9944}:9944" in published
    defaults = [p.split(":-")[1].split("}")[0] for p in published]
    assert len(defaults) == len(set(defaults))  # distinct host ports
    assert services["collator-2000-0"]["depends_on"]["ferdie"] == {"condition": "service_healthy"}
    assert "--relay-chain-rpc-url ws://ferdie:9944" in services["collator-2001-0"]["command"]
    assert "--para-bootnodes collator-2000-0:30333" in services["collator-2000-1"]["command"]
    assert services["collator-2000-1"]["profiles"] == ["extra-collator"]
    assert "profiles" not in services["alice"]


def test_genesis_parameters_follow_the_host_configuration() -> None:
    assert env(default_network()) == {"SLOT_MS": "6000", "MAX_CANDIDATE_DEPTH": "",
                                      "ALLOWED_ANCESTRY_LEN": "2", "CORES_PER_PARA": "1",
                                      "SYNC": "false", "PARAS": "2"}
    sync = default_network(make_host(None, 0, None, 1000, None, sync=True))
    assert env(sync)["SYNC"] == "true" and env(sync)["SLOT_MS"] == "1000"
    elastic = default_network(make_host(8, 2, None, 6000, None, cores_per_para=3),
                              cores_per_para=3)
    assert env(elastic)["MAX_CANDIDATE_DEPTH"] == "8" and env(elastic)["CORES_PER_PARA"] == "3"
    odd = default_network(make_host(None, 2, 5, 6000, 700))
    assert env(odd)["LOOKAHEAD"] == "5" and env(odd)["EXECUTION_MS"] == "700"


@pytest.mark.parametrize("net, problem", [
    (NetworkSpec(validators=(NodeSpec("validator-0", "validator"),)), "dev names"),
    (NetworkSpec(validators=(NodeSpec("alice", "validator"),), paras=(ParaSpec(3000),)),
     "register paras 2000"),
    (NetworkSpec(validators=(NodeSpec("alice", "validator"),),
                 paras=(ParaSpec(2000, 1), ParaSpec(2001, 2))), "same number of cores"),
    (default_network(HostConfiguration(minimum_backing_votes=3)), "minimum_backing_votes"),
])
def test_networks_the_genesis_flags_cannot_make_are_refused(net: NetworkSpec,
                                                            problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        compose_file(net)


def test_swarm_collators_are_one_scalable_service_per_para() -> None:
    doc = swarm_file(default_network(collators_per_para=2))
    services = doc["services"]
    assert sorted(s for s in services if s.startswith("collator")) == ["collator-2000",
                                                                       "collator-2001"]
    assert services["collator-2000"]["deploy"]["replicas"] == 2
    assert services["collator-2000"]["environment"]["NODE_NAME"] == "collator-2000-{{.Task.Slot}}"
    assert all("depends_on" not in s and "ports" not in s for s in services.values())
    assert doc["networks"]["asyncback"]["driver"] == "overlay"
    assert services["alice"]["healthcheck"]["test"][-1] == "--ignore-peers"


def test_yaml_quotes_what_would_read_as_another_type() -> None:
    text = to_yaml({"a": "0.0.0.0", "b": "true", "c": "x:y", "d": ["30333", "plain"],
                    "e": None, "f": 3})
    assert text.splitlines() == ['a: "0.0.0.0"', 'b: "true"', "c: x:y",
                                 'd: ["30333", plain]', "e:", "f: 3"]
