"""`asyncback probe-peer HOST:PORT --chain FILE`: a hostile peer against one node (see
`node.probe`); exit 0 when the target survived and kept its chain going, 1 otherwise (also when
the run was inconclusive: the target refused every link, so nothing was sent)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import trio

from node.cli.common import fail


@click.command("probe-peer")
@click.argument("address")
@click.option("--chain", "chain_path", type=click.Path(path_type=Path), required=True,
              help="The target's chain spec (its genesis id goes into the handshake).")
@click.option("--as", "as_name", default=None,
              help="Use this dev name's key (a collator's, a validator's) instead of fresh keys.")
@click.option("--seconds", default=60.0, show_default=True, help="How long to fire.")
@click.option("--rate", default=100.0, show_default=True, help="Records sent per second.")
@click.option("--seed", default=0, show_default=True, help="Seeds the messages and fresh keys.")
@click.option("--rpc-url", default=None,
              help="http://HOST:PORT of the target's RPC: hashes it knows, and its chain heights "
                   "before and after.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Also write the report here as JSON.")
def probe_peer(address: str, chain_path: Path, as_name: str | None, seconds: float, rate: float,
               seed: int, rpc_url: str | None, json_path: Path | None) -> None:
    """Complete the handshake with the node at ADDRESS (HOST:PORT, its p2p port) and send it
    generated messages of every wire type on every lane, garbage frames included, for a
    bounded time; report what it did."""
    from node.chainspec import load_spec
    from node.probe import ProbeConfig, TargetRpc, probe_peer
    from proto.keys import Keypair
    from relay.core.config import ConfigError

    host, sep, port_s = address.rpartition(":")
    if not sep or not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        fail(f"target {address!r}: expected HOST:PORT")
    if seconds <= 0 or rate <= 0:
        fail("--seconds and --rate must be positive")
    try:
        spec = load_spec(chain_path)
    except ConfigError as exc:
        fail(str(exc))
    except (OSError, ValueError) as exc:
        fail(f"chain spec {chain_path}: {exc}")
    if rpc_url is not None:
        try:
            TargetRpc(rpc_url)
        except ValueError as exc:
            fail(str(exc))
    cfg = ProbeConfig(host.strip("[]"), int(port_s), spec,
                      Keypair.from_name(as_name) if as_name else None, as_name, seconds, rate,
                      seed, rpc_url)
    report = trio.run(probe_peer, cfg)
    for line in report.lines():
        click.echo(line)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    sys.exit(0 if report.survived else 1)
