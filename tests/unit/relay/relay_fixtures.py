"""Helpers for relay-runtime tests: a chain of real blocks authored by dev keys, candidates with
real PVDs, and backing votes really signed by the group assigned to the core."""

from __future__ import annotations

from dataclasses import dataclass, field

from proto.candidate import (
    CandidateCommitments,
    CandidateDescriptor,
    CommittedCandidateReceipt,
    PersistedValidationData,
    head_hash,
)
from proto.disputes import DisputeStatementSet
from proto.hashing import blake2_256
from proto.keys import Keypair, dev_name
from proto.relay_block import ParachainsInherentData, RelayBlock, RelayHeader
from proto.statements import (
    AttestationKind,
    BackedCandidate,
    CompactStatement,
    SignedAvailabilityBitfield,
    SigningContext,
    StatementKind,
    ValidityAttestation,
)
from proto.ump_signals import UmpSignal, with_signals
from relay.core.config import HostConfiguration, ParaGenesis
from relay.core.events import RelayEvent
from relay.core.runtime import RelayGenesis, build_block, genesis, import_block
from relay.core.state import RelayState

CODE = b"asyncback-para-runtime-v1"


@dataclass
class Chain:
    n_validators: int = 5
    paras: tuple[tuple[int, int], ...] = ((1000, 1),)  # (para id, cores)
    config: HostConfiguration = field(default_factory=HostConfiguration)
    keys: list[Keypair] = field(init=False)
    headers: list[RelayHeader] = field(init=False)
    states: list[RelayState] = field(init=False)
    events: list[list[RelayEvent]] = field(init=False)
    filtered: list[list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = [Keypair.from_name(dev_name(i)) for i in range(self.n_validators)]
        g = RelayGenesis(tuple(k.public for k in self.keys),
                         tuple(ParaGenesis(p, bytes([p % 256, 0]), CODE, cores=c)
                               for p, c in self.paras), self.config)
        header, state = genesis(g)
        self.headers, self.states, self.events, self.filtered = [header], [state], [[]], [[]]

    @property
    def head(self) -> RelayHeader:
        return self.headers[-1]

    @property
    def state(self) -> RelayState:
        return self.states[-1]

    def block(self, candidates: list[BackedCandidate] | None = None,
              bitfields: list[SignedAvailabilityBitfield] | None = None,
              max_weight: int | None = None,
              disputes: list[DisputeStatementSet] | None = None) -> RelayBlock:
        """Author the next block (slot = number), import it on a fresh copy, and append it."""
        slot = self.head.slot + 1
        key = self.keys[slot % self.n_validators]
        data = ParachainsInherentData(bitfields or [], candidates or [], self.head.hash(),
                                      disputes or [])
        block, state, events, filtered = build_block(self.head, self.state, data, slot, key,
                                                     max_weight)
        imported, events2 = import_block(self.head, self.state, block)
        assert events2 == events and imported.number == state.number
        self.headers.append(block.header)
        self.states.append(state)
        self.events.append(events)
        self.filtered.append(filtered)
        return block

    def empty_blocks(self, n: int) -> None:
        for _ in range(n):
            self.block()

    def rp(self, number: int | None = None) -> RelayHeader:
        return self.headers[-1 if number is None else number]


def make_candidate(
    rp: RelayHeader,
    para_id: int,
    parent_head: bytes,
    new_head: bytes,
    core: int = 0,
    session: int = 0,
    max_pov_size: int = HostConfiguration().max_pov_size,
    upward: list[bytes] | None = None,
    signals: list[UmpSignal] | None = None,
    new_code: bytes | None = None,
    pvd_override: PersistedValidationData | None = None,
    code_hash: bytes | None = None,
    para_head_override: bytes | None = None,
) -> CommittedCandidateReceipt:
    pvd = pvd_override or PersistedValidationData(parent_head, rp.number, rp.state_root, max_pov_size)
    commitments = CandidateCommitments(with_signals(upward or [], signals or []), [], new_code,
                                       new_head, 0, rp.number)
    d = CandidateDescriptor(
        para_id=para_id, relay_parent=rp.hash(), version=0, core_index=core, session_index=session,
        persisted_validation_data_hash=pvd.hash(), pov_hash=blake2_256(new_head),
        erasure_root=bytes(32), para_head=para_head_override or head_hash(new_head),
        validation_code_hash=code_hash or blake2_256(CODE))
    return CommittedCandidateReceipt(d, commitments)


def back(chain: Chain, receipt: CommittedCandidateReceipt, core: int, rp_number: int,
         votes: int | None = None, signer_group: int | None = None, session: int = 0,
         tamper: bool = False) -> BackedCandidate:
    """Backing votes from the group assigned to `core` at `rp_number + 1` (or `signer_group`)."""
    sched = chain.states[-1].scheduler
    gi = sched.group_assigned_to_core(core, rp_number + 1) if signer_group is None else signer_group
    assert gi is not None
    group = sched.groups[gi]
    n = len(group) if votes is None else votes
    h = receipt.hash()
    ctx = SigningContext(session, receipt.descriptor.relay_parent)
    atts = []
    for i, v in enumerate(group[:n]):
        kind = StatementKind.SECONDED if i == 0 else StatementKind.VALID
        sig = chain.keys[v].sign(b"BKNG", CompactStatement(kind, h).payload(ctx))
        if tamper:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        atts.append(ValidityAttestation(
            AttestationKind.IMPLICIT if i == 0 else AttestationKind.EXPLICIT, sig))
    bits = [i < n for i in range(len(group))]
    return BackedCandidate(receipt, atts, bits, core)


def bitfields(chain: Chain, cores: set[int], validators: list[int] | None = None,
              session: int = 0) -> list[SignedAvailabilityBitfield]:
    """Bitfields for the next block: set for `cores`, signed on the current head."""
    n_cores = chain.state.n_cores
    ctx = SigningContext(session, chain.head.hash())
    bits = [c in cores for c in range(n_cores)]
    return [SignedAvailabilityBitfield.sign(chain.keys[v], bits, ctx, v)
            for v in (validators if validators is not None else range(chain.n_validators))]
