"""Expired secondary zones in the snapshot: SERVFAIL for their names, others unchanged."""

from __future__ import annotations

import dns.name
import dns.rcode

from testkit.answers import EDGE_MAIN, ask, build_engine

PAR = dns.name.from_text("par.example.")
KID = dns.name.from_text("kid.par.example.")


def test_expired_zone_servfails_and_recovers() -> None:
    engine = build_engine(EDGE_MAIN)
    before = ask(engine, "par.example.", "SOA")
    assert before.rcode() == dns.rcode.NOERROR
    assert ask(engine, "nothing-here.par.example.", "A").rcode() == dns.rcode.NXDOMAIN
    engine.swap(engine.snapshot.with_expired(frozenset({PAR})))
    for qname, qtype in [("par.example.", "SOA"), ("nothing-here.par.example.", "A"),
                         ("par.example.", "AXFR")]:
        r = ask(engine, qname, qtype)
        assert r.rcode() == dns.rcode.SERVFAIL, (qname, qtype)
        assert not r.answer
    # a zone served below the expired one still answers; so do the others
    assert ask(engine, "kid.par.example.", "SOA").rcode() == dns.rcode.NOERROR
    assert ask(engine, "rv.example.", "SOA").rcode() == dns.rcode.NOERROR
    engine.swap(engine.snapshot.with_expired(frozenset()))
    after = ask(engine, "par.example.", "SOA")
    assert after.rcode() == dns.rcode.NOERROR and after.answer == before.answer


def test_zone_without_copy_servfails() -> None:
    engine = build_engine(EDGE_MAIN)
    missing = dns.name.from_text("secondary.example.")
    engine.swap(engine.snapshot.with_expired(frozenset({missing})))
    assert ask(engine, "www.secondary.example.", "A").rcode() == dns.rcode.SERVFAIL
    assert ask(engine, "other.example.", "A").rcode() == dns.rcode.REFUSED


def test_expired_child_zone_under_served_parent() -> None:
    engine = build_engine(EDGE_MAIN)
    engine.swap(engine.snapshot.with_expired(frozenset({KID})))
    assert ask(engine, "www.kid.par.example.", "A").rcode() == dns.rcode.SERVFAIL
    assert ask(engine, "par.example.", "SOA").rcode() == dns.rcode.NOERROR
