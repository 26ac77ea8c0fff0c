"""`asyncback test` through click, for the files it refuses before any node starts: each a
one-line error naming the file and the line or key, exit status 2 (cannot run; 1 is a test that
ran and failed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import main

NETWORK = """
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


def run(tmp_path: Path, test: str, network: str | None = NETWORK, *args: str) -> tuple[int, str]:
    (tmp_path / "t.zndsl").write_text(test)
    if network is not None:
        (tmp_path / "net.toml").write_text(network)
    res = CliRunner().invoke(main, ["test", str(tmp_path / "t.zndsl"), *args])
    return res.exit_code, res.output


@pytest.mark.parametrize(("test", "network", "expected"), [
    ("Network: ./net.toml\nalice: is up\nalice: js-script ./x.js within 5 seconds\n", NETWORK,
     "t.zndsl:3: unsupported: js-script"),
    ("Network: ./missing.toml\nalice: is up\n", NETWORK, "missing.toml: no such network file"),
    ("Network: ./net.toml\nalice: is up\n",
     NETWORK.replace('name = "bob"', 'name = "bob"\n  vaidator = false'),
     "net.toml: unknown key relaychain.nodes[1].vaidator"),
    ("Network: ./net.toml\nalice: is up\ncarol: is up\n", NETWORK,
     "t.zndsl:3: no node or group 'carol' in the network (nodes: alice, bob, col)"),
    ("alice: is up\n", NETWORK, "t.zndsl: no Network header"),
])
def test_refused_before_any_node_starts(tmp_path: Path, test: str, network: str,
                                        expected: str) -> None:
    code, output = run(tmp_path, test, network)
    assert code == 2, output
    error_lines = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1 and expected in error_lines[0], output


def test_missing_test_file(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["test", str(tmp_path / "none.zndsl")])
    assert res.exit_code == 2 and "none.zndsl: no such test file" in res.output
