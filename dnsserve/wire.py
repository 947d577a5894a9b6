"""The hot-path codec: parse a query's header, question and OPT from bytes.

Owns the byte layout of DNS messages on the query path. It parses only what an
answer needs (header, one question, the additional section for OPT) and
builds only the small pieces that are patched into prebuilt responses (the
OPT record, header flags). It must not use dnspython, allocate per label, or
know anything of zones: the answer engine decides, this module reads bytes.

Named constants stand in for dnspython's enums here, by design (speed and no
import cost on the hot path).
"""

from __future__ import annotations

import struct

from dnsserve.errors import FormError, NotAQuery, ShortHeader

HEADER = struct.Struct("!HHHHHH")
_COUNTS = struct.Struct("!HHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength

# Header flag bits.
QR = 0x8000
OPCODE_MASK = 0x7800
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
AD = 0x0020
CD = 0x0010
RCODE_MASK = 0x000F

# Opcodes (already shifted into the flags word).
OPCODE_QUERY = 0x0000
OPCODE_NOTIFY = 0x2000

# Rcodes (low four bits; BADVERS is an extended rcode carried in OPT).
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
BADVERS = 16

# Types and classes the engine treats specially.
TYPE_OPT = 41
TYPE_IXFR = 251
TYPE_AXFR = 252
TYPE_MAILB = 253
TYPE_MAILA = 254
TYPE_ANY = 255
CLASS_IN = 1
CLASS_CH = 3

OUR_PAYLOAD = 1232  # EDNS buffer size we advertise and honour (DNS flag day 2020)
NO_EDNS = -1
MAX_NAME = 255
_MAX_POINTERS = 64

# The OPT record we append: root owner, TYPE 41, CLASS = our payload, TTL =
# extended rcode (0), version (0), DO flag, then RDLEN 0.
_OPT_HEAD = b"\x00\x00\x29" + OUR_PAYLOAD.to_bytes(2, "big")
OPT_PLAIN = _OPT_HEAD + b"\x00\x00\x00\x00\x00\x00"
OPT_DO = _OPT_HEAD + b"\x00\x00\x80\x00\x00\x00"
OPT_BADVERS = _OPT_HEAD + b"\x01\x00\x00\x00\x00\x00"
OPT_BADVERS_DO = _OPT_HEAD + b"\x01\x00\x80\x00\x00\x00"


def skip_name(data: bytes, offset: int) -> int:
    """Return the offset just past a (possibly compressed) name; FormError if bad."""
    n = len(data)
    length = 0
    hops = 0
    end = -1
    while True:
        if offset >= n:
            raise FormError("name runs past the message")
        b = data[offset]
        if b == 0:
            return offset + 1 if end < 0 else end
        kind = b & 0xC0
        if kind == 0xC0:
            if offset + 1 >= n:
                raise FormError("truncated compression pointer")
            target = ((b & 0x3F) << 8) | data[offset + 1]
            if end < 0:
                end = offset + 2
            hops += 1
            if target >= offset or hops > _MAX_POINTERS:
                raise FormError("compression pointer loop")
            offset = target
            continue
        if kind:
            raise FormError("unknown label type")
        length += b + 1
        if length + 1 > MAX_NAME:
            raise FormError("name longer than 255 octets")
        offset += b + 1


def parse_query(data: bytes) -> tuple[int, int, bytes, int, bool, int]:
    """Parse header, question and OPT of a query.

    Returns (flags, question_end, key, payload, do, version): ``key`` is the
    lower-cased qname wire followed by qtype and qclass, ``payload`` the
    client's EDNS buffer size (at least 512) or NO_EDNS.
    Raises ShortHeader or NotAQuery (drop) and FormError (answer FORMERR).
    The opcode is not judged here; the engine decides NOTIMP.
    """
    n = len(data)
    if n < 12:
        raise ShortHeader("short header")
    flags = (data[2] << 8) | data[3]
    if flags & QR:
        raise NotAQuery("QR set")
    qdcount, ancount, nscount, arcount = _COUNTS.unpack_from(data, 4)
    if qdcount != 1:
        raise FormError("QDCOUNT is not 1")
    if (ancount or nscount) and not flags & OPCODE_MASK:
        raise FormError("answer or authority records in a query")
    # The question name: uncompressed labels only.
    i = 12
    while True:
        if i >= n:
            raise FormError("question name runs past the message")
        b = data[i]
        if b == 0:
            break
        if b > 63:
            raise FormError("compressed or invalid label in the question")
        i += b + 1
    name_end = i + 1
    if name_end - 12 > MAX_NAME:
        raise FormError("question name longer than 255 octets")
    qend = name_end + 4
    if qend > n:
        raise FormError("question cut short")
    if data[name_end] == 0 and data[name_end + 1] == TYPE_OPT:
        raise FormError("OPT as a query type")
    key = data[12:name_end].lower() + data[name_end:qend]
    if (
        arcount == 1
        and n - qend == 11
        and data[qend + 2] == TYPE_OPT
        and data[qend] == data[qend + 1] == data[qend + 9] == data[qend + 10] == 0
    ):
        # The usual EDNS query: one OPT at the root, no options (owner, TYPE's
        # high byte and RDLEN checked); anything else takes the long path.
        payload = (data[qend + 3] << 8) | data[qend + 4]
        return (
            flags, qend, key, payload if payload > 512 else 512,
            bool(data[qend + 7] & 0x80), data[qend + 6],
        )
    payload = NO_EDNS
    do = False
    version = 0
    offset = qend
    for _ in range(ancount + nscount):  # only other opcodes get here with records
        offset = skip_name(data, offset)
        if offset + 10 > n:
            raise FormError("record cut short")
        offset += 10 + _RR_FIXED.unpack_from(data, offset)[3]
        if offset > n:
            raise FormError("record data cut short")
    if arcount:
        seen_opt = False
        for _ in range(arcount):
            owner = offset
            offset = skip_name(data, offset)
            if offset + 10 > n:
                raise FormError("additional record cut short")
            rtype, rclass, ttl, rdlen = _RR_FIXED.unpack_from(data, offset)
            offset += 10 + rdlen
            if offset > n:
                raise FormError("additional record data cut short")
            if rtype == TYPE_OPT:
                if seen_opt:
                    raise FormError("more than one OPT record")
                if data[owner] != 0:
                    raise FormError("OPT owner is not the root")
                seen_opt = True
                payload = rclass if rclass > 512 else 512
                version = (ttl >> 16) & 0xFF
                do = bool(ttl & 0x8000)
    if offset != n:
        raise FormError("trailing bytes after the message")
    return flags, qend, key, payload, do, version


def header_only(
    data: bytes, flags: int, rcode: int, question: bytes = b"", opt: bytes = b""
) -> bytes:
    """A response with only a header (and the question and our OPT when given)."""
    qid = data[0:2] if len(data) >= 2 else b"\x00\x00"
    out_flags = QR | (flags & (OPCODE_MASK | RD | CD)) | (rcode & RCODE_MASK)
    qd = 1 if question else 0
    ar = 1 if opt else 0
    return qid + HEADER.pack(0, out_flags, qd, 0, 0, ar)[2:] + question + opt


def badvers(data: bytes, flags: int, question: bytes, do: bool) -> bytes:
    """RFC 6891 §6.1.3: an EDNS version we do not speak gets BADVERS in our OPT."""
    out_flags = QR | (flags & (OPCODE_MASK | RD | CD))
    head = data[0:2] + HEADER.pack(0, out_flags, 1, 0, 0, 1)[2:]
    return head + question + (OPT_BADVERS_DO if do else OPT_BADVERS)


def flag_variants(base: int) -> tuple[bytes, bytes, bytes, bytes]:
    """The four header-flag words for ``base``, one per RD/CD of a query.

    The index layout (defined here, once): bit 1 = the query's RD, bit 0 =
    its CD, i.e. ``((flags >> 7) & 2) | ((flags >> 4) & 1)``. The engine
    writes that expression inline (a call per query costs more than it does).
    """
    words = [
        (base | (RD if i & 2 else 0) | (CD if i & 1 else 0)).to_bytes(2, "big") for i in range(4)
    ]
    return words[0], words[1], words[2], words[3]


def counts(qd: int, an: int, ns: int, ar: int) -> bytes:
    return _COUNTS.pack(qd, an, ns, ar)
