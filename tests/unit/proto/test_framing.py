"""Length-prefixed framing: the cap is enforced on the four prefix bytes alone, before a single
body byte is buffered, however the bytes arrive."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.errors import DecodeError, FrameTooLarge
from proto.framing import PREFIX, FrameDecoder, frame

CAP = 1024


def test_body_exactly_at_the_cap_passes_and_one_more_byte_does_not() -> None:
    body = bytes(range(256)) * (CAP // 256)
    assert len(body) == CAP
    assert FrameDecoder(CAP).feed(frame(body, CAP)) == [body]
    with pytest.raises(FrameTooLarge):
        frame(body + b"x", CAP)  # the sender refuses what the receiver would refuse
    with pytest.raises(FrameTooLarge) as refused:
        FrameDecoder(CAP).feed(PREFIX.pack(CAP + 1))
    assert refused.value.length == CAP + 1 and refused.value.cap == CAP


def test_empty_frames_are_frames() -> None:
    assert FrameDecoder(CAP).feed(frame(b"", CAP) * 3) == [b"", b"", b""]


@pytest.mark.parametrize("length", [2**31, 2**32 - 1, CAP + 1])
def test_oversize_prefix_fed_byte_by_byte_is_refused_at_its_fourth_byte(length: int) -> None:
    decoder = FrameDecoder(CAP)
    prefix = PREFIX.pack(length)
    for b in prefix[:3]:
        assert decoder.feed(bytes([b])) == []
    with pytest.raises(FrameTooLarge):
        decoder.feed(prefix[3:] + b"\x00" * 64)  # body bytes in the same chunk are not kept
    assert decoder.buffered == 0
    with pytest.raises(DecodeError):  # a refused stream stays refused
        decoder.feed(frame(b"ok", CAP))


def test_a_good_frame_before_an_oversize_prefix_is_still_delivered_by_the_earlier_feed() -> None:
    decoder = FrameDecoder(CAP)
    assert decoder.feed(frame(b"first", CAP)) == [b"first"]
    with pytest.raises(FrameTooLarge):
        decoder.feed(PREFIX.pack(2**31))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=CAP), max_size=6), st.data())
def test_any_split_points_reassemble_the_frames(bodies: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(b, CAP) for b in bodies)
    points = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    decoder = FrameDecoder(CAP)
    out: list[bytes] = []
    for piece in pieces:
        out += decoder.feed(piece)
        assert decoder.buffered <= CAP + PREFIX.size  # never holds more than one frame
    assert out == bodies and decoder.buffered == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.lists(st.integers(1, 16), min_size=1))
def test_arbitrary_bytes_give_frames_or_decode_error(stream: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(16)
    i = k = 0
    try:
        while i < len(stream):
            for body in decoder.feed(stream[i : i + cuts[k % len(cuts)]]):
                assert len(body) <= 16
            i, k = i + cuts[k % len(cuts)], k + 1
    except DecodeError:
        return
