"""Wire properties: canonical round trips, and hostile bytes never raise anything but
`DecodeError` (testing.md catalogue items 1–7)."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import blocks, committed, pvds, statements

from proto.candidate import CommittedCandidateReceipt, PersistedValidationData
from proto.codec import decode, encode
from proto.errors import DecodeError, FrameTooLarge
from proto.framing import FrameDecoder, frame
from proto.relay_block import RelayBlock
from proto.statements import SignedStatement

values = st.one_of(
    pvds.map(lambda v: (v, PersistedValidationData)),
    committed.map(lambda v: (v, CommittedCandidateReceipt)),
    statements.map(lambda v: (v, SignedStatement)),
    blocks.map(lambda v: (v, RelayBlock)),
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_round_trip_is_canonical(pair: tuple) -> None:  # type: ignore[type-arg]
    value, tp = pair
    raw = encode(value)
    assert decode(raw, tp) == value
    assert encode(decode(raw, tp)) == raw
    assert msgpack.packb(msgpack.unpackb(raw, raw=False, strict_map_key=False),
                         use_bin_type=True) == raw


@settings(max_examples=1000, deadline=None)
@given(values, st.data())
def test_mutated_encodings_raise_only_decode_error(pair: tuple, data: st.DataObject) -> None:  # type: ignore[type-arg]
    value, tp = pair
    raw = bytearray(encode(value))
    how = data.draw(st.sampled_from(["flip", "truncate", "extend", "replace"]))
    if how == "flip" and raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        raw = raw[: data.draw(st.integers(0, max(0, len(raw) - 1)))]
    elif how == "extend":
        raw += data.draw(st.binary(min_size=1, max_size=8))
    else:
        raw = bytearray(data.draw(st.binary(max_size=200)))
    try:
        out = decode(bytes(raw), tp)
    except DecodeError:
        return
    assert isinstance(out, tp)  # a mutation that still decodes must give a well-formed value


@pytest.mark.parametrize("raw", [
    b"\x91" * 2000 + b"\xc0",              # nesting depth 2000
    encode(1) + b"\x00",                   # trailing bytes
    b"\x81\x01\x02",                       # int map key
    b"\xa2\xff\xfe",                       # invalid UTF-8
    b"\xc1",                               # never-used byte
    b"\xd6\xff\x00\x00\x00\x00",           # timestamp extension
    b"\xd4\x05\x00",                       # unknown extension
    b"\xdd\x7f\xff\xff\xff" + b"\x90" * 8, # array32 header claiming 2^31 entries
])
def test_hostile_inputs(raw: bytes) -> None:
    for tp in (SignedStatement, RelayBlock, CommittedCandidateReceipt):
        with pytest.raises(DecodeError):
            decode(raw, tp)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(1, 50), min_size=1))
def test_frame_decoder_reassembles_any_chunking(bodies: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(b, 1024) for b in bodies)
    dec = FrameDecoder(1024)
    out: list[bytes] = []
    i = k = 0
    while i < len(stream):
        n = cuts[k % len(cuts)]
        out += dec.feed(stream[i : i + n])
        i, k = i + n, k + 1
    assert out == bodies and dec.buffered == 0


def test_oversize_prefix_rejected_before_reading_the_body() -> None:
    dec = FrameDecoder(128 * 1024)
    with pytest.raises(FrameTooLarge) as e:
        dec.feed((2**31).to_bytes(4, "big"))
    assert e.value.length == 2**31 and dec.buffered == 0
    with pytest.raises(FrameTooLarge):
        dec.feed(b"more")  # a decoder that failed stays closed
