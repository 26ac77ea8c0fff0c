"""Assignment criteria: who checks which candidate of a relay block, and from which tranche.

For every candidate a block includes ("leaving cores": the core it occupied and the group that
backed it), each validator outside that group has
- `RelayVRFModulo`: `relay_vrf_modulo_samples` draws of a core; a draw that lands on a leaving
  core assigns the validator to it in tranche 0;
- `RelayVRFDelay`: one draw per leaving core of a delay tranche in `0..n_delay_tranches`, the first
  `zeroth_delay_tranche_width + 1` outcomes all meaning tranche 0.
Its assignment to a core is the earliest of the two. Most delay assignments are never used: a
checker only announces (triggers) its assignment when the candidate still needs checkers by then.

The stand-in for the relay VRF. Polkadot draws from each validator's schnorrkel VRF over the
block's `RelayVRFStory`. That output is unpredictable before the block exists, unique (one output
per key and input: no re-rolling), verifiable by all from its proof, and secret until the validator
reveals it. Here the draw is blake2b-256 over (context, the validator's public key, the story, the
sample or core), the story a hash of the relay block's hash. It keeps unpredictability before the
block (nobody knows the story earlier), uniqueness (there is no secret input to grind) and
verification by all (anyone recomputes it). It gives up secrecy: once the block is out, anyone can
work out every validator's tranches, so an adversary could target a candidate's early checkers.
And the block author could grind the story by trying block contents, where polkadot's story comes
from the author's own VRF. (An Ed25519 signature used as the VRF would have kept secrecy but lost
uniqueness: a signer can make many valid signatures of one message and keep the draw it likes.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from proto.approvals import AssignmentCert, RelayVRFDelay, RelayVRFModulo
from proto.hashing import blake2_256
from relay.core.config import HostConfiguration
from relay.core.errors import NamedError

RELAY_VRF_STORY_CONTEXT = b"A&V RC-VRF"
RELAY_VRF_MODULO_CONTEXT = b"A&V MOD"
RELAY_VRF_DELAY_CONTEXT = b"A&V DELAY"


class InvalidAssignmentReason(StrEnum):
    """polkadot-sdk's names for an assignment certificate that does not hold."""

    ValidatorIndexOutOfBounds = "ValidatorIndexOutOfBounds"
    SampleOutOfBounds = "SampleOutOfBounds"
    CoreIndexOutOfBounds = "CoreIndexOutOfBounds"
    IsInBackingGroup = "IsInBackingGroup"
    VRFModuloCoreIndexMismatch = "VRFModuloCoreIndexMismatch"
    VRFDelayCoreIndexMismatch = "VRFDelayCoreIndexMismatch"


class InvalidAssignment(NamedError):
    """An assignment certificate that does not assign its validator to the claimed core."""


@dataclass(frozen=True)
class SessionInfo:
    """What assignments and approval counting need to know about a session (polkadot's
    `SessionInfo`, the approval parts)."""

    validators: tuple[bytes, ...]
    validator_groups: tuple[tuple[int, ...], ...]
    n_cores: int
    needed_approvals: int
    relay_vrf_modulo_samples: int
    n_delay_tranches: int
    zeroth_delay_tranche_width: int
    no_show_slots: int

    @classmethod
    def from_config(cls, config: HostConfiguration, validators: Sequence[bytes],
                    validator_groups: Sequence[Sequence[int]], n_cores: int) -> SessionInfo:
        return cls(tuple(validators), tuple(tuple(g) for g in validator_groups), n_cores,
                   config.needed_approvals, config.relay_vrf_modulo_samples,
                   config.n_delay_tranches, config.zeroth_delay_tranche_width,
                   config.no_show_slots)

    @property
    def n_validators(self) -> int:
        return len(self.validators)

    def in_group(self, validator: int, group: int) -> bool:
        return 0 <= group < len(self.validator_groups) and validator in self.validator_groups[group]


@dataclass(frozen=True)
class IncludedCandidate:
    """A candidate a relay block included: what assignments are drawn for ("leaving core")."""

    candidate_hash: bytes
    core: int
    backing_group: int


@dataclass(frozen=True)
class Assignment:
    """A validator's assignment to one core of a block: the certificate and its tranche."""

    cert: AssignmentCert
    tranche: int
    validator_index: int


def relay_vrf_story(block_hash: bytes) -> bytes:
    """The randomness a relay block gives its assignments (polkadot's `RelayVRFStory`)."""
    return blake2_256(RELAY_VRF_STORY_CONTEXT + block_hash)


def _draw(context: bytes, public: bytes, story: bytes, value: int) -> int:
    """A u32 from the stand-in VRF: little-endian, as polkadot reads its VRF bytes."""
    out = blake2_256(context + public + story + value.to_bytes(4, "little"))
    return int.from_bytes(out[:4], "little")


def relay_vrf_modulo_core(public: bytes, story: bytes, sample: int, n_cores: int) -> int:
    return _draw(RELAY_VRF_MODULO_CONTEXT, public, story, sample) % n_cores


def relay_vrf_delay_tranche(public: bytes, story: bytes, core: int, n_delay_tranches: int,
                            zeroth_delay_tranche_width: int) -> int:
    wide = _draw(RELAY_VRF_DELAY_CONTEXT, public, story, core) % (
        n_delay_tranches + zeroth_delay_tranche_width)
    # the first `width + 1` outcomes all land in tranche 0, which is wider than the others
    return max(0, wide - zeroth_delay_tranche_width)


def compute_assignments(session: SessionInfo, validator_index: int, story: bytes,
                        leaving_cores: Sequence[IncludedCandidate]) -> dict[int, Assignment]:
    """`validator_index`'s assignments among a block's leaving cores, by core: the earliest
    tranche wins, and no validator is assigned to a candidate its own group backed."""
    if session.n_cores == 0 or not 0 <= validator_index < session.n_validators:
        return {}
    public = session.validators[validator_index]
    eligible = {c.core for c in leaving_cores if not session.in_group(validator_index, c.backing_group)}
    out: dict[int, Assignment] = {}
    for sample in range(session.relay_vrf_modulo_samples):
        core = relay_vrf_modulo_core(public, story, sample, session.n_cores)
        if core in eligible and core not in out:
            out[core] = Assignment(RelayVRFModulo(sample), 0, validator_index)
    for core in sorted(eligible):
        tranche = relay_vrf_delay_tranche(public, story, core, session.n_delay_tranches,
                                          session.zeroth_delay_tranche_width)
        if core not in out or out[core].tranche > tranche:
            out[core] = Assignment(RelayVRFDelay(core), tranche, validator_index)
    return out


def check_assignment_cert(claimed_core: int, validator_index: int, session: SessionInfo,
                          story: bytes, cert: AssignmentCert, backing_group: int) -> int:
    """The tranche `cert` assigns `validator_index` to `claimed_core` in, or `InvalidAssignment`.

    Whether the core holds a candidate of the block is the caller's check (as in polkadot)."""
    R = InvalidAssignmentReason
    if not 0 <= validator_index < session.n_validators:
        raise InvalidAssignment(R.ValidatorIndexOutOfBounds, f"validator {validator_index}")
    if not 0 <= claimed_core < session.n_cores:
        raise InvalidAssignment(R.CoreIndexOutOfBounds, f"core {claimed_core}")
    if session.in_group(validator_index, backing_group):
        raise InvalidAssignment(R.IsInBackingGroup, f"validator {validator_index}")
    public = session.validators[validator_index]
    if isinstance(cert, RelayVRFModulo):
        if cert.sample >= session.relay_vrf_modulo_samples:
            raise InvalidAssignment(R.SampleOutOfBounds, f"sample {cert.sample}")
        drawn = relay_vrf_modulo_core(public, story, cert.sample, session.n_cores)
        if drawn != claimed_core:
            raise InvalidAssignment(R.VRFModuloCoreIndexMismatch,
                                    f"sample {cert.sample} draws core {drawn}, not {claimed_core}")
        return 0
    if cert.core_index != claimed_core:
        raise InvalidAssignment(R.VRFDelayCoreIndexMismatch,
                                f"certificate for core {cert.core_index}, claimed {claimed_core}")
    return relay_vrf_delay_tranche(public, story, claimed_core, session.n_delay_tranches,
                                   session.zeroth_delay_tranche_width)
