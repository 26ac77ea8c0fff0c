"""No message ends a node, as a property: every gossip validator, direct-message handler and
request handler of every role (a validator, the relay node, a collator), as the simulator builds
them and with the state a running network gave them, is fed arbitrary decodable messages
(`aimed_strategies`: any value the strict decoder accepts, aimed at known relay parents,
candidates and validator signatures as often as not) and answers with a verdict, a response or
`DecodeError`, never another exception; nor does any task a handler starts die.

How: the simulation runs in virtual time to block `WARM_UP`, then its clock stops (autojump off,
so nothing moves on its own) and hypothesis, in a worker thread, calls the handlers on the trio
thread one example at a time, letting every task they start run until it blocks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
import trio.testing
from aimed_strategies import Known, WireStrategies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collator.service import CollatorService
from node.net.stack import NetworkStack
from node.sim import OBSERVER, SimConfig, Simulation
from proto.codec import encode
from proto.errors import DecodeError
from proto.keys import Keypair
from proto.messages import (
    REQUEST_MESSAGE,
    TOPIC_MESSAGE,
    AttestedCandidate,
    FetchPoV,
    WireMessage,
)
from proto.network import COST_MAJOR, Topic, Verdict
from relay.core import runtime as rt
from relay.service.full_node import RelayNodeService
from relay.service.validator import ValidatorService

WARM_UP = 8
EXAMPLES = 2000
ROLES = {"validator": "alice", "relay node": OBSERVER, "collator": "collator-2000-0"}


@dataclass(frozen=True)
class Entry:
    """One handler of one node, and the message type it is meant to take."""

    role: str
    lane: str
    message: type
    handler: Callable[..., Any]
    max_response: int = 0

    def __repr__(self) -> str:
        return f"{self.role} {self.lane} {self.message.__name__}"


def entries_of(role: str, net: NetworkStack) -> list[Entry]:
    gossip, direct, requests = (net.gossip.validators(), net.direct_handlers(),
                                net.requests.handlers())
    assert set(gossip) <= set(TOPIC_MESSAGE), f"{role}: a topic proto.messages does not type"
    assert set(requests) <= set(REQUEST_MESSAGE), f"{role}: a kind proto.messages does not type"
    return ([Entry(role, "gossip", TOPIC_MESSAGE[t], v) for t, v in sorted(gossip.items())]
            + [Entry(role, "direct", tp, h) for tp, h in direct.items()]
            + [Entry(role, "request", REQUEST_MESSAGE[k], h, net.kinds[k].max_response_bytes)
               for k, h in sorted(requests.items())])


def known_to(sim: Simulation) -> Known:
    observer: RelayNodeService = sim.services[OBSERVER]
    chain = observer.chain
    numbers = {h.hash(): h.number for h in chain.chain_to(chain.best_hash)}
    numbers[chain.genesis.hash()] = 0
    hashes = sorted(numbers)
    for service in sim.services.values():
        if isinstance(service, ValidatorService):
            for per in service.backing.per_relay_parent.values():
                hashes += sorted(per.collations) + sorted(per.table.candidates)
            hashes += sorted(service.availability.all)
        if isinstance(service, CollatorService):
            hashes += sorted(service.blocks) + sorted(service.built)
    state = chain.state(chain.best_hash)
    assert state is not None
    n = len(sim.dev.keys)
    ints = sorted({*sim.dev.paras, *range(n + 2), chain.best.number, WARM_UP})
    return Known(hashes=sorted(set(hashes)), numbers=numbers, ints=ints,
                 validators=list(sim.dev.keys),
                 collators=[k for name, k in sim.keys.items() if name.startswith("collator")],
                 session=rt.session_index_for_child(state),
                 targets=[sim.keys[name].public for name in ROLES.values()])


async def invoke(entry: Entry, sender: bytes, message: WireMessage,
                 tasks: trio.Nursery | None = None) -> str:
    """Call the handler as its dispatcher would; the outcome's name (DecodeError included).
    Then let every task it started run until it blocks: none may have died (`tasks`, the
    nursery the simulated nodes run in, would be cancelled)."""
    try:
        if entry.lane == "gossip":
            verdict = entry.handler(sender, encode(message))
            assert isinstance(verdict, Verdict), verdict
            return verdict.action.value
        if entry.lane == "direct":
            await entry.handler(sender, message)
            return "handled"
        response = await entry.handler(sender, encode(message))
        assert response is None or isinstance(response, bytes), response
        assert response is None or len(response) <= entry.max_response, len(response)
        return "refused" if response is None else "answered"
    except DecodeError:
        return "DecodeError"
    finally:
        await trio.testing.wait_all_tasks_blocked()
        assert tasks is None or not tasks.cancel_scope.cancel_called, "a task it started died"


async def with_frozen_sim(body: Callable[[Simulation, trio.Nursery], Awaitable[None]]) -> None:
    """Run a default simulation to block `WARM_UP`, stop its clock, run `body`."""
    clock = trio.lowlevel.current_clock()
    assert isinstance(clock, trio.testing.MockClock)
    sim = Simulation(SimConfig(relay_blocks=WARM_UP))
    async with trio.open_nursery() as nursery:
        await sim.boot(nursery)
        await sim.follow(nursery, WARM_UP)
        clock.autojump_threshold = math.inf
        await body(sim, nursery)
        nursery.cancel_scope.cancel()


def run_in_sim(body: Callable[[Simulation, trio.Nursery], Awaitable[None]]) -> None:
    trio.run(with_frozen_sim, body, clock=trio.testing.MockClock(autojump_threshold=0))


def test_every_handler_of_every_role_survives_any_decodable_message() -> None:
    outcomes: dict[str, int] = {}
    examples = 0

    async def body(sim: Simulation, nursery: trio.Nursery) -> None:
        entries = [e for role, name in ROLES.items() for e in entries_of(role, sim.services[name].net)]
        assert {e.lane for e in entries} == {"gossip", "direct", "request"}
        wire = WireStrategies(known_to(sim))
        messages = {e.message: wire.of(e.message) for e in entries}
        any_message = wire.of(WireMessage)
        stranger = Keypair.from_name("stranger").public
        senders = st.sampled_from([*sorted(k.public for k in sim.keys.values()), stranger])
        token = trio.lowlevel.current_trio_token()

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def handlers_answer(data: st.DataObject) -> None:
            nonlocal examples
            examples += 1
            entry = data.draw(st.sampled_from(entries), label="handler")
            # Gossip and request payloads are bytes that may hold any message (which must then
            # be a DecodeError: one draw in ten); direct messages reach the handler of their own
            # type only.
            other = entry.lane != "direct" and data.draw(st.integers(0, 9), label="other") == 0
            message = data.draw(any_message if other else messages[entry.message],
                                label="message")
            sender = data.draw(senders, label="sender")
            outcome = trio.from_thread.run(invoke, entry, sender, message, nursery,
                                           trio_token=token)
            key = f"{entry!r}: {outcome}"
            outcomes[key] = outcomes.get(key, 0) + 1

        started = time.perf_counter()
        await trio.to_thread.run_sync(handlers_answer)
        print(f"\n{examples} examples in {time.perf_counter() - started:.1f} s")
        for sim_node, service in sim.services.items():
            assert service.net.handler_errors == 0, sim_node

    run_in_sim(body)
    print("\n".join(f"{n:6d}  {k}" for k, n in sorted(outcomes.items())))
    # Both sides of the checks were reached, for each lane.
    for lane, wanted in (("gossip", {"accept", "ignore", "reject", "DecodeError"}),
                         ("request", {"answered", "refused", "DecodeError"}),
                         ("direct", {"handled"})):
        seen = {k.rsplit(": ", 1)[1] for k in outcomes if f" {lane} " in k}
        assert wanted <= seen, (lane, seen)


def test_an_attested_candidate_without_statements_is_rejected_with_a_cost() -> None:
    """The gossip message of issue 14 that ended a validator (any identity that can connect can
    send it): rejected, its sender charged, and the validator goes on authoring."""

    async def body(sim: Simulation, nursery: trio.Nursery) -> None:
        alice: ValidatorService = sim.services["alice"]
        known = min((c for per in alice.backing.per_relay_parent.values()
                     for c in per.collations.values()), key=lambda c: c.receipt.hash())
        assert alice.chain.state(known.receipt.descriptor.relay_parent) is not None  # known rp
        empty = AttestedCandidate(known.receipt, known.pvd, [])
        assert sim.network is not None
        rogue = NetworkStack(sim.network.add_host(Keypair.from_name("mallory").public), 6.0)
        await nursery.start(rogue.run)
        clock = trio.lowlevel.current_clock()
        assert isinstance(clock, trio.testing.MockClock)
        clock.autojump_threshold = 0
        assert await rogue.peers.connect(alice.net.peer_id)
        authored_before = alice.authored
        rejected_before = alice.net.gossip.stats.rejected
        await rogue.gossip.send_to(Topic.BACKED, encode(empty), [alice.net.peer_id])
        await trio.sleep(0.5)
        assert alice.net.gossip.stats.rejected == rejected_before + 1
        now = trio.current_time()
        assert alice.net.peers.peerset.reputation(rogue.peer_id, now) <= COST_MAJOR.value * 0.9
        await sim.follow(nursery, WARM_UP + 2 * len(sim.dev.keys))
        assert alice.authored > authored_before  # alive, and authoring in its slots
        assert alice.net.handler_errors == 0

    run_in_sim(body)


def test_the_property_harness_sees_a_handler_that_raises() -> None:
    """The harness is able to fail: a handler that raises is reported, not swallowed."""

    async def raising(_peer: bytes, _data: bytes) -> Verdict:
        raise KeyError("tables[rp]")

    entry = Entry("test", "request", FetchPoV, raising, 1024)

    async def main() -> None:
        try:
            await invoke(entry, b"\x00" * 32, FetchPoV(b"\x01" * 32, b"\x02" * 32))
        except KeyError:
            return
        raise AssertionError("the exception was swallowed")

    trio.run(main)
