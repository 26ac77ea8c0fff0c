"""`asyncback probe-peer`: a hostile peer for a bounded time, and what the target did about it.

The probe completes the real handshake (`node.net.tcp`, the chain spec's genesis id) with an
identity of its choosing: a fresh random key by default, kept until the target refuses it and
then replaced (a new peer, as far as the target can tell), or a dev name's key (`--as NAME`: a
collator's, a validator's), kept throughout. On each link it first waits briefly for the
target's greeting (every node sends its peer exchange to a new peer): a link the target closes
before greeting is a refusal (a ban, or a slot it would not give). Then it fires the shots of
`node.probe_shots` at `rate` records a second, round after round, until the target closes the
link (it reconnects) or the time is up. Hashes the target knows (recent relay parents, or a
collator's para blocks) come from the target's RPC when a URL is given, refreshed every second.

The report says, per kind of shot, how many were sent; per request, how many the target
answered or refused; what the target sent us; how often it closed the link and after what; how
many identities it refused; whether it is still alive at the end (a fresh handshake succeeds,
and its RPC answers); and, from its RPC, its best and finalized heights before and after (a
collator's para best and included heights). The target survived if it is alive and, when its
RPC is known, both heights moved.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import trio

from node.chainspec import ChainSpec
from node.cluster.http import NodeUnreachable, rpc_call
from node.net.gossip import GossipEnvelope
from node.net.reqresp import STATUS_OK, ResponseEnvelope
from node.net.tcp import HandshakeRefused, TcpConnection, TcpHost
from node.net.transport import DialError, TransportError
from node.probe_shots import (
    KIND_NAMES,
    LANE_NAMES,
    TOPIC_NAMES,
    Outgoing,
    Shot,
    ShotPlan,
    Target,
)
from node.rpc.errors import RpcError
from node.wiregen import WireGenerator
from proto.codec import decode
from proto.errors import DecodeError
from proto.keys import Keypair
from proto.messages import FRAME_MAX, Protocol, decode_message

DEFAULT_SECONDS = 60.0
DEFAULT_RATE = 100.0
GREETING_S = 1.0  # how long a new link may stay silent before we start firing
REDIAL_S = 0.25
FIXED_IDENTITY_RETRY_S = 5.0  # a refused fixed identity waits this long before trying again
HASH_REFRESH_S = 1.0
RPC_TIMEOUT_S = 5.0
RELAY_ANCESTORS = 4


@dataclass(frozen=True)
class ProbeConfig:
    host: str
    port: int
    spec: ChainSpec
    identity: Keypair | None = None  # None: fresh keys
    identity_name: str | None = None
    seconds: float = DEFAULT_SECONDS
    rate: float = DEFAULT_RATE
    seed: int = 0
    rpc_url: str | None = None


@dataclass(frozen=True)
class ChainPoint:
    best: int
    finalized: int


@dataclass
class ProbeReport:
    target: str
    identity: str
    seconds: float
    duration: float = 0.0
    role: str | None = None
    sent: Counter[str] = field(default_factory=Counter)
    unsendable: Counter[str] = field(default_factory=Counter)
    answers: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))
    received: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    dial_failures: int = 0
    closed_by_target: int = 0
    closed_after: Counter[str] = field(default_factory=Counter)
    refusals: int = 0
    identities: int = 0
    malformed_from_target: int = 0
    before: ChainPoint | None = None
    after: ChainPoint | None = None
    alive: bool = False
    problems: list[str] = field(default_factory=list)
    inconclusive: str | None = None  # why the run says nothing either way

    @property
    def chain_moved(self) -> bool | None:
        if self.before is None or self.after is None:
            return None
        return (self.after.best > self.before.best
                and self.after.finalized > self.before.finalized)

    @property
    def survived(self) -> bool:
        return (self.alive and self.chain_moved is not False and not self.problems
                and self.inconclusive is None)

    @property
    def verdict(self) -> str:
        if self.inconclusive is not None and self.alive and not self.problems:
            return f"inconclusive: {self.inconclusive}"
        return "the target survived" if self.survived else "the target did NOT survive"

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target, "identity": self.identity, "seconds": self.seconds,
            "duration_s": round(self.duration, 2), "role": self.role,
            "frames_sent": dict(sorted(self.sent.items())),
            "frames_sent_total": sum(self.sent.values()),
            "unsendable": dict(self.unsendable),
            "answers": {k: dict(v) for k, v in sorted(self.answers.items())},
            "received": dict(sorted(self.received.items())),
            "connections": self.connections, "dial_failures": self.dial_failures,
            "closed_by_target": self.closed_by_target,
            "closed_after": dict(self.closed_after.most_common()),
            "refused_identities": self.refusals, "identities_used": self.identities,
            "malformed_from_target": self.malformed_from_target,
            "before": vars(self.before) if self.before else None,
            "after": vars(self.after) if self.after else None,
            "alive": self.alive, "chain_moved": self.chain_moved, "problems": self.problems,
            "inconclusive": self.inconclusive, "survived": self.survived,
        }

    def lines(self) -> list[str]:
        out = [f"probe-peer {self.target} as {self.identity}: {self.duration:.1f} s, "
               f"{sum(self.sent.values())} frames of {len(self.sent)} kinds"
               + (f", target role {self.role}" if self.role else "")]
        out.append(f"links: {self.connections} opened, {self.closed_by_target} closed by the "
                   f"target, {self.refusals} refused at once or at the handshake (banned, "
                   f"or a slot refused); identities used: {self.identities}; {self.dial_failures} dials failed")
        out.append("frames sent:")
        width = max((len(k) for k in self.sent), default=0)
        for label, n in sorted(self.sent.items()):
            answers = self.answers.get(label)
            extra = ""
            if answers is not None:
                extra = "  answered " + ", ".join(f"{k} {v}" for k, v in sorted(answers.items()))
            out.append(f"  {label:<{width}}  {n:>6}{extra}")
        if self.unsendable:
            out.append("not sendable (generator over a cap): " + _counts(self.unsendable))
        if self.closed_after:
            out.append("target closed the link after: " + _counts(self.closed_after))
        if self.received:
            out.append("target sent us: " + _counts(self.received))
        if self.malformed_from_target:
            out.append(f"malformed frames from the target: {self.malformed_from_target}")
        if self.before is not None and self.after is not None:
            out.append(f"chain: best {self.before.best} -> {self.after.best}, finalized "
                       f"{self.before.finalized} -> {self.after.finalized}"
                       + (" (moving)" if self.chain_moved else " (NOT moving)"))
        else:
            out.append("chain: unknown (no --rpc-url)")
        out.append(f"alive at the end: {'yes' if self.alive else 'NO'}")
        out.extend(f"problem: {p}" for p in self.problems)
        out.append(f"verdict: {self.verdict}")
        return out


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.most_common())


# -- the target's RPC ---------------------------------------------------------------------------


class TargetRpc:
    """The few reads the probe needs, over the target's HTTP JSON-RPC."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "//" in url else f"http://{url}")
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"--rpc-url {url!r}: expected http://HOST:PORT")
        self.host, self.port = parts.hostname, parts.port
        self.collator = False

    async def call(self, method: str, *params: Any) -> Any:
        return await rpc_call(self.host, self.port, method, list(params), RPC_TIMEOUT_S)

    async def role(self) -> str:
        roles = await self.call("system_nodeRoles")
        role = str(roles[0]) if roles else "?"
        self.collator = role == "Collator"
        return role

    async def chain(self) -> ChainPoint:
        if self.collator:
            best = await self.call("para_getHeader")
            segment = await self.call("para_unincludedSegment")
            included = await self.call("para_getHeader", segment["includedHash"])
            return ChainPoint(_number(best), _number(included) if included else 0)
        best = await self.call("chain_getHeader")
        finalized = await self.call("chain_getHeader", await self.call("chain_getFinalizedHead"))
        return ChainPoint(_number(best), _number(finalized))

    async def known_hashes(self) -> list[bytes]:
        """Recent relay parents (the best block and a few ancestors, and the finalized one); for
        a collator, its unincluded para blocks and the included one."""
        if self.collator:
            segment = await self.call("para_unincludedSegment")
            hashes = [segment["includedHash"], *(b["hash"] for b in segment["blocks"])]
        else:
            hashes = [await self.call("chain_getFinalizedHead")]
            header = await self.call("chain_getHeader")
            for _ in range(RELAY_ANCESTORS):
                if header is None:
                    break
                hashes.append(header["hash"])
                header = await self.call("chain_getHeader", header["parentHash"])
        return [bytes.fromhex(h.removeprefix("0x")) for h in hashes if isinstance(h, str)]


def _number(header: dict[str, Any]) -> int:
    number = header["number"]
    return int(number, 16) if isinstance(number, str) else int(number)


# -- the probe ----------------------------------------------------------------------------------


@dataclass
class _Link:
    conn: TcpConnection
    greeted: trio.Event = field(default_factory=trio.Event)
    ended: trio.Event = field(default_factory=trio.Event)
    frames: int = 0


class Probe:
    def __init__(self, cfg: ProbeConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.gen = WireGenerator(self.rng)
        self.rpc = TargetRpc(cfg.rpc_url) if cfg.rpc_url else None
        who = cfg.identity_name or ("fresh keys" if cfg.identity is None else "a given key")
        self.report = ProbeReport(f"{cfg.host}:{cfg.port}", who, cfg.seconds)
        self.pending: dict[int, str] = {}  # request id -> the shot's label
        self.last_label = "(nothing yet)"
        self._plan: ShotPlan | None = None
        self._shots: Iterator[Shot] | None = None

    async def run(self) -> ProbeReport:
        report = self.report
        if self.rpc is not None:
            try:
                report.role = await self.rpc.role()
                report.before = await self.rpc.chain()
                self.gen.hashes = await self.rpc.known_hashes()
            except (NodeUnreachable, RpcError, KeyError, TypeError, ValueError) as exc:
                report.problems.append(f"RPC at start: {exc}")
                return report
        started = time.monotonic()
        async with trio.open_nursery() as nursery:
            if self.rpc is not None:
                nursery.start_soon(self._refresh_hashes)
            with trio.move_on_after(self.cfg.seconds):
                await self._attack()
            nursery.cancel_scope.cancel()
        report.duration = time.monotonic() - started
        if not report.sent:
            report.inconclusive = ("nothing was sent: the target refused every link (is a node "
                                   "with this identity connected to it already?)")
        report.alive = await self._alive()
        if self.rpc is not None:
            try:
                report.after = await self.rpc.chain()
            except (NodeUnreachable, RpcError, KeyError, TypeError, ValueError) as exc:
                report.problems.append(f"RPC at the end: {exc}")
        return report

    async def _refresh_hashes(self) -> None:
        assert self.rpc is not None
        while True:
            await trio.sleep(HASH_REFRESH_S)
            # A failed read changes nothing: the end-of-run checks say whether the target is up.
            with contextlib.suppress(NodeUnreachable, RpcError, KeyError, TypeError, ValueError):
                self.gen.hashes = await self.rpc.known_hashes() or self.gen.hashes

    def _key(self) -> Keypair:
        self.report.identities += 1
        return self.cfg.identity or Keypair(self.rng.randbytes(32))

    async def _dial(self, key: Keypair) -> TcpConnection | HandshakeRefused | None:
        """A link; the refusal when the target was reached but refused the handshake (a
        banned key is refused there); None when it could not be reached."""
        host = TcpHost(key, self.cfg.spec.genesis_id(), FRAME_MAX)
        try:
            return await host.dial_address(self.cfg.host, self.cfg.port)
        except HandshakeRefused as exc:
            self.report.dial_failures += 1
            return exc
        except DialError:
            self.report.dial_failures += 1
            return None

    async def _attack(self) -> None:
        key = self._key()
        while True:
            conn = await self._dial(key)
            if isinstance(conn, HandshakeRefused) and self.cfg.identity is None:
                self.report.refusals += 1
                key = self._key()  # this key is banned: come back as someone else
                continue
            if not isinstance(conn, TcpConnection):
                await trio.sleep(REDIAL_S)
                continue
            self.report.connections += 1
            if self._plan is None:
                target = Target(conn.remote, key, tuple(p.para_id for p in self.cfg.spec.paras))
                self._plan = ShotPlan(self.gen, target)
                self._shots = self._plan.rounds()
            self._plan.target.key = key
            refused = await self._session(conn)
            if refused:
                self.report.refusals += 1
                if self.cfg.identity is None:
                    key = self._key()
                else:
                    await trio.sleep(FIXED_IDENTITY_RETRY_S)
            else:
                await trio.sleep(REDIAL_S)

    async def _session(self, conn: TcpConnection) -> bool:
        """Fire at one link until it closes; True if the target refused it at once."""
        link = _Link(conn)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read, link)
            with trio.move_on_after(GREETING_S):
                await link.greeted.wait()
            if link.ended.is_set() and link.frames == 0:
                return True
            try:
                await self._fire(link)
            finally:
                nursery.cancel_scope.cancel()
                await conn.aclose()
        return False

    async def _fire(self, link: _Link) -> None:
        assert self._shots is not None
        pause = 1.0 / self.cfg.rate
        while not link.ended.is_set():
            shot = next(self._shots)
            for out in shot.fire():
                if not await self._send(link.conn, out, shot.label):
                    return
            self.last_label = shot.label
            await trio.sleep(pause)

    async def _send(self, conn: TcpConnection, out: Outgoing, label: str) -> bool:
        try:
            if out.raw:
                await conn.send_raw(out.body, corrupt=out.corrupt)
            else:
                await conn.send(out.protocol, out.body)
        except DecodeError:  # over a cap: a generator bug, worth reporting, not a crash
            self.report.unsendable[label] += 1
            return True
        except TransportError:
            return False
        self.report.sent[label] += 1
        if out.request is not None:
            request_id, request_label = out.request
            self.pending[request_id] = request_label
        return True

    async def _read(self, link: _Link) -> None:
        try:
            async for frame in link.conn:
                link.frames += 1
                link.greeted.set()
                self._note_received(frame.protocol, frame.body)
        except DecodeError:
            self.report.malformed_from_target += 1
        except TransportError:
            pass
        # Reached when the link ended by itself (not when we cancelled the reader to close it).
        link.ended.set()
        link.greeted.set()
        if link.frames:
            self.report.closed_by_target += 1
            self.report.closed_after[self.last_label] += 1

    def _note_received(self, protocol: int, body: bytes) -> None:
        try:
            if protocol == Protocol.GOSSIP:
                envelope = decode(body, GossipEnvelope)
                label = f"gossip/{TOPIC_NAMES.get(envelope.topic, envelope.topic)}"
            elif protocol == Protocol.DIRECT:
                label = f"direct:{type(decode_message(body)).__name__}"
            elif protocol == Protocol.REQUEST:
                label = "request (to us)"
            else:
                response = decode(body, ResponseEnvelope)
                asked = self.pending.pop(response.request_id, None)
                if asked is not None:
                    status = "ok" if response.status == STATUS_OK else "refused"
                    self.report.answers[asked][status] += 1
                label = f"response/{LANE_NAMES.get(protocol, protocol)}"
        except DecodeError:
            self.report.malformed_from_target += 1
            return
        self.report.received[label] += 1

    async def _alive(self) -> bool:
        """A fresh identity completes a handshake, and the RPC (if known) answers."""
        conn = await self._dial(Keypair(self.rng.randbytes(32)))
        if not isinstance(conn, TcpConnection):
            self.report.problems.append("no handshake with the target at the end")
            return False
        await conn.aclose()
        if self.rpc is not None:
            try:
                await self.rpc.call("system_health")
            except (NodeUnreachable, RpcError) as exc:
                self.report.problems.append(f"RPC does not answer at the end: {exc}")
                return False
        return True


async def probe_peer(cfg: ProbeConfig) -> ProbeReport:
    return await Probe(cfg).run()


__all__ = ["DEFAULT_RATE", "DEFAULT_SECONDS", "KIND_NAMES", "ChainPoint", "Probe", "ProbeConfig",
           "ProbeReport", "TargetRpc", "probe_peer"]
