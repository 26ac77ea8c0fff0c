"""Two processes of one simulation in step: the bridge between their in-memory networks.

A simulation can run its nodes in two processes (`node/sim.py`, `SimConfig.processes`), each a
`trio.run` in virtual time over its own `MemoryNetwork`. What a node sends to a node of the other
process cannot arrive sooner than the link's latency, so the processes run in windows shorter
than the shortest latency (conservative synchronisation, as parallel discrete-event simulators
do): at the end of each window of virtual time, each hands the other what it sent meanwhile and
waits for the other's, and nothing either receives is due before the window that follows. The
exchange blocks the whole process on purpose: its virtual time must not pass the window's end
before the other's frames are in.

The wire between them is a socket pair: a message is an 8-byte length and a pickle of
`(kind, payload)` (the processes are one program forked from one, so pickle is trusted here).
Kinds: "window" (the items `MemoryNetwork.take_outbound` gave), "stop" (process 0 ends the
run), "result" (the other's part of the run's result), "error" (a traceback: the other failed).
"""

from __future__ import annotations

import contextlib
import pickle
import selectors
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, Protocol

import trio

if TYPE_CHECKING:
    from node.net.memory import MemoryNetwork

_LEN = struct.Struct(">Q")


class BridgeStopped(Exception):
    """Process 0 has ended the run."""


class PeerProcessFailed(RuntimeError):
    """The other process of the simulation failed (its traceback is the message)."""


class Bridge:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(False)
        self._buffer = bytearray()
        # CPU seconds this process spent in each window, between exchanges (the time waiting
        # for the other is not CPU): with the other's, how well the two halves are balanced.
        self.window_cpu: list[float] = []
        self._window_started: float | None = None

    # -- framing --------------------------------------------------------------------------------

    def _transfer(self, out: bytes, want_reply: bool) -> bytes | None:
        """Write `out` and, if asked, read one message, both at once (two processes that both
        wrote first and read after would deadlock on a full socket buffer)."""
        view = memoryview(out)
        sel = selectors.DefaultSelector()
        events = (selectors.EVENT_WRITE if view else 0) | (selectors.EVENT_READ if want_reply
                                                           else 0)
        reply: bytes | None = None
        try:
            if events:
                sel.register(self.sock, events)
            while True:
                if want_reply and reply is None:
                    reply = self._parse()
                if not view and (reply is not None or not want_reply):
                    return reply
                for _key, mask in sel.select():
                    if mask & selectors.EVENT_WRITE and view:
                        try:
                            sent = self.sock.send(view[:1 << 20])
                        except OSError:
                            # The other end is gone: nothing more is written, and what it said
                            # last (its error, most likely) may still be there to read.
                            sent = len(view)
                        view = view[sent:]
                        if not view:
                            if want_reply:
                                sel.modify(self.sock, selectors.EVENT_READ)
                            else:
                                sel.unregister(self.sock)
                    if mask & selectors.EVENT_READ:
                        try:
                            chunk = self.sock.recv(1 << 20)
                        except OSError:
                            chunk = b""  # reset: as good as closed
                        if not chunk:
                            if reply is None:
                                reply = self._parse()
                            if reply is not None:
                                return reply
                            raise PeerProcessFailed("the other process of the simulation "
                                                    "closed the bridge")
                        self._buffer += chunk
        finally:
            sel.close()

    def _parse(self) -> bytes | None:
        if len(self._buffer) < _LEN.size:
            return None
        (n,) = _LEN.unpack_from(self._buffer)
        if len(self._buffer) < _LEN.size + n:
            return None
        body = bytes(self._buffer[_LEN.size:_LEN.size + n])
        del self._buffer[:_LEN.size + n]
        return body

    @staticmethod
    def _frame(kind: str, payload: Any) -> bytes:
        body = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
        return _LEN.pack(len(body)) + body

    def _receive(self, out: bytes = b"") -> tuple[str, Any]:
        body = self._transfer(out, want_reply=True)
        assert body is not None
        kind, payload = pickle.loads(body)
        if kind == "error":
            raise PeerProcessFailed(f"the other process of the simulation failed:\n{payload}")
        return kind, payload

    # -- what the processes say ---------------------------------------------------------------

    def exchange(self, items: list[Any], controls: list[Any] | None = None
                 ) -> tuple[list[Any], list[Any]]:
        """One window's end: our items for the other process and our controls (process 0's
        word to the other: faults to apply, the observed chain), theirs for us."""
        out = self._frame("window", (items, controls or []))
        if self._window_started is not None:
            self.window_cpu.append(time.process_time() - self._window_started)
        kind, payload = self._receive(out)
        self._window_started = time.process_time()
        if kind == "stop":
            raise BridgeStopped
        if kind != "window":
            raise PeerProcessFailed(f"unexpected {kind!r} from the other process")
        theirs, their_controls = payload
        return theirs, their_controls

    def stop(self) -> Any:
        """Process 0 ends the run: the other stops at its next window and sends its result."""
        self._transfer(self._frame("stop", None), want_reply=False)
        while True:
            kind, payload = self._receive()
            if kind == "result":
                return payload
            # a window the other sent before it read "stop": nothing more will be delivered

    def send_result(self, result: Any) -> None:
        self._transfer(self._frame("result", result), want_reply=False)

    def send_error(self, text: str) -> None:
        with contextlib.suppress(OSError, PeerProcessFailed):  # the other process is gone
            self._transfer(self._frame("error", text), want_reply=False)


def lockstep_figures(parts: list[list[float]]) -> dict[str, float]:
    """From each process's CPU seconds per window: the CPU each spent, and the wall time the
    run needs on as many idle cores (each window lasts as long as its slowest process)."""
    n = min((len(p) for p in parts), default=0)
    return {"windows": n, **{f"cpu_s_{i}": round(sum(p), 3) for i, p in enumerate(parts)},
            "lockstep_s": round(sum(max(p[k] for p in parts) for k in range(n)), 3)}


class Controls(Protocol):
    """What a simulation says to the other process at each window's end, and hears from it."""

    def controls_out(self) -> list[Any]: ...

    def controls_in(self, controls: list[Any]) -> None: ...


async def keep_in_step(network: MemoryNetwork, bridge: Bridge, window_s: float,
                       controls: Controls | None = None) -> None:
    """Exchange what crosses processes at the end of every `window_s` of virtual time, until
    process 0 stops the run (then return). `window_s` must be shorter than any link's latency,
    or a frame would be due before it could have crossed (`put_inbound` raises)."""
    start = trio.current_time() - network.now()  # the network's epoch: the windows' grid
    k = 1
    while True:
        await trio.sleep_until(start + k * window_s)
        try:
            items, heard = bridge.exchange(network.take_outbound(),
                                           controls.controls_out() if controls else None)
        except BridgeStopped:
            return
        network.put_inbound(items)
        if controls is not None and heard:
            controls.controls_in(heard)
        k += 1
