"""RRset size limits: rule 7 of ``zones.compile`` and its UDP warning.

Owns the arithmetic of how large an RRset may be (``RRSET_MAX``: what fits in
a 65,535-octet message after a header and the longest question), how an
RRset is measured in wire form (``rrset_sizes``), and the finding for one
RRset: an error when it cannot fit any message, a warning when its smallest
answer is over our UDP payload (truncated; clients retry over TCP).

Must not: walk a zone, know where a record was written (``zones.compile``
places the finding), or read files or the clock. Pure: dnspython renders
here at load time, never per query.
"""

from __future__ import annotations

import io
from typing import Literal

import dns.name
import dns.rdataset
from dns.rdatatype import RdataType

from dnsserve import wire

# An error keeps the zone from being served; a warning is served anyway.
Severity = Literal["error", "warning"]

# Rule 7's arithmetic: a message is at most 65,535 octets; its header takes 12
# and the longest question 259 (a 255-octet name, type, class).
MESSAGE_MAX = 65535
RRSET_MAX = MESSAGE_MAX - 12 - (wire.MAX_NAME + 4)
_OPT_SIZE = len(wire.OPT_PLAIN)
# The longest RDATA of the common types, so most RRsets are known to be small
# without rendering them (a name is at most 255 octets).
_RDATA_MAX = {
    RdataType.A: 4, RdataType.AAAA: 16, RdataType.NS: 255, RdataType.CNAME: 255,
    RdataType.PTR: 255, RdataType.DNAME: 255, RdataType.MX: 2 + 255, RdataType.SRV: 6 + 255,
}


def size_problem(
    name: dns.name.Name, rdataset: dns.rdataset.Rdataset
) -> tuple[Severity, str] | None:
    """Rule 7, and the UDP warning, for the RRset ``rdataset`` at ``name``."""
    per = _RDATA_MAX.get(rdataset.rdtype)
    if per is not None and len(rdataset) * (12 + per) + 31 <= wire.OUR_PAYLOAD:
        return None  # small for sure: each record a pointer, fixed fields and RDATA
    size, smallest = rrset_sizes(name, rdataset)
    if size <= RRSET_MAX and smallest <= wire.OUR_PAYLOAD:
        return None
    what = (
        f"the {RdataType(rdataset.rdtype).name} RRset at {name}"
        f" ({len(rdataset):,} records, {size:,} octets)"
    )
    if size > RRSET_MAX:
        return "error", (
            f"{what} does not fit in a DNS message: {RRSET_MAX:,} octets at most fit"
            " after a header and the longest question"
        )
    return "warning", (
        f"{what} makes a {smallest:,}-octet answer: over UDP ({wire.OUR_PAYLOAD:,}"
        " octets) it is truncated and clients retry over TCP"
    )


def wire_sizes_fit(owner_length: int, rdatas: list[bytes]) -> bool:
    """Whether an RRset of these rdatas (uncompressed wire form) at an owner of
    ``owner_length`` octets surely meets rule 7 and the UDP limit, measured
    without compression (an upper bound of ``rrset_sizes``)."""
    size = owner_length - 2 + sum(12 + len(rdata) for rdata in rdatas)
    pointer = 2 if owner_length > 1 else 1
    return size <= RRSET_MAX and 12 + 4 + size + pointer + _OPT_SIZE <= wire.OUR_PAYLOAD


def rrset_sizes(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> tuple[int, int]:
    """(wire size, smallest answer) of the RRset ``rdataset`` at ``name``.

    The wire size has the owner written out once and compressed after that,
    as in a message whose question shares nothing with it (the worst case);
    the smallest answer is a header, ``name`` as the question (so the owner
    is a pointer), the RRset and our OPT.
    """
    out = io.BytesIO()
    rdataset.to_wire(name, out, compress={}, want_shuffle=False)
    size = out.tell()
    owner = len(name.to_wire() or b"")
    pointer = 2 if owner > 1 else 1  # the root is never compressed
    return size, 12 + owner + 4 + size - owner + pointer + _OPT_SIZE
