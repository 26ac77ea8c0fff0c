"""Report records (`node.report.BlockRecord`) from a relay block and its candidate events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from collator.core.para_runtime import decode_head
from node.report import BackedRecord, BlockRecord, IncludedRecord
from proto.relay_block import RelayHeader
from relay.core.events import CandidateEvent, EventKind, RelayEvent


def block_record(header: RelayHeader, events: Sequence[RelayEvent],
                 tx_counts: Mapping[bytes, int], finalized: bool) -> BlockRecord:
    """`tx_counts` (candidate hash -> transactions) comes from the collators that built them:
    the relay chain never sees a para block's body."""
    rec = BlockRecord(header.number, "0x" + header.hash().hex(), "0x" + header.parent_hash.hex(),
                      header.slot, header.author, finalized)
    for e in events:
        if not isinstance(e, CandidateEvent):
            continue  # disputes and offences
        number = decode_head(e.head_data).number
        if e.kind is EventKind.BACKED:
            rec.backed.append(BackedRecord(e.para_id, "0x" + e.candidate_hash.hex(),
                                           e.relay_parent_number, number, e.core))
        elif e.kind is EventKind.INCLUDED:
            rec.included.append(IncludedRecord(e.para_id, "0x" + e.candidate_hash.hex(),
                                               e.relay_parent_number, number, e.backed_in_number,
                                               tx_counts.get(e.candidate_hash, 0)))
    return rec
