"""Table-driven answers through the engine, no sockets; dnspython parses our bytes.

Each case: qname, qtype, expected rcode, AA, and the answer/authority/
additional sections as sets of "name type" strings (rdata is checked by the
differential test against Knot).
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from dnsserve.answer.engine import Engine
from dnsserve.answer.snapshot import build_snapshot
from dnsserve.zones.load import load_zones
from testkit import SHIPPED_ZONES
from testkit.answers import EDGE_MAIN, EDGE_ROOT, aa, build_engine

ZONES = SHIPPED_ZONES


@pytest.fixture(scope="module")
def engine() -> Engine:
    loaded = load_zones(ZONES)
    return Engine(build_snapshot(loaded.tables, version="dnsserve test", identity="ns-test"))


@pytest.fixture(scope="module")
def edge_engine() -> Engine:
    """The engine over the edge zones (tests/data/zones_edge/main)."""
    return build_engine(EDGE_MAIN)


def ask(engine: Engine, qname: str, qtype: str, **kw: object) -> dns.message.Message:
    tcp = bool(kw.pop("tcp", False))
    q = dns.message.make_query(qname, qtype, **kw)  # type: ignore[arg-type]
    out = engine.respond(q.to_wire(), tcp=tcp)
    assert out is not None
    r = dns.message.from_wire(out)
    assert r.id == q.id
    return r


def names(section: list) -> set[str]:  # type: ignore[type-arg]
    return {f"{r.name.to_text().lower()} {dns.rdatatype.to_text(r.rdtype)}" for r in section}


CASES = [
    # qname, qtype, rcode, aa, answer, authority, additional
    ("www.example.com.", "A", "NOERROR", True, {"www.example.com. A"}, set(), set()),
    ("example.com.", "MX", "NOERROR", True, {"example.com. MX"}, set(),
     {"mail.example.com. A", "mail2.example.com. A", "mail2.example.com. AAAA"}),
    ("example.com.", "NS", "NOERROR", True, {"example.com. NS"}, set(),
     {"ns1.example.com. A", "ns1.example.com. AAAA", "ns2.example.com. A"}),
    ("_sip._tcp.example.com.", "SRV", "NOERROR", True, {"_sip._tcp.example.com. SRV"}, set(),
     {"sip.example.com. A"}),
    ("alias.example.com.", "A", "NOERROR", True,
     {"alias.example.com. CNAME", "alias2.example.com. CNAME", "www.example.com. A"}, set(), set()),
    ("alias.example.com.", "CNAME", "NOERROR", True, {"alias.example.com. CNAME"}, set(), set()),
    ("external.example.com.", "A", "NOERROR", True, {"external.example.com. CNAME"}, set(), set()),
    ("x.dept.example.com.", "A", "NOERROR", True,
     {"dept.example.com. DNAME", "x.dept.example.com. CNAME"}, set(), set()),
    ("foo.wild.example.com.", "A", "NOERROR", True, {"foo.wild.example.com. A"}, set(), set()),
    ("a.b.wild.example.com.", "TXT", "NOERROR", True, {"a.b.wild.example.com. TXT"}, set(), set()),
    ("foo.wild.example.com.", "MX", "NOERROR", True, set(), {"example.com. SOA"}, set()),
    ("host.wild.example.com.", "TXT", "NOERROR", True, set(), {"example.com. SOA"}, set()),
    ("a.host.wild.example.com.", "A", "NXDOMAIN", True, set(), {"example.com. SOA"}, set()),
    ("b.example.com.", "A", "NOERROR", True, set(), {"example.com. SOA"}, set()),
    ("nope.example.com.", "A", "NXDOMAIN", True, set(), {"example.com. SOA"}, set()),
    ("www.example.com.", "MX", "NOERROR", True, set(), {"example.com. SOA"}, set()),
    ("sub.example.com.", "A", "NOERROR", False, set(), {"sub.example.com. NS"},
     {"ns1.sub.example.com. A"}),
    ("deep.x.sub.example.com.", "AAAA", "NOERROR", False, set(), {"sub.example.com. NS"},
     {"ns1.sub.example.com. A"}),
    ("sub.example.com.", "DS", "NOERROR", True, {"sub.example.com. DS"}, set(), set()),
    ("example.net.", "A", "REFUSED", False, set(), set(), set()),
    ("portal.example.org.", "A", "NOERROR", True,
     {"portal.example.org. CNAME", "www.example.org. A"}, set(), set()),
    ("unknown.example.com.", "TYPE65280", "NOERROR", True, {"unknown.example.com. TYPE65280"},
     set(), set()),
]


@pytest.mark.parametrize(("qname", "qtype", "rcode", "aa", "an", "ns", "ar"), CASES,
                         ids=[f"{c[0]}/{c[1]}" for c in CASES])
def test_answers(engine: Engine, qname: str, qtype: str, rcode: str, aa: bool,
                 an: set[str], ns: set[str], ar: set[str]) -> None:
    r = ask(engine, qname, qtype)
    assert dns.rcode.to_text(r.rcode()) == rcode
    assert bool(r.flags & dns.flags.AA) == aa
    assert not r.flags & dns.flags.RA
    assert names(r.answer) == an
    assert names(r.authority) == ns
    assert names(r.additional) == ar


def test_negative_ttl_is_soa_minimum(engine: Engine) -> None:
    r = ask(engine, "nope.example.com.", "A")
    assert r.authority[0].ttl == 300  # min(SOA TTL 3600, MINIMUM 300)


def test_case_of_question_kept(engine: Engine) -> None:
    r = ask(engine, "WwW.ExAmPlE.CoM.", "A")
    assert r.question[0].name.to_text() == "WwW.ExAmPlE.CoM."
    assert r.answer[0].name.to_text() == "WwW.ExAmPlE.CoM."


def test_rd_and_cd_copied(engine: Engine) -> None:
    q = dns.message.make_query("www.example.com.", "A")
    q.flags = dns.flags.CD  # RD off, CD on
    r = dns.message.from_wire(engine.respond(q.to_wire(), tcp=False) or b"")
    assert r.flags & dns.flags.CD and not r.flags & dns.flags.RD
    assert ask(engine, "www.example.com.", "A").flags & dns.flags.RD


def test_edns_echo_and_do(engine: Engine) -> None:
    r = ask(engine, "www.example.com.", "A", use_edns=0, payload=4096, want_dnssec=True)
    assert r.edns == 0 and r.payload == 1232
    assert r.ednsflags & dns.flags.DO
    r = ask(engine, "www.example.com.", "A", use_edns=0)
    assert not r.ednsflags & dns.flags.DO


def test_badvers(engine: Engine) -> None:
    r = ask(engine, "www.example.com.", "A", use_edns=1)
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0 and not r.answer


def test_truncation_without_edns(engine: Engine) -> None:
    r = ask(engine, "big.example.com.", "TXT")
    assert r.flags & dns.flags.TC and not r.answer
    q = dns.message.make_query("big.example.com.", "TXT")
    full = dns.message.from_wire(engine.respond(q.to_wire(), tcp=True) or b"")
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == 3


def test_edns_large_buffer_is_capped_at_ours(engine: Engine) -> None:
    r = ask(engine, "big.example.com.", "TXT", use_edns=0, payload=4096)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 3


def test_additional_dropped_without_tc(engine: Engine) -> None:
    # An ANY-sized answer whose additional data does not fit loses only that.
    r = ask(engine, "example.com.", "NS", use_edns=0, payload=512)
    assert not r.flags & dns.flags.TC


def test_minimal_any(engine: Engine) -> None:
    r = ask(engine, "example.com.", "ANY")
    assert len(r.answer) == 1 and r.flags & dns.flags.AA


def test_chaos(engine: Engine) -> None:
    r = ask(engine, "version.bind.", "TXT", rdclass="CH")
    assert r.answer[0][0].strings == (b"dnsserve test",)
    r = ask(engine, "id.server.", "TXT", rdclass="CH")
    assert r.answer[0][0].strings == (b"ns-test",)
    assert ask(engine, "other.bind.", "TXT", rdclass="CH").rcode() == dns.rcode.REFUSED


def test_chaos_off() -> None:
    loaded = load_zones(ZONES)
    off = Engine(build_snapshot(loaded.tables, version=None, identity=None))
    assert ask(off, "version.bind.", "TXT", rdclass="CH").rcode() == dns.rcode.REFUSED


def test_transfers_refused_and_maila_notimp(engine: Engine) -> None:
    assert ask(engine, "example.com.", "AXFR").rcode() == dns.rcode.REFUSED
    assert ask(engine, "example.com.", "MAILA").rcode() == dns.rcode.NOTIMP


def test_miss_cache_is_bounded() -> None:
    loaded = load_zones(ZONES)
    small = Engine(build_snapshot(loaded.tables), cache_size=10)
    for i in range(25):
        assert ask(small, f"n{i}.example.com.", "A").rcode() == dns.rcode.NXDOMAIN
    assert len(small._cache) <= 10


# --- class and cache, on the edge zones ------------------------------------------------------
#
# QCLASS other than IN (and CH for the identity names) is REFUSED. For QCLASS ANY
# Knot answers from IN data; both are allowed (RFC 6895 §3.2), test_rules says so.
# qtype AXFR over UDP: REFUSED (Knot: NOTIMP); both are errors a client handles.


@pytest.mark.parametrize("qtype", ["SOA", "A", "TXT"])
def test_chaos_class_for_zone_names_is_refused(edge_engine: Engine, qtype: str) -> None:
    r = ask(edge_engine, "rv.example.", qtype, rdclass="CH")
    assert r.rcode() == dns.rcode.REFUSED and not aa(r) and not r.answer


def test_cache_keys_keep_class_and_type_apart() -> None:
    eng = build_engine(EDGE_ROOT, version="edge-version")
    chaos = ask(eng, "version.bind.", "TXT", rdclass="CH")
    assert chaos.answer[0][0].strings == (b"edge-version",)
    # Same name in IN: the root zone answers (NXDOMAIN), not the CHAOS entry.
    assert ask(eng, "version.bind.", "TXT").rcode() == dns.rcode.NXDOMAIN
    assert ask(eng, "version.bind.", "A", rdclass="CH").rcode() == dns.rcode.REFUSED
    assert ask(eng, "version.bind.", "TXT", rdclass="HS").rcode() == dns.rcode.REFUSED
    assert ask(eng, "version.bind.", "TXT", rdclass="CH").answer[0][0].strings == (
        b"edge-version",)
    # A miss cached for one type does not answer another.
    assert ask(eng, "org.", "DS").rcode() == dns.rcode.NOERROR
    assert not aa(ask(eng, "org.", "A"))


def test_miss_cache_is_bounded_and_still_right() -> None:
    small = Engine(build_snapshot(load_zones(EDGE_MAIN, log_problems=False).tables), cache_size=8)
    for i in range(30):
        assert ask(small, f"n{i}.rv.example.", "A").rcode() == dns.rcode.NXDOMAIN
        assert ask(small, f"n{i}.wc.rv.example.", "A").answer
        assert len(small._cache) <= 8
    assert ask(small, "n0.rv.example.", "A").rcode() == dns.rcode.NXDOMAIN
