"""TSIG signing of responses to a verified signed request (RFC 8945 §5.3).

Owns the ``Signer``: the request's key, MAC and ID, and the running digest
that chains the messages of one transfer (§5.3.1: every message after the
first is digested with the previous MAC and only the TSIG timers). It
appends a TSIG record to a response in wire form and bumps ARCOUNT; the
response itself is built elsewhere.

Pure: the time to sign with is passed in (``now``). Must not: verify
requests (``xfr.request``) or build messages.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

FUDGE = 300
_FIXED = struct.Struct("!HHIH")  # type, class, TTL, RDLENGTH
_ARCOUNT = slice(10, 12)


def tsig_rdata(
    key: dns.tsig.Key, original_id: int, *, error: int = 0, other: bytes = b"", now: int = 0
) -> dns.rdtypes.ANY.TSIG.TSIG:
    """A TSIG rdata template for ``key`` (MAC empty, filled in by signing)."""
    return dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, now, FUDGE, b"",
        original_id, error, other,
    )


def append_tsig(wire: bytes, owner: dns.name.Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    """``wire`` with the TSIG record ``rdata`` appended (last) and ARCOUNT one higher."""
    rdwire = rdata.to_wire()
    name = owner.to_wire()
    assert rdwire is not None and name is not None  # None only when writing to a file
    (arcount,) = struct.unpack("!H", wire[_ARCOUNT])
    record = name + _FIXED.pack(dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(rdwire)) + rdwire
    return wire[:10] + struct.pack("!H", arcount + 1) + wire[12:] + record


@dataclass(slots=True)
class Signer:
    """Signs the responses to one verified request, in order."""

    key: dns.tsig.Key
    request_mac: bytes
    original_id: int
    _ctx: Any = field(default=None, repr=False)

    def sign(self, wire: bytes, now: int, *, multi: bool = False) -> bytes:
        """``wire`` signed; with ``multi`` the next call continues the same transfer."""
        template = tsig_rdata(self.key, self.original_id, now=now)
        rdata, ctx = dns.tsig.sign(
            wire, self.key, template, now, self.request_mac, self._ctx if multi else None, multi
        )
        self._ctx = ctx
        return append_tsig(wire, self.key.name, rdata)

    def sign_error(self, wire: bytes, now: int, error: int, other: bytes = b"") -> bytes:
        """``wire`` with a signed TSIG carrying ``error`` (BADTIME: RFC 8945 §5.2.3)."""
        template = tsig_rdata(self.key, self.original_id, error=error, other=other, now=now)
        rdata, _ = dns.tsig.sign(wire, self.key, template, now, self.request_mac)
        return append_tsig(wire, self.key.name, rdata)
