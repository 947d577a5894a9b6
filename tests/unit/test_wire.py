"""wire's query parsing as the engine applies it: EDNS options and versions, other opcodes.

Run through the engine (no sockets) over ``tests/data/zones_edge/main``, with
dnspython building the queries and parsing our bytes. The malformed packets,
by name, are in tests/integration/test_malformed.py and the property tests in
tests/unit/test_engine_fuzz.py.

A test headed "Regression (a fixed bug)" reproduced a bug before its fix; the
comment names the RFC rule it holds the parser to.
"""

from __future__ import annotations

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
# UPDATE (RFC 2136 §2) get FORMERR without a question, not NOTIMP (DESIGN.md: other opcodes
# get NOTIMP). Fix: check the counts only for opcode QUERY.
@pytest.mark.parametrize("opcode", [dns.opcode.NOTIFY, dns.opcode.UPDATE])
def test_other_opcodes_with_records_get_notimp(engine: Engine, opcode: dns.opcode.Opcode) -> None:
    q = query("rv.example.", "SOA")
    q.set_opcode(opcode)
    record = dns.rrset.from_text("rv.example.", 3600, "IN", "SOA",
                                 "ns1.rv.example. h.rv.example. 2 1 1 1 1")
    (q.answer if opcode == dns.opcode.NOTIFY else q.authority).append(record)
    r = dns.message.from_wire(exchange(engine, q.to_wire()))
    assert r.rcode() == dns.rcode.NOTIMP and r.opcode() == opcode and len(r.question) == 1
