"""An ideal network played through the pure cores: no sockets, no clock, no loss.

Every relay block: each validator activates the new leaf in its prospective-parachains view; each
collator builds on the best unincluded parent for its para's cores at that relay parent; the backing
group of each core re-executes the candidate (the real validation function) and signs; statements
reach every validator; validators store their erasure chunks; the next slot's author signs nothing
it cannot see, collects the bitfields and the backable chains and builds the block; every other
validator re-imports it. This is the protocol's upper bound, which the trio services over a network
are measured against, and the sync/async/elastic figures fall out of the parameters alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collator.core.collation import Collation
from collator.core.collator_chain import CollatorChain
from collator.core.tx_pool import saturated_pool
from node.devnet import dev_genesis
from node.records import block_record
from node.report import BlockRecord
from node.run_config import RunConfig
from proto.availability import ErasureChunk, chunk_valid
from proto.candidate import head_hash
from proto.keys import Keypair
from proto.relay_block import ParachainsInherentData, RelayBlock, RelayHeader
from proto.statements import (
    CompactStatement,
    FinalityVote,
    SignedAvailabilityBitfield,
    SignedStatement,
    SigningContext,
    StatementKind,
)
from relay.core import runtime as rt
from relay.core.backing_table import BackingTable
from relay.core.candidate_backing import backing_table, import_statements
from relay.core.candidate_validation import CollationInvalid, validate_collation
from relay.core.chain_store import ChainStore
from relay.core.collator_api import collation_context
from relay.core.config import ConfigError
from relay.core.prospective.fragment_chain import HypotheticalCandidate
from relay.core.prospective.view import ProspectiveParachains
from relay.core.provisioner import availability_bits, backing_group, select_candidates
from relay.core.state import RelayState


@dataclass
class Validator:
    index: int
    key: Keypair
    prospective: ProspectiveParachains = field(default_factory=ProspectiveParachains)
    tables: dict[bytes, BackingTable] = field(default_factory=dict)
    chunks: dict[bytes, bytes] = field(default_factory=dict)  # candidate hash → own chunk


@dataclass
class Collator:
    para_id: int
    cores: list[int]
    chain: CollatorChain
    built: dict[bytes, Collation] = field(default_factory=dict)  # by candidate hash


class IdealNetwork:
    def __init__(self, cfg: RunConfig) -> None:
        if cfg.collators_per_para != 1 or not cfg.saturate:
            raise ConfigError("the ideal network runs one collator per para with a saturated "
                              "pool")
        self.cfg = cfg
        dev = dev_genesis(cfg.validators, cfg.paras, cfg.cores_per_para, cfg.host)
        self.keys = list(dev.keys)
        self.collators = {pid: Collator(pid, list(p.cores), p.new_chain())
                          for pid, p in dev.paras.items()}
        relay_genesis, state = dev.relay
        self.store = ChainStore()
        self.store.add(relay_genesis, state)
        self.head: RelayHeader = relay_genesis
        self.validators = [Validator(i, k) for i, k in enumerate(self.keys)]
        self.records: list[BlockRecord] = []
        self.blocks: list[RelayBlock] = []  # the best chain's blocks, as authored
        self.tx_counts: dict[bytes, int] = {}
        self.segment_lengths: dict[int, list[int]] = {p: [] for p in self.collators}
        self.collator_segment_lengths: dict[int, list[int]] = {p: [] for p in self.collators}
        self.finalized = 0

    @property
    def state(self) -> RelayState:
        return self.store.states[self.head.hash()]

    # -- collators ----------------------------------------------------------------------------

    def _collate(self, col: Collator) -> list[Collation]:
        """The collator's turn at the new leaf: build on the best unincluded parent, one block
        per core the para holds at the front of the claim queue (capped by
        `blocks_per_relay_parent`), from a saturated pool."""
        ctx = collation_context(self.state, self.head, col.para_id,
                                self.cfg.blocks_per_relay_parent)
        if ctx is None:
            return []
        target, pending = ctx.target, set(ctx.pending_heads)
        col.chain.note_included(ctx.included_head)
        parent = col.chain.best(pending, target.min_relay_parent_number, target.max_depth)
        pool = saturated_pool(col.chain.chain.state(parent), len(target.cores))
        built = col.chain.collate(target, pool, pending)
        for c in built:
            col.built[c.candidate_hash] = c
            self.tx_counts[c.candidate_hash] = len(c.block.extrinsics)
        return built

    # -- backing ------------------------------------------------------------------------------

    def _back(self, c: Collation) -> None:
        state, leaf = self.state, self.head
        core = c.receipt.descriptor.core_index
        group = backing_group(state, core, leaf.number)
        if not group:
            return
        seconder = self.validators[group[0]]
        d = c.receipt.descriptor
        hypo = HypotheticalCandidate(c.candidate_hash, d.para_id, d.relay_parent,
                                     head_hash(c.pvd.parent_head))
        if not seconder.prospective.get_hypothetical_membership(hypo):
            return
        pvd = seconder.prospective.get_prospective_validation_data(
            d.para_id, d.relay_parent, head_hash(c.pvd.parent_head), c.pvd.parent_head)
        if pvd != c.pvd:
            return
        ctx = SigningContext(state.session_index, d.relay_parent)
        statements: list[SignedStatement] = []
        chunks: list[ErasureChunk] = []
        for i, v in enumerate(group):
            try:  # each backer re-executes, with the checks the validator service makes
                _, chunks = validate_collation(c.receipt.to_plain(), c.pov, c.pvd,
                                               len(self.validators),
                                               state.config.execution_timeout_ms)
            except CollationInvalid:
                continue
            kind = StatementKind.SECONDED if i == 0 else StatementKind.VALID
            statements.append(SignedStatement.sign(self.keys[v], CompactStatement(
                kind, c.candidate_hash), ctx, v))
        if not statements:
            return
        for val in self.validators:
            if not val.prospective.introduce_seconded_candidate(d.para_id, c.receipt, c.pvd):
                continue
            table = val.tables.setdefault(d.relay_parent, backing_table(ctx, state))
            import_statements(table, statements, group, c.receipt, val.prospective,
                              state.config.minimum_backing_votes)
            chunk = chunks[val.index]
            if chunk_valid(d.erasure_root, chunk, len(self.validators)):
                val.chunks[c.candidate_hash] = chunk.chunk

    # -- authoring ----------------------------------------------------------------------------

    def _bitfields(self) -> list[SignedAvailabilityBitfield]:
        state = self.state
        ctx = SigningContext(state.session_index, self.head.hash())
        out = []
        for v in self.validators:
            bits = availability_bits(state, v.chunks.__contains__)
            out.append(SignedAvailabilityBitfield.sign(v.key, bits, ctx, v.index))
        return out

    def step(self) -> None:
        leaf = self.head
        prev = leaf.parent_hash
        for v in self.validators:
            v.prospective.activate_leaf(leaf.hash(), self.store)
            v.prospective.deactivate_leaf(prev)
        for col in self.collators.values():
            for c in self._collate(col):
                self._back(c)
        slot = leaf.slot + 1
        author = self.validators[slot % len(self.validators)]
        bitfields = self._bitfields()
        picked = select_candidates(self.state, leaf.hash(), author.prospective, author.tables, bitfields)
        inherent = ParachainsInherentData(bitfields, picked, leaf.hash())
        block, state, events, _ = rt.build_block(leaf, self.state, inherent, slot, author.key)
        for v in self.validators:
            if v is not author:
                imported, _ = rt.import_block(leaf, self.store.states[leaf.hash()], block)
                assert imported.number == state.number
        self.store.add(block.header, state)
        self.blocks.append(block)
        self.head = block.header
        self._finality(block.header)
        self._record(block.header, events)
        for pid, col in self.collators.items():
            self.segment_lengths[pid].append(
                len(state.inclusion.pending.get(pid, [])))
            self.collator_segment_lengths[pid].append(len(col.chain.unincluded_segment()))

    def _finality(self, header: RelayHeader) -> None:
        votes = [FinalityVote.sign(v.key, header.hash(), header.number, self.state.session_index,
                                   v.index) for v in self.validators]
        valid = sum(1 for v in votes if v.check(self.keys[v.validator_index].public))
        if 3 * valid > 2 * len(self.validators):
            self.finalized = header.number

    def _record(self, header: RelayHeader, events: list) -> None:
        self.records.append(block_record(header, events, self.tx_counts, False))
        for r in self.records:
            r.finalized = r.number <= self.finalized
            if r.finalized and r.finalized_at is None:
                r.finalized_at = header.number

    def run(self) -> list[BlockRecord]:
        for _ in range(self.cfg.relay_blocks):
            self.step()
        return self.records
