"""Catch-up from any distance (issue 14): a validator that was down for a thousand relay blocks,
and one that joins with empty state a thousand blocks in, each reach the network's finalized
block (same hash) within a few relay blocks, and every block they author is on the final chain
(none on a fork of their own). Counted in relay blocks of virtual time.

The thousand-block network is relay-only (no paras): catch-up is a relay chain matter, and a
network with paras costs several times the CPU per block. The run with paras restarts a
validator 140 blocks behind, past the 128-block batch that used to stop catch-up."""

from __future__ import annotations

import random

import msgspec
import trio
from simruns import NodeFault, sim_run

from node import wiring
from node.devnet import DevGenesis, dev_genesis
from node.net.memory import MemoryNetwork
from node.sim import OBSERVER, SimResult
from node.storage import NodeStore
from proto.keys import Keypair
from proto.messages import FRAME_MAX, ChainStatus
from proto.relay_block import ParachainsInherentData, RelayBlock
from relay.core import runtime as rt
from relay.core.config import HostConfiguration
from relay.service.full_node import RelayNodeService

DOWN_FOR = 1000
BACK_AT = 10 + DOWN_FOR
AFTER = 20  # relay blocks the run goes on for once they are back


def _on_final_chain(result: SimResult, name: str) -> None:
    chain = {rec.hash for rec in result.records}
    authored = result.authored[name]
    assert authored, f"{name} never authored after catching up"  # else 'no fork' is vacuous
    off_chain = ["0x" + h.hex()[:16] for h in authored if "0x" + h.hex() not in chain]
    assert off_chain == [], f"{name} authored off the final chain: {off_chain}"


def _same_finalized(result: SimResult, name: str) -> None:
    number, h = result.finalized[name]
    network_number, network_hash = result.finalized[OBSERVER]
    assert (number, h) == (network_number, network_hash), (name, number, network_number)
    assert number >= BACK_AT  # finality moved on past the catch-up


def test_a_validator_down_for_a_thousand_blocks_and_a_fresh_one_reach_finality() -> None:
    result, _ = sim_run(validators=7, paras=0, relay_blocks=BACK_AT + AFTER, faults=(
        NodeFault("bob", 10, BACK_AT, keep_state=True),  # restarts from what it had stored
        NodeFault("eve", 0, BACK_AT)))  # not there from the start: joins with nothing
    assert result.problems == []
    by_node = {c.node: c for c in result.catch_ups}
    print("\n" + "\n".join(f"{c.node}: {c.behind} blocks behind at #{c.started_at}, caught up "
                           f"at #{c.caught_up_at}" for c in result.catch_ups))
    assert by_node["bob"].behind >= DOWN_FOR and by_node["eve"].behind >= DOWN_FOR
    for name in ("bob", "eve"):
        c = by_node[name]
        # within a relay block of its return (measured: both hold the network's best block in
        # the block they return in; a 1,010-block catch-up is 8 batch requests)
        assert c.caught_up_at is not None and c.caught_up_at - c.started_at <= 1, c
        _same_finalized(result, name)
        _on_final_chain(result, name)
        # Nothing was signed for the history it caught up with: votes and bitfields only for
        # the blocks that came after (one of each per block at most).
        info = result.nodes[name]
        assert info["votes"] <= AFTER + 1 and info["bitfields"] <= AFTER + 1, info


def test_a_validator_restarted_140_blocks_behind_with_paras_catches_up() -> None:
    down, back = 12, 152
    result, _ = sim_run(relay_blocks=back + 25, faults=(NodeFault("bob", down, back),))
    assert result.problems == []
    [c] = result.catch_ups
    print(f"\n{c.node}: {c.behind} blocks behind at #{c.started_at}, caught up at #{c.caught_up_at}")
    assert c.behind >= 140 and c.caught_up_at is not None and c.caught_up_at - back <= 1, c
    assert result.finalized["bob"] == result.finalized[OBSERVER]
    _on_final_chain(result, "bob")
    assert result.nodes["bob"]["bitfields"] <= 26 and result.nodes["bob"]["votes"] <= 26
    # Its backing group has both members again: each para is back to a candidate per block.
    included = {pid: sum(1 for b in result.records if back + 5 < b.number <= back + 20
                         for i in b.included if i.para_id == pid) for pid in result.para_ids}
    assert all(n >= 14 for n in included.values()), included


# -- the node's view of how far behind it is (no network: handlers called directly) ----------


def _chain(dev: DevGenesis, length: int, first_slot: int = 1) -> list[RelayBlock]:
    """Empty relay blocks on genesis, one per slot from `first_slot`, each by its slot's author."""
    parent, state = dev.relay
    blocks = []
    for slot in range(first_slot, first_slot + length):
        key = dev.keys[rt.expected_author(state, slot)]
        block, state, _, _ = rt.build_block(
            parent, state, ParachainsInherentData([], [], parent.hash()), slot, key)
        blocks.append(block)
        parent = block.header
    return blocks


class ErrorLog:
    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, object]]] = []

    def info(self, event: str, **kw: object) -> None:
        pass

    def error(self, event: str, **kw: object) -> None:
        self.errors.append((event, kw))


def _node(dev: DevGenesis, log: ErrorLog | None = None, store: NodeStore | None = None
          ) -> RelayNodeService:
    network = MemoryNetwork(random.Random(0), FRAME_MAX)
    key = Keypair.from_name("relay-x")
    return wiring.relay_node("relay-x", network.add_host(key.public), dev.relay,
                             [k.public for k in dev.keys], log=log, store=store)


def test_syncing_means_more_than_a_few_blocks_behind_a_sealed_claim() -> None:
    dev = dev_genesis(5, 0, 1, HostConfiguration())
    blocks = _chain(dev, 20)
    peer = dev.keys[1].public

    async def main() -> None:
        node = _node(dev)
        assert node.is_offline and not node.is_syncing  # no relay peer has told us anything
        forged = msgspec.structs.replace(blocks[-1].header, seal=bytes(64))
        await node._on_status(peer, ChainStatus(forged, 0, dev.relay[0].hash()))
        assert node.best_seen == 0  # an unsealed claim is not believed
        await node._on_status(peer, ChainStatus(blocks[-1].header, 0, dev.relay[0].hash()))
        assert node.best_seen == 20 and node.is_syncing and node.is_behind
        for block in blocks[:16]:
            node.chain.import_block(block)
        assert not node.is_syncing and node.is_behind  # 4 behind: no major sync, no authoring
        assert node.is_history(14) and not node.is_history(15)
        for block in blocks[16:]:
            node.chain.import_block(block)
        assert not node.is_syncing and not node.is_behind and node.best_seen == 20

    trio.run(main)


def test_a_peer_finalized_on_another_chain_is_an_error_naming_height_and_hashes() -> None:
    dev = dev_genesis(5, 0, 1, HostConfiguration())
    ours, theirs = _chain(dev, 3), _chain(dev, 3, first_slot=2)
    log = ErrorLog()

    async def main() -> None:
        node = _node(dev, log)
        for block in ours:
            node.chain.import_block(block)
        assert node.chain.restore_finalized(ours[1].header.hash())
        status = ChainStatus(theirs[-1].header, 2, theirs[1].header.hash())
        await node._on_status(dev.keys[2].public, status)

    trio.run(main)
    [(event, kw)] = log.errors
    assert event == "our finalized chain disagrees with a peer's chain"
    assert kw["number"] == 2
    assert kw["ours"] == "0x" + ours[1].header.hash().hex()
    assert kw["theirs"] == "0x" + theirs[1].header.hash().hex()


def test_a_head_imported_before_its_batch_is_persisted_waits_for_its_batch() -> None:
    """Two blocks imported before the import task runs (a 300 ms slot under load): persisting the
    first batch must not name the second, unstored block as the best head (the store refuses it,
    and the node used to exit on that)."""
    dev = dev_genesis(5, 0, 1, HostConfiguration())
    first, second = _chain(dev, 2)

    async def main() -> None:
        with NodeStore(":memory:") as store:
            node = _node(dev, store=store)
            node.chain.import_block(first)
            node.chain.import_block(second)
            node._persist([first.header.hash()])
            assert store.best() is None  # #2 is not stored yet
            node._persist([second.header.hash()])
            assert store.best() == (second.header.hash(), 2)

    trio.run(main)
