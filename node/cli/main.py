"""The `asyncback` command group: every command lives in a module of its own beside this one and
is registered here; no command module imports this one.

The node commands are imported at once (they are small); the others when they are run: a
healthcheck (`asyncback health`, every few seconds in every container) or a node start should not
pay for importing the launcher, the live view and the report first."""

from __future__ import annotations

import importlib
from typing import Any

import click

from node import __version__
from node.cli.nodes import COMMANDS

LAZY = {  # command name -> "module:attribute"
    "ideal": "node.cli.ideal:ideal",
    "probe-peer": "node.cli.probe:probe_peer",
    "report": "node.cli.ideal:report",
    "sim": "node.cli.sim:sim",
    "sweep": "node.cli.sweep:sweep",
    "test": "node.cli.test:test",
    "testnet": "node.cli.testnet:testnet",
}


class Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> Any:
        if cmd_name in LAZY:
            module, attribute = LAZY[cmd_name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, cmd_name)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"],
                                             "auto_envvar_prefix": "ASYNCBACK"})
@click.version_option(__version__, prog_name="asyncback")
def main() -> None:
    """asyncback: a working model of Polkadot's asynchronous backing."""


for _command in COMMANDS:
    main.add_command(_command)
