"""The `asyncback` command line."""

from __future__ import annotations

import click

from node import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "ASYNCBACK"})
@click.version_option(__version__, prog_name="asyncback")
def main() -> None:
    """asyncback: a working model of Polkadot's asynchronous backing."""


if __name__ == "__main__":  # pragma: no cover
    main()
