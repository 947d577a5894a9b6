"""DNS over TCP message framing (RFC 1035 4.2.2, RFC 7766 8): a two-byte
big-endian length before every message.

Owns: turning an arbitrary sequence of received chunks back into whole
messages (``Deframer.feed``) and framing one outgoing message (``frame``).

Must not: touch sockets, asyncio or the clock, or look inside a message.
It is pure so that every way a stream can be cut is testable without a
network.

Bound: ``feed`` hands back every complete message at once, so between calls
the buffer holds at most one incomplete message, its length prefix included:
``MAX_PENDING`` bytes. What a single call returns is bounded by the chunk
the caller fed it.
"""

from __future__ import annotations

MAX_MESSAGE = 0xFFFF
"""The largest message a two-byte length can carry."""

MAX_PENDING = 2 + MAX_MESSAGE - 1
"""The most bytes a Deframer keeps between calls (an incomplete message)."""


def frame(msg: bytes) -> bytes:
    """Return ``msg`` with its two-byte length prefix."""
    size = len(msg)
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes exceeds the TCP maximum of {MAX_MESSAGE}")
    return size.to_bytes(2, "big") + msg


class Deframer:
    """Reassembles length-prefixed messages from a byte stream, one per connection."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return each message it completes, in stream order.

        A zero-length frame yields ``b""``; the caller decides what an empty
        message means.
        """
        buf = self._buf
        if not buf:
            # Common case: a chunk that is exactly one whole message needs no copy
            # through the buffer.
            n = len(data)
            if n >= 2 and n == 2 + ((data[0] << 8) | data[1]):
                return [bytes(data[2:])]
        buf += data
        n = len(buf)
        out: list[bytes] = []
        pos = 0
        while n - pos >= 2:
            end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
            if end > n:
                break
            out.append(bytes(buf[pos + 2 : end]))
            pos = end
        if pos:
            del buf[:pos]
        return out
