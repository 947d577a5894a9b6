"""Differential test: dnsserve against Knot DNS on the shipped zones.

Owns: a battery of queries built from zones/*.zone (every owner and type,
NODATA types, NXDOMAIN names, wildcard matches, empty non-terminals, names at
and below the delegation, below the DNAME, CNAME chains, ANY, out-of-zone
names; mixed-case qnames; EDNS off / 512 / 1232 / 4096 / DO; UDP and TCP),
sent to dnsserve and to knotd loaded with the same records, and the rules by
which their responses must agree.

Must not: edit zones, talk to anything but loopback, or leave knotd running.

What is compared (``compare()`` below is the single place the rules live):

1. Always: rcode, the header flags QR AA TC RD RA, the question exactly as
   sent (case kept, DESIGN.md), and the OPT record (present, version,
   payload, DO bit, option codes). Extended DNS Errors (option 15) are left
   out: RFC 8914 §3 makes them optional and purely informative, and Knot
   adds EDE 20 (Not Authoritative) to REFUSED where we add none.
2. A truncated UDP response (TC in either) is compared on rcode and TC only:
   RFC 2181 §9 and RFC 1035 §4.2.1 leave what a truncated message carries to
   the server (Knot sends an empty answer; others send what fits).
3. Otherwise the answer and authority sections are compared as sets of
   RRsets (owner lower-cased, type, class, TTL, rdata set with embedded names
   in canonical case, RFC 4034 §6.2): order and name case are not semantic
   (RFC 1034 §3.1, RFC 4343). The one order that is: when the answer holds a
   CNAME or DNAME, the sequence of its RRsets (owner, type) must match, since
   a chain is read in order (RFC 1034 §4.3.2 step 3a; RFC 6672 §5.3.1, the
   DNAME before the CNAME synthesized from it).
4. Additional section: only A and AAAA records are compared, as a set.
   RFC 1034 §4.3.2 step 6 and RFC 2181 §9 make additional data optional;
   DESIGN.md says we add A/AAAA of in-zone NS, MX and SRV targets and glue at
   referrals, which is what Knot adds. OPT is compared under rule 1; any other
   additional type is the server's choice and ignored.
5. ANY (RFC 8482): Knot answers ANY with one RRset, others may send more or a
   synthesized HINFO. When Knot's answer is authoritative and non-empty, ours
   must be a non-empty subset of the RRsets that really exist at the qname
   (wildcard-expanded, from the zone files), plus any RRset Knot itself sent
   (DNAME/CNAME synthesis); AA and rcode as rule 1; authority and
   additional are not compared (they follow the chosen RRset). When Knot's
   answer is empty (NXDOMAIN, NODATA at an empty non-terminal) or a referral
   (AA clear), rules 3-4 apply unchanged.

Knot is given the zones after dnspython has expanded ``$GENERATE`` (Knot 3.2
does not implement it); dnsserve is given the shipped files as they are.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from testkit import SHIPPED_ZONES
from testkit.peers import (
    REQUIRE_ENV,
    Peer,
    canonical_zone_file,
    load_zone,
    peer_binary,
    start_knot,
    start_nsd,
)
from testkit.server import ServerProc

RdataType = dns.rdatatype.RdataType
SEED = 0x5EED
TIMEOUT = 3.0

# --------------------------------------------------------------------------
# The zones, as dnspython reads them: the ground truth for the battery.


def _shipped_zone_files() -> list[tuple[dns.name.Name, Path]]:
    return [(dns.name.from_text(p.name[: -len(".zone")]), p)
            for p in sorted(SHIPPED_ZONES.glob("*.zone"))]


def _load_zones() -> dict[dns.name.Name, dns.zone.Zone]:
    zones: dict[dns.name.Name, dns.zone.Zone] = {}
    for origin, path in _shipped_zone_files():
        zones[origin] = load_zone(origin.to_text(), path)
    return zones


ZONES = _load_zones()
# Types we ship plus a few nobody has, to get NODATA answers at every owner.
SHIPPED_TYPES = sorted(
    {rds.rdtype for z in ZONES.values() for _, node in z.items() for rds in node}
)
NODATA_TYPES = [RdataType.A, RdataType.AAAA, RdataType.MX, RdataType.TXT, RdataType.SRV,
                RdataType.PTR, RdataType.NS, RdataType.CAA, RdataType.DS, RdataType.SOA]


def _zone_of(name: dns.name.Name) -> dns.zone.Zone | None:
    best = None
    for origin, zone in ZONES.items():
        if name.is_subdomain(origin) and (best is None or len(origin) > len(best.origin)):
            best = zone
    return best


def _cuts(zone: dns.zone.Zone) -> list[dns.name.Name]:
    return [n for n, node in zone.items()
            if n != zone.origin and node.get_rdataset(dns.rdataclass.IN, RdataType.NS)]


def _dnames(zone: dns.zone.Zone) -> list[dns.name.Name]:
    return [n for n, node in zone.items()
            if node.get_rdataset(dns.rdataclass.IN, RdataType.DNAME)]


def _empty_non_terminals(zone: dns.zone.Zone) -> list[dns.name.Name]:
    names = set(zone.keys())
    ents: set[dns.name.Name] = set()
    for n in names:
        parent = n.parent() if n != zone.origin else zone.origin
        while parent != zone.origin and parent.is_subdomain(zone.origin):
            if parent not in names:
                ents.add(parent)
            parent = parent.parent()
    return sorted(ents)


# --------------------------------------------------------------------------
# The battery.


@dataclass(frozen=True)
class Case:
    qname: dns.name.Name      # as sent, case included
    qtype: RdataType
    tcp: bool
    payload: int | None       # None: no EDNS
    do: bool
    rd: bool                  # RD must be copied (RFC 1035 §4.1.1)

    @property
    def id(self) -> str:
        edns = "noedns" if self.payload is None else f"e{self.payload}"
        edns += "do" if self.do else ""
        rd = "-rd" if self.rd else ""
        return (f"{'tcp' if self.tcp else 'udp'}-{edns}{rd}-{self.qname.to_text()}-"
                f"{dns.rdatatype.to_text(self.qtype)}")

    def message(self) -> dns.message.Message:
        use_edns = self.payload is not None
        q = dns.message.make_query(
            self.qname, self.qtype, use_edns=0 if use_edns else False,
            payload=self.payload or 1232, want_dnssec=self.do,
        )
        if not self.rd:
            q.flags &= ~dns.flags.RD
        return q


EDNS_VARIANTS: list[tuple[int | None, bool]] = [
    (None, False), (512, False), (1232, False), (4096, False), (1232, True)]


def _mixed_case(name: dns.name.Name, rng: random.Random) -> dns.name.Name:
    labels = []
    for label in name.labels:
        labels.append(bytes(
            (c ^ 0x20) if chr(c).isalpha() and rng.random() < 0.5 else c for c in label))
    return dns.name.Name(labels)


def _base_queries() -> list[tuple[dns.name.Name, RdataType]]:
    """(qname, qtype) pairs covering every kind of answer the zones can give."""
    out: list[tuple[dns.name.Name, RdataType]] = []
    rot = 0
    for origin, zone in ZONES.items():
        cuts = _cuts(zone)
        out.append((origin, RdataType.DS))   # DS at an apex whose parent we do not serve
        for name, node in zone.items():
            present = {rds.rdtype for rds in node}
            out += [(name, t) for t in sorted(present)]
            out.append((name, RdataType.ANY))
            absent = [t for t in NODATA_TYPES if t not in present]
            for _ in range(2):                       # two NODATA types per owner
                out.append((name, absent[rot % len(absent)]))
                rot += 1
            if RdataType.CNAME in present:            # chain ends, target types
                out += [(name, t) for t in (RdataType.A, RdataType.AAAA, RdataType.MX)]
        for ent in _empty_non_terminals(zone):
            out += [(ent, t) for t in (RdataType.A, RdataType.TXT, RdataType.ANY)]
        for label in ("nx", "nx-1.deep", "hostx", "host21", "wwww", "escaped"):
            out += [(dns.name.from_text(label, origin), t)
                    for t in (RdataType.A, RdataType.SOA)]
        for name in ("www", "mail", "ns1", "info", "a.b"):
            child = dns.name.from_text(f"nx.{name}", origin)
            if _zone_of(child) is zone:
                out.append((child, RdataType.A))
        for name, _node in zone.items():
            if name.labels[0] != b"*":
                continue
            parent = name.parent()
            for sub in ("foo", "a.b", "MiXeD", "host-x", "*"):
                q = dns.name.from_text(sub, parent)
                out += [(q, t) for t in (RdataType.A, RdataType.TXT, RdataType.AAAA,
                                         RdataType.MX, RdataType.ANY)]
            out += [(dns.name.from_text("nx.host", parent), RdataType.A),
                    (dns.name.from_text("a.nx.host", parent), RdataType.TXT)]
        for cut in cuts:
            for sub in ("", "ns1.", "x.", "a.b.", "ns.", "www."):
                q = dns.name.from_text(sub + cut.to_text())
                out += [(q, t) for t in (RdataType.A, RdataType.AAAA, RdataType.NS,
                                         RdataType.DS, RdataType.SOA, RdataType.ANY,
                                         RdataType.MX)]
        for dname in _dnames(zone):
            for sub in ("www.", "portal.", "nx.", "a.b.", "ns1.", "WWW."):
                q = dns.name.from_text(sub + dname.to_text())
                out += [(q, t) for t in (RdataType.A, RdataType.AAAA, RdataType.CNAME,
                                         RdataType.DNAME, RdataType.MX, RdataType.ANY)]
    for outside in ("example.net.", "www.example.net.", "com.", ".", "xexample.com.",
                    "example.com.example.net.", "org."):
        out += [(dns.name.from_text(outside), t)
                for t in (RdataType.A, RdataType.SOA, RdataType.NS)]
    seen: set[tuple[dns.name.Name, RdataType]] = set()
    unique = []
    for item in out:
        if item not in seen:
            seen.add(item)
            unique.append(item)
    return unique


# Queries that hit every EDNS size over UDP: big answers, truncation, glue.
_FULL_CROSS = {
    ("big.example.com.", RdataType.TXT), ("big.example.com.", RdataType.ANY),
    ("example.com.", RdataType.NS), ("example.com.", RdataType.MX),
    ("sub.example.com.", RdataType.A), ("www.example.com.", RdataType.A),
    ("_sip._tcp.example.com.", RdataType.SRV), ("www.dept.example.com.", RdataType.A),
    ("foo.wild.example.com.", RdataType.A), ("nx.example.com.", RdataType.A),
    ("alias.example.com.", RdataType.A), ("example.com.", RdataType.ANY),
}


def build_battery() -> list[Case]:
    rng = random.Random(SEED)
    cases: list[Case] = []
    for i, (name, qtype) in enumerate(_base_queries()):
        sent = _mixed_case(name, rng) if i % 2 else name
        full = (name.to_text(), qtype) in _FULL_CROSS
        variants = EDNS_VARIANTS if full else [EDNS_VARIANTS[i % len(EDNS_VARIANTS)]]
        for payload, do in variants:
            cases.append(Case(sent, qtype, False, payload, do, rd=i % 3 == 0))
        payload, do = EDNS_VARIANTS[(i + 2) % len(EDNS_VARIANTS)]
        cases.append(Case(sent, qtype, True, payload, do, rd=i % 3 == 1))
    return cases


BATTERY = build_battery()


# --------------------------------------------------------------------------
# Normalisation and the comparison rules (see the module docstring).

RRsetKey = tuple[str, str, str, int, tuple[str, ...]]


def _rdata_key(rd: dns.rdata.Rdata) -> str:
    # to_digestable lower-cases embedded names for the RFC 4034 §6.2 types only,
    # so TXT and other strings keep their case.
    wire = rd.to_digestable()
    return dns.rdata.from_wire(rd.rdclass, rd.rdtype, wire, 0, len(wire)).to_text()


def _rrset_key(rrset: dns.rrset.RRset) -> RRsetKey:
    return (rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype),
            dns.rdataclass.to_text(rrset.rdclass), rrset.ttl,
            tuple(sorted(_rdata_key(rd) for rd in rrset)))


def _section(rrsets: list[dns.rrset.RRset], types: set[RdataType] | None = None
             ) -> frozenset[RRsetKey]:
    return frozenset(_rrset_key(r) for r in rrsets if types is None or r.rdtype in types)


@dataclass(frozen=True)
class Norm:
    error: str
    rcode: str
    flags: str
    question: str
    opt: str
    answer: frozenset[RRsetKey]
    authority: frozenset[RRsetKey]
    glue: frozenset[RRsetKey]
    chain: tuple[str, ...] = ()    # answer RRsets in order, when CNAME/DNAME is present

    def to_text(self) -> str:
        if self.error:
            return f"  ERROR {self.error}"
        lines = [f"  rcode={self.rcode} flags=[{self.flags}] opt=[{self.opt}]",
                 f"  question: {self.question}"]
        for title, sec in (("answer", self.answer), ("authority", self.authority),
                           ("additional A/AAAA", self.glue)):
            lines.append(f"  {title}:")
            lines += [f"    {n} {ttl} {c} {t} {' | '.join(rds)}"
                      for n, t, c, ttl, rds in sorted(sec)]
        if self.chain:
            lines.append(f"  answer order: {' -> '.join(self.chain)}")
        return "\n".join(lines)


_FLAG_ORDER = [(dns.flags.QR, "qr"), (dns.flags.AA, "aa"), (dns.flags.TC, "tc"),
               (dns.flags.RD, "rd"), (dns.flags.RA, "ra")]


_CHAIN_TYPES = {RdataType.CNAME, RdataType.DNAME}


def normalise(r: dns.message.Message) -> Norm:
    opt = "none"
    if r.edns >= 0:
        do = " do" if r.ednsflags & dns.flags.DO else ""
        codes = ",".join(str(int(o.otype)) for o in r.options
                         if o.otype != dns.edns.OptionType.EDE)   # rule 1
        opt = f"v{r.edns} {r.payload}{do} options={codes}"
    chain: tuple[str, ...] = ()
    if any(rrset.rdtype in _CHAIN_TYPES for rrset in r.answer):
        chain = tuple(f"{rrset.name.to_text().lower()}/{dns.rdatatype.to_text(rrset.rdtype)}"
                      for rrset in r.answer)
    return Norm(
        error="",
        rcode=dns.rcode.to_text(r.rcode()),
        flags=" ".join(t for f, t in _FLAG_ORDER if r.flags & f),
        question=" ".join(f"{q.name.to_text()} {dns.rdatatype.to_text(q.rdtype)}"
                          for q in r.question),
        opt=opt,
        answer=_section(r.answer),
        authority=_section(r.authority),
        glue=_section(r.additional, {RdataType.A, RdataType.AAAA}),
        chain=chain,
    )


def ask(host: str, port: int, case: Case) -> Norm:
    q = case.message()
    try:
        if case.tcp:
            r = dns.query.tcp(q, host, port=port, timeout=TIMEOUT)
        else:
            r = dns.query.udp(q, host, port=port, timeout=TIMEOUT)
    except (dns.exception.DNSException, OSError) as e:
        empty: frozenset[RRsetKey] = frozenset()
        return Norm(f"{type(e).__name__}: {e}", "", "", "", "", empty, empty, empty)
    return normalise(r)


def _truth_at(qname: dns.name.Name) -> frozenset[RRsetKey]:
    """RRsets that exist at qname in the zone files, wildcard-expanded (RFC 4592)."""
    zone = _zone_of(qname)
    if zone is None:
        return frozenset()
    node = zone.get_node(qname)
    owner = qname
    if node is None:
        names = set(zone.keys())
        encloser = qname.parent()
        while encloser != zone.origin and not any(n.is_subdomain(encloser) for n in names):
            encloser = encloser.parent()
        node = zone.get_node(dns.name.from_text("*", encloser))
    if node is None:
        return frozenset()
    keys = set()
    for rds in node:
        rrset = dns.rrset.RRset(owner, rds.rdclass, rds.rdtype)
        rrset.update(rds)
        keys.add(_rrset_key(rrset))
    return frozenset(keys)


def compare(case: Case, ours: Norm, knot: Norm) -> list[str]:
    """The differences that matter, as short strings; empty when they agree."""
    if ours.error or knot.error:
        return [] if ours.error == knot.error else ["transport/parse"]
    diffs = [f for f in ("rcode", "flags", "question", "opt")
             if getattr(ours, f) != getattr(knot, f)]
    if "tc" in ours.flags.split() or "tc" in knot.flags.split():
        # Rule 2: truncated responses agree on rcode and TC only.
        return [d for d in diffs if d == "rcode"] + (
            ["tc"] if ("tc" in ours.flags.split()) != ("tc" in knot.flags.split()) else [])
    if (case.qtype == RdataType.ANY and knot.answer and "aa" in knot.flags.split()):
        # Rule 5: minimal ANY (RFC 8482).
        allowed = _truth_at(case.qname) | knot.answer
        if not ours.answer:
            diffs.append("answer (ANY: empty)")
        elif not ours.answer <= allowed:
            diffs.append("answer (ANY: RRsets that do not exist at the name)")
        return diffs
    diffs += [f for f in ("answer", "chain", "authority", "glue")
              if getattr(ours, f) != getattr(knot, f)]
    return diffs


# --------------------------------------------------------------------------
# The servers and the test.


@pytest.fixture(scope="module")
def knot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    tmp = tmp_path_factory.mktemp("knot")
    zones = {origin.to_text(): canonical_zone_file(origin.to_text(), path, tmp / "zones")
             for origin, path in _shipped_zone_files()}
    peer = start_knot(zones, tmp)
    yield peer
    peer.stop()


def test_battery_is_large_and_varied() -> None:
    assert len(BATTERY) >= 300
    assert len({c.id for c in BATTERY}) == len(BATTERY)
    assert {c.tcp for c in BATTERY} == {False, True}
    assert {(c.payload, c.do) for c in BATTERY} == set(EDNS_VARIANTS)
    assert any(c.qname.to_text() != c.qname.to_text().lower() for c in BATTERY)
    assert {c.rd for c in BATTERY} == {False, True}
    assert set(SHIPPED_TYPES) <= {c.qtype for c in BATTERY}


def test_compare_catches_a_difference() -> None:
    """The comparison itself must be able to fail (a test that cannot fail is a defect)."""
    case = BATTERY[0]
    a = Norm("", "NOERROR", "qr aa", "x. A", "none", frozenset(), frozenset(), frozenset())
    b = Norm("", "NOERROR", "qr", "x. A", "none", frozenset(), frozenset(), frozenset())
    assert compare(case, a, a) == []
    assert compare(case, a, b) == ["flags"]


def test_missing_peer_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI sets DNSSERVE_REQUIRE_PEERS=1 so a missing peer fails instead of skipping."""
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception):
        peer_binary("no-such-dns-server")
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception):
        peer_binary("no-such-dns-server")


def test_nsd_peer_serves_the_same_records(
    tmp_path: Path, knot: Peer
) -> None:
    """start_nsd (used by the benchmarks) loads the zones and agrees with Knot on data."""
    zones = {origin.to_text(): canonical_zone_file(origin.to_text(), zone_path, tmp_path / "z")
             for origin, zone_path in _shipped_zone_files()}
    nsd = start_nsd(zones, tmp_path / "nsd")
    try:
        for name in ("www.example.com.", "_sip._tcp.example.com.", "www.example.org."):
            case = Case(dns.name.from_text(name), RdataType.ANY if name.startswith("www.e")
                        else RdataType.SRV, False, 1232, False, False)
            assert ask(nsd.host, nsd.port, case).answer == ask(knot.host, knot.port, case).answer
    finally:
        nsd.stop()
    assert nsd.proc.returncode is not None


@pytest.mark.parametrize("case", BATTERY, ids=[c.id for c in BATTERY])
def test_same_as_knot(case: Case, server: ServerProc, knot: Peer) -> None:
    ours = ask(server.host, server.port, case)
    ref = ask(knot.host, knot.port, case)
    diffs = compare(case, ours, ref)
    assert not diffs, (f"query {case.id} differs in {', '.join(diffs)}\n"
                       f"dnsserve:\n{ours.to_text()}\nknot:\n{ref.to_text()}")
