"""Ports for the nodes of local clusters, free when handed out and kept apart between launchers.

A port is handed out only after two checks: no other launcher on this machine holds it, and a
TCP socket can bind it on the launcher's host. Three choices make clashes rare, and the launcher
retries a node whose port was taken anyway (between the check and the node's own bind):

- Ports are drawn at random below the kernel's ephemeral range (`ip_local_port_range`), between
  20000 and 30000 where that range allows. Outgoing connections take their local port from the
  ephemeral range, so the busy nodes of this or another cluster never steal a port picked here
  while it waits for its node (or for its node's restart); Substrate's defaults (30333, 9944,
  9615) stay out of the way too.
- A launcher marks each port it holds with an abstract-namespace Unix socket
  (`asyncback-port-<N>`, Linux). Another launcher's check finds it bound and draws again; the
  kernel frees it when the holder closes it or dies, so nothing is left behind to clean up.
- Within one process a port stays held (by its allocator) until released, so a killed node's
  ports are not handed to a collator added while it is down.

Held ports are released by `release` or `close` (the `Cluster` does it at teardown).
"""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

PREFERRED_RANGE = (20000, 30000)
MIN_RANGE = 1000  # below this many candidates, fall back to any unprivileged port
DRAWS = 200


class NoFreePort(Exception):
    pass


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def candidate_range() -> tuple[int, int]:
    """[low, high) from which ports are drawn."""
    low, high = PREFERRED_RANGE
    high = min(high, ephemeral_range()[0])
    if high - low < MIN_RANGE:
        return 1024, 65536  # an unusual ephemeral range: rely on the checks alone
    return low, high


def _hold_marker(port: int) -> socket.socket | None:
    """Bind this machine's marker for `port`; None if another launcher holds it. Where abstract
    sockets do not exist (not Linux), a dummy that only this process knows about."""
    if not hasattr(socket, "AF_UNIX"):
        return socket.socket()
    marker = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        marker.bind(f"\0asyncback-port-{port}")
    except OSError as exc:
        marker.close()
        if isinstance(exc, FileNotFoundError):  # no abstract namespace here
            return socket.socket()
        return None
    return marker


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the node's listener does (trio sets SO_REUSEADDR), so a port with connections
        # left in TIME_WAIT by an earlier run still counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    def __init__(self, host: str = "127.0.0.1", rng: random.Random | None = None) -> None:
        self.host = host
        self.rng = rng or random.SystemRandom()
        self._held: dict[int, socket.socket] = {}

    @property
    def held(self) -> frozenset[int]:
        return frozenset(self._held)

    def allocate(self) -> int:
        """A port nobody listens on and no launcher holds; held until `release`."""
        low, high = candidate_range()
        for _ in range(DRAWS):
            port = self.rng.randrange(low, high)
            if port in self._held:
                continue
            marker = _hold_marker(port)
            if marker is None:
                continue
            if not _bindable(self.host, port):
                marker.close()
                continue
            self._held[port] = marker
            return port
        raise NoFreePort(f"no free port on {self.host} in {low}-{high - 1} after {DRAWS} draws")

    def release(self, port: int) -> None:
        marker = self._held.pop(port, None)
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.close()

    def close(self) -> None:
        for port in list(self._held):
            self.release(port)
