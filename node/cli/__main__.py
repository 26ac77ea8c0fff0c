"""`python -m node.cli`: the same as the `asyncback` command."""

from node.cli.main import main

main()
