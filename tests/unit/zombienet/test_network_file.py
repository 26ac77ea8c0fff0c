"""Zombienet network files read into a NetworkSpec: files in polkadot-sdk's style read
unchanged, every key zombienet defines known, anything else a one-line error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.zombienet.keys import IGNORED, NETWORK, USED, Free, Tables
from node.zombienet.network_file import NetworkFileError, load_network, read_network

FILES = Path(__file__).parent / "files"
ENV = {"RELAY_IMAGE": "docker.io/parity/polkadot:latest", "COL_IMAGE": "collator:latest"}


def write(tmp_path: Path, text: str, name: str = "net.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


MINIMAL = """
[relaychain]
chain = "rococo-local"
  [[relaychain.nodes]]
  name = "alice"
  [[relaychain.nodes]]
  name = "bob"
[[parachains]]
id = 2000
  [parachains.collator]
  name = "col"
"""


def one_line_error(path: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(NetworkFileError) as info:
        read_network(path, env or {})
    message = str(info.value)
    assert "\n" not in message
    return message


def test_async_backing_file_in_polkadot_sdk_style() -> None:
    net = read_network(FILES / "async-backing.toml", ENV)
    spec = net.spec
    assert [v.name for v in spec.validators] == ["alice-0", "alice-1", "alice-2", "alice-3"]
    assert spec.groups == {"alice": ("alice-0", "alice-1", "alice-2", "alice-3")}
    assert spec.full_nodes == ()
    host = spec.host
    assert (host.max_candidate_depth, host.allowed_ancestry_len) == (3, 2)
    assert (host.lookahead, host.group_rotation_frequency) == (2, 5)
    assert host.slot_ms == 6000 and net.time_scale == 1.0
    assert [(p.para_id, p.cores, p.registered) for p in spec.paras] == [
        (2000, 1, True), (2001, 1, True)]
    assert [c.name for p in spec.paras for c in p.collators] == ["collator01", "collator02"]
    assert all(c.role == "collator" for p in spec.paras for c in p.collators)
    assert spec.name == "rococo-local" and spec.provider == "native"
    assert net.timeout_s == 1000
    for key in ("relaychain.default_image", "relaychain.default_resources", "types",
                "relaychain.node_groups[].args", "parachains[].collator.image",
                "parachains[].genesis_state_generator", "parachains[].cumulus_based",
                "settings.node_verifier"):
        assert key in net.ignored, key
    # approval checking's keys reach the host configuration (and so the chain spec)
    assert host.needed_approvals == 3
    assert not any("needed_approvals" in k for k in net.ignored)
    notice = net.notice()
    assert notice is not None and "\n" not in notice and notice.count("relaychain.default_image") == 1
    spec.chain_spec()  # the relay genesis takes it


def test_template_is_rendered_from_the_environment() -> None:
    # `{% if not CI_JOB_ID %}`: the node_verifier line is only there outside CI
    assert "settings.node_verifier" in read_network(FILES / "async-backing.toml", ENV).ignored
    in_ci = read_network(FILES / "async-backing.toml", {**ENV, "CI_JOB_ID": "42"})
    assert "settings.node_verifier" not in in_ci.ignored
    # an unset variable renders empty, as Nunjucks renders it
    assert load_network(FILES / "async-backing.toml", {}).validators


def test_sync_backing_file_gives_sync_parameters_and_budget() -> None:
    host = read_network(FILES / "sync-backing.toml", ENV).spec.host
    assert (host.max_candidate_depth, host.allowed_ancestry_len, host.lookahead) == (0, 0, 2)
    assert host.execution_timeout_ms == 6000 // 12


def test_elastic_scaling_loop_arithmetic_and_cores() -> None:
    net = read_network(FILES / "elastic-scaling.toml", ENV)
    spec = net.spec
    assert [(p.para_id, p.cores) for p in spec.paras] == [(2000, 3), (2001, 1)]
    # the same collator name twice: zombienet's unique names, and the bare name as a group
    assert [c.name for p in spec.paras for c in p.collators] == ["some-parachain",
                                                                  "some-parachain-1"]
    assert spec.groups["some-parachain"] == ("some-parachain", "some-parachain-1")
    assert spec.groups["elastic-validator"] == tuple(f"elastic-validator-{i}" for i in range(5))
    assert [n.name for n in spec.full_nodes] == ["ferdie"]
    assert (spec.host.max_candidate_depth, spec.host.max_validators_per_core) == (6, 1)
    # num_cores 5, the paras claim 4: the fifth is left out, and said so
    assert spec.host.num_cores == 0
    assert any("num_cores 5" in n for n in net.notes)
    # a flat name inside a parameter group: polkadot ignores it, so does asyncback (lookahead
    # keeps its default), and it is said
    assert spec.host.lookahead == 3
    assert any("scheduler_params.scheduling_lookahead" in n for n in net.notes)
    spec.chain_spec()


def test_older_genesis_form_full_nodes_and_registration() -> None:
    net = read_network(FILES / "cumulus-style.toml", {})
    spec = net.spec
    assert [v.name for v in spec.validators] == ["alice", "bob"]  # validator = "true" too
    assert [n.name for n in spec.full_nodes] == ["ferdie"]
    assert spec.host.group_rotation_frequency == 100
    assert spec.host.max_validators_per_core == 1
    paras = {p.para_id: p for p in spec.paras}
    assert not paras[2000].registered  # add_to_genesis and register_para both false
    assert paras[2001].registered and paras[2001].cores == 2  # registered at genesis, noted
    assert any("para 2001: registered at genesis" in n for n in net.notes)
    assert [c.name for c in paras[2001].collators] == ["dave", "extra-0", "extra-1"]
    assert spec.groups["extra"] == ("extra-0", "extra-1")
    assert any("dave" in n and "para full node" in n for n in net.notes)


def test_unknown_key_names_its_full_path(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace(
        '  [[relaychain.nodes]]\n  name = "bob"\n',
        '  [[relaychain.nodes]]\n  name = "bob"\n  [[relaychain.nodes]]\n  name = "carol"\n'
        '  vaidator = false\n'))
    assert one_line_error(path) == f"{path}: unknown key relaychain.nodes[2].vaidator"


@pytest.mark.parametrize(("extra", "key"), [
    ("[settings]\nprovder = 'native'\n", "settings.provder"),
    ("[relaychain.genesis.runtimeGenesis.patch.configuration.config]\nmax_candidate_dept = 2\n",
     "relaychain.genesis.runtimeGenesis.patch.configuration.config.max_candidate_dept"),
    ("[relaychain.genesis.runtimeGenesis.patch.configuration.config.async_backing_params]\n"
     "depth = 2\n",
     "relaychain.genesis.runtimeGenesis.patch.configuration.config.async_backing_params.depth"),
    ("[asyncback]\nslot = 1000\n", "asyncback.slot"),
    ("[[hrmp_channels]]\nsender = 2000\nrecipent = 2001\n", "hrmp_channels[0].recipent"),
    ("[parachain]\nid = 1\n", "parachain"),
])
def test_unknown_keys_anywhere(tmp_path: Path, extra: str, key: str) -> None:
    path = write(tmp_path, extra + MINIMAL)
    assert one_line_error(path).endswith(f"unknown key {key}")


def test_every_key_of_zombienets_schema_is_known(tmp_path: Path) -> None:
    # a node carrying every key zombienet's NodeConfig defines reads without error
    node_keys = [k for k, v in NETWORK["relaychain"]["nodes"].item.items()  # type: ignore[index,union-attr]
                 if v == IGNORED]
    lines = "".join(f'  {k} = "x"\n' for k in node_keys)
    path = write(tmp_path, MINIMAL.replace('  name = "bob"\n', '  name = "bob"\n' + lines))
    net = read_network(path, {})
    assert {f"relaychain.nodes[].{k}" for k in node_keys} <= set(net.ignored)
    # and the schema says, for every key, used, ignored or free
    def kinds(schema: object) -> set[str]:
        out: set[str] = set()
        for spec in schema.values():  # type: ignore[attr-defined]
            if isinstance(spec, Tables):
                out |= kinds(spec.item)
            elif isinstance(spec, dict):
                out |= kinds(spec)
            else:
                out.add("free" if isinstance(spec, Free) else spec)
        return out
    assert kinds(NETWORK) == {USED, IGNORED, "free"}


def test_missing_file_template_and_toml_errors_are_one_line(tmp_path: Path) -> None:
    assert one_line_error(tmp_path / "none.toml") == f"{tmp_path / 'none.toml'}: no such network file"
    bad_template = write(tmp_path, "[settings]\n\ntimeout = {{ 1 + }}\n", "t.toml")
    assert one_line_error(bad_template).startswith(f"{bad_template}:3: template:")
    bad_toml = write(tmp_path, "[settings\ntimeout = 1\n", "b.toml")
    assert "not TOML once rendered" in one_line_error(bad_toml)


@pytest.mark.parametrize(("extra", "message"), [
    ("[relaychain.genesis.runtimeGenesis.patch.configuration.config]\nscheduling_lookahead = 2\n"
     "[relaychain.genesis.runtimeGenesis.patch.configuration.config.scheduler_params]\n"
     "lookahead = 3\n", "contradicts"),
    ("[relaychain.genesis.runtimeGenesis.patch.configuration.config.scheduler_params]\n"
     "num_cores = 0\n[asyncback.cores]\n2000 = 2\n", None),
    ("[settings]\nprovider = 'aws'\n", "settings.provider must be one of"),
    ("[settings]\ntimeout = 'soon'\n", "settings.timeout"),
    ("[asyncback.cores]\n2099 = 2\n", "asyncback.cores names para(s) the file does not define: 2099"),
    ("[asyncback]\ncores_per_para = 0\n", "asyncback.cores_per_para must be an integer of at least 1"),
    ("[relaychain.genesis.runtimeGenesis.patch.configuration.config]\nminimum_backing_votes = -1\n",
     "minimum_backing_votes must be a non-negative integer"),
])
def test_bad_values_are_one_line_errors(tmp_path: Path, extra: str, message: str | None) -> None:
    path = write(tmp_path, extra + MINIMAL)
    if message is None:
        assert read_network(path, {}).spec.paras[0].cores == 2
    else:
        assert message in one_line_error(path)


def test_num_cores_below_what_the_paras_claim(tmp_path: Path) -> None:
    extra = ("[relaychain.genesis.runtimeGenesis.patch.configuration.config.scheduler_params]\n"
             "num_cores = 1\n[asyncback]\ncores_per_para = 2\n")
    message = one_line_error(write(tmp_path, extra + MINIMAL))
    assert "num_cores is 1 but the paras claim 2 cores" in message


def test_slot_override_scales_time_and_an_explicit_budget(tmp_path: Path) -> None:
    path = write(tmp_path, "[asyncback]\nexecution_ms = 1800\ntx_rate = 50\n"
                           "blocks_per_relay_parent = 1\n" + MINIMAL)
    net = read_network(path, {}, slot_ms=1000)
    assert net.spec.host.slot_ms == 1000
    assert net.time_scale == pytest.approx(1 / 6)
    assert net.spec.host.execution_timeout_ms == 300
    collator = net.spec.paras[0].collators[0]
    assert (collator.tx_rate, collator.blocks_per_relay_parent) == (50.0, 1)
    written_fast = read_network(write(tmp_path, "[asyncback]\nslot_ms = 2000\n" + MINIMAL,
                                      "f.toml"), {}, slot_ms=500)
    assert written_fast.time_scale == 0.25


def test_kubernetes_runs_natively_podman_in_docker(tmp_path: Path) -> None:
    kube = read_network(write(tmp_path, "[settings]\nprovider = 'kubernetes'\n" + MINIMAL), {})
    assert kube.spec.provider == "native" and any("kubernetes" in n for n in kube.notes)
    podman = read_network(write(tmp_path, "[settings]\nprovider = 'podman'\n" + MINIMAL,
                                "p.toml"), {})
    assert podman.spec.provider == "docker"


def test_node_names_follow_zombienet(tmp_path: Path) -> None:
    text = MINIMAL.replace('name = "bob"', 'name = "new bob"').replace('name = "col"',
                                                                        'name = "alice"')
    spec = read_network(write(tmp_path, text), {}).spec
    # whitespace becomes a dash; a collator named like a validator gets the next free name
    assert [n.name for n in spec.nodes()] == ["alice", "new-bob", "alice-1"]
