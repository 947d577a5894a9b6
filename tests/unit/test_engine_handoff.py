"""The engine's hand-off: with ``hand_off`` set, AXFR/IXFR, NOTIFY and TSIG-signed queries
come back as ``wire.HAND_OFF``; without it, they are answered as before; ordinary queries
are answered either way. ``wire.parse_query`` takes an IXFR's authority SOA."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rrset
import dns.tsig
import pytest

from dnsserve import wire
from dnsserve.answer.engine import Engine
from dnsserve.errors import FormError
from testkit import SHIPPED_ZONES
from testkit.answers import build_engine

KEY = dns.tsig.Key("xfr", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=")


@pytest.fixture(scope="module")
def engines() -> tuple[Engine, Engine]:
    plain = build_engine(SHIPPED_ZONES)
    handing = build_engine(SHIPPED_ZONES)
    handing.hand_off = True
    return plain, handing


def ixfr() -> dns.message.Message:
    q = dns.message.make_query("example.com.", "IXFR")
    q.authority.append(dns.rrset.from_text("example.com.", 0, "IN", "SOA", ". . 1 0 0 0 0"))
    return q


def notify() -> dns.message.Message:
    q = dns.message.make_query("example.com.", "SOA")
    q.flags = dns.flags.AA
    q.set_opcode(dns.opcode.NOTIFY)
    return q


def signed() -> dns.message.Message:
    q = dns.message.make_query("www.example.com.", "A")
    q.use_tsig({KEY.name: KEY}, KEY.name)
    return q


REQUESTS = {
    "axfr": lambda: dns.message.make_query("example.com.", "AXFR"),
    "ixfr": ixfr,
    "notify": notify,
    "signed": signed,
}
WITHOUT = {"axfr": dns.rcode.REFUSED, "ixfr": dns.rcode.REFUSED, "notify": dns.rcode.NOTIMP,
           "signed": dns.rcode.NOTAUTH}


@pytest.mark.parametrize("kind", sorted(REQUESTS))
@pytest.mark.parametrize("tcp", [False, True])
def test_handed_off_only_with_a_hand_off(engines: tuple[Engine, Engine], kind: str,
                                         tcp: bool) -> None:
    plain, handing = engines
    data = REQUESTS[kind]().to_wire()
    assert handing.respond(data, tcp=tcp) == wire.HAND_OFF
    out = plain.respond(data, tcp=tcp)
    assert out
    assert dns.message.from_wire(out, keyring=False).rcode() == WITHOUT[kind]


def test_ordinary_queries_are_answered(engines: tuple[Engine, Engine]) -> None:
    _, handing = engines
    for qtype in ("A", "SOA", "NS", "TXT"):
        out = handing.respond(dns.message.make_query("www.example.com.", qtype).to_wire(),
                              tcp=False)
        assert out
        assert dns.message.from_wire(out).rcode() == dns.rcode.NOERROR


def test_an_ixfr_authority_soa_parses() -> None:
    flags, *_ = wire.parse_query(ixfr().to_wire())
    assert not flags & wire.OPCODE_MASK


def test_authority_records_in_other_queries_are_formerr() -> None:
    q = dns.message.make_query("example.com.", "SOA")
    q.authority.append(dns.rrset.from_text("example.com.", 0, "IN", "SOA", ". . 1 0 0 0 0"))
    with pytest.raises(FormError):
        wire.parse_query(q.to_wire())
    q = ixfr()
    q.answer.append(dns.rrset.from_text("example.com.", 0, "IN", "SOA", ". . 1 0 0 0 0"))
    with pytest.raises(FormError):
        wire.parse_query(q.to_wire())
