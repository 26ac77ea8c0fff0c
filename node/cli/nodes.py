"""The node commands: `asyncback genesis | keygen | validator | relay-node | collator | health`.

Substrate's flag names where they exist (`--chain`, `--name`, `--base-path`, `--port`,
`--rpc-port`, `--prometheus-port`, `--bootnodes`, `--relay-chain-rpc-url`); every option also from
an `ASYNCBACK_<COMMAND>_<OPTION>` environment variable. Bad configuration exits with status 1 and
one line naming the problem (a port in use: which listener, address and flag); an unexpected error
exits 1 with one line naming it and the file holding its full traceback (`node/crash_report.py`);
SIGTERM or Ctrl-C shuts a node down cleanly (status 0), logging why.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from node.cli.common import fail, make_host, network_options
from relay.core.config import ConfigError


def load_key(name: str, key_file: Path | None) -> Any:
    from proto.keys import Keypair

    if key_file is None:
        return Keypair.from_name(name)  # dev networks: keys derive from names
    try:
        doc = json.loads(key_file.read_text())
        return Keypair(bytes.fromhex(str(doc["secret_seed"]).removeprefix("0x")))
    except FileNotFoundError:
        fail(f"node key file {key_file} does not exist")
    except (ValueError, KeyError, TypeError):
        fail(f"node key file {key_file} is not a key written by `asyncback keygen`")
    raise AssertionError("unreachable")


def node_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--chain", "chain", required=True,
                     type=click.Path(path_type=Path), help="Chain spec (asyncback genesis)."),
        click.option("--name", required=True, help="Node name; dev keys derive from it."),
        click.option("--node-key-file", type=click.Path(path_type=Path), default=None,
                     help="Key written by `asyncback keygen` (default: the dev key of --name)."),
        click.option("--base-path", type=click.Path(path_type=Path), default=None,
                     help="Data directory (default: ./data/NAME)."),
        click.option("--listen-host", default="127.0.0.1", show_default=True),
        click.option("--public-host", default=None, help="Address peers dial (default: listen)."),
        click.option("--port", default=30333, show_default=True, help="p2p port (0: any)."),
        click.option("--rpc-port", default=9944, show_default=True, help="JSON-RPC HTTP+WS."),
        click.option("--prometheus-port", default=9615, show_default=True),
        click.option("--no-rpc", is_flag=True), click.option("--no-prometheus", is_flag=True),
        click.option("--bootnodes", multiple=True,
                     help="HOST:PORT or 0xIDENTITY@HOST:PORT; comma-separated or repeated."),
        click.option("--ban-seconds", type=click.FloatRange(min=0), default=None,
                     help="How long a peer banned for misbehaviour (flooding, bad messages) is "
                          "refused at the handshake, at least [default: 120]."),
        click.option("--log-level", default="info", show_default=True),
        click.option("--log-format", type=click.Choice(["json", "console"]), default=None,
                     help="Default: console on a TTY, JSON otherwise."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def split_addresses(items: tuple[str, ...]) -> tuple[str, ...]:
    """Repeated and comma-separated addresses, as one tuple."""
    return tuple(b.strip() for item in items for b in item.split(",") if b.strip())


def run_role(role: str, opts: dict[str, Any], **extra: Any) -> None:
    import trio

    from node.chainspec import load_spec
    from node.logging import configure, get_logger
    from node.net.discovery import parse_bootnode
    from node.runner import NodeConfig, run_node

    configure(opts["log_level"], opts["log_format"])
    try:
        spec = load_spec(opts["chain"])
    except ConfigError as exc:
        fail(str(exc))
    bootnodes = split_addresses(opts["bootnodes"])
    for address in (*bootnodes, *extra.get("para_bootnodes", ())):
        try:
            parse_bootnode(address)
        except ValueError as exc:
            fail(str(exc))
    cfg = NodeConfig(
        role, spec, opts["name"], load_key(opts["name"], opts["node_key_file"]),
        opts["base_path"] or Path("data") / opts["name"], opts["listen_host"], opts["port"],
        None if opts["no_rpc"] else opts["rpc_port"],
        None if opts["no_prometheus"] else opts["prometheus_port"], bootnodes,
        opts["public_host"], **extra)
    if opts["ban_seconds"] is not None:
        cfg = dataclasses.replace(cfg, ban_window_s=opts["ban_seconds"])

    stop_reason = "stopped"

    async def main() -> None:
        nonlocal stop_reason
        async with trio.open_nursery() as nursery:
            await nursery.start(run_node, cfg)
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    stop_reason = f"{signal.Signals(signum).name} received"
                    get_logger().info("shutting down", node=cfg.name, reason=stop_reason)
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(main)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the top level: nothing above would catch it
        exit_for_error(exc, cfg.base_path, cfg.name)
    get_logger().info("node stopped", node=cfg.name, reason=stop_reason)


def exit_for_error(exc: BaseException, base_path: Path, name: str) -> NoReturn:
    """Exit 1 with one line: the error itself when the operator can act on it (configuration,
    store, a port in use), otherwise what it was and where its full traceback went."""
    from node.crash_report import cause, one_line, write_crash_log
    from node.runner import CannotListen
    from node.storage import StorageError
    from proto.errors import CorruptRecord

    first = cause(exc)
    if isinstance(first, (ConfigError, StorageError, CorruptRecord, CannotListen)):
        fail(str(first))
    path = write_crash_log(exc, base_path, name)
    fail(one_line(exc, path))


@click.command()
@node_options
@click.option("--malus", default=None, metavar="MODE",
              help="Misbehave for tests: suggest-garbage-candidate, back-garbage, dispute-valid, "
                   "no-show.")
def validator(malus: str | None, **opts: Any) -> None:
    """Run a relay-chain validator: authors in its slots, backs, signs availability."""
    if malus is not None:
        from relay.service.malus import MALUS_MODES

        if malus not in MALUS_MODES:
            fail(f"--malus {malus}: not a malus mode ({', '.join(MALUS_MODES)})")
    run_role("validator", opts, malus=malus)


@click.command("relay-node")
@node_options
def relay_node(**opts: Any) -> None:
    """Run a relay full node: follows and re-executes the chain, serves RPC to collators."""
    run_role("relay-node", opts)


@click.command()
@node_options
@click.option("--para-id", type=int, required=True)
@click.option("--relay-chain-rpc-url", required=True,
              help="ws://HOST:PORT of a relay node; its p2p address is learnt from it, so "
                   "--bootnodes is optional.")
@click.option("--tx-rate", type=float, default=None,
              help="Synthetic transactions per second (default: a saturated pool).")
@click.option("--blocks-per-relay-parent", default=0, show_default=True)
@click.option("--para-bootnodes", multiple=True,
              help="Other collators of the para (HOST:PORT or 0xIDENTITY@HOST:PORT, comma-"
                   "separated or repeated): this one syncs the para's blocks from them and takes "
                   "turns with them.")
def collator(para_id: int, relay_chain_rpc_url: str, tx_rate: float | None,
             blocks_per_relay_parent: int, para_bootnodes: tuple[str, ...], **opts: Any) -> None:
    """Run a parachain collator attached to a relay node."""
    run_role("collator", opts, para_id=para_id, relay_rpc_url=relay_chain_rpc_url,
             tx_rate=tx_rate, blocks_per_relay_parent=blocks_per_relay_parent,
             para_bootnodes=split_addresses(para_bootnodes))


@click.command()
@network_options(validators=4)
@click.option("--name", default="asyncback-local", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write here (default: standard output).")
@click.option("--minimum-backing-votes", type=int, default=None,
              help="Backing threshold (1: a validator backs alone, as a malus test needs).")
def genesis(validators: int, paras: int, cores_per_para: int, max_candidate_depth: int | None,
            allowed_ancestry_len: int, lookahead: int | None, slot_ms: int,
            execution_ms: int | None, sync: bool, name: str, out: Path | None,
            minimum_backing_votes: int | None) -> None:
    """Write a chain spec: dev validators (alice, bob, ...), paras from 2000 with their genesis
    heads, and the host configuration."""
    from node.devnet import dev_spec

    try:
        host = make_host(max_candidate_depth, allowed_ancestry_len, lookahead, slot_ms,
                         execution_ms, cores_per_para=cores_per_para, sync=sync)
        if minimum_backing_votes is not None:
            host = host.replace(minimum_backing_votes=minimum_backing_votes)
        spec = dev_spec(validators, paras, cores_per_para, host, name)
    except ConfigError as exc:
        fail(str(exc))
    text = json.dumps(spec.to_json(), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        click.echo(f"chain spec: {out}", err=True)


@click.command()
@click.option("--name", default=None, help="Derive the dev key of this name instead of a random one.")
@click.option("--out", type=click.Path(path_type=Path), default=None)
def keygen(name: str | None, out: Path | None) -> None:
    """Make an Ed25519 node key (JSON: public key and secret seed)."""
    from proto.keys import Keypair

    key = Keypair.from_name(name) if name else Keypair(secrets.token_bytes(32))
    doc = {"public": "0x" + key.public.hex(), "secret_seed": "0x" + key.seed.hex()}
    text = json.dumps(doc, indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        out.chmod(0o600)
        click.echo(f"public 0x{key.public.hex()}", err=True)


@click.command()
@click.option("--rpc-url", default="http://127.0.0.1:9944", show_default=True)
@click.option("--timeout", default=3.0, show_default=True, help="Per RPC call, in seconds.")
@click.option("--wait", "wait_s", default=0.0, show_default=True, metavar="SECONDS",
              help="Poll until healthy or this many seconds have passed; healthy then also "
                   "takes a new block and (relay nodes) new finality seen meanwhile.")
@click.option("--ignore-peers", is_flag=True,
              help="Healthy without peers too: where peers find a node only once it is healthy "
                   "(Docker Swarm puts a task in its service's DNS then).")
def health(rpc_url: str, timeout: float, wait_s: float, ignore_peers: bool) -> None:
    """Exit 0 when the node answers, is not syncing and has peers (if it should); otherwise
    exit 1 saying why (RPC unreachable, syncing, no peers, no new block, finality stalled)."""
    from node.health_check import check

    verdict = check(rpc_url, wait_s=wait_s, timeout=timeout, ignore_peers=ignore_peers)
    if verdict.look is not None:
        click.echo(json.dumps(verdict.look.health))
    if not verdict.healthy:
        click.echo("unhealthy: " + "; ".join(verdict.reasons), err=True)
    sys.exit(0 if verdict.healthy else 1)


COMMANDS = (genesis, keygen, validator, relay_node, collator, health)
