"""wire's query parsing as the engine applies it: EDNS options and versions, other opcodes.

Run through the engine (no sockets) over ``tests/data/zones_edge/main``, with
dnspython building the queries and parsing our bytes. The malformed packets,
by name, are in tests/integration/test_malformed.py and the property tests in
tests/unit/test_engine_fuzz.py.

A test headed "Regression (a fixed bug)" reproduced a bug before its fix; the
comment names the RFC rule it holds the parser to.
"""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rrset
import pytest

from dnsserve.answer.engine import Engine
from testkit.answers import EDGE_MAIN, ask, build_engine, exchange, lines, query

NOERROR = dns.rcode.NOERROR


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(EDGE_MAIN)


# --- EDNS -------------------------------------------------------------------------------------


def test_opt_with_options_takes_the_long_path_and_answers_the_same(engine: Engine) -> None:
    cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01" * 8)
    plain = exchange(engine, query("mxdup.rv.example.", "MX", use_edns=0).to_wire())
    q = query("mxdup.rv.example.", "MX", use_edns=0, options=[cookie], want_dnssec=True)
    r = dns.message.from_wire(exchange(engine, q.to_wire()))
    p = dns.message.from_wire(plain)
    assert lines(r.answer) == lines(p.answer) and lines(r.additional) == lines(p.additional)
    assert r.ednsflags & dns.flags.DO and not r.options  # RFC 7873 §5.2: ignored, no echo


def test_version_1_with_do_is_badvers(engine: Engine) -> None:
    r = ask(engine, "ns1.rv.example.", "A", use_edns=1, want_dnssec=True)
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0 and not r.answer
    assert r.ednsflags & dns.flags.DO and r.question[0].name.to_text() == "ns1.rv.example."


def test_extended_rcode_bits_in_a_query_are_ignored(engine: Engine) -> None:
    q = query("ns1.rv.example.", "A", use_edns=0)
    q.ednsflags |= 0x05 << 24
    r = dns.message.from_wire(exchange(engine, q.to_wire()))
    assert r.rcode() == NOERROR and r.answer and r.edns == 0


# --- other opcodes ----------------------------------------------------------------------------


# Regression (a fixed bug): NOTIMP (and FORMERR/SERVFAIL) answers built by
# wire.header_only carry no OPT even when the query had one; RFC 6891 §6.1.1: a responder
# MUST include an OPT when the request had one (Knot does). Fix: Engine.respond appends
# OPT_PLAIN/OPT_DO with ARCOUNT 1 on the NOTIMP path (payload >= 0).
def test_notimp_keeps_opt(engine: Engine) -> None:
    q = query("rv.example.", "SOA", use_edns=0, want_dnssec=True)
    q.set_opcode(dns.opcode.STATUS)
    r = dns.message.from_wire(exchange(engine, q.to_wire()))
    assert r.rcode() == dns.rcode.NOTIMP
    assert r.edns == 0 and r.ednsflags & dns.flags.DO


# Regression (a fixed bug): wire.parse_query rejects ANCOUNT/NSCOUNT before the
# opcode is judged, so a NOTIFY with its SOA in the answer section (RFC 1996 §3.7) and any
# UPDATE (RFC 2136 §2) get FORMERR without a question. Fix: check the counts only for opcode
# QUERY. Then as BIND answers (test_opcodes_bind): a NOTIFY without a hand-off is NOTIMP with
# no question; an UPDATE of a zone (SOA zone section) is REFUSED with its question.
@pytest.mark.parametrize("opcode", [dns.opcode.NOTIFY, dns.opcode.UPDATE])
def test_other_opcodes_with_records_are_judged(engine: Engine, opcode: dns.opcode.Opcode) -> None:
    q = query("rv.example.", "SOA")
    q.set_opcode(opcode)
    record = dns.rrset.from_text("rv.example.", 3600, "IN", "SOA",
                                 "ns1.rv.example. h.rv.example. 2 1 1 1 1")
    (q.answer if opcode == dns.opcode.NOTIFY else q.authority).append(record)
    r = dns.message.from_wire(exchange(engine, q.to_wire()))
    want = (dns.rcode.NOTIMP, 0) if opcode == dns.opcode.NOTIFY else (dns.rcode.REFUSED, 1)
    assert (r.rcode(), len(r.question)) == want and r.opcode() == opcode


# --- bounded parsing (issue "Survive faults" 7) -------------------------------------------------


def _with_additional(records: bytes, count: int, *, opcode: dns.opcode.Opcode | None = None,
                     answers: int = 0) -> bytes:
    q = query("ns1.rv.example.", "A")
    if opcode is not None:
        q.set_opcode(opcode)
    head = bytearray(q.to_wire())
    head[6:8] = answers.to_bytes(2, "big")
    head[10:12] = count.to_bytes(2, "big")
    return bytes(head) + records


ROOT_A = b"\x00" + struct.pack("!HHIH", 1, 1, 0, 4) + bytes(4)
ROOT_OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)


# Regression (a fixed bug): every additional record was walked, following each owner's
# compression pointers (64 hops allowed), so a 65 KB datagram of 5,444 such records took 47 ms
# and was answered NOERROR. Fix: at most wire.MAX_RECORDS records after the question, and in
# the additional section only an OPT and a TSIG (NSD's rule); owners are skipped, not followed.
@pytest.mark.parametrize(
    ("wire_", "why"),
    [
        (_with_additional(ROOT_A, 1), "an A record in the additional section"),
        (_with_additional(ROOT_OPT + ROOT_A, 2), "an OPT, then an A record"),
        (_with_additional(ROOT_OPT * 4, 4), "more records than a query carries"),
        (_with_additional(ROOT_A * 3 + ROOT_OPT, 1, opcode=dns.opcode.NOTIFY, answers=3),
         "a NOTIFY with four records"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",  # the wire has a random ID: not in the name
)
def test_records_a_query_does_not_carry_are_formerr(engine: Engine, wire_: bytes,
                                                    why: str) -> None:
    r = dns.message.from_wire(exchange(engine, wire_))
    assert r.rcode() == dns.rcode.FORMERR, why


def test_a_notify_with_its_soa_and_an_opt_is_within_the_bound(engine: Engine) -> None:
    soa_owner_pointer = b"\xc0\x0c" + struct.pack("!HHIH", 6, 1, 0, 0)  # not followed, not read
    data = _with_additional(soa_owner_pointer + ROOT_OPT, 1, opcode=dns.opcode.NOTIFY, answers=1)
    r = dns.message.from_wire(exchange(engine, data))
    assert r.rcode() == dns.rcode.NOTIMP and r.edns == 0


@pytest.mark.parametrize("labels", [128, 32_000])
def test_a_question_name_over_255_octets_is_formerr(engine: Engine, labels: int) -> None:
    data = struct.pack("!HHHHHH", 7, 0, 1, 0, 0, 0) + b"\x01a" * labels + b"\x00\x00\x01\x00\x01"
    r = dns.message.from_wire(exchange(engine, data))
    assert r.rcode() == dns.rcode.FORMERR and r.id == 7
