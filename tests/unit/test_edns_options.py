"""NSID (RFC 5001) and edns-tcp-keepalive (RFC 7828) as the engine answers them
(``answer.edns``), on each kind of response; no sockets (the real server:
tests/integration/test_nsid_keepalive.py)."""

from __future__ import annotations

import dataclasses

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from dnsserve.answer.engine import Engine
from testkit.answers import EDGE_MAIN, build_engine, exchange, query

NSID = b"node-7.ams"
ASK_NSID = dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")
ASK_KEEPALIVE = dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, b"")


@pytest.fixture(scope="module")
def engine() -> Engine:
    engine = build_engine(EDGE_MAIN, nsid=NSID)
    engine.tcp_keepalive = 25
    return engine


def options(r: dns.message.Message) -> dict[int, bytes]:
    return {o.otype: o.to_wire() for o in r.options}


# (qname, qtype, opcode, rcode): an answer, NXDOMAIN, a referral, REFUSED, NOTIMP, a
# truncated answer (512 bytes over UDP)
KINDS = [
    ("ns1.rv.example.", "A", dns.opcode.QUERY, dns.rcode.NOERROR),
    ("nope.rv.example.", "A", dns.opcode.QUERY, dns.rcode.NXDOMAIN),
    ("x.other.rv.example.", "A", dns.opcode.QUERY, dns.rcode.NOERROR),
    ("example.invalid.", "A", dns.opcode.QUERY, dns.rcode.REFUSED),
    ("rv.example.", "SOA", dns.opcode.STATUS, dns.rcode.NOTIMP),
    ("bigtxt.rv.example.", "TXT", dns.opcode.QUERY, dns.rcode.NOERROR),
]


@pytest.mark.parametrize(("qname", "qtype", "opcode", "rcode"), KINDS)
@pytest.mark.parametrize("tcp", [False, True])
def test_nsid_and_keepalive_on_every_kind(
    engine: Engine, qname: str, qtype: str, opcode: dns.opcode.Opcode, rcode: dns.rcode.Rcode,
    tcp: bool,
) -> None:
    q = query(qname, qtype, use_edns=0, payload=512, options=[ASK_NSID, ASK_KEEPALIVE])
    q.set_opcode(opcode)
    r = dns.message.from_wire(exchange(engine, q.to_wire(), tcp=tcp))
    assert r.rcode() == rcode
    if qname.startswith("bigtxt"):  # cut to 512 octets over UDP, our OPT kept
        assert bool(r.flags & dns.flags.TC) is not tcp
    want = {dns.edns.OptionType.NSID: NSID}
    if tcp:  # never over UDP (RFC 7828 §3.3.1)
        want[dns.edns.OptionType.KEEPALIVE] = (25).to_bytes(2, "big")
    assert options(r) == want


def test_formerr_with_an_opt_answers_nsid(engine: Engine) -> None:
    q = query("ns1.rv.example.", "A", use_edns=0, options=[ASK_NSID])
    wire = bytearray(q.to_wire())
    wire[5] = 0  # QDCOUNT 0: the question's bytes now trail the header
    end = 12 + len(q.question[0].name.to_wire()) + 4
    r = dns.message.from_wire(exchange(engine, bytes(wire[:12] + wire[end:])))
    assert r.rcode() == dns.rcode.FORMERR and options(r) == {dns.edns.OptionType.NSID: NSID}


def test_not_asked_not_answered(engine: Engine) -> None:
    """Without the option, or with a value in it (a query's NSID is empty), no NSID;
    the plain answer is the one a server without NSID gives."""
    plain = Engine(dataclasses.replace(engine.snapshot, nsid=b""))  # its zones, no NSID
    for opts in ([], [dns.edns.GenericOption(dns.edns.OptionType.NSID, b"x")]):
        wire = query("ns1.rv.example.", "A", use_edns=0, options=opts).to_wire()
        assert exchange(engine, wire) == exchange(plain, wire)
        assert not dns.message.from_wire(exchange(engine, wire)).options
