"""`asyncback health`: is a node working, and if not, why not, asked over its JSON-RPC (HTTP).

One look (the default, what a container healthcheck runs every few seconds): the node answers,
is not major syncing, and has peers (unless it should not, or `ignore_peers`). With a wait
(`--wait SECONDS`) the check is repeated until it passes or the time is up, and passing also
takes progress seen during the wait: a relay node's best block and its finalized block have
both risen since the first answer (a collator's para block has risen), so a node that answers
but whose chain stands still is not called healthy. A failure names each reason: the RPC
unreachable at its URL, syncing, no peers, no new block, finality not advancing.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

POLL_S = 1.0
METHOD_NOT_FOUND = -32601


class Unreachable(Exception):
    """The RPC did not answer (or answered something that is not JSON-RPC)."""


@dataclass
class Look:
    """What one poll saw."""

    health: dict[str, Any]
    best: int | None = None  # relay best block, or a collator's para block
    finalized: int | None = None  # relay nodes only
    kind: str = "relay"  # or "para"


@dataclass
class Verdict:
    healthy: bool
    reasons: list[str] = field(default_factory=list)
    look: Look | None = None


def rpc_call(url: str, method: str, params: list[Any], timeout: float) -> Any:
    """One JSON-RPC call over HTTP POST: the result, `Unreachable`, or an `RpcFailure`."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            doc = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise Unreachable(f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise Unreachable(str(getattr(exc.reason, "strerror", None) or exc.reason)) from exc
    except (OSError, ValueError) as exc:
        raise Unreachable(str(exc) or type(exc).__name__) from exc
    if not isinstance(doc, dict):
        raise Unreachable("the answer is not a JSON-RPC response")
    if "error" in doc:
        error = doc["error"] if isinstance(doc["error"], dict) else {}
        raise RpcFailure(int(error.get("code", 0)), str(error.get("message", "")))
    return doc.get("result")


class RpcFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code


def _number(header: Any) -> int | None:
    if isinstance(header, dict) and isinstance(header.get("number"), str):
        try:
            return int(header["number"], 16)
        except ValueError:
            return None
    return None


def look(url: str, timeout: float) -> Look:
    """system_health, and the heights that show progress. `Unreachable` if the node does not
    answer system_health."""
    try:
        health = rpc_call(url, "system_health", [], timeout)
    except RpcFailure as exc:
        raise Unreachable(f"system_health failed: {exc}") from exc
    if not isinstance(health, dict):
        raise Unreachable("system_health answered something that is not a health object")
    seen = Look(health)
    try:
        seen.best = _number(rpc_call(url, "chain_getHeader", [], timeout))
        finalized = rpc_call(url, "chain_getFinalizedHead", [], timeout)
        seen.finalized = _number(rpc_call(url, "chain_getHeader", [finalized], timeout))
    except RpcFailure as exc:
        if exc.code != METHOD_NOT_FOUND:
            raise Unreachable(f"chain_getHeader failed: {exc}") from exc
        seen.kind = "para"  # a collator: its own chain's tip
        try:
            seen.best = _number(rpc_call(url, "para_getHeader", [], timeout))
        except RpcFailure:
            seen.best = None
    return seen


def judge(seen: Look, first: Look | None, waited_s: float, *, ignore_peers: bool) -> Verdict:
    """The reasons `seen` is not healthy; with `first` (an earlier look of this wait), progress
    since then is required too."""
    reasons = []
    health = seen.health
    where = f"best #{seen.best}" if seen.best is not None else "no block"
    if health.get("isSyncing"):
        reasons.append(f"syncing ({where})")
    if not ignore_peers and health.get("shouldHavePeers", True) and not health.get("peers"):
        reasons.append("no peers")
    if first is not None:
        if seen.best is None or first.best is None or seen.best <= first.best:
            chain = "para block" if seen.kind == "para" else "block"
            reasons.append(f"no new {chain} in {waited_s:.0f}s ({where})")
        if seen.kind == "relay" and (seen.finalized is None or first.finalized is None
                                     or seen.finalized <= first.finalized):
            reasons.append(f"finality not advancing in {waited_s:.0f}s (finalized "
                           f"#{seen.finalized}, {where})")
    return Verdict(not reasons, reasons, seen)


def check(url: str, *, wait_s: float = 0.0, timeout: float = 3.0, ignore_peers: bool = False,
          clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Verdict:
    """One look, or (`wait_s` > 0) looks every `POLL_S` until one passes or `wait_s` is up."""
    start = clock()
    first: Look | None = None
    while True:
        try:
            seen = look(url, timeout)
        except Unreachable as exc:
            verdict = Verdict(False, [f"RPC unreachable at {url}: {exc}"])
        else:
            if first is None:
                first = seen
            waited = clock() - start
            verdict = judge(seen, first if wait_s > 0 else None, waited,
                            ignore_peers=ignore_peers)
        left = wait_s - (clock() - start)
        if verdict.healthy or left <= 0:
            return verdict
        sleep(min(POLL_S, left))  # the last look is at the deadline
