"""Shared pieces of the approval and dispute tests: dev keys, a session, relay headers."""

from __future__ import annotations

from proto.hashing import blake2_256
from proto.keys import Keypair, dev_name
from proto.relay_block import RelayHeader
from relay.core.approval.criteria import SessionInfo
from relay.core.block_tree import BlockTree
from relay.core.config import HostConfiguration
from relay.core.scheduler import make_groups

GENESIS = RelayHeader(bytes(32), 0, 0, 0, bytes(32), bytes(32))


def keys(n: int) -> list[Keypair]:
    return [Keypair.from_name(dev_name(i)) for i in range(n)]


def session(n_validators: int = 10, n_cores: int = 5, **config: int) -> SessionInfo:
    """A session of `n_validators` dev keys cut into one backing group per core."""
    host = HostConfiguration(**config)
    return SessionInfo.from_config(host, [k.public for k in keys(n_validators)],
                                   make_groups(n_validators, n_cores), n_cores)


def child(parent: RelayHeader, slot: int, tag: bytes = b"") -> RelayHeader:
    """A child of `parent`; `tag` makes siblings with the same slot distinct."""
    return RelayHeader(parent.hash(), parent.number + 1, slot, 0, blake2_256(tag), bytes(32))


def tree(n_validators: int = 4) -> BlockTree[None]:
    return BlockTree(GENESIS, None, [k.public for k in keys(n_validators)])
