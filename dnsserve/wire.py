"""The hot-path codec: parse a query's header, question and OPT from bytes.

Owns the byte layout of DNS messages on the query path. It parses only what an
answer needs (header, one question, the additional section for OPT) and
builds only the small pieces that are patched into prebuilt responses (the
OPT record, header flags). It must not use dnspython, allocate per label, or
know anything of zones: the answer engine decides, this module reads bytes.

The cost of parsing any packet is bounded, whatever it holds (a packet's
parse time is taken from every other query on the loop):

- the question name is walked for 255 octets at most;
- at most ``MAX_RECORDS`` records may follow the question; more is FORMERR
  (a query carries an OPT, a TSIG, and for NOTIFY an SOA: nothing else);
- the additional section of a message to us holds an OPT and a TSIG (last)
  at most, as NSD requires; any other record there is FORMERR;
- a record's owner name is skipped, never decoded: its labels are stepped
  over up to the root or the first compression pointer, which is not
  followed (nothing reads the name; a TSIG key name is read by the slow path).

Named constants stand in for dnspython's enums here, by design (speed and no
import cost on the hot path).
"""

from __future__ import annotations

import struct

from dnsserve.errors import FormError, NotAQuery, ShortHeader, Signed

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
OPCODE_UPDATE = 0x2800

# Rcodes (low four bits; BADVERS is an extended rcode carried in OPT).
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
NOTAUTH = 9
BADVERS = 16
BADSIG = 16  # TSIG errors (RFC 8945 §4.2), carried in the TSIG record, not the header
BADKEY = 17
BADTIME = 18

# Types and classes the engine treats specially.
TYPE_OPT = 41
TYPE_TSIG = 250
TYPE_IXFR = 251
TYPE_AXFR = 252
TYPE_MAILB = 253
TYPE_MAILA = 254
TYPE_ANY = 255
CLASS_IN = 1
CLASS_CH = 3
CLASS_ANY = 255

OUR_PAYLOAD = 1232  # EDNS buffer size we advertise and honour (DNS flag day 2020)
NO_EDNS = -1
MAX_NAME = 255
MAX_RECORDS = 3  # records after the question: an OPT, a TSIG, a NOTIFY's or an IXFR's SOA

# What ``engine.respond`` returns for a request the pure path does not answer
# (a zone transfer, a NOTIFY, a signed query, when a hand-off is wired): the
# caller passes the request to its hand-off. Empty, so no real answer is it.
HAND_OFF = b""
_QNAME_END = 12 + MAX_NAME  # the question's root label must start before this offset

# The OPT record we append: root owner, TYPE 41, CLASS = our payload, TTL =
# extended rcode (0), version (0), DO flag, then RDLEN 0.
_OPT_HEAD = b"\x00\x00\x29" + OUR_PAYLOAD.to_bytes(2, "big")
OPT_PLAIN = _OPT_HEAD + b"\x00\x00\x00\x00\x00\x00"
OPT_DO = _OPT_HEAD + b"\x00\x00\x80\x00\x00\x00"
OPTION_NSID = 3  # RFC 5001: the name server's identifier
OPTION_EXPIRE = 9  # RFC 7314: a secondary's seconds left before its copy expires
OPTION_TCP_KEEPALIVE = 11  # RFC 7828: the TCP idle timeout, in units of 100 ms
MAX_OPTIONS = 16  # options of a query's OPT read at most
MAX_QUESTIONS = 4  # questions stepped over to find the OPT of a message we refuse
_OPTION = struct.Struct("!HH")
OPT_BADVERS = _OPT_HEAD + b"\x01\x00\x00\x00\x00\x00"
OPT_BADVERS_DO = _OPT_HEAD + b"\x01\x00\x80\x00\x00\x00"


def skip_name(data: bytes, offset: int) -> int:
    """Return the offset just past a record's owner name, without decoding it.

    Labels are stepped over up to the root label or the first compression
    pointer; the pointer is not followed (only checked to point backwards),
    so a name costs at most 128 steps however it is built. FormError if the
    name is cut short, longer than 255 octets before its end, or holds an
    unknown label type.
    """
    n = len(data)
    start = offset
    end = start + MAX_NAME
    if end > n:
        end = n
    while offset < end:
        b = data[offset]
        if b == 0:
            return offset + 1
        if b >= 0xC0:
            if offset + 1 >= n:
                raise FormError("truncated compression pointer")
            if (((b & 0x3F) << 8) | data[offset + 1]) >= start:
                raise FormError("compression pointer that does not point backwards")
            return offset + 2
        if b > 63:
            raise FormError("unknown label type")
        offset += b + 1
    raise FormError("name runs past the message" if offset >= n else "name longer than 255 octets")


def parse_query(data: bytes) -> tuple[int, int, bytes, int, bool, int]:
    """Parse header, question and OPT of a query.

    Returns (flags, question_end, key, payload, do, version): ``key`` is the
    lower-cased qname wire followed by qtype and qclass, ``payload`` the
    client's EDNS buffer size (at least 512) or NO_EDNS.
    Raises ShortHeader or NotAQuery (drop), FormError (answer FORMERR) and,
    for a well-formed query whose last record is a TSIG, Signed (the
    engine's slow path judges it). The opcode is not judged here; the engine
    decides NOTIMP.
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
    if (ancount or nscount) and not flags & OPCODE_MASK and not _ixfr_soa(data, ancount, nscount):
        raise FormError("answer or authority records in a query")
    # The question name: uncompressed labels only, its root label before
    # _QNAME_END (so at most 255 octets, and at most 128 steps to find out).
    i = 12
    end = n if n < _QNAME_END else _QNAME_END
    while True:
        if i >= end:
            if i >= n:
                raise FormError("question name runs past the message")
            raise FormError("question name longer than 255 octets")
        b = data[i]
        if b == 0:
            break
        if b > 63:
            raise FormError("compressed or invalid label in the question")
        i += b + 1
    name_end = i + 1
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
    records = ancount + nscount + arcount
    if not records:  # the usual query without EDNS
        if qend != n:
            raise FormError("trailing bytes after the message")
        return flags, qend, key, NO_EDNS, False, 0
    if records > MAX_RECORDS:
        raise FormError("more records after the question than a query carries")
    payload = NO_EDNS
    do = False
    version = 0
    tsig = 0
    offset = qend
    first_additional = ancount + nscount  # only other opcodes get here with these
    for index in range(records):
        owner = offset
        offset = skip_name(data, offset)
        if offset + 10 > n:
            raise FormError("record cut short")
        rtype, rclass, ttl, rdlen = _RR_FIXED.unpack_from(data, offset)
        offset += 10 + rdlen
        if offset > n:
            raise FormError("record data cut short")
        if index < first_additional:
            continue
        if rtype == TYPE_OPT:
            if payload != NO_EDNS:
                raise FormError("more than one OPT record")
            if data[owner] != 0:
                raise FormError("OPT owner is not the root")
            payload = rclass if rclass > 512 else 512
            version = (ttl >> 16) & 0xFF
            do = bool(ttl & 0x8000)
        elif rtype == TYPE_TSIG:
            if index != records - 1:
                raise FormError("TSIG is not the last record (RFC 8945 §5.1)")
            tsig = owner
        else:
            raise FormError("an additional record other than OPT and TSIG")
    if offset != n:
        raise FormError("trailing bytes after the message")
    if tsig:
        raise Signed(flags, qend, payload, do, tsig)
    return flags, qend, key, payload, do, version


def _ixfr_soa(data: bytes, ancount: int, nscount: int) -> bool:
    """An IXFR query's one authority record (its SOA, RFC 1995 §3): allowed in a QUERY."""
    if ancount or nscount != 1:
        return False
    try:
        end = skip_name(data, 12)
    except FormError:
        return False
    return end + 2 <= len(data) and data[end] == 0 and data[end + 1] == TYPE_IXFR


def opt_span(data: bytes, qend: int) -> tuple[int, int] | None:
    """Where the OPT's RDATA (its options) lies in a query ``parse_query`` accepted:
    (start, end), or None without an OPT.

    Walks the records after the question once more; only queries that carry
    more than a bare OPT get here, and only on a server that answers an option.
    """
    n = len(data)
    if qend + 11 <= n and data[qend] == data[qend + 1] == 0 and data[qend + 2] == TYPE_OPT:
        start = qend + 11  # the usual: the OPT first after the question
        return start, min(start + ((data[qend + 9] << 8) | data[qend + 10]), n)
    records = sum(_COUNTS.unpack_from(data, 6)[:3]) if n >= 12 else 0
    return _find_opt(data, qend, min(records, MAX_RECORDS))


def _find_opt(data: bytes, offset: int, records: int) -> tuple[int, int] | None:
    n = len(data)
    for _ in range(records):
        offset = skip_name(data, offset)
        if offset + 10 > n:
            return None
        rtype, _, _, rdlen = _RR_FIXED.unpack_from(data, offset)
        start, end = offset + 10, min(offset + 10 + rdlen, n)
        if rtype == TYPE_OPT:
            return start, end
        offset = end
    return None


def has_option(data: bytes, qend: int, code: int) -> bool:
    """Whether the OPT of a query (``parse_query`` accepted it) carries option ``code``."""
    span = opt_span(data, qend)
    if span is None:
        return False
    start, end = span
    while start + 4 <= end:
        found, length = _OPTION.unpack_from(data, start)
        if found == code:
            return True
        start += 4 + length
    return False


def options(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """The (code, length) of each option in the OPT RDATA ``data[start:end]``, in order;
    at most ``MAX_OPTIONS`` (an OPT of a query carries a few)."""
    out: list[tuple[int, int]] = []
    while start + 4 <= end and len(out) < MAX_OPTIONS:
        code, length = _OPTION.unpack_from(data, start)
        out.append((code, length))
        start += 4 + length
    return out


def error_opt(data: bytes) -> tuple[bool, int, int] | None:
    """The OPT of a message ``parse_query`` refused (FORMERR) or that has no question:
    (DO, options start, options end), or None when it has none, or when the
    records cannot be walked (then no OPT is answered, as for a malformed one).

    Bounded as ``parse_query`` is: ``MAX_QUESTIONS`` questions and
    ``MAX_RECORDS`` records at most are stepped over.
    """
    if len(data) < 12:
        return None
    qdcount, ancount, nscount, arcount = _COUNTS.unpack_from(data, 4)
    if not arcount or qdcount > MAX_QUESTIONS or ancount + nscount + arcount > MAX_RECORDS:
        return None
    try:
        offset = 12
        for _ in range(qdcount):
            offset = skip_name(data, offset) + 4
        span = _find_opt(data, offset, ancount + nscount + arcount)
    except FormError:
        return None
    if span is None:
        return None
    do_at = span[0] - 4  # the OPT's TTL is extended rcode, version, DO|Z, Z; RDLEN follows
    return bool(data[do_at] & 0x80), span[0], span[1]


def opt_with(do: bool, options: bytes) -> bytes:
    """Our OPT record carrying ``options`` (each already code, length and value)."""
    if not options:
        return OPT_DO if do else OPT_PLAIN
    flags = b"\x80\x00" if do else b"\x00\x00"
    return _OPT_HEAD + b"\x00\x00" + flags + len(options).to_bytes(2, "big") + options


def option(code: int, value: bytes) -> bytes:
    """One EDNS option: code, length, value."""
    return _OPTION.pack(code, len(value)) + value


def opt_expire(do: bool, seconds: int) -> bytes:
    """Our OPT with the EXPIRE option (RFC 7314 §3): ``seconds`` left, 32 bits."""
    return opt_with(do, expire_option(seconds))


def expire_option(seconds: int) -> bytes:
    """RFC 7314's EXPIRE option: ``seconds`` left (clamped to 32 bits)."""
    return option(OPTION_EXPIRE, min(max(seconds, 0), 0xFFFFFFFF).to_bytes(4, "big"))


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
