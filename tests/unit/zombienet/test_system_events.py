"""`NODE: system event contains "TEXT"` lines: parsed, and run against a node's `system_events`
RPC method (a fake node whose offence event appears after a few relay blocks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from node.zombienet.runner import ZndslRunner
from node.zombienet.zndsl import SystemEvent, parse

HEAD = "Description: d\nNetwork: ./n.toml\nCreds: config\n"
OFFENCE = ("There is an offence reported: ForInvalidBacked in session 0 for candidate 0xab, "
           "offenders 0")


@dataclass
class EventNode:
    """A validator whose chain reports an offence from `offence_at` virtual seconds on."""

    name: str
    offence_at: float
    log_path: str = "/dev/null"
    role: str = "validator"
    alive: bool = True

    async def rpc(self, method: str, params: Any = None) -> Any:
        assert method == "system_events", method
        events: list[dict[str, Any]] = [{"block": 1, "type": "CandidateBacked",
                                         "text": "CandidateBacked: para 2000 candidate 0xab"}]
        if trio.current_time() >= self.offence_at:
            events.append({"block": 3, "type": "Offence", "text": OFFENCE})
        return events

    async def metrics(self) -> Mapping[str, float]:
        return {}

    def kill(self, sig: int = 9) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    async def restart(self) -> None: ...


def test_system_event_lines_parse_with_zombienets_words() -> None:
    test = parse(HEAD + 'malus: system event contains "There is an offence reported" within 60 '
                 'seconds\nalice: system event matches glob "*Revert*"\n', Path("t.zndsl"))
    first, second = test.steps
    assert isinstance(first, SystemEvent) and first.within == 60 and first.node == "malus"
    assert first.pattern.search(OFFENCE)
    assert isinstance(second, SystemEvent) and second.within is None
    assert second.pattern.match("DisputeEvent Revert: revert_number 4")


async def test_system_event_line_passes_once_the_event_is_on_chain(autojump_clock: Any) -> None:
    test = parse(HEAD + 'alice: system event contains "offence reported" within 30 seconds\n'
                 'bob: system event contains "offence reported" within 30 seconds\n',
                 Path("t.zndsl"))
    start = trio.current_time()
    nodes = {"alice": EventNode("alice", start + 20), "bob": EventNode("bob", start + 100)}
    alice, bob = await ZndslRunner(nodes, {}).run(test)  # one line after the other
    assert alice.passed and alice.value.startswith("There is an offence reported")
    assert not bob.passed and "no matching event among 1" in bob.value
