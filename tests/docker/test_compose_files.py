"""The docker files at the repository root: what the generator writes for the default network
(so they cannot drift from `NetworkSpec`), and files both tools accept: `docker-compose config`
for every profile and parameter set the README shows, `docker stack config` for the swarm file."""

from __future__ import annotations

import pytest
from docker_env import ROOT, compose_command, require_docker, run

from node.cluster.compose import root_files


@pytest.mark.parametrize("name", sorted(root_files()))
def test_root_file_is_the_generators_output(name: str) -> None:
    assert (ROOT / name).read_text() == root_files()[name], (
        f"{name} differs from node/cluster/compose.py's output: run "
        "`.venv/bin/python -m node.cluster.compose` and commit the result")


@pytest.mark.parametrize("args, env", [
    ([], {}),
    (["--profile", "extra-collator"], {}),
    (["--profile", "new-para"], {"PARAS": "3"}),
    ([], {"SLOT_MS": "1000", "SYNC": "true", "CORES_PER_PARA": "2", "ASYNCBACK_IMAGE": "x:y"}),
])
def test_docker_compose_accepts_the_file(args: list[str], env: dict[str, str]) -> None:
    require_docker()
    out = run(*compose_command(), *args, "config", env=env)
    for key, value in env.items():
        if key not in ("PARAS",):
            assert value in out.stdout  # interpolated where the file reads it


def test_docker_stack_accepts_the_swarm_file() -> None:
    require_docker()
    out = run("docker", "stack", "config", "-c", "compose.swarm.yaml",
              env={"ALICE_PLACEMENT": "node.hostname == m1"})
    assert "node.hostname == m1" in out.stdout
    assert "depends_on" not in out.stdout and "profiles" not in out.stdout
