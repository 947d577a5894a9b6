"""Property tests of the answer engine: random and mutated packets, no sockets.

The engine is built from the shipped zones with the zone loader and ``build_snapshot``
and fed bytes directly. For every input it must return ``None`` (drop) or
bytes that dnspython parses strictly (``ignore_trailing=False``), never raise.
What else must hold of an answer, whatever the input:

- fewer than 12 bytes (or QR set) -> None;
- the response ID is the query's ID, QR is set, RA is not, the opcode is the
  query's;
- never SERVFAIL: nothing in the shipped zones calls for it, so a SERVFAIL
  means the engine's "unexpected error" path ran (a bug);
- the question, when echoed, is the client's bytes (case kept);
- over UDP the response fits the client's limit: 512 without EDNS, else
  max(512, min(payload, 1232)).

Inputs start from queries dnspython makes (with and without EDNS, DO, options,
odd classes and types, mixed case), then flip, set, insert, delete and
truncate bytes, splice two queries, or rewrite header counts.
"""

from __future__ import annotations

import functools
import struct

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsserve.answer.engine import Engine
from testkit import SHIPPED_ZONES
from testkit.answers import build_engine

FUZZ = settings(
    max_examples=5 * settings().max_examples,  # 500 under the thorough profile
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NAMES = [
    "example.com.",
    "www.example.com.",
    "alias.example.com.",
    "external.example.com.",
    "foo.wild.example.com.",
    "a.host.wild.example.com.",
    "b.example.com.",
    "sub.example.com.",
    "ns1.sub.example.com.",
    "x.dept.example.com.",
    "dept.example.com.",
    "big.example.com.",
    "_sip._tcp.example.com.",
    "nope.example.com.",
    "example.org.",
    "portal.example.org.",
    "example.net.",
    "version.bind.",
    "id.server.",
    ".",
]
QTYPES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 39, 43, 99, 251, 252, 253, 254, 255, 256, 65280, 65535]
QCLASSES = [1, 1, 1, 3, 4, 254, 255, 42]


@functools.cache
def engine() -> Engine:
    return build_engine(SHIPPED_ZONES, chaos=True)


def randomize_case(name: str, mask: int) -> str:
    return "".join(
        c.upper() if c.isalpha() and (mask >> (i % 60)) & 1 else c for i, c in enumerate(name)
    )


@st.composite
def label_names(draw: st.DrawFn) -> str:
    labels = draw(
        st.lists(
            st.text("abcdefghijklmnopqrstuvwxyz0123456789-*_", min_size=1, max_size=20), max_size=4
        )
    )
    zone = draw(
        st.sampled_from(
            ["example.com.", "example.org.", "wild.example.com.", "sub.example.com.", "net."]
        )
    )
    return ".".join([*labels, zone]) if labels else zone


@st.composite
def queries(draw: st.DrawFn) -> bytes:
    """A well-formed query as dnspython writes it."""
    name = draw(st.one_of(st.sampled_from(NAMES), label_names()))
    name = randomize_case(name, draw(st.integers(0, 2**60)))
    qtype = draw(st.sampled_from(QTYPES))
    qclass = draw(st.sampled_from(QCLASSES))
    edns = draw(st.sampled_from([None, None, 0, 0, 1]))
    kwargs: dict[str, object] = {}
    if edns is not None:
        kwargs["use_edns"] = edns
        kwargs["payload"] = draw(st.sampled_from([0, 100, 512, 1232, 1400, 4096, 65535]))
        kwargs["want_dnssec"] = draw(st.booleans())
        kwargs["options"] = draw(
            st.lists(
                st.one_of(
                    st.builds(
                        dns.edns.GenericOption, st.integers(65001, 65534), st.binary(max_size=20)
                    ),
                    st.just(dns.edns.ECSOption("192.0.2.0", 24)),
                    st.just(dns.edns.CookieOption(b"\x01" * 8, b"")),
                ),
                max_size=2,
            )
        )
    q = dns.message.make_query(dns.name.from_text(name), qtype, qclass, **kwargs)  # type: ignore[arg-type]
    q.id = draw(st.integers(0, 0xFFFF))
    q.flags = (
        draw(st.integers(0, 0xFFFF)) & ~dns.flags.QR & ~0x7800 if draw(st.booleans()) else q.flags
    )
    return q.to_wire()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(queries()))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(
            st.sampled_from(
                ["flip", "set", "insert", "delete", "truncate", "splice", "count", "dup"]
            )
        )
        n = len(data)
        pos = draw(st.integers(0, max(n - 1, 0)))
        if op == "flip" and n:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "set" and n:
            data[pos] = draw(
                st.sampled_from([0x00, 0x3F, 0x40, 0x80, 0xC0, 0xC0 | (pos & 0x3F), 0xFF])
            )
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and n:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        elif op == "splice":
            other = draw(queries())
            data = data[:pos] + other[draw(st.integers(0, len(other))) :]
        elif op == "count" and n >= 12:
            field = 4 + 2 * draw(st.integers(0, 3))
            data[field : field + 2] = struct.pack("!H", draw(st.integers(0, 3)))
        elif op == "dup" and n > 12:
            data += data[draw(st.integers(12, n - 1)) :]
    return bytes(data)


def udp_limit(query: bytes) -> int | None:
    """The client's UDP limit as dnspython reads the query, None if it cannot."""
    try:
        q = dns.message.from_wire(query)
    except (dns.exception.DNSException, ValueError):
        return None
    if q.edns < 0:
        return 512
    return max(512, min(q.payload, 1232))


def check(query: bytes, tcp: bool) -> dns.message.Message | None:
    out = engine().respond(query, tcp=tcp)
    if len(query) < 12 or query[2] & 0x80:
        assert out is None, "short header or QR set must be dropped"
        return None
    if out is None:
        return None
    assert isinstance(out, bytes)
    opcode = dns.opcode.from_flags(struct.unpack("!H", out[2:4])[0])
    # dnspython reads an UPDATE's zone section by UPDATE's rules (type SOA only), and
    # a FORMERR echoes whatever zone section came: read the sections as a QUERY's
    readable = out[:2] + bytes([out[2] & 0x87]) + out[3:] if opcode == dns.opcode.UPDATE else out
    resp = dns.message.from_wire(readable, ignore_trailing=False, keyring=False)  # a TSIG: BADKEY
    assert out[:2] == query[:2], "response ID must be the query's ID"
    assert resp.flags & dns.flags.QR
    assert not resp.flags & dns.flags.RA
    assert opcode == dns.opcode.from_flags(struct.unpack("!H", query[2:4])[0])
    assert resp.rcode() != dns.rcode.SERVFAIL, "the engine's unexpected-error path ran"
    if resp.question:
        qlen = len(resp.question[0].name.to_wire()) + 4
        assert out[12 : 12 + qlen] == query[12 : 12 + qlen], "question not echoed as sent"
    if tcp:
        assert len(out) <= 65535
    else:
        limit = udp_limit(query)
        assert len(out) <= (limit if limit is not None else 1232)
    return resp


@FUZZ
@given(data=st.binary(max_size=600), tcp=st.booleans())
def test_random_bytes(data: bytes, tcp: bool) -> None:
    check(data, tcp)


@FUZZ
@given(data=st.binary(min_size=12, max_size=300), tcp=st.booleans())
def test_random_bytes_query_header(data: bytes, tcp: bool) -> None:
    """Random bodies behind a header that claims one question and is a QUERY."""
    check(data[:2] + b"\x01\x00\x00\x01" + data[6:], tcp)


@FUZZ
@given(data=mutated(), tcp=st.booleans())
def test_mutated_queries(data: bytes, tcp: bool) -> None:
    check(data, tcp)


@FUZZ
@given(data=queries(), tcp=st.booleans())
def test_wellformed_queries_answered(data: bytes, tcp: bool) -> None:
    """A query dnspython writes is always answered, never with FORMERR."""
    resp = check(data, tcp)
    assert resp is not None, "a well-formed query was dropped"
    # Unknown classes may get FORMERR (issue 2, "Bad input"); IN, CH and ANY may not.
    qclass = dns.message.from_wire(data).question[0].rdclass
    if qclass in (dns.rdataclass.IN, dns.rdataclass.CH, dns.rdataclass.ANY):
        assert resp.rcode() != dns.rcode.FORMERR, resp.to_text()
        assert resp.question, "the question is echoed"


def test_short_inputs_dropped() -> None:
    """Every length below a header, exhaustively, drops (and the check itself can fail)."""
    for n in range(12):
        assert engine().respond(b"\x12" * n, tcp=False) is None
        assert engine().respond(b"\x12" * n, tcp=True) is None


def test_truncated_valid_query_every_length() -> None:
    """Every prefix of a valid EDNS query: drop below 12 bytes, FORMERR after, never a crash."""
    q = dns.message.make_query("www.example.com.", "A", use_edns=0, want_dnssec=True, id=0x2222)
    wire = q.to_wire()
    for n in range(len(wire)):
        for tcp in (False, True):
            resp = check(wire[:n], tcp)
            if n >= 12:
                assert resp is not None and resp.rcode() == dns.rcode.FORMERR, n
    full = check(wire, False)
    assert full is not None and full.rcode() == dns.rcode.NOERROR
