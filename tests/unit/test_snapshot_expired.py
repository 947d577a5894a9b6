"""Expired secondary zones in the snapshot: SERVFAIL for their names, others unchanged."""

from __future__ import annotations

from types import MappingProxyType

import dns.name
import dns.rcode
from dns.rdatatype import RdataType

from dnsserve.answer.engine import Engine
from dnsserve.answer.policies import Policy, Pool, PoolMember, select
from dnsserve.answer.snapshot import build_snapshot
from dnsserve.health.model import HealthView, MemberHealth, MemberId, State
from dnsserve.zones.load import load_zones
from testkit import SHIPPED_ZONES
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


def test_a_pool_in_an_expired_zone_stays_servfail_when_its_health_changes() -> None:
    www = dns.name.from_text("www.example.com.")
    members = tuple(PoolMember(f"127.0.0.{i}", MemberId("web", f"127.0.0.{i}"))
                    for i in (11, 12))
    pool = Pool(www, RdataType.A, Policy.ALL, members)
    tables = load_zones(SHIPPED_ZONES, log_problems=False).tables
    engine = Engine(build_snapshot(tables, selections={
        (www, RdataType.A): select(pool, HealthView(), 0.0)}))
    engine.swap(engine.snapshot.with_expired(frozenset({dns.name.from_text("example.com.")})))
    view = HealthView(members=MappingProxyType({members[0].member: MemberHealth(State.DOWN, 0.0)}))
    moved = engine.snapshot.with_selections({(www, RdataType.A): select(pool, view, 1.0)})
    engine.swap(moved)
    assert ask(engine, "www.example.com.", "A").rcode() == dns.rcode.SERVFAIL
    engine.swap(moved.with_expired(frozenset()))
    r = ask(engine, "www.example.com.", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert {rd.to_text() for rrset in r.answer for rd in rrset} == {"127.0.0.12"}
