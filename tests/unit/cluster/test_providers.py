"""Which provider a `Cluster` runs its nodes with, and the compose file the docker provider
writes (no docker needed here: tests/docker runs it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from node.cluster import Cluster, ClusterError, NodeSpec, ParaSpec, default_network
from node.cluster.compose import RPC, SPEC_DIR, compose_file
from node.cluster.docker_provider import DockerProvider
from node.cluster.provider import NativeProvider
from node.cluster.spec import NetworkSpec


def zombienet_named() -> NetworkSpec:
    """Names `asyncback genesis` cannot make a chain spec for."""
    return NetworkSpec(validators=(NodeSpec("validator-0", "validator"),
                                   NodeSpec("validator-1", "validator")),
                       full_nodes=(NodeSpec("ferdie", "relay-node"),),
                       paras=(ParaSpec(2000, 1, (NodeSpec("collator-2000", "collator", 2000),)),))


def test_the_provider_is_the_specs_unless_the_cluster_is_told(tmp_path: Path) -> None:
    net = default_network()
    assert isinstance(Cluster(net, tmp_path).provider, NativeProvider)
    docker = replace(net, provider="docker")
    assert isinstance(Cluster(docker, tmp_path).provider, DockerProvider)
    assert isinstance(Cluster(net, tmp_path, provider="docker").provider, DockerProvider)
    assert isinstance(Cluster(docker, tmp_path, provider="native").provider, NativeProvider)


@pytest.mark.parametrize("options, problem", [
    ({"provider": "docker", "faults": True}, "native only"),
    ({"provider": "docker", "host": "127.0.0.2"}, "127.0.0.1"),
    ({"provider": "k8s"}, "no provider 'k8s'"),
    ({"image": "x:y"}, "docker provider"),
])
def test_options_another_provider_owns_are_refused(tmp_path: Path, options: dict[str, object],
                                                   problem: str) -> None:
    with pytest.raises(ClusterError, match=problem):
        Cluster(default_network(), tmp_path, **options)  # type: ignore[arg-type]


def test_with_a_chain_spec_file_every_node_mounts_it_and_no_genesis_runs(tmp_path: Path) -> None:
    spec_file = tmp_path / "chain-spec.json"
    doc = compose_file(zombienet_named(), chain_spec=spec_file)
    assert "genesis" not in doc["services"] and "spec" not in doc["volumes"]
    assert set(doc["services"]) == {"validator-0", "validator-1", "ferdie", "collator-2000"}
    for svc in doc["services"].values():
        assert f"{spec_file}:{SPEC_DIR}/spec.json:ro" in svc["volumes"]
        assert "genesis" not in svc.get("depends_on", {})
    assert doc["services"]["collator-2000"]["depends_on"] == {
        "ferdie": {"condition": "service_healthy"}}


def test_the_docker_provider_publishes_its_own_ports_and_restarts_nothing(tmp_path: Path) -> None:
    cluster = Cluster(zombienet_named(), tmp_path, provider="docker")
    provider = cluster.provider
    assert isinstance(provider, DockerProvider)
    doc = compose_file(cluster.spec, chain_spec=cluster.chain_spec_path)
    handles = [provider._handle(cluster, n) for n in cluster.spec.nodes()]
    provider._publish(doc, own_cgroups=True)
    rpc_ports = set()
    for h in handles:
        svc = doc["services"][h.name]
        assert f"127.0.0.1:{h.ports['rpc']}:{RPC}" in svc["ports"] and len(svc["ports"]) == 2
        assert svc["restart"] == "no" and "healthcheck" not in svc and "depends_on" not in svc
        assert svc["cgroup_parent"] == "/"
        rpc_ports.add(h.ports["rpc"])
        assert cluster[h.name] is h and h.rpc_url == f"http://127.0.0.1:{h.ports['rpc']}"
    assert len(rpc_ports) == len(handles)
    assert provider.project.startswith("asyncback-")
    provider.ports.close()


async def test_a_collator_added_to_a_para_with_listed_collators_is_refused(tmp_path: Path
                                                                          ) -> None:
    cluster = Cluster(default_network(), tmp_path)
    cluster.state = "running"  # nothing is started: the refusal comes before the provider
    with pytest.raises(ClusterError, match="collator-2000-0"):
        await cluster.add_collator(2000)
