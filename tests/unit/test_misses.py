"""The miss index (answer.misses) answers exactly as the slow path, byte for byte.

Every case asks two engines over the same snapshot: the real one (misses
through the index) and one whose index always declines (every miss computed
by ``answer.lookup``, as before the index). Names are unique and random
(labels of random length, letters in random case), so most answers come from
a body learnt for another name of the same shape. ``_learn`` is counted to
show that the fast path, not the slow path, answered.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Mapping
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest
from dns.rdatatype import RdataType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsserve import wire
from dnsserve.answer import misses
from dnsserve.answer.engine import Engine
from dnsserve.answer.misses import MissIndex, build_index
from dnsserve.answer.policies import Policy, Pool, PoolMember, select
from dnsserve.answer.snapshot import Snapshot, build_snapshot
from dnsserve.health.model import HealthView, MemberHealth, MemberId, State
from dnsserve.zones.load import load_zones
from dnsserve.zones.table import ZoneTable
from testkit import SHIPPED_ZONES, TEST_DATA
from testkit.answers import EDGE_MAIN, EDGE_ROOT

# zones with data below cuts and DNAMEs (occluded: loaded, never served)
OCCLUDED = TEST_DATA / "zones_occluded"
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"
QTYPES = ("A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "ANY", "SRV", "DS", "PTR", "CAA",
          "DNAME", "HINFO", "TYPE65280", "TYPE4000")


class _Declines:
    """An index that sends every miss to the slow path."""

    def answer(self, key: bytes, zones: object) -> None:
        return None


def pair(snapshot: Snapshot) -> tuple[Engine, Engine]:
    fast = Engine(snapshot)
    slow = Engine(snapshot)
    slow._misses = _Declines()  # type: ignore[assignment]
    return fast, slow


@pytest.fixture
def learnt(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every key the index answered by the slow path (to learn a body)."""
    seen: list[bytes] = []
    real = MissIndex._learn

    def counting(self: MissIndex, k: int, key: bytes, *rest: object) -> object:
        seen.append(key)
        return real(self, k, key, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(MissIndex, "_learn", counting)
    return seen


def mixed(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in text)


def random_name(rng: random.Random, below: str, *, labels: int = 0, size: int = 0) -> str:
    """A fresh name under ``below``: random labels, letters in random case (0x20)."""
    out = []
    for _ in range(labels or rng.randint(1, 3)):
        n = size or rng.randint(1, 20)
        out.append("".join(rng.choice(ALPHABET[:36]) for _ in range(n)))
    name = ".".join(out) + "." + below
    return mixed(rng, name) if below != "." else mixed(rng, name[:-1])


def query(qname: str, qtype: str | int, *, edns: bool = True, rdclass: str = "IN",
          rng: random.Random | None = None) -> bytes:
    q = dns.message.make_query(qname, qtype, rdclass=rdclass, use_edns=0 if edns else None)
    q.flags &= ~dns.flags.RD
    if rng is not None:
        q.id = rng.randrange(65536)
    return q.to_wire()


def same(fast: Engine, slow: Engine, data: bytes) -> dns.message.Message:
    for tcp in (False, True):
        got = fast.respond(data, tcp=tcp)
        want = slow.respond(data, tcp=tcp)
        assert got == want, dns.message.from_wire(data).question
    assert got is not None
    return dns.message.from_wire(got)


def existing_names(tables: Mapping[dns.name.Name, ZoneTable]) -> Iterator[str]:
    """Every owner of every zone, and every name between it and its apex (the ENTs)."""
    seen: set[dns.name.Name] = set()
    for origin, table in tables.items():
        for owner, _ in table.rrset_keys():
            name = owner
            while name not in seen and name.is_subdomain(origin):
                seen.add(name)
                if name == origin:
                    break
                name = name.parent()
    for name in sorted(seen):
        yield name.to_text()


def snapshot_of(directory: Path, **kw: object) -> Snapshot:
    return build_snapshot(load_zones(directory, log_problems=False).tables, **kw)  # type: ignore[arg-type]


# --- everything, everywhere: random names below every existing name ------------------------


@pytest.mark.parametrize("directory", [SHIPPED_ZONES, EDGE_MAIN, EDGE_ROOT],
                         ids=["shipped", "edge-main", "edge-root"])
def test_random_names_below_every_name_match_the_slow_path(
    directory: Path, learnt: list[bytes]
) -> None:
    rng = random.Random(f"misses-{directory.name}")
    snapshot = snapshot_of(directory, version="v", identity="id")
    fast, slow = pair(snapshot)
    asked = below_learnt = 0
    for below in existing_names(snapshot.zones):
        before = len(learnt)
        for _ in range(4):
            size = rng.choice((3, 8))  # two lengths: names of one length share a body
            qname = random_name(rng, below, labels=1, size=size)
            qtype = rng.choice(QTYPES[:4])
            same(fast, slow, query(qname, qtype, edns=rng.random() < 0.7, rng=rng))
            asked += 1
        below_learnt += len(learnt) - before
        # the name itself and a name below it, a few types each (misses for most;
        # every type is asked somewhere over the names)
        for qtype in rng.sample(QTYPES, 2):
            same(fast, slow, query(mixed(rng, below), qtype, rng=rng))
        for qtype in rng.sample(QTYPES, 2):
            same(fast, slow, query(random_name(rng, below), qtype, rng=rng))
    assert asked and below_learnt < asked / 2  # most answers came from learnt bodies


# --- each kind of miss ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Snapshot:
    return snapshot_of(SHIPPED_ZONES)


@pytest.fixture(scope="module")
def edge() -> Snapshot:
    return snapshot_of(EDGE_MAIN)


def flood(snapshot: Snapshot, below: str, qtype: str, n: int = 40, *, size: int = 10,
          labels: int = 1) -> list[dns.message.Message]:
    """``n`` unique names of one shape under ``below``, each checked against the slow path."""
    rng = random.Random(f"{below}/{qtype}")
    fast, slow = pair(snapshot)
    out = []
    for _ in range(n):
        qname = random_name(rng, below, labels=labels, size=size)
        out.append(same(fast, slow, query(qname, qtype, rng=rng)))
    return out


def test_nxdomain_learnt_once(shipped: Snapshot, learnt: list[bytes]) -> None:
    for r in flood(shipped, "example.com.", "A"):
        assert r.rcode() == dns.rcode.NXDOMAIN and r.authority[0].rdtype == RdataType.SOA
    assert len(learnt) == 1
    for r in flood(shipped, "host7.example.com.", "TXT", labels=2):
        assert r.rcode() == dns.rcode.NXDOMAIN
    assert len(learnt) == 2


def test_nodata_at_an_empty_non_terminal_one_body_for_every_type(
    shipped: Snapshot, learnt: list[bytes]
) -> None:
    fast, slow = pair(shipped)
    rng = random.Random(5)
    for qtype in ("A", "MX", "TXT", "TYPE1234", "TYPE60000", "NAPTR"):
        r = same(fast, slow, query(mixed(rng, "b.example.com."), qtype))
        assert r.rcode() == dns.rcode.NOERROR and not r.answer
        assert [rr.rdtype for rr in r.authority] == [RdataType.SOA]
    assert len(learnt) == 1


def test_referral_below_a_delegation_with_glue(shipped: Snapshot, learnt: list[bytes]) -> None:
    for qtype in ("A", "MX", "DS"):
        for r in flood(shipped, "sub.example.com.", qtype, labels=2, size=6):
            assert r.rcode() == dns.rcode.NOERROR and not r.flags & dns.flags.AA
            assert [rr.rdtype for rr in r.authority] == [RdataType.NS]
            assert [rr.name.to_text().lower() for rr in r.additional] == ["ns1.sub.example.com."]
    assert len(learnt) == 1  # any qtype, DS included, below the cut: one referral


def test_referral_that_truncates(edge: Snapshot) -> None:
    rng = random.Random(9)
    fast, slow = pair(edge)
    for _ in range(20):
        data = query(random_name(rng, "trunc.rv.example.", labels=1, size=5), "A", edns=False)
        r = same(fast, slow, data)
        # a referral whose glue does not all fit in 512 bytes, as the slow path cuts it
        assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority
        assert not r.flags & dns.flags.AA


def test_wildcard_synthesis_keeps_the_query_case(shipped: Snapshot, learnt: list[bytes]) -> None:
    rng = random.Random(3)
    fast, slow = pair(shipped)
    for _ in range(30):
        qname = random_name(rng, "wild.example.com.", labels=1, size=7)
        r = same(fast, slow, query(qname, "A"))
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
        owner = r.answer[0].name.to_text()
        assert owner == qname and owner != owner.lower()  # as asked, not as stored
        assert [rd.to_text() for rd in r.answer[0]] == ["192.0.2.100"]
        # a type the wildcard lacks: NODATA, one body for all such types
        r = same(fast, slow, query(qname, rng.choice(("MX", "SRV", "TYPE999"))))
        assert not r.answer and r.authority[0].rdtype == RdataType.SOA
    assert len(learnt) == 2


def test_wildcard_cname_is_followed(edge: Snapshot, learnt: list[bytes]) -> None:
    for r in flood(edge, "wc.rv.example.", "A"):
        assert [rr.rdtype for rr in r.answer] == [RdataType.CNAME, RdataType.A]
        assert r.answer[1].name.to_text().lower() == "target.rv.example."
    assert len(learnt) == 1


def test_wildcard_that_is_an_empty_non_terminal_and_the_encloser_rule(edge: Snapshot) -> None:
    for r in flood(edge, "went.rv.example.", "A"):
        assert r.rcode() == dns.rcode.NOERROR and not r.answer
    for r in flood(edge, "b.enc.rv.example.", "A"):  # the encloser is b.enc (an ENT): NXDOMAIN
        assert r.rcode() == dns.rcode.NXDOMAIN
    for r in flood(edge, "enc.rv.example.", "A"):
        assert r.answer[0][0].to_text() == "192.0.2.82"


def test_dname_below_answers_as_the_slow_path(shipped: Snapshot, edge: Snapshot) -> None:
    for r in flood(shipped, "dept.example.com.", "A", n=10):
        assert [rr.rdtype for rr in r.answer] == [RdataType.DNAME, RdataType.CNAME]
    for r in flood(edge, "apexdname.example.", "MX", n=10):
        assert r.answer[0].rdtype == RdataType.DNAME
    for r in flood(edge, "yx.rv.example.", "A", n=10, size=60):
        assert r.rcode() == dns.rcode.YXDOMAIN


def test_occluded_names_answer_as_the_slow_path(learnt: list[bytes]) -> None:
    """Data below a cut or a DNAME is loaded (with a warning) but never served: the
    fast path gives the referral or the DNAME synthesis, as the slow path does."""
    fast, slow = pair(snapshot_of(OCCLUDED))
    rng = random.Random("occluded")
    names = ["www.sub.below-delegation.example.", "sub.at-delegation.example.",
             "x.dept.dname-below.example.", "deep.x.dept.dname-below.example."]
    kinds = set()
    for name in names:
        for qtype in ("A", "TXT", "DS"):
            for qname in (mixed(rng, name), random_name(rng, name, labels=1, size=5)):
                r = same(fast, slow, query(qname, qtype, rng=rng))
                kinds.add((r.rcode(), bool(r.flags & dns.flags.AA)))
    assert kinds == {(dns.rcode.NOERROR, False), (dns.rcode.NOERROR, True)}
    assert learnt  # misses went through the index


def test_cname_into_a_missing_name(edge: Snapshot) -> None:
    fast, slow = pair(edge)
    rng = random.Random(11)
    for qtype in QTYPES:
        r = same(fast, slow, query(mixed(rng, "tonx.rv.example."), qtype))
        if qtype not in ("CNAME", "DS", "ANY"):
            assert r.rcode() == dns.rcode.NXDOMAIN and r.answer[0].rdtype == RdataType.CNAME


def test_ds_at_a_cut_and_at_a_child_apex(edge: Snapshot) -> None:
    fast, slow = pair(edge)
    for qname in ("kid.par.example.", "glued.rv.example.", "rv.example.", "ns.kid.par.example."):
        same(fast, slow, query(qname, "DS"))
    for r in flood(edge, "kid.par.example.", "DS"):
        assert r.rcode() == dns.rcode.NXDOMAIN  # the child zone answers names below its apex


def test_parent_glue_is_not_seen_from_the_child(edge: Snapshot) -> None:
    # ns.kid exists in par.example (glue) and in kid.par.example; names below it belong to kid
    for r in flood(edge, "ns.kid.par.example.", "A"):
        assert r.rcode() == dns.rcode.NXDOMAIN
        assert r.authority[0].name.to_text().lower() == "kid.par.example."


def test_names_in_no_zone_and_other_classes_are_refused(shipped: Snapshot,
                                                        learnt: list[bytes]) -> None:
    for r in flood(shipped, "example.net.", "A") + flood(shipped, "com.", "AAAA", labels=3):
        assert r.rcode() == dns.rcode.REFUSED
    rng = random.Random(2)
    fast, slow = pair(shipped)
    for rdclass in ("CH", "HS", "ANY"):
        r = same(fast, slow, query(random_name(rng, "example.com."), "A", rdclass=rdclass))
        assert r.rcode() == dns.rcode.REFUSED
    for qtype in ("AXFR", "IXFR", "MAILA", "MAILB"):
        same(fast, slow, query(random_name(rng, "example.com."), qtype))
    assert learnt == []


def test_names_the_data_mentions_have_bodies_of_their_own(shipped: Snapshot,
                                                         learnt: list[bytes]) -> None:
    # hostmaster.example.com (the SOA RNAME) does not exist; below it the SOA's RNAME
    # compresses against the question, so names through it share bodies among themselves.
    fast, slow = pair(shipped)
    rng = random.Random(6)
    for qname in ("hostmaster.example.com.", "HostMaster.example.com.",
                  "ns1.sub.example.com.x.example.com."):
        for qtype in ("A", "SOA", "NS"):
            same(fast, slow, query(qname, qtype))
    assert len(learnt) == 2  # the name itself; the last (through no mentioned name)
    for _ in range(20):
        qname = random_name(rng, "hostmaster.example.com.", labels=1, size=5)
        r = same(fast, slow, query(qname, "A"))
        assert r.rcode() == dns.rcode.NXDOMAIN
        qname = random_name(rng, "www.example.net.", labels=1, size=5)  # mentioned, no zone
        assert same(fast, slow, query(qname, "A")).rcode() == dns.rcode.REFUSED
    assert len(learnt) == 3


def test_long_names_of_one_byte_labels(shipped: Snapshot, learnt: list[bytes]) -> None:
    fast, slow = pair(shipped)
    rng = random.Random(12)
    for _ in range(8):
        labels = ".".join(rng.choice("xyz") for _ in range(110))
        same(fast, slow, query(f"{labels}.example.com.", "A"))
        same(fast, slow, query(f"{labels}.wild.example.com.", "TXT"))
        same(fast, slow, query(f"{labels}.sub.example.com.", "A"))
        same(fast, slow, query(f"{labels}.example.net.", "A"))
    assert len(learnt) == 3


# --- pools: the index is shared across health flips, pool answers are never kept ------------


def members(n: int) -> tuple[PoolMember, ...]:
    return tuple(PoolMember(f"127.0.0.{11 + i}", MemberId("web", f"127.0.0.{11 + i}"))
                 for i in range(n))


def down(*ms: PoolMember) -> HealthView:
    return HealthView(members={m.member: MemberHealth(State.DOWN, 0.0) for m in ms})


def test_wildcard_pool_answers_follow_health_flips(learnt: list[bytes]) -> None:
    tables = load_zones(SHIPPED_ZONES).tables
    wild = dns.name.from_text("*.wild.example.com.")
    ms = members(2)
    pool = Pool(wild, RdataType.A, Policy.ALL, ms, max_answers=1)
    key = (wild, RdataType.A)
    first = build_snapshot(tables, selections={key: select(pool, down(ms[1]), 0.0)})
    second = first.with_selections({key: select(pool, down(ms[0]), 1.0)})
    assert second.misses is first.misses  # a pool-only change keeps the index
    rng = random.Random(4)
    engine = Engine(first)
    for snap, address in ((first, "127.0.0.11"), (second, "127.0.0.12")):
        engine.swap(snap)
        fast, slow = pair(snap)
        for _ in range(10):
            data = query(random_name(rng, "wild.example.com.", labels=1, size=4), "A")
            r = same(fast, slow, data)
            assert [rd.to_text() for rd in r.answer[0]] == [address]
            assert engine.respond(data, tcp=False) == fast.respond(data, tcp=False)
        assert not fast._cache  # bodies shared by shape within the snapshot, not per name
        # NXDOMAIN elsewhere uses no pool: learnt once, kept across the flip
        flood(snap, "example.com.", "A", n=5)
    assert sum(1 for k in learnt if k.startswith(b"\x04")) == 1  # the 4-letter wildcard names
    assert sum(1 for k in learnt if k.startswith(b"\x0a")) == 1  # NXDOMAIN, 10 letters


def test_pool_names_exist_and_cname_pools_are_followed() -> None:
    tables = load_zones(SHIPPED_ZONES).tables
    app = dns.name.from_text("app.example.com.")  # not in the zone file: the pool makes it
    ms = (PoolMember("www.example.com.", MemberId("app", "a")),
          PoolMember("mail.example.com.", MemberId("app", "b")))
    pool = Pool(app, RdataType.CNAME, Policy.ALL, ms)
    key = (app, RdataType.CNAME)
    first = build_snapshot(tables, selections={key: select(pool, down(ms[1]), 0.0)})
    second = first.with_selections({key: select(pool, down(ms[0]), 1.0)})
    for snap, target in ((first, "www.example.com."), (second, "mail.example.com.")):
        fast, slow = pair(snap)
        for qtype in ("MX", "TXT", "AAAA", "ANY", "TYPE777"):
            r = same(fast, slow, query("App.example.com.", qtype))
            assert r.answer[0][0].target.to_text() == target
        for r in flood(snap, "app.example.com.", "A", n=5):
            assert r.rcode() == dns.rcode.NXDOMAIN


def test_a_new_pool_builds_the_index_again() -> None:
    tables = load_zones(SHIPPED_ZONES).tables
    first = build_snapshot(tables)
    owner = dns.name.from_text("new.example.com.")
    pool = Pool(owner, RdataType.A, Policy.ALL, members(1))
    second = first.with_selections({(owner, RdataType.A): select(pool, HealthView(), 0.0)})
    assert second.misses is not first.misses
    r = same(*pair(second), query("new.example.com.", "MX"))
    assert r.rcode() == dns.rcode.NOERROR  # the pool's owner exists: NODATA


# --- bounds and the index itself --------------------------------------------------------------


def test_the_index_holds_no_object_per_name() -> None:
    # memory: a name's entry is its dict slot; its key is the table's own object and
    # its decision is shared with every name decided alike
    tables = load_zones(SHIPPED_ZONES).tables
    index = build_index(tables)
    names = index._names
    assert names is not None
    stored = {id(key) for table in tables.values()
              for key in (*table.owner_keys(), *table.empty_keys())}
    mentioned = [key for key in names if id(key) not in stored]
    assert len(mentioned) < len(names) / 4  # only names the data mentions are new bytes
    assert len({id(decision) for decision in names.values()}) < len(names) / 2


def test_bodies_are_bounded() -> None:
    tables = load_zones(SHIPPED_ZONES).tables
    snap = build_snapshot(tables)
    index = build_index(snap.zones, limit=5)
    fast, slow = pair(snap)
    fast._misses = index
    rng = random.Random(8)
    for size in range(1, 30):
        same(fast, slow, query(random_name(rng, "example.com.", labels=1, size=size), "A"))
        assert len(index) <= 5


def test_rdata_names() -> None:
    soa = dns.rdata.from_text("IN", "SOA", "ns1.example.com. hostmaster.example.com. 1 2 3 4 5")
    assert [n.to_text() for n in misses.rdata_names(soa)] == [
        "ns1.example.com.", "hostmaster.example.com."]
    srv = dns.rdata.from_text("IN", "SRV", "1 2 3 sip.example.com.")
    assert [n.to_text() for n in misses.rdata_names(srv)] == ["sip.example.com."]
    assert list(misses.rdata_names(dns.rdata.from_text("IN", "A", "192.0.2.1"))) == []


def test_wire_key_and_index_agree_on_names() -> None:
    # the index keys names as the engine does: lower-cased wire, from the query's bytes
    data = query("WWW.Example.COM.", "A")
    key = wire.parse_query(data)[2]
    assert key[:-4] == dns.name.from_text("www.example.com.").to_wire()
    assert (key[-2] << 8 | key[-1]) == dns.rdataclass.IN
    assert (key[-4] << 8 | key[-3]) == dns.rdatatype.A


# --- any label bytes ------------------------------------------------------------------------


@functools.cache
def _edge_pair() -> tuple[Engine, Engine, tuple[dns.name.Name, ...]]:
    snapshot = snapshot_of(EDGE_MAIN)
    fast, slow = pair(snapshot)
    return fast, slow, tuple(dns.name.from_text(n) for n in existing_names(snapshot.zones))


@given(
    labels=st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=3),
    below=st.integers(min_value=0, max_value=10_000),
    qtype=st.sampled_from(QTYPES),
    edns=st.booleans(),
)
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)  # the first builds
def test_any_label_bytes_answer_as_the_slow_path(
    labels: list[bytes], below: int, qtype: str, edns: bool
) -> None:
    """Labels of any bytes (dots, upper case, 0x00, non-ASCII) below any name of the zones."""
    fast, slow, names = _edge_pair()
    parent = names[below % len(names)]
    try:
        qname = dns.name.Name((*labels, *parent.labels))
    except dns.name.NameTooLong:
        return
    data = dns.message.make_query(qname, qtype, use_edns=0 if edns else None).to_wire()
    assert fast.respond(data, tcp=False) == slow.respond(data, tcp=False)


# --- lazy zones: answers built when first asked, through the index --------------------------


def both(eager: Engine, lazy: Engine, data: bytes) -> None:
    for tcp in (False, True):
        assert lazy.respond(data, tcp=tcp) == eager.respond(data, tcp=tcp)


@pytest.mark.parametrize("directory", [SHIPPED_ZONES, EDGE_MAIN, EDGE_ROOT],
                         ids=["shipped", "edge-main", "edge-root"])
def test_lazy_zones_answer_as_prebuilt_ones(directory: Path, learnt: list[bytes]) -> None:
    tables = load_zones(directory, log_problems=False).tables
    eager_snap = build_snapshot(tables, lazy_rrsets=None, version="v", identity="i")
    lazy_snap = build_snapshot(tables, lazy_rrsets=1, version="v", identity="i")
    assert eager_snap.lazy == frozenset() and lazy_snap.lazy == frozenset(tables)
    assert len(lazy_snap.answers) < 10  # the CHAOS answers only
    eager, lazy = Engine(eager_snap), Engine(lazy_snap)
    rng = random.Random(f"lazy-{directory.name}")
    asked = []
    for name in existing_names(tables):
        for qtype in rng.sample(QTYPES, 8):  # every type over the names; EDNS or not
            data = query(mixed(rng, name), qtype, edns=rng.random() < 0.5, rng=rng)
            both(eager, lazy, data)
            asked.append(data)
        both(eager, lazy, query(random_name(rng, name), rng.choice(QTYPES), rng=rng))
    learnt.clear()
    for data in asked:  # asked again: every answer is kept, none built again
        both(eager, lazy, data)
    assert learnt == []
    assert lazy_snap.misses is not None and lazy_snap.misses.kept > len(eager_snap.answers) / 2


def test_a_zone_with_a_pool_or_below_the_threshold_is_prebuilt() -> None:
    tables = load_zones(SHIPPED_ZONES).tables
    owner = dns.name.from_text("www.example.com.")
    pool = Pool(owner, RdataType.A, Policy.ALL, members(2))
    selections = {(owner, RdataType.A): select(pool, HealthView(), 0.0)}
    snap = build_snapshot(tables, selections=selections, lazy_rrsets=1)
    assert snap.lazy == frozenset(tables) - {dns.name.from_text("example.com.")}
    assert build_snapshot(tables, lazy_rrsets=10_000).lazy == frozenset()
    flipped = snap.with_selections({(owner, RdataType.A): select(pool, down(members(2)[0]), 1.0)})
    assert flipped.lazy == snap.lazy and flipped.misses is snap.misses


@pytest.mark.parametrize("directory", [SHIPPED_ZONES, EDGE_MAIN, EDGE_ROOT],
                         ids=["shipped", "edge-main", "edge-root"])
def test_names_read_from_stored_wire_are_the_decoded_ones(directory: Path) -> None:
    for table in load_zones(directory, log_problems=False).tables.values():
        for key in table.owner_keys():
            decoded = {misses._wire(n) for rrset in table.node_by_key(key).values()
                       for rdata in rrset for n in misses.rdata_names(rdata)}
            assert set(misses._names_at(table, key)) == decoded


def test_while_a_zone_is_expired_the_others_keep_the_fast_path(learnt: list[bytes]) -> None:
    tables = load_zones(EDGE_MAIN, log_problems=False).tables
    expired = frozenset({dns.name.from_text("par.example."),
                         dns.name.from_text("nocopy.example.")})
    snap = build_snapshot(tables, lazy_rrsets=1).with_expired(expired)
    fast, slow = pair(snap)
    rng = random.Random(14)
    for below in (*existing_names(tables), "nocopy.example."):
        for qtype in ("A", "MX", "NS"):
            r = same(fast, slow, query(random_name(rng, below), qtype, rng=rng))
            if below.endswith("par.example.") and not below.endswith("kid.par.example."):
                assert r.rcode() == dns.rcode.SERVFAIL
            same(fast, slow, query(below, qtype, rng=rng))
    same(fast, slow, query("rv.example.", "SOA"))
    learnt.clear()
    r = same(fast, slow, query("rv.example.", "SOA"))  # a lazy zone's answer, kept
    assert r.rcode() == dns.rcode.NOERROR and learnt == []


# --- a deferred index: the slow path answers until it is built ----------------------------


def test_deferred_index_declines_until_complete_then_answers_the_same() -> None:
    snapshot = snapshot_of(SHIPPED_ZONES, defer_misses=True)
    index = snapshot.misses
    assert index is not None and not index.ready
    rng = random.Random(7)
    queries = [query(random_name(rng, name), qtype, rng=rng)
               for name in existing_names(snapshot.base) for qtype in ("A", "MX", "DS")]
    queries += [query("example.com.", "A", rdclass="CH"), query("nowhere.test.", "A")]
    fast, slow = pair(snapshot)
    for q in queries:
        same(fast, slow, q)
    assert len(index) == 0 and index.kept == 0  # nothing learnt: every miss declined
    assert index.complete() is index and index.ready
    index.complete()  # a second call changes nothing
    fast, slow = pair(snapshot)
    for q in queries:
        same(fast, slow, q)
    assert len(index) + index.kept > 0  # the built index answered them
