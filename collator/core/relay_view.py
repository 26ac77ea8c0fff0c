"""What a parachain block reads from the relay chain (spec §4.3 step 2 and step 7): a proof of a
few relay state entries at the relay parent, checked against the relay parent's storage root.

The collator asks its relay node for `relay_proof_keys(...)`; the runtime (on the collator and again
in the validation function) turns the verified entries into a `RelayChainView`. Optional entries
that are missing mean "nothing": no pending upgrade signal, no egress channel, no configuration
(and then nothing may be sent upward or sideways, the safe default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from collator.core.consensus_hook import BlockInvalid
from collator.core.unincluded_segment import GoAhead, OutboundBandwidthLimits
from proto.codec import decode
from proto.errors import DecodeError
from proto.relay_state import (
    ACTIVE_CONFIG_KEY,
    CURRENT_SLOT_KEY,
    AbridgedHostConfiguration,
    AbridgedHrmpChannel,
    ProofError,
    RelayDispatchQueueRemaining,
    StateProof,
    hrmp_channel_key,
    para_head_key,
    relay_dispatch_queue_key,
    upgrade_go_ahead_key,
    verify_state_proof,
)

# The relay runtime stores a pending go-ahead as `encode(1)`; 0 means the upgrade was aborted.
GO_AHEAD_VALUE = 1
ABORT_VALUE = 0


def relay_proof_keys(para_id: int, egress_recipients: Iterable[int] = ()) -> list[bytes]:
    """The relay state a block of `para_id` needs proven. `egress_recipients` are the paras it has
    HRMP messages queued for (from its parent state): only their channels need to be in the proof,
    a channel left out simply cannot be used by this block."""
    keys = [CURRENT_SLOT_KEY, ACTIVE_CONFIG_KEY, para_head_key(para_id),
            relay_dispatch_queue_key(para_id), upgrade_go_ahead_key(para_id)]
    keys.extend(hrmp_channel_key(para_id, r) for r in sorted(set(egress_recipients)))
    return keys


@dataclass(frozen=True)
class RelayChainView:
    relay_slot: int
    included_head: bytes | None
    dispatch_queue_remaining: RelayDispatchQueueRemaining | None
    config: AbridgedHostConfiguration | None
    upgrade_signal: GoAhead | None
    egress_channels: Mapping[int, AbridgedHrmpChannel] = field(default_factory=dict)

    def outbound_limits(self) -> OutboundBandwidthLimits:
        """What the whole unincluded segment may send (spec §4.1), from this relay state."""
        q = self.dispatch_queue_remaining
        return OutboundBandwidthLimits.from_relay_state(
            (q.remaining_count, q.remaining_size) if q is not None else (0, 0),
            {r: (c.max_capacity, c.max_total_size, c.msg_count, c.total_size)
             for r, c in self.egress_channels.items()},
        )

    def hrmp_max_message_size(self, recipient: int) -> int:
        channel = self.egress_channels.get(recipient)
        return channel.max_message_size if channel is not None else 0


def read_relay_view(storage_root: bytes, proof: StateProof, para_id: int) -> RelayChainView:
    """Verify `proof` against the relay parent's `storage_root` and decode the entries; any bad
    entry makes the block invalid (`BlockInvalid`)."""
    try:
        entries = verify_state_proof(storage_root, proof)
        slot_raw = entries.get(CURRENT_SLOT_KEY)
        if slot_raw is None:
            raise BlockInvalid("relay state proof lacks the current slot")
        relay_slot = decode(slot_raw, int)
        queue_raw = entries.get(relay_dispatch_queue_key(para_id))
        queue = (decode(queue_raw, RelayDispatchQueueRemaining)
                 if queue_raw is not None else None)
        config_raw = entries.get(ACTIVE_CONFIG_KEY)
        config = decode(config_raw, AbridgedHostConfiguration) if config_raw is not None else None
        signal_raw = entries.get(upgrade_go_ahead_key(para_id))
        signal: GoAhead | None = None
        if signal_raw is not None:
            value = decode(signal_raw, int)
            if value not in (GO_AHEAD_VALUE, ABORT_VALUE):
                raise BlockInvalid(f"unknown upgrade signal {value}")
            signal = GoAhead.GO_AHEAD if value == GO_AHEAD_VALUE else GoAhead.ABORT
        prefix = hrmp_channel_key(para_id, 0)[:-4]
        channels = {
            int.from_bytes(k[len(prefix):], "big"): decode(v, AbridgedHrmpChannel)
            for k, v in entries.items() if k.startswith(prefix) and len(k) == len(prefix) + 4
        }
    except (ProofError, DecodeError) as exc:
        raise BlockInvalid(f"invalid relay state proof: {exc}") from None
    return RelayChainView(relay_slot, entries.get(para_head_key(para_id)), queue, config, signal,
                          channels)
