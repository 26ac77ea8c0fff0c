"""node/cluster/ports.py: ports drawn below the ephemeral range, bindable when handed out, held
against other launchers on this machine until released."""

from __future__ import annotations

import random
import socket

from node.cluster.ports import PortAllocator, candidate_range, ephemeral_range


def test_ports_are_free_below_the_ephemeral_range_and_distinct() -> None:
    allocator = PortAllocator()
    try:
        ports = [allocator.allocate() for _ in range(30)]
        low, high = candidate_range()
        assert len(set(ports)) == 30
        assert all(low <= p < high < ephemeral_range()[0] + 1 for p in ports)
        for port in ports:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))  # free: nothing listens there
    finally:
        allocator.close()


def test_a_port_in_use_or_held_by_another_launcher_is_never_handed_out() -> None:
    first_draw = random.Random(7).randrange(*candidate_range())
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", first_draw))
        listener.listen()
        allocator = PortAllocator(rng=random.Random(7))
        try:
            assert allocator.allocate() != first_draw
        finally:
            allocator.close()
    held_by_one = PortAllocator(rng=random.Random(7))
    other = PortAllocator(rng=random.Random(7))  # draws the very same ports
    try:
        mine = held_by_one.allocate()
        assert mine == first_draw
        assert other.allocate() != mine  # the marker says a launcher holds it
        held_by_one.release(mine)
        assert mine not in held_by_one.held
        assert PortAllocator(rng=random.Random(7)).allocate() == mine  # free again
    finally:
        held_by_one.close()
        other.close()
