"""The `asyncback` command group: every command lives in a module of its own beside this one and
is registered here; no command module imports this one."""

from __future__ import annotations

import click

from node import __version__
from node.cli.ideal import ideal, report
from node.cli.nodes import COMMANDS
from node.cli.probe import probe_peer
from node.cli.sim import sim
from node.cli.sweep import sweep
from node.cli.test import test
from node.cli.testnet import testnet


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "auto_envvar_prefix": "ASYNCBACK"})
@click.version_option(__version__, prog_name="asyncback")
def main() -> None:
    """asyncback: a working model of Polkadot's asynchronous backing."""


for _command in (ideal, report, sim, sweep, test, testnet, probe_peer, *COMMANDS):
    main.add_command(_command)
