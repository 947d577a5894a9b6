"""SipHash-2-4 (Aumasson and Bernstein, 2012) in pure Python: the MAC of DNS server cookies.

Owns the function only: ``siphash24(key, message)`` returns the 8-byte tag
as the reference implementation writes it (little-endian). The standard
library computes SipHash for ``hash()`` but does not expose it with a key,
so it is written here; ``answer.cookies`` calls it once per cookie it makes
or checks (and caches what it checked).

Pure: no I/O, no clock. The rounds are written out inline (no call per
round): a cookie's 20 or 32 bytes cost a few microseconds.
"""

from __future__ import annotations

import struct

_MASK = 0xFFFFFFFFFFFFFFFF
_KEY = struct.Struct("<QQ")
_WORDS = {n: struct.Struct(f"<{n}Q") for n in range(8)}  # messages up to 63 bytes at once


def siphash24(key: bytes, message: bytes) -> bytes:
    """The SipHash-2-4 tag of ``message`` under the 16-byte ``key`` (8 bytes, little-endian)."""
    k0, k1 = _KEY.unpack(key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    n = len(message)
    whole = n - n % 8
    tail = message[whole:] + bytes(7 - n % 8) + bytes(((n & 0xFF),))
    words = _WORDS.get(whole // 8)
    blocks = (words.unpack(message[:whole]) if words is not None
              else struct.unpack(f"<{whole // 8}Q", message[:whole]))
    for m in (*blocks, int.from_bytes(tail, "little")):
        v3 ^= m
        for _ in range(2):  # c = 2 compression rounds
            v0 = (v0 + v1) & _MASK
            v1 = ((v1 << 13) | (v1 >> 51)) & _MASK ^ v0
            v0 = ((v0 << 32) | (v0 >> 32)) & _MASK
            v2 = (v2 + v3) & _MASK
            v3 = ((v3 << 16) | (v3 >> 48)) & _MASK ^ v2
            v0 = (v0 + v3) & _MASK
            v3 = ((v3 << 21) | (v3 >> 43)) & _MASK ^ v0
            v2 = (v2 + v1) & _MASK
            v1 = ((v1 << 17) | (v1 >> 47)) & _MASK ^ v2
            v2 = ((v2 << 32) | (v2 >> 32)) & _MASK
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(4):  # d = 4 finalization rounds
        v0 = (v0 + v1) & _MASK
        v1 = ((v1 << 13) | (v1 >> 51)) & _MASK ^ v0
        v0 = ((v0 << 32) | (v0 >> 32)) & _MASK
        v2 = (v2 + v3) & _MASK
        v3 = ((v3 << 16) | (v3 >> 48)) & _MASK ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = ((v3 << 21) | (v3 >> 43)) & _MASK ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = ((v1 << 17) | (v1 >> 47)) & _MASK ^ v2
        v2 = ((v2 << 32) | (v2 >> 32)) & _MASK
    tag: int = v0 ^ v1 ^ v2 ^ v3
    return tag.to_bytes(8, "little")
