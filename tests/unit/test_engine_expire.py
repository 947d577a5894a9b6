"""RFC 7314 EXPIRE in the engine: answered for secondary zones when a query asks."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode

from dnsserve import wire
from dnsserve.answer.engine import expire_elsewhere
from dnsserve.answer.lookup import key_parts
from testkit.answers import EDGE_MAIN, build_engine, exchange

PAR = dns.name.from_text("par.example.")


def _expire(key: bytes) -> int | None:
    qname = key_parts(key)[0]
    return 1234 if qname.is_subdomain(PAR) else None


def _ask(qname: str, options: list[dns.edns.Option], *, tcp: bool = False,
         want_dnssec: bool = False) -> dns.message.Message:
    engine = build_engine(EDGE_MAIN)
    engine.expire = _expire
    q = dns.message.make_query(qname, "SOA", use_edns=0, options=options,
                               want_dnssec=want_dnssec)
    return dns.message.from_wire(exchange(engine, q.to_wire(), tcp=tcp))


EXPIRE = dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, b"")
COOKIE = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01" * 8)


def _expire_values(r: dns.message.Message) -> list[bytes]:
    return [o.to_wire() for o in r.options if o.otype == dns.edns.OptionType.EXPIRE]


def test_expire_answered_for_a_secondary_zone() -> None:
    for tcp in (False, True):
        r = _ask("par.example.", [COOKIE, EXPIRE], tcp=tcp, want_dnssec=tcp)
        assert r.rcode() == dns.rcode.NOERROR and r.answer
        assert _expire_values(r) == [(1234).to_bytes(4, "big")]
        assert r.payload == 1232 and bool(r.ednsflags & dns.flags.DO) is tcp


def test_expire_not_answered_for_other_zones_or_unasked() -> None:
    assert _expire_values(_ask("rv.example.", [EXPIRE])) == []
    assert _expire_values(_ask("par.example.", [COOKIE])) == []
    assert _expire_values(_ask("par.example.", [])) == []


def test_expire_elsewhere_hands_off_queries_that_ask() -> None:
    """A worker's engine does not hold the timers: a query with EXPIRE goes to its owner."""
    engine = build_engine(EDGE_MAIN)
    engine.expire = expire_elsewhere
    engine.hand_off = True
    asks = dns.message.make_query("par.example.", "SOA", use_edns=0, options=[EXPIRE])
    assert engine.respond(asks.to_wire(), tcp=False) == wire.HAND_OFF
    plain = dns.message.make_query("par.example.", "SOA", use_edns=0, options=[COOKIE])
    assert engine.respond(plain.to_wire(), tcp=False)


def test_expire_elsewhere_without_a_hand_off_answers_without_the_option() -> None:
    engine = build_engine(EDGE_MAIN)
    engine.expire = expire_elsewhere
    q = dns.message.make_query("par.example.", "SOA", use_edns=0, options=[EXPIRE])
    r = dns.message.from_wire(exchange(engine, q.to_wire(), tcp=False))
    assert r.rcode() == dns.rcode.NOERROR and r.answer and _expire_values(r) == []


def test_expire_answered_on_a_miss_too() -> None:
    r = _ask("no-such-name.par.example.", [EXPIRE])
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert _expire_values(r) == [(1234).to_bytes(4, "big")]
