"""A network file's `command = "malus MODE"` runs asyncback validators in that malus mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.zombienet.network_file import NetworkFileError, read_network

FILES = Path(__file__).parent / "files"
ENV = {"RELAY_IMAGE": "polkadot:latest", "MALUS_IMAGE": "malus:latest"}


def test_a_malus_node_group_runs_validators_with_the_malus_flag() -> None:
    net = read_network(FILES / "garbage-candidate.toml", ENV)
    spec = net.spec
    by_name = {v.name: v.args for v in spec.validators}
    assert by_name == {"honest-0": (), "honest-1": (), "honest-2": (),
                       "malus-0": ("--malus", "suggest-garbage-candidate")}
    assert spec.host.minimum_backing_votes == 1  # the malus can back alone
    assert "relaychain.node_groups[].command" not in net.ignored  # used, not ignored
    assert all(c.args == () for p in spec.paras for c in p.collators)  # a collator's command


@pytest.mark.parametrize(("command", "words"), [
    ("malus dispute-ancestor", "malus mode 'dispute-ancestor' is not one asyncback has"),
    ("malus", "malus mode '(none)'"),
])
def test_a_malus_mode_asyncback_lacks_is_a_one_line_error(tmp_path: Path, command: str,
                                                          words: str) -> None:
    path = tmp_path / "net.toml"
    path.write_text(f"""
[relaychain]
chain = "rococo-local"
  [[relaychain.nodes]]
  name = "alice"
  [[relaychain.nodes]]
  name = "bob"
  command = "{command}"
[[parachains]]
id = 2000
  [parachains.collator]
  name = "col"
""")
    with pytest.raises(NetworkFileError) as info:
        read_network(path, {})
    assert words in str(info.value) and "relaychain.nodes[1].command" in str(info.value)


def test_a_no_show_node_runs_a_validator_that_never_approves(tmp_path: Path) -> None:
    path = tmp_path / "net.toml"
    path.write_text("""
[relaychain]
chain = "rococo-local"
  [[relaychain.nodes]]
  name = "alice"
  [[relaychain.nodes]]
  name = "bob"
  command = "malus no-show"
[[parachains]]
id = 2000
  [parachains.collator]
  name = "col"
""")
    spec = read_network(path, {}).spec
    assert {v.name: v.args for v in spec.validators} == {"alice": (),
                                                        "bob": ("--malus", "no-show")}
