"""Sans-io length-prefixed framing: u32 big-endian length, then the body.

The decoder checks the cap as soon as the four length bytes are in, before buffering any of the
body, so a hostile 2 GiB prefix costs nothing but a closed connection.
"""

from __future__ import annotations

import struct

from proto.errors import FrameTooLarge

PREFIX = struct.Struct(">I")


def frame(body: bytes, cap: int) -> bytes:
    """Prefix `body` with its length; refuses to emit what the peer would reject."""
    if len(body) > cap:
        raise FrameTooLarge(len(body), cap)
    return PREFIX.pack(len(body)) + body


class FrameDecoder:
    """Feed bytes in, take whole frame bodies out. After an error the decoder is dead."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._buf = bytearray()
        self._need: int | None = None
        self._dead = False

    def feed(self, data: bytes) -> list[bytes]:
        if self._dead:
            raise FrameTooLarge(self._need or 0, self.cap)
        self._buf += data
        out: list[bytes] = []
        while True:
            if self._need is None:
                if len(self._buf) < PREFIX.size:
                    return out
                (length,) = PREFIX.unpack_from(self._buf)
                if length > self.cap:
                    self._dead = True
                    self._need = length
                    self._buf.clear()
                    raise FrameTooLarge(length, self.cap)
                del self._buf[: PREFIX.size]
                self._need = length
            if len(self._buf) < self._need:
                return out
            out.append(bytes(self._buf[: self._need]))
            del self._buf[: self._need]
            self._need = None

    @property
    def between_frames(self) -> bool:
        """Holding nothing of a frame (not even its length prefix) and alive."""
        return not self._dead and self._need is None and not self._buf

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (for back-pressure accounting)."""
        return len(self._buf)
