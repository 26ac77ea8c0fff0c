"""JSON views of chain objects, in Substrate's shapes where Substrate has one.

Hashes and byte strings are 0x-hex. Header `number` is 0x-hex as Substrate sends it; every other
integer is a plain JSON number. Relay headers add what our Aura-style header carries (`slot`,
`author`, `seal`) and their own `hash`; `extrinsicsRoot` is the body root.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import msgspec

from collator.core.para_runtime import ParaHeader, decode_head
from proto.candidate import head_hash
from proto.codec import encode
from proto.errors import DecodeError
from proto.relay_block import RelayBlock, RelayHeader
from proto.statements import BackedCandidate, SignedAvailabilityBitfield
from relay.core.events import CandidateEvent, OffenceEvent, RelayEvent


def hex0x(raw: bytes) -> str:
    return "0x" + raw.hex()


def hex_number(n: int) -> str:
    return hex(n)


def relay_header_json(h: RelayHeader) -> dict[str, Any]:
    return {
        "parentHash": hex0x(h.parent_hash),
        "number": hex_number(h.number),
        "stateRoot": hex0x(h.state_root),
        "extrinsicsRoot": hex0x(h.body_root),
        "slot": h.slot,
        "author": h.author,
        "seal": hex0x(h.seal),
        "hash": hex0x(h.hash()),
    }


def para_header_json(h: ParaHeader) -> dict[str, Any]:
    return {
        "parentHash": hex0x(h.parent_hash),
        "number": hex_number(h.number),
        "stateRoot": hex0x(h.state_root),
        "extrinsicsRoot": hex0x(h.extrinsics_root),
        "paraId": h.para_id,
        "relayParentNumber": h.relay_parent_number,
        "relaySlot": h.relay_slot,
        "coreSelector": h.core_selector,
        "hash": hex0x(h.hash()),
    }


def para_number(head_data: bytes) -> int | None:
    """The para block number inside head data (None if it is not one of our headers)."""
    try:
        return decode_head(head_data).number
    except DecodeError:
        return None


def _bitfield_json(b: SignedAvailabilityBitfield) -> dict[str, Any]:
    return {"validatorIndex": b.validator_index, "bits": "".join("1" if x else "0" for x in b.bits)}


def _backed_json(c: BackedCandidate) -> dict[str, Any]:
    d = c.candidate.descriptor
    return {
        "candidateHash": hex0x(c.hash()),
        "paraId": d.para_id,
        "relayParent": hex0x(d.relay_parent),
        "coreIndex": c.core_index,
        "paraHead": hex0x(d.para_head),
        "paraNumber": para_number(c.candidate.commitments.head_data),
        "votes": len(c.validity_votes),
    }


def relay_block_json(header: RelayHeader, block: RelayBlock | None) -> dict[str, Any]:
    """Substrate's `SignedBlock` shape; the one extrinsic is the encoded parachains inherent,
    decoded alongside under `parachainsInherent` (genesis has neither)."""
    inherent: dict[str, Any] | None = None
    extrinsics: list[str] = []
    if block is not None:
        body = block.body
        extrinsics = [hex0x(encode(body))]
        inherent = {
            "parentHash": hex0x(body.parent_hash),
            "bitfields": [_bitfield_json(x) for x in body.bitfields],
            "backedCandidates": [_backed_json(x) for x in body.backed_candidates],
        }
    return {
        "block": {"header": relay_header_json(header), "extrinsics": extrinsics,
                  "parachainsInherent": inherent},
        "justifications": None,
    }


def candidate_event_json(e: CandidateEvent) -> dict[str, Any]:
    """`backed_in` is the relay block that backed the candidate (for a backed event, the block
    itself); `para_head_hash` is the para block's hash, what its collators know it by."""
    return {
        "type": e.kind.value,
        "para_id": e.para_id,
        "candidate_hash": hex0x(e.candidate_hash),
        "relay_parent_number": e.relay_parent_number,
        "para_number": para_number(e.head_data),
        "para_head_hash": hex0x(head_hash(e.head_data)),
        "core": e.core,
        "backed_in": e.backed_in_number,
    }


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def plain_json(value: Any) -> Any:
    """Any runtime value (dataclasses, msgspec structs, tuples, bytes, enums) as JSON, keys
    camelCased: for read-outs such as backing constraints that have no Substrate shape."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes):
        return hex0x(value)
    if isinstance(value, enum.Enum):
        return plain_json(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {camel(f.name): plain_json(getattr(value, f.name))
                for f in dataclasses.fields(value)}
    if isinstance(value, msgspec.Struct):
        return {camel(name): plain_json(getattr(value, name))
                for name in value.__struct_fields__}
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain_json(v) for v in value]
    return str(value)


def relay_event_json(e: RelayEvent) -> dict[str, Any]:
    """Any relay-chain event with a one-line `text` (what `system event contains` matches)."""
    if isinstance(e, CandidateEvent):
        out = candidate_event_json(e)
        out["text"] = f"{e.kind.value}: para {e.para_id} candidate {hex0x(e.candidate_hash)}"
        return out
    out = e.to_json()
    if isinstance(e, OffenceEvent):
        out["text"] = e.describe()
    else:
        details = ", ".join(f"{k} {v}" for k, v in out.items() if k != "type")
        out["text"] = f"{out['type']}: {details}"
    return out
