"""Pool answers through snapshots and the engine, no sockets, explicit time.

The shipped zones, then the edge zones (tests/data/zones_edge/main): which
prebuilt answers depend on a pool, so that a health change rebuilds them.
"""

from __future__ import annotations

import collections
from types import MappingProxyType

import dns.message
import dns.name
import dns.rcode
import pytest
from dns.rdatatype import RdataType

from dnsserve.answer.engine import Engine
from dnsserve.answer.lookup import answer_key
from dnsserve.answer.policies import AllDown, Policy, Pool, PoolMember, select
from dnsserve.answer.snapshot import Snapshot, build_snapshot
from dnsserve.health.model import HealthView, MemberHealth, MemberId, State
from dnsserve.zones.load import load_zones
from testkit import SHIPPED_ZONES
from testkit.answers import EDGE_MAIN, ask

ZONES = SHIPPED_ZONES
WWW = dns.name.from_text("www.example.com.")
KEY = (WWW, RdataType.A)


@pytest.fixture(scope="module")
def tables():  # type: ignore[no-untyped-def]
    return load_zones(ZONES).tables


def members(*weights: int) -> tuple[PoolMember, ...]:
    return tuple(
        PoolMember(f"127.0.0.{11 + i}", MemberId("web", f"127.0.0.{11 + i}"), weight=w)
        for i, w in enumerate(weights)
    )


def down(*ms: PoolMember) -> HealthView:
    return HealthView(
        members=MappingProxyType({m.member: MemberHealth(State.DOWN, 0.0) for m in ms})
    )


def answers(engine: Engine, qname: str = "www.example.com.", qtype: str = "A", n: int = 1):  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        q = dns.message.make_query(qname, qtype)
        r = dns.message.from_wire(engine.respond(q.to_wire(), tcp=False) or b"")
        out.append(r)
    return out


def values(r: dns.message.Message, rdtype: RdataType = RdataType.A) -> list[str]:
    return [rd.to_text() for rrset in r.answer if rrset.rdtype == rdtype for rd in rrset]


def test_all_rotates_and_carries_pool_ttl(tables) -> None:  # type: ignore[no-untyped-def]
    pool = Pool(WWW, RdataType.A, Policy.ALL, members(1, 1, 1), max_answers=2, ttl=20)
    engine = Engine(build_snapshot(tables, selections={KEY: select(pool, HealthView(), 0.0)}))
    seen = [tuple(values(r)) for r in answers(engine, n=3)]
    assert len(set(seen)) == 3 and all(len(s) == 2 for s in seen)
    assert answers(engine)[0].answer[0].ttl == 20


def test_weighted_shares_exact_over_a_cycle(tables) -> None:  # type: ignore[no-untyped-def]
    pool = Pool(WWW, RdataType.A, Policy.WEIGHTED, members(3, 1, 0), max_answers=1)
    engine = Engine(build_snapshot(tables, selections={KEY: select(pool, HealthView(), 0.0)}))
    counts = collections.Counter(values(r)[0] for r in answers(engine, n=2000))
    # A low-discrepancy draw: shares within 1% of 3:1, weight 0 never while others are up.
    assert abs(counts["127.0.0.11"] / 2000 - 0.75) < 0.01
    assert abs(counts["127.0.0.12"] / 2000 - 0.25) < 0.01
    assert counts["127.0.0.13"] == 0


def test_health_change_rebuilds_only_dependents(tables) -> None:  # type: ignore[no-untyped-def]
    ms = members(1, 1, 1)
    pool = Pool(WWW, RdataType.A, Policy.ALL, ms, max_answers=8)
    first = build_snapshot(tables, selections={KEY: select(pool, HealthView(), 0.0)})
    second = first.with_selections({KEY: select(pool, down(ms[0]), 1.0)})
    www = answer_key(WWW, RdataType.A, 1)
    alias = answer_key(dns.name.from_text("alias.example.com."), RdataType.A, 1)
    mx = answer_key(dns.name.from_text("example.com."), RdataType.MX, 1)
    assert {www, alias} <= first.depends[KEY]
    assert second.answers[mx] is first.answers[mx]
    assert second.answers[www] is not first.answers[www]
    engine = Engine(second)
    for r in answers(engine, n=4) + answers(engine, "alias.example.com.", n=4):
        assert "127.0.0.11" not in values(r) and len(values(r)) == 2


@pytest.mark.parametrize(
    ("mode", "expect"),
    [
        (AllDown.ALL, {"127.0.0.11", "127.0.0.12"}),
        (AllDown.FALLBACK, {"192.0.2.99"}),
        (AllDown.NODATA, set()),
    ],
)
def test_all_down_modes(tables, mode: AllDown, expect: set[str]) -> None:  # type: ignore[no-untyped-def]
    ms = members(1, 1)
    fallback = ("192.0.2.99",) if mode is AllDown.FALLBACK else ()
    pool = Pool(WWW, RdataType.A, Policy.ALL, ms, when_all_down=mode, fallback=fallback)
    engine = Engine(build_snapshot(tables, selections={KEY: select(pool, down(*ms), 0.0)}))
    r = answers(engine)[0]
    assert r.rcode() == dns.rcode.NOERROR
    assert set(values(r)) == expect
    if not expect:  # NODATA: the SOA, and the name still exists for other types
        assert r.authority and r.authority[0].rdtype == RdataType.SOA
        assert values(answers(engine, qtype="AAAA")[0], RdataType.AAAA) == ["2001:db8::80"]


def test_cname_pool_fails_over_and_is_followed(tables) -> None:  # type: ignore[no-untyped-def]
    owner = dns.name.from_text("app.example.com.")
    ms = (
        PoolMember("www.example.com.", MemberId("web", "127.0.0.21")),
        PoolMember("www.example.org.", MemberId("web", "127.0.0.22")),
    )
    pool = Pool(owner, RdataType.CNAME, Policy.ALL, ms)
    snap: Snapshot = build_snapshot(
        tables, selections={(owner, RdataType.CNAME): select(pool, down(ms[1]), 0.0)}
    )
    engine = Engine(snap)
    for r in answers(engine, "app.example.com.", n=3):
        assert [rrset.rdtype for rrset in r.answer] == [RdataType.CNAME, RdataType.A]
        assert r.answer[0][0].target.to_text() == "www.example.com."
    engine.swap(snap.with_selections({(owner, RdataType.CNAME): select(pool, down(ms[0]), 1.0)}))
    r = answers(engine, "app.example.com.")[0]
    # The target is in another zone: the chain stops after the CNAME.
    assert [rrset.rdtype for rrset in r.answer] == [RdataType.CNAME]
    assert r.answer[0][0].target.to_text() == "www.example.org."


def test_reason_only_change_rebuilds_nothing(tables) -> None:  # type: ignore[no-untyped-def]
    pool = Pool(WWW, RdataType.A, Policy.ALL, members(1, 1, 1))
    first = build_snapshot(tables, selections={KEY: select(pool, HealthView(), 0.0)})
    suspect = select(pool, HealthView(suspect=True), 1.0, first.selections[KEY])
    assert suspect != first.selections[KEY] and suspect.answers_same(first.selections[KEY])
    second = first.with_selections({KEY: suspect})
    assert second.selections[KEY] is suspect  # the new reason is kept
    assert second.zones is first.zones and second.answers is first.answers
    assert second.generation == first.generation + 1


def test_flip_shares_other_pools_and_updates_the_slow_path(tables) -> None:  # type: ignore[no-untyped-def]
    mail = dns.name.from_text("mail.example.com.")
    ms = members(1, 1, 1)
    www_pool = Pool(WWW, RdataType.A, Policy.ALL, ms)
    mail_pool = Pool(mail, RdataType.A, Policy.ALL, (
        PoolMember("192.0.2.25", MemberId("mail", "a")),
        PoolMember("192.0.2.27", MemberId("mail", "b")),
    ))
    first = build_snapshot(tables, selections={
        KEY: select(www_pool, HealthView(), 0.0),
        (mail, RdataType.A): select(mail_pool, HealthView(), 0.0),
    })
    second = first.with_selections({KEY: select(www_pool, down(ms[0]), 1.0)})
    origin, org = dns.name.from_text("example.com."), dns.name.from_text("example.org.")
    mx = answer_key(origin, RdataType.MX, 1)
    assert second.answers[mx] is first.answers[mx]  # uses only the mail pool
    assert second.zones[origin].rrset(mail, RdataType.A) is first.zones[origin].rrset(
        mail, RdataType.A)
    assert second.zones[org] is first.zones[org]
    # ANY is not prebuilt: the slow path reads the zones, which follow the flip
    engine = Engine(second)
    for r in answers(engine, qtype="ANY", n=3):
        assert values(r) and "127.0.0.11" not in values(r)


def test_cname_pool_new_target_follows_later_changes(tables) -> None:  # type: ignore[no-untyped-def]
    # The CNAME pool first answers only mail (its www member is down), so at
    # build time app A does not use the www pool; once it also answers www,
    # a later change of the www pool must rebuild app A too.
    app = dns.name.from_text("app.example.com.")
    app_key = (app, RdataType.CNAME)
    ms = members(1, 1)
    via_www = PoolMember("www.example.com.", MemberId("app", "www"))
    app_pool = Pool(app, RdataType.CNAME, Policy.ALL,
                    (PoolMember("mail.example.com.", MemberId("app", "mail")), via_www))
    www_pool = Pool(WWW, RdataType.A, Policy.ALL, ms)
    first = build_snapshot(tables, selections={
        KEY: select(www_pool, HealthView(), 0.0),
        app_key: select(app_pool, down(via_www), 0.0),
    })
    second = first.with_selections({app_key: select(app_pool, HealthView(), 1.0)})
    third = second.with_selections({KEY: select(www_pool, down(ms[0]), 2.0)})
    through_www = [r for r in answers(Engine(third), "app.example.com.", n=4)
                   if r.answer[0][0].target == WWW]
    assert through_www
    for r in through_www:
        assert values(r) == ["127.0.0.12"]


# --- dependencies of prebuilt answers on pools, on the edge zones -------------------------------


TARGET = dns.name.from_text("target.rv.example.")
NS1 = dns.name.from_text("ns1.rv.example.")
MEMBERS = (
    PoolMember("192.0.2.61", MemberId("edge", "a")),
    PoolMember("192.0.2.62", MemberId("edge", "b")),
)


def _view(*down: PoolMember) -> HealthView:
    return HealthView(
        members=MappingProxyType({m.member: MemberHealth(State.DOWN, 0.0) for m in down})
    )


def _a_values(r: dns.message.Message, owner: str) -> set[str]:
    return {rd.to_text() for rrset in r.answer + r.additional
            if rrset.rdtype == RdataType.A and rrset.name.to_text().lower() == owner
            for rd in rrset}


# Regression (a fixed bug): bug (high): a pool that is all down with
# when_all_down='nodata' when the snapshot is built never comes back: ZoneTable._at_node
# records a dynamic rrset in `uses` only when it is found, so the NODATA answer is not in
# Snapshot.depends and with_selections never rebuilds it (the prebuilt NODATA stays until a
# reload; a start with a persisted 'down' state does this). Fix: in _at_node record (source,
# qtype) and (source, CNAME) in uses whenever they are dynamic, found or not.
def test_pool_that_starts_nodata_recovers() -> None:
    tables = load_zones(EDGE_MAIN, log_problems=False).tables
    pool = Pool(TARGET, RdataType.A, Policy.ALL, MEMBERS, when_all_down=AllDown.NODATA)
    first = build_snapshot(tables, selections={(TARGET, RdataType.A): select(
        pool, _view(*MEMBERS), 0.0)})
    assert not ask(Engine(first), "target.rv.example.", "A").answer
    second = first.with_selections({(TARGET, RdataType.A): select(pool, _view(), 1.0)})
    r = ask(Engine(second), "target.rv.example.", "A")
    assert _a_values(r, "target.rv.example.") == {"192.0.2.61", "192.0.2.62"}


# Regression (a fixed bug): bug (medium): additional A/AAAA of an NS/MX/SRV target
# that is a pool are read by ZoneTable._addresses without recording `uses`, so the MX/NS
# answers are not rebuilt on a health change and keep handing out a down member's address.
# Fix: pass `uses` to _addresses and add (target, rdtype) when it is dynamic.
@pytest.mark.parametrize(("qname", "qtype"), [("mxdup.rv.example.", "MX"), ("rv.example.", "NS")])
def test_additional_addresses_follow_pool_health(qname: str, qtype: str) -> None:
    tables = load_zones(EDGE_MAIN, log_problems=False).tables
    pool = Pool(NS1, RdataType.A, Policy.ALL, MEMBERS)
    first = build_snapshot(tables, selections={(NS1, RdataType.A): select(pool, _view(), 0.0)})
    second = first.with_selections({(NS1, RdataType.A): select(pool, _view(MEMBERS[0]), 1.0)})
    engine = Engine(second)
    assert _a_values(ask(engine, "ns1.rv.example.", "A"), "ns1.rv.example.") == {"192.0.2.62"}
    assert _a_values(ask(engine, qname, qtype), "ns1.rv.example.") == {"192.0.2.62"}
