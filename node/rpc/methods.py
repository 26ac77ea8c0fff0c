"""The JSON-RPC methods a node answers, read straight from its service object.

Relay nodes (full nodes and validators)
  system_name() -> str                        the node's name (e.g. "validator-0")
  system_version() -> str                     asyncback's package version
  system_nodeRoles() -> [str]                 ["Authority"] | ["Full"] | ["Collator"]
  system_health() -> {peers, isSyncing, shouldHavePeers}
  system_peers() -> [{peerId, roles}]         roles "AUTHORITY" (in the validator set) | "FULL"
  system_localListenAddresses() -> [str]      where peers reach this node over p2p, each as
      `0x<identity>@HOST:PORT` (what `--bootnodes` takes): how a collator given only
      `--relay-chain-rpc-url` finds its relay node's p2p address. HOST may be an unspecified
      address (0.0.0.0) when the node listens on all interfaces and was given no public host.
  chain_getHeader(hash?) -> Header | null     best block when `hash` is omitted
  chain_getBlock(hash?) -> {block: {header, extrinsics, parachainsInherent}, justifications}
  chain_getBlockHash(number?) -> hash | null  on the best chain; best hash when omitted
  chain_getFinalizedHead() -> hash
  parachain_getParaHead(para_id, at?) -> {paraId, headData, hash, number} | null
  parachain_claimQueue(at?) -> {"<core>": [para_id, ...]}
  parachain_validators(at?) -> [hex]          the validator keys, by validator index
  parachain_validatorGroups(at?) -> {groups: [[validator index, ...]], groupRotationInfo:
      {sessionStartBlock, groupRotationFrequency, now}}   as polkadot's `validator_groups`
      runtime API: group g backs core (g - rotations) mod groups, rotations =
      (now - sessionStartBlock) // groupRotationFrequency, `now` being the next block's number
  parachain_events(block_hash?) -> [{type, para_id, candidate_hash, relay_parent_number,
                                     para_number, para_head_hash, core, backed_in}] | null
      type is CandidateBacked | CandidateIncluded | CandidateTimedOut; backed_in is the number
      of the relay block that backed the candidate, para_head_hash its para block's hash
  system_events(count?) -> [{block, hash, type, text, ...}]   the relay chain's events in the
      last `count` (default 64, at most 1024) blocks of the best chain, oldest first: candidate
      events as above, `DisputeInitiated`/`DisputeConcluded`/`Revert`/`Offence` (the offence's
      text reads "There is an offence reported: ..."); on a validator also the blocks its chain
      reverted (`type` "ChainReverted", `block` the lowest block that went). What
      `system event contains "TEXT"` in a .zndsl file reads.
  parachain_backingState(para_id, at?) -> {constraints: {...}, pendingAvailability: [
      {candidateHash, relayParentNumber, coreIndex, paraHead, paraNumber}]} | null
  parachain_collationContext(para_id, at?, max_cores?) -> {context: hex} | null
      what a collator building at relay block `at` needs (relay.core.collator_api): the
      `CollationContext` msgpack-encoded (msgspec, lossless), 0x-hex; null when the para is not
      registered there. `max_cores` 0 or omitted: every core the para holds there.
  chain_getHeaderRaw(hash?) -> hex | null     the header's canonical encoding (proto.codec), 0x-hex
  chain_subscribeNewHeads / chain_unsubscribeNewHeads            (WebSocket only)
      pushes {"method": "chain_newHead", "params": {"subscription": id, "result": Header}}
  chain_subscribeNewHeadsRaw / chain_unsubscribeNewHeadsRaw      (WebSocket only)
      the same heads as encoded headers (as chain_getHeaderRaw), pushed as "chain_newHeadRaw":
      what a collator in another process decodes back into the very `RelayHeader`
  chain_subscribeFinalizedHeads / chain_unsubscribeFinalizedHeads (WebSocket only)
      pushes "chain_finalizedHead"; every finalized block once, in order
  Both subscriptions start with the current head, as Substrate's do. New heads are the node's
  changes of best block: blocks imported together are announced once, as the new best.

Collators
  system_name, system_version, system_nodeRoles, system_health, system_peers,
  system_localListenAddresses (as above;
  isSyncing while the relay chain's included para block is unknown to the collator)
  para_getHeader(hash?) -> ParaHeader | null  the tip of the unincluded segment when omitted
  para_getBlock(hash?) -> {block: {header: ParaHeader, extrinsics: [hex]}} | null
      a para block this collator holds (built, or synced from its peers), extrinsics
      msgpack-encoded as author_submitExtrinsic takes them; the segment's tip when omitted
  para_unincludedSegment() -> {includedHash, blocks: [ParaHeader]}  blocks built on the included
      block and not yet included, oldest first, along the deepest branch
  author_submitExtrinsic(hex) -> hash         msgpack-encoded `Extrinsic`, 0x-hex; blake2-256

Every node: rpc_methods() -> {version: 1, methods: [name, ...]}.

Header (relay): {parentHash, number (0x-hex), stateRoot, extrinsicsRoot, slot, author, seal, hash}
ParaHeader: {parentHash, number (0x-hex), stateRoot, extrinsicsRoot, paraId, relayParentNumber,
relaySlot, coreSelector, hash}. Hashes and bytes are 0x-hex. Parameters are positional or by
name. An unknown block is `null` for `chain_*`; for `parachain_*` (which need the block's state)
it is error -32000, as is a block whose state was pruned.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import trio

from collator.core.para_runtime import N_ACCOUNTS, Extrinsic, ParaHeader, Transfer
from collator.service import CollatorService
from node.rpc.errors import (
    INVALID_TRANSACTION,
    METHOD_NOT_FOUND,
    POOL_FULL,
    STATE_UNAVAILABLE,
    RpcError,
    invalid_params,
)
from node.rpc.params import Param, bind, block_hash, hex_bytes, u32
from node.rpc.views import (
    candidate_event_json,
    hex0x,
    para_header_json,
    para_number,
    plain_json,
    relay_block_json,
    relay_event_json,
    relay_header_json,
)
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.hashing import blake2_256
from proto.network import PeerId
from proto.relay_block import RelayHeader
from relay.core import runtime as rt
from relay.core.collator_api import CollationContext, collation_context
from relay.core.events import CandidateEvent
from relay.core.relay_chain import RelayChain
from relay.core.state import RelayState
from relay.service.full_node import RelayNodeService

HEAD_WATCH_BUFFER = 64
MAX_FINALIZED_BACKLOG = 1024  # a subscriber is sent at most this many blocks per catch-up
MAX_EXTRINSIC_BYTES = 512 * 1024

Emit = Callable[[Any], None]


@dataclass(frozen=True)
class Method:
    handler: Callable[..., Any]
    params: tuple[Param, ...] = ()


@dataclass(frozen=True)
class Subscription:
    """A stream a WebSocket client can subscribe to: `feed(emit)` runs until cancelled, calling
    `emit` with each item (`emit` never blocks)."""

    notification: str
    unsubscribe: str
    feed: Callable[[Emit], Awaitable[None]]


class RpcMethods:
    def __init__(self, methods: dict[str, Method], subscriptions: dict[str, Subscription]
                 ) -> None:
        self.methods = dict(methods)
        self.subscriptions = dict(subscriptions)
        self.unsubscriptions = {s.unsubscribe: s for s in subscriptions.values()}
        self.methods["rpc_methods"] = Method(self._rpc_methods)

    @classmethod
    def for_node(cls, node: Any, listen_addresses: Sequence[str] = ()) -> RpcMethods:
        """`listen_addresses`: the node's p2p addresses (`0xID@HOST:PORT`), which only the
        process that opened the listener knows."""
        if isinstance(node, CollatorService):
            registry = CollatorRpc(node).registry()
        elif isinstance(node, RelayNodeService):
            registry = RelayRpc(node).registry()
        else:
            raise TypeError(f"no RPC methods for {type(node).__name__}")
        addresses = list(listen_addresses)
        registry.methods["system_localListenAddresses"] = Method(lambda: list(addresses))
        return registry

    def call(self, name: str, params: Any) -> Any:
        method = self.methods.get(name)
        if method is None:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {name}")
        return method.handler(*bind(params, method.params))

    def _rpc_methods(self) -> dict[str, Any]:
        names = set(self.methods) | set(self.subscriptions) | set(self.unsubscriptions)
        return {"version": 1, "methods": sorted(names)}


def package_version() -> str:
    try:
        return importlib.metadata.version("asyncback")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def _system_methods(node: Any, roles: list[str], health: Callable[[], dict[str, Any]],
                    peer_role: Callable[[PeerId], str]) -> dict[str, Method]:
    def peers() -> list[dict[str, Any]]:
        return [{"peerId": hex0x(p), "roles": peer_role(p)}
                for p in node.net.peers.connected_peers()]

    return {
        "system_name": Method(lambda: node.name),
        "system_version": Method(package_version),
        "system_nodeRoles": Method(lambda: list(roles)),
        "system_health": Method(health),
        "system_peers": Method(peers),
    }


AT = Param("at", block_hash)
PARA_ID = Param("para_id", u32, required=True)


class RelayRpc:
    def __init__(self, node: RelayNodeService) -> None:
        self.node = node
        self.chain: RelayChain = node.chain
        # Finality moves on gossiped votes, not only with new heads, so its feed polls.
        self.finality_poll_s = max(0.02, min(0.5, node.slot_s / 4))
        self._hash_by_number: dict[int, bytes] = {}

    def registry(self) -> RpcMethods:
        roles = ["Authority"] if self.node.role == "validator" else ["Full"]
        methods = _system_methods(self.node, roles, self.health, self.peer_role)
        methods.update({
            "chain_getHeader": Method(self.get_header, (Param("hash", block_hash),)),
            "chain_getBlock": Method(self.get_block, (Param("hash", block_hash),)),
            "chain_getBlockHash": Method(self.get_block_hash, (Param("number", u32),)),
            "chain_getFinalizedHead": Method(lambda: hex0x(self.chain.finalized.hash())),
            "parachain_getParaHead": Method(self.para_head, (PARA_ID, AT)),
            "parachain_claimQueue": Method(self.claim_queue, (AT,)),
            "parachain_validators": Method(self.validators, (AT,)),
            "parachain_validatorGroups": Method(self.validator_groups, (AT,)),
            "parachain_events": Method(self.events, (Param("block_hash", block_hash),)),
            "system_events": Method(self.system_events, (Param("count", u32),)),
            "parachain_backingState": Method(self.backing_state, (PARA_ID, AT)),
            "parachain_collationContext": Method(
                self.collation_context, (PARA_ID, AT, Param("max_cores", u32))),
            "chain_getHeaderRaw": Method(self.get_header_raw, (Param("hash", block_hash),)),
        })
        subscriptions = {
            "chain_subscribeNewHeads": Subscription(
                "chain_newHead", "chain_unsubscribeNewHeads", self.feed_new_heads),
            "chain_subscribeFinalizedHeads": Subscription(
                "chain_finalizedHead", "chain_unsubscribeFinalizedHeads", self.feed_finalized),
            "chain_subscribeNewHeadsRaw": Subscription(
                "chain_newHeadRaw", "chain_unsubscribeNewHeadsRaw", self.feed_new_heads_raw),
        }
        return RpcMethods(methods, subscriptions)

    # -- system ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        # The service exposes no sync flag; its set of in-flight catch-up requests is the truth.
        syncing = self.node.is_syncing
        return {"peers": len(self.node.net.peers.connected_peers()), "isSyncing": syncing,
                "shouldHavePeers": True}

    def peer_role(self, peer: PeerId) -> str:
        state = self.chain.state(self.chain.best_hash) or self.chain.state(self.chain.finalized.hash())
        validators = state.validators if state is not None else ()
        return "AUTHORITY" if peer in validators else "FULL"

    # -- chain ----------------------------------------------------------------------------------

    def get_header(self, h: bytes | None) -> dict[str, Any] | None:
        header = self.chain.header(h if h is not None else self.chain.best_hash)
        return relay_header_json(header) if header is not None else None

    def get_header_raw(self, h: bytes | None) -> str | None:
        header = self.chain.header(h if h is not None else self.chain.best_hash)
        return relay_header_raw(header) if header is not None else None

    def get_block(self, h: bytes | None) -> dict[str, Any] | None:
        h = h if h is not None else self.chain.best_hash
        header = self.chain.header(h)
        if header is None:
            return None
        return relay_block_json(header, self.node.block_body(h))  # genesis has no body

    def get_block_hash(self, number: int | None) -> str | None:
        if number is None:
            return hex0x(self.chain.best_hash)
        self._refresh_number_index()
        h = self._hash_by_number.get(number)
        return hex0x(h) if h is not None else None

    def _refresh_number_index(self) -> None:
        """Bring the number -> hash index of the best chain up to date by walking back from the
        best block until the index already agrees (a hash commits to all its ancestors), so a
        lookup costs the blocks imported or reorganised since the last one, not the chain."""
        best = self.chain.best
        for n in [n for n in self._hash_by_number if n > best.number]:
            del self._hash_by_number[n]
        header: RelayHeader | None = best
        while header is not None:
            h = header.hash()
            if self._hash_by_number.get(header.number) == h:
                break
            self._hash_by_number[header.number] = h
            header = self.chain.header(header.parent_hash)

    # -- parachains -----------------------------------------------------------------------------

    def _state_at(self, at: bytes | None) -> RelayState:
        h = at if at is not None else self.chain.best_hash
        if h not in self.chain:
            raise RpcError(STATE_UNAVAILABLE, "State unavailable: unknown block", hex0x(h))
        state = self.chain.state(h)
        if state is None:
            raise RpcError(STATE_UNAVAILABLE, "State unavailable: pruned", hex0x(h))
        return state

    def para_head(self, para_id: int, at: bytes | None) -> dict[str, Any] | None:
        head = rt.para_head(self._state_at(at), para_id)
        if head is None:
            return None
        return {"paraId": para_id, "headData": hex0x(head), "hash": hex0x(blake2_256(head)),
                "number": para_number(head)}

    def claim_queue(self, at: bytes | None) -> dict[str, list[int]]:
        return {str(core): paras for core, paras in rt.claim_queue(self._state_at(at)).items()}

    def validators(self, at: bytes | None) -> list[str]:
        return [hex0x(v) for v in self._state_at(at).validators]

    def validator_groups(self, at: bytes | None) -> dict[str, Any]:
        groups, rotation = rt.validator_groups(self._state_at(at))
        return {"groups": groups, "groupRotationInfo": {
            "sessionStartBlock": rotation.session_start_block,
            "groupRotationFrequency": rotation.group_rotation_frequency, "now": rotation.now}}

    def events(self, h: bytes | None) -> list[dict[str, Any]] | None:
        events = self.chain.events.get(h if h is not None else self.chain.best_hash)
        return [candidate_event_json(e) for e in events if isinstance(e, CandidateEvent)] \
            if events is not None else None

    def system_events(self, count: int | None) -> list[dict[str, Any]]:
        n = min(count if count is not None else 64, 1024)
        out: list[dict[str, Any]] = []
        header: RelayHeader | None = self.chain.best
        headers: list[RelayHeader] = []
        while header is not None and len(headers) < n and header.number > 0:
            headers.append(header)
            header = self.chain.header(header.parent_hash)
        for hd in reversed(headers):
            for e in self.chain.events.get(hd.hash(), []):
                out.append({"block": hd.number, "hash": hex0x(hd.hash()), **relay_event_json(e)})
        disputes = getattr(self.node, "disputes", None)  # validators: what their chain reverted
        for r in getattr(disputes, "reverts", []):
            out.append({"block": r.backed_in, "type": "ChainReverted", "blocks": r.blocks,
                        "candidate_hash": hex0x(r.candidate_hash),
                        "text": f"ChainReverted: {r.blocks} block(s) from #{r.backed_in}, which "
                                f"backed or included 0x{r.candidate_hash.hex()}, concluded "
                                f"invalid"})
        return out

    def backing_state(self, para_id: int, at: bytes | None) -> dict[str, Any] | None:
        bs = rt.backing_state(self._state_at(at), para_id)
        if bs is None:
            return None
        pending = [{"candidateHash": hex0x(p.candidate_hash),
                    "relayParentNumber": p.relay_parent_number,
                    "coreIndex": p.descriptor.core_index,
                    "paraHead": hex0x(p.descriptor.para_head),
                    "paraNumber": para_number(p.commitments.head_data)}
                   for p in bs.pending_availability]
        return {"constraints": plain_json(bs.constraints), "pendingAvailability": pending}

    def collation_context(self, para_id: int, at: bytes | None, max_cores: int | None
                          ) -> dict[str, str] | None:
        # The node's own `collation_context` is a coroutine and methods here are synchronous;
        # both are the same pure function of the block's post-state and header.
        h = at if at is not None else self.chain.best_hash
        state = self._state_at(h)
        header = self.chain.header(h)
        if header is None:  # a block with a state has a header; refuse rather than assume
            raise RpcError(STATE_UNAVAILABLE, "State unavailable: unknown block", hex0x(h))
        ctx = collation_context(state, header, para_id, max_cores or 0)
        return collation_context_json(ctx) if ctx is not None else None

    # -- subscriptions --------------------------------------------------------------------------

    async def feed_new_heads(self, emit: Emit) -> None:
        await self._feed_heads(emit, relay_header_json)

    async def feed_new_heads_raw(self, emit: Emit) -> None:
        await self._feed_heads(emit, relay_header_raw)

    async def _feed_heads(self, emit: Emit, view: Callable[[RelayHeader], Any]) -> None:
        heads = self.node.watch_heads(HEAD_WATCH_BUFFER)
        # Closing our end makes the node drop this watcher at its next send.
        with heads:
            last = self.chain.best
            emit(view(last))
            async for header in heads:
                # The node announces a change of best block; a head already sent as the
                # current one when the feed started is not news.
                if header != last:
                    emit(view(header))
                    last = header

    async def feed_finalized(self, emit: Emit) -> None:
        last = self.chain.finalized
        emit(relay_header_json(last))
        while True:
            await trio.sleep(self.finality_poll_s)
            current = self.chain.finalized
            if current.number > last.number:
                for header in self._finalized_since(current, last.number):
                    emit(relay_header_json(header))
                last = current

    def _finalized_since(self, head: RelayHeader, after: int) -> list[RelayHeader]:
        """The finalized chain's headers above number `after`, oldest first (the newest
        `MAX_FINALIZED_BACKLOG` of them when a subscriber has fallen far behind)."""
        out: list[RelayHeader] = []
        header: RelayHeader | None = head
        while header is not None and header.number > after and len(out) < MAX_FINALIZED_BACKLOG:
            out.append(header)
            header = self.chain.header(header.parent_hash)
        return out[::-1]


def relay_header_raw(header: RelayHeader) -> str:
    return hex0x(encode(header))


def collation_context_json(ctx: CollationContext) -> dict[str, str]:
    """The context msgpack-encoded as msgspec encodes dataclasses and structs (int dict keys
    and tuples survive; `node.rpc.relay_interface.decode_collation_context` is the inverse).
    Wrapped in an object so fields can be added beside it without breaking clients."""
    return {"context": hex0x(encode(ctx))}


class CollatorRpc:
    def __init__(self, node: CollatorService) -> None:
        self.node = node

    def registry(self) -> RpcMethods:
        methods = _system_methods(self.node, ["Collator"], self.health, lambda _peer: "AUTHORITY")
        methods.update({
            "para_getHeader": Method(self.get_header, (Param("hash", block_hash),)),
            "para_getBlock": Method(self.get_block, (Param("hash", block_hash),)),
            "para_unincludedSegment": Method(self.unincluded_segment),
            "author_submitExtrinsic": Method(
                self.submit_extrinsic,
                (Param("extrinsic", lambda v: hex_bytes(v, max_len=MAX_EXTRINSIC_BYTES),
                       required=True),)),
        })
        return RpcMethods(methods, {})

    def health(self) -> dict[str, Any]:
        known = self.node.chain.included_hash in self.node.chain.chain
        return {"peers": len(self.node.net.peers.connected_peers()), "isSyncing": not known,
                "shouldHavePeers": True}

    def _segment(self) -> list[ParaHeader]:
        return self.node.chain.unincluded_segment()

    def get_header(self, h: bytes | None) -> dict[str, Any] | None:
        chain = self.node.chain.chain
        if h is None:
            segment = self._segment()
            if segment:
                return para_header_json(segment[-1])
            h = self.node.chain.included_hash
        return para_header_json(chain.header(h)) if h in chain else None

    def get_block(self, h: bytes | None) -> dict[str, Any] | None:
        header = self.get_header(h)
        if header is None:
            return None
        block = self.node.block_body(bytes.fromhex(header["hash"][2:]))
        # The genesis block has no body here: it carries no extrinsics.
        extrinsics = [hex0x(encode(x)) for x in block.extrinsics] if block is not None else []
        return {"block": {"header": header, "extrinsics": extrinsics}}

    def unincluded_segment(self) -> dict[str, Any]:
        return {"includedHash": hex0x(self.node.chain.included_hash),
                "blocks": [para_header_json(h) for h in self._segment()]}

    def submit_extrinsic(self, raw: bytes) -> str:
        # `Extrinsic` is a tagged union, which `decode` handles but `type[T]` cannot spell.
        try:
            x: Extrinsic = decode(raw, cast(Any, Extrinsic))
        except DecodeError as exc:
            raise invalid_params(f"not an extrinsic: {exc}") from None
        if isinstance(x, Transfer) and not (x.sender < N_ACCOUNTS and x.recipient < N_ACCOUNTS):
            raise RpcError(INVALID_TRANSACTION, "Invalid Transaction: unknown account")
        if not self.node.pool.submit(x):
            raise RpcError(POOL_FULL, "Immediately Dropped: the transaction pool is full")
        return hex0x(blake2_256(raw))
