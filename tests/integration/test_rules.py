"""Rule-by-rule tests of the authoritative answers, against the real server.

Every case runs over UDP and over TCP against the session server (fixture
``server`` in tests/conftest.py, serving the shipped ``zones/``). dnspython parses
our bytes and is the oracle for the wire format; the expected sections are
written out by hand from ``zones/example.com.zone`` and
``zones/example.org.zone``, as in CoreDNS ``plugin/file/lookup_test.go``.

Where the RFCs leave a choice, the rule applied is named next to the case:

- Positive answers: the authority section is either empty (Knot) or the
  zone's apex NS RRset (NSD, BIND); when it holds the NS, the in-zone
  addresses of those NS targets may follow in additional. Nothing else may.
- Additional-section processing is in-zone only (issue 2: "additional A/AAAA
  for in-zone MX/NS/SRV targets"): ns1.example.com is not added to an
  example.org answer although we serve both zones.
- CNAME chains are followed inside the query's zone and stop where they leave
  it (issue 2; Knot). A DNAME-synthesized CNAME into example.org is such a
  leave: the answer stops after the CNAME.
- Negative answers carry the SOA with TTL = min(SOA TTL, SOA MINIMUM)
  (RFC 2308 §3, issue 2).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

import dnsserve
from testkit.server import ServerProc, start_server

NOERROR = dns.rcode.NOERROR
NXDOMAIN = dns.rcode.NXDOMAIN
REFUSED = dns.rcode.REFUSED

Ask = Callable[[dns.message.Message], dns.message.Message]
RR = tuple[str, int, str, str, str]

# --- expected data, from the shipped zones ---------------------------------

COM_SOA = (
    "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. "
    "2026112601 7200 3600 1209600 300"
)
# Negative answers: TTL = min(3600, MINIMUM 300) = 300 (RFC 2308 §3).
COM_NEG = (
    "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. "
    "2026112601 7200 3600 1209600 300",
)
ORG_SOA = (
    "example.org. 1800 IN SOA ns1.example.org. hostmaster.example.org. "
    "2026112601 7200 3600 1209600 600"
)
# min(1800, MINIMUM 600) = 600.
ORG_NEG = (
    "example.org. 600 IN SOA ns1.example.org. hostmaster.example.org. "
    "2026112601 7200 3600 1209600 600",
)
COM_NS = (
    "example.com. 3600 IN NS ns1.example.com.",
    "example.com. 3600 IN NS ns2.example.com.",
)
COM_NS_ADDR = (
    "ns1.example.com. 3600 IN A 192.0.2.53",
    "ns1.example.com. 3600 IN AAAA 2001:db8::53",
    "ns2.example.com. 3600 IN A 192.0.2.54",
)
ORG_NS = (
    "example.org. 1800 IN NS ns1.example.org.",
    "example.org. 1800 IN NS ns1.example.com.",
)
ORG_NS_ADDR = ("ns1.example.org. 1800 IN A 192.0.2.153",)
WWW_A = (
    "www.example.com. 60 IN A 127.0.0.11",
    "www.example.com. 60 IN A 127.0.0.12",
    "www.example.com. 60 IN A 127.0.0.13",
)
SUB_REFERRAL = (
    "sub.example.com. 3600 IN NS ns1.sub.example.com.",
    "sub.example.com. 3600 IN NS ns.example.net.",
)
SUB_GLUE = ("ns1.sub.example.com. 3600 IN A 192.0.2.201",)
BIG_TXT = tuple(
    f'big.example.com. 3600 IN TXT "{d}{"123456789" + "0123456789" * 24}"' for d in "012"
)


def rrs(section: Iterable[dns.rrset.RRset]) -> set[RR]:
    """A message section as a set of (owner, ttl, class, type, rdata) tuples."""
    out: set[RR] = set()
    for rrset in section:
        for rd in rrset:
            out.add(
                (
                    rrset.name.canonicalize().to_text(),
                    rrset.ttl,
                    dns.rdataclass.to_text(rrset.rdclass),
                    dns.rdatatype.to_text(rrset.rdtype),
                    rd.to_text(),
                )
            )
    return out


def want(lines: Iterable[str]) -> set[RR]:
    """Master-file lines (absolute owner, TTL, class, type, rdata) as tuples."""
    out: set[RR] = set()
    for line in lines:
        owner, ttl, cls, typ, text = line.split(None, 4)
        rdclass = dns.rdataclass.from_text(cls)
        rdtype = dns.rdatatype.from_text(typ)
        rd = dns.rdata.from_text(rdclass, rdtype, text)
        out.add(
            (
                dns.name.from_text(owner).canonicalize().to_text(),
                int(ttl),
                dns.rdataclass.to_text(rdclass),
                dns.rdatatype.to_text(rdtype),
                rd.to_text(),
            )
        )
    return out


# --- the table ---------------------------------------------------------------

POSITIVE = None  # authority: empty or the apex NS (see module docstring)


@dataclass(frozen=True)
class Case:
    id: str
    qname: str
    qtype: str
    rcode: dns.rcode.Rcode = NOERROR
    aa: bool = True
    answer: tuple[str, ...] = ()
    authority: tuple[str, ...] | None = POSITIVE
    additional: tuple[str, ...] = ()

    @property
    def org(self) -> bool:
        return self.qname.rstrip(".").lower().endswith("example.org")


def nx(id: str, qname: str, qtype: str = "A", neg: tuple[str, ...] = COM_NEG) -> Case:
    return Case(id, qname, qtype, rcode=NXDOMAIN, authority=neg)


def nodata(id: str, qname: str, qtype: str, neg: tuple[str, ...] = COM_NEG) -> Case:
    return Case(id, qname, qtype, authority=neg)


def referral(id: str, qname: str, qtype: str = "A") -> Case:
    return Case(id, qname, qtype, aa=False, authority=SUB_REFERRAL, additional=SUB_GLUE)


def refused(id: str, qname: str, qtype: str = "A") -> Case:
    return Case(id, qname, qtype, rcode=REFUSED, aa=False, authority=())


CASES: list[Case] = [
    # AA on authoritative answers; records as in the zone, TTLs included.
    Case("apex-soa", "example.com.", "SOA", answer=(COM_SOA,)),
    # Additional A/AAAA for in-zone NS targets.
    Case("apex-ns", "example.com.", "NS", answer=COM_NS, additional=COM_NS_ADDR),
    # Additional A/AAAA for in-zone MX targets.
    Case(
        "apex-mx",
        "example.com.",
        "MX",
        answer=(
            "example.com. 3600 IN MX 10 mail.example.com.",
            "example.com. 3600 IN MX 20 mail2.example.com.",
        ),
        additional=(
            "mail.example.com. 3600 IN A 192.0.2.25",
            "mail2.example.com. 3600 IN A 192.0.2.26",
            "mail2.example.com. 3600 IN AAAA 2001:db8::26",
        ),
    ),
    Case("apex-a", "example.com.", "A", answer=("example.com. 3600 IN A 192.0.2.1",)),
    Case("apex-aaaa", "example.com.", "AAAA", answer=("example.com. 3600 IN AAAA 2001:db8::1",)),
    Case("apex-txt", "example.com.", "TXT", answer=('example.com. 3600 IN TXT "v=spf1 mx -all"',)),
    Case("www-a", "www.example.com.", "A", answer=WWW_A),
    Case(
        "www-aaaa",
        "www.example.com.",
        "AAAA",
        answer=("www.example.com. 3600 IN AAAA 2001:db8::80",),
    ),
    Case(
        "ns1-aaaa",
        "ns1.example.com.",
        "AAAA",
        answer=("ns1.example.com. 3600 IN AAAA 2001:db8::53",),
    ),
    # Additional A/AAAA for in-zone SRV targets.
    Case(
        "srv",
        "_sip._tcp.example.com.",
        "SRV",
        answer=("_sip._tcp.example.com. 3600 IN SRV 10 60 5060 sip.example.com.",),
        additional=("sip.example.com. 3600 IN A 192.0.2.60",),
    ),
    Case(
        "txt-multi",
        "info.example.com.",
        "TXT",
        answer=('info.example.com. 3600 IN TXT "hello world" "second string"',),
    ),
    Case(
        "hinfo",
        "info.example.com.",
        "HINFO",
        answer=('info.example.com. 3600 IN HINFO "PC" "Linux"',),
    ),
    Case(
        "caa",
        "caa.example.com.",
        "CAA",
        answer=('caa.example.com. 3600 IN CAA 0 issue "letsencrypt.org"',),
    ),
    Case(
        "sshfp",
        "sshfp.example.com.",
        "SSHFP",
        answer=("sshfp.example.com. 3600 IN SSHFP 1 1 0123456789abcdef0123456789abcdef01234567",),
    ),
    Case(
        "tlsa",
        "tlsa._443._tcp.example.com.",
        "TLSA",
        answer=(
            "tlsa._443._tcp.example.com. 3600 IN TLSA 3 1 1 "
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
    ),
    Case(
        "naptr",
        "naptr.example.com.",
        "NAPTR",
        answer=('naptr.example.com. 3600 IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.com.',),
    ),
    Case(
        "loc",
        "loc.example.com.",
        "LOC",
        answer=(
            "loc.example.com. 3600 IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m",
        ),
    ),
    Case(
        "rfc3597",
        "unknown.example.com.",
        "TYPE65280",
        answer=(r"unknown.example.com. 3600 IN TYPE65280 \# 4 0A000001",),
    ),
    Case(
        "escaped-dot",
        r"escaped\.dot.example.com.",
        "TXT",
        answer=(r'escaped\.dot.example.com. 3600 IN TXT "a name with an escaped dot"',),
    ),
    Case(
        "generate", "host7.example.com.", "A", answer=("host7.example.com. 3600 IN A 198.51.100.7",)
    ),
    Case("below-ent", "a.b.example.com.", "A", answer=("a.b.example.com. 3600 IN A 192.0.2.102",)),
    Case("case-insensitive", "WWW.EXAMPLE.COM.", "A", answer=WWW_A),
    # CNAME chain followed inside the zone: alias -> alias2 -> www, all in answer.
    Case(
        "cname-chain-a",
        "alias.example.com.",
        "A",
        answer=(
            "alias.example.com. 3600 IN CNAME alias2.example.com.",
            "alias2.example.com. 3600 IN CNAME www.example.com.",
            *WWW_A,
        ),
    ),
    Case(
        "cname-chain-aaaa",
        "alias.example.com.",
        "AAAA",
        answer=(
            "alias.example.com. 3600 IN CNAME alias2.example.com.",
            "alias2.example.com. 3600 IN CNAME www.example.com.",
            "www.example.com. 3600 IN AAAA 2001:db8::80",
        ),
    ),
    Case(
        "cname-chain-short",
        "alias2.example.com.",
        "A",
        answer=("alias2.example.com. 3600 IN CNAME www.example.com.", *WWW_A),
    ),
    # qtype CNAME: the CNAME itself, no chasing (RFC 1034 §3.6.2).
    Case(
        "cname-qtype-cname",
        "alias.example.com.",
        "CNAME",
        answer=("alias.example.com. 3600 IN CNAME alias2.example.com.",),
    ),
    # Chain ending in NODATA: the CNAMEs, NOERROR, SOA in authority (RFC 2308 §2.2).
    Case(
        "cname-chain-nodata",
        "alias.example.com.",
        "TXT",
        answer=(
            "alias.example.com. 3600 IN CNAME alias2.example.com.",
            "alias2.example.com. 3600 IN CNAME www.example.com.",
        ),
        authority=COM_NEG,
    ),
    # CNAME leaving the zone: the answer stops at the CNAME.
    Case(
        "cname-external",
        "external.example.com.",
        "A",
        answer=("external.example.com. 3600 IN CNAME www.example.net.",),
    ),
    # DNAME (RFC 6672): the DNAME and a synthesized CNAME with the DNAME's TTL;
    # the target is in another zone (example.org), so the answer stops there.
    Case(
        "dname-x",
        "x.dept.example.com.",
        "A",
        answer=(
            "dept.example.com. 3600 IN DNAME example.org.",
            "x.dept.example.com. 3600 IN CNAME x.example.org.",
        ),
    ),
    Case(
        "dname-www",
        "www.dept.example.com.",
        "AAAA",
        answer=(
            "dept.example.com. 3600 IN DNAME example.org.",
            "www.dept.example.com. 3600 IN CNAME www.example.org.",
        ),
    ),
    Case(
        "dname-deep",
        "a.b.dept.example.com.",
        "TXT",
        answer=(
            "dept.example.com. 3600 IN DNAME example.org.",
            "a.b.dept.example.com. 3600 IN CNAME a.b.example.org.",
        ),
    ),
    Case(
        "dname-qtype-dname",
        "dept.example.com.",
        "DNAME",
        answer=("dept.example.com. 3600 IN DNAME example.org.",),
    ),
    # The DNAME owner itself is not redirected (RFC 6672 §2.3).
    nodata("dname-owner-a", "dept.example.com.", "A"),
    # Wildcards (RFC 4592): synthesized with owner = qname.
    Case(
        "wild-a",
        "foo.wild.example.com.",
        "A",
        answer=("foo.wild.example.com. 3600 IN A 192.0.2.100",),
    ),
    Case(
        "wild-txt",
        "foo.wild.example.com.",
        "TXT",
        answer=('foo.wild.example.com. 3600 IN TXT "wildcard"',),
    ),
    # Closest encloser is wild.example.com, so *.wild matches several labels (§2.2.1).
    Case(
        "wild-deep",
        "deep.foo.wild.example.com.",
        "A",
        answer=("deep.foo.wild.example.com. 3600 IN A 192.0.2.100",),
    ),
    Case(
        "wild-literal",
        "*.wild.example.com.",
        "A",
        answer=("*.wild.example.com. 3600 IN A 192.0.2.100",),
    ),
    # Wildcard matches the name but not the type: NODATA (§2.2.1).
    nodata("wild-nodata", "foo.wild.example.com.", "AAAA"),
    Case(
        "wild-explicit",
        "host.wild.example.com.",
        "A",
        answer=("host.wild.example.com. 3600 IN A 192.0.2.101",),
    ),
    # An existing name blocks the wildcard for its other types ...
    nodata("wild-explicit-nodata", "host.wild.example.com.", "TXT"),
    # ... and below it: closest encloser host.wild has no *.host.wild (§2.2.1).
    nx("wild-below-explicit", "a.host.wild.example.com."),
    # wild.example.com only has names below it: an empty non-terminal.
    nodata("wild-parent-ent", "wild.example.com.", "A"),
    # NXDOMAIN and NODATA with the SOA in authority.
    nx("nxdomain", "nope.example.com."),
    nx("nxdomain-mx", "nope.example.com.", "MX"),
    nx("nxdomain-below-ent", "z.b.example.com."),
    nodata("nodata", "www.example.com.", "TXT"),
    nodata("nodata-mx", "www.example.com.", "MX"),
    # Empty non-terminal b.example.com (a.b exists): NODATA, not NXDOMAIN.
    nodata("ent", "b.example.com.", "A"),
    nodata("ent-aaaa", "b.example.com.", "AAAA"),
    # DS is answered by the parent side; at a non-delegation it is plain NODATA.
    nodata("ds-nodata", "www.example.com.", "DS"),
    Case(
        "ds-at-delegation",
        "sub.example.com.",
        "DS",
        answer=(
            "sub.example.com. 3600 IN DS 12345 13 2 "
            "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
        ),
    ),
    # Referrals: NS in authority, in-bailiwick glue in additional, AA clear.
    referral("referral-a", "sub.example.com."),
    referral("referral-ns", "sub.example.com.", "NS"),
    referral("referral-soa", "sub.example.com.", "SOA"),
    referral("referral-below", "host.sub.example.com."),
    referral("referral-deep", "a.b.c.sub.example.com.", "MX"),
    # Glue is not authoritative data: a query for it gets the referral.
    referral("referral-glue", "ns1.sub.example.com."),
    referral("referral-glue-aaaa", "ns1.sub.example.com.", "AAAA"),
    # example.org (second zone).
    Case("org-soa", "example.org.", "SOA", answer=(ORG_SOA,)),
    # In-zone additional only: ns1.example.com is another zone's name.
    Case("org-ns", "example.org.", "NS", answer=ORG_NS, additional=ORG_NS_ADDR),
    Case("org-www-a", "www.example.org.", "A", answer=("www.example.org. 1800 IN A 192.0.2.180",)),
    Case(
        "org-www-aaaa",
        "www.example.org.",
        "AAAA",
        answer=("www.example.org. 1800 IN AAAA 2001:db8:1::80",),
    ),
    Case(
        "org-cname",
        "portal.example.org.",
        "A",
        answer=(
            "portal.example.org. 1800 IN CNAME www.example.org.",
            "www.example.org. 1800 IN A 192.0.2.180",
        ),
    ),
    nx("org-nxdomain", "nope.example.org.", neg=ORG_NEG),
    # No wildcard in example.org: x.example.org (the DNAME target above) is NXDOMAIN.
    nx("org-nxdomain-dname-target", "x.example.org.", neg=ORG_NEG),
    nodata("org-nodata", "www.example.org.", "TXT", neg=ORG_NEG),
    # REFUSED for names in no served zone, AA clear.
    refused("refused-net", "example.net."),
    refused("refused-net-www", "www.example.net."),
    refused("refused-parent", "com.", "NS"),
    refused("refused-root", ".", "SOA"),
    refused("refused-suffix", "notexample.com."),
]


@pytest.fixture(params=["udp", "tcp"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ask(server: ServerProc, transport: str) -> Ask:
    return server.udp if transport == "udp" else server.tcp


def show(resp: dns.message.Message) -> str:
    return "\n--- response ---\n" + resp.to_text()


def check_case(case: Case, resp: dns.message.Message) -> None:
    ctx = show(resp)
    assert resp.rcode() == case.rcode, ctx
    assert bool(resp.flags & dns.flags.AA) == case.aa, "AA" + ctx
    assert not resp.flags & dns.flags.RA, "RA must never be set" + ctx
    assert not resp.flags & dns.flags.TC, ctx
    assert resp.flags & dns.flags.QR, ctx
    assert rrs(resp.answer) == want(case.answer), "answer" + ctx
    if case.authority is POSITIVE:
        ns, ns_addr = (ORG_NS, ORG_NS_ADDR) if case.org else (COM_NS, COM_NS_ADDR)
        auth = rrs(resp.authority)
        assert auth in (set(), want(ns)), "authority: empty or the apex NS" + ctx
        required = want(case.additional)
        allowed = required | (want(ns_addr) if auth else set())
        add = rrs(resp.additional)
        assert required <= add <= allowed, "additional" + ctx
    else:
        assert rrs(resp.authority) == want(case.authority), "authority" + ctx
        assert rrs(resp.additional) == want(case.additional), "additional" + ctx


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_answer_table(case: Case, ask: Ask) -> None:
    q = dns.message.make_query(case.qname, case.qtype)
    resp = ask(q)
    assert resp.id == q.id
    check_case(case, resp)


@pytest.mark.parametrize("case", CASES[:8] + CASES[-5:], ids=[c.id for c in CASES[:8] + CASES[-5:]])
def test_answer_table_with_edns(case: Case, ask: Ask) -> None:
    """The same answers with EDNS on; the OPT never shows up as a record."""
    q = dns.message.make_query(case.qname, case.qtype, use_edns=0, payload=4096)
    resp = ask(q)
    check_case(case, resp)
    assert resp.edns == 0


# --- header flags ---------------------------------------------------------


@pytest.mark.parametrize("rd", [True, False], ids=["rd", "no-rd"])
@pytest.mark.parametrize("qname", ["www.example.com.", "nope.example.com.", "example.net."])
def test_rd_copied_ra_never(ask: Ask, rd: bool, qname: str) -> None:
    q = dns.message.make_query(qname, "A")
    if not rd:
        q.flags &= ~dns.flags.RD
    resp = ask(q)
    assert bool(resp.flags & dns.flags.RD) == rd, show(resp)
    assert not resp.flags & dns.flags.RA, show(resp)


@pytest.mark.parametrize("cd", [True, False], ids=["cd", "no-cd"])
def test_cd_copied(ask: Ask, cd: bool) -> None:
    """RFC 4035 §3.1.6: "MUST copy the setting of the CD bit" (Knot 3.2 clears it)."""
    q = dns.message.make_query("www.example.com.", "A")
    if cd:
        q.flags |= dns.flags.CD
    resp = ask(q)
    assert bool(resp.flags & dns.flags.CD) == cd, show(resp)
    assert resp.rcode() == NOERROR


# --- EDNS (RFC 6891) --------------------------------------------------------


@pytest.mark.parametrize("payload", [512, 1232, 4096])
def test_edns_opt_echoed(ask: Ask, payload: int) -> None:
    q = dns.message.make_query("www.example.com.", "A", use_edns=0, payload=payload)
    resp = ask(q)
    assert resp.edns == 0, show(resp)
    assert resp.payload == 1232, show(resp)
    assert rrs(resp.answer) == want(WWW_A)


def test_no_opt_without_edns(ask: Ask) -> None:
    resp = ask(dns.message.make_query("www.example.com.", "A"))
    assert resp.edns == -1, show(resp)


@pytest.mark.parametrize("qname", ["www.example.com.", "nope.example.com.", "example.net."])
def test_edns_opt_on_every_rcode(ask: Ask, qname: str) -> None:
    resp = ask(dns.message.make_query(qname, "A", use_edns=0))
    assert resp.edns == 0, show(resp)


def test_badvers(ask: Ask) -> None:
    q = dns.message.make_query("www.example.com.", "A", use_edns=1)
    resp = ask(q)
    # BADVERS = 16 is an extended rcode: it needs the OPT to be expressed.
    assert resp.rcode() == dns.rcode.BADVERS, show(resp)
    assert resp.edns == 0, "the OPT carries our highest version, 0" + show(resp)
    assert resp.payload == 1232, show(resp)
    assert not resp.answer, show(resp)


@pytest.mark.parametrize("do", [True, False], ids=["do", "no-do"])
def test_do_copied(ask: Ask, do: bool) -> None:
    q = dns.message.make_query("www.example.com.", "A", use_edns=0, want_dnssec=do)
    resp = ask(q)
    assert resp.edns == 0, show(resp)
    assert bool(resp.ednsflags & dns.flags.DO) == do, show(resp)


def test_unknown_edns_option_ignored(ask: Ask) -> None:
    opt = dns.edns.GenericOption(65001, b"\x01\x02\x03")
    q = dns.message.make_query("www.example.com.", "A", use_edns=0, options=[opt])
    resp = ask(q)
    assert resp.rcode() == NOERROR, show(resp)
    assert rrs(resp.answer) == want(WWW_A), show(resp)
    # RFC 6891 §6.1.2: options not understood are ignored, not echoed.
    assert all(o.otype != 65001 for o in resp.options), show(resp)


def two_opt_query(qid: int) -> bytes:
    q = dns.message.make_query("www.example.com.", "A", id=qid)
    wire = bytearray(q.to_wire())
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    wire[10:12] = struct.pack("!H", 2)
    return bytes(wire) + opt + opt


def test_two_opt_formerr(server: ServerProc, transport: str) -> None:
    """RFC 6891 §6.1.1: more than one OPT RR is FORMERR."""
    data = raw_exchange(server, transport, two_opt_query(0x1234))
    assert data is not None, "expected FORMERR, got silence"
    resp = dns.message.from_wire(data)
    assert resp.id == 0x1234
    assert resp.rcode() == dns.rcode.FORMERR, show(resp)
    assert not resp.answer


# --- truncation -----------------------------------------------------------


def big_query(edns: int | None, payload: int = 1232) -> tuple[dns.message.Message, bytes]:
    if edns is None:
        q = dns.message.make_query("big.example.com.", "TXT")
    else:
        q = dns.message.make_query("big.example.com.", "TXT", use_edns=edns, payload=payload)
    return q, q.to_wire()


def test_big_without_edns_udp_truncated(server: ServerProc) -> None:
    q, wire = big_query(None)
    data = raw_exchange(server, "udp", wire)
    assert data is not None
    assert len(data) <= 512
    resp = dns.message.from_wire(data, raise_on_truncation=False)
    assert resp.id == q.id
    assert resp.flags & dns.flags.TC, show(resp)
    assert resp.rcode() == NOERROR


@pytest.mark.parametrize("payload", [100, 512, 700])
def test_big_small_edns_udp_truncated(server: ServerProc, payload: int) -> None:
    """The answer (~830 bytes) does not fit the client's payload: TC, within
    max(512, payload) (RFC 6891 §6.2.5: a payload below 512 counts as 512), OPT kept."""
    _, wire = big_query(0, payload)
    data = raw_exchange(server, "udp", wire)
    assert data is not None
    assert len(data) <= max(512, payload)
    resp = dns.message.from_wire(data, raise_on_truncation=False)
    assert resp.flags & dns.flags.TC, show(resp)
    assert resp.edns == 0, show(resp)
    assert resp.payload == 1232, show(resp)
    # whatever is left in the answer is whole records of the RRset
    assert rrs(resp.answer) <= want(BIG_TXT), show(resp)


@pytest.mark.parametrize("payload", [1232, 4096])
def test_big_with_edns_udp_complete(server: ServerProc, payload: int) -> None:
    _, wire = big_query(0, payload)
    data = raw_exchange(server, "udp", wire)
    assert data is not None
    assert len(data) <= 1232  # never more than our own payload size
    resp = dns.message.from_wire(data)
    assert not resp.flags & dns.flags.TC, show(resp)
    assert rrs(resp.answer) == want(BIG_TXT), show(resp)
    assert resp.flags & dns.flags.AA


@pytest.mark.parametrize("edns", [None, 0], ids=["no-edns", "edns"])
def test_big_over_tcp_complete(server: ServerProc, edns: int | None) -> None:
    q, _ = big_query(edns, 512)
    resp = server.tcp(q)
    assert not resp.flags & dns.flags.TC, show(resp)
    assert rrs(resp.answer) == want(BIG_TXT), show(resp)


# --- minimal ANY (RFC 8482) ---------------------------------------------------

ANY_NAMES = {
    "example.com.": (
        COM_SOA,
        *COM_NS,
        "example.com. 3600 IN MX 10 mail.example.com.",
        "example.com. 3600 IN MX 20 mail2.example.com.",
        'example.com. 3600 IN TXT "v=spf1 mx -all"',
        "example.com. 3600 IN A 192.0.2.1",
        "example.com. 3600 IN AAAA 2001:db8::1",
    ),
    "www.example.com.": (*WWW_A, "www.example.com. 3600 IN AAAA 2001:db8::80"),
    "info.example.com.": (
        'info.example.com. 3600 IN TXT "hello world" "second string"',
        'info.example.com. 3600 IN HINFO "PC" "Linux"',
    ),
}


def rrset_keys(resp: dns.message.Message) -> set[tuple[str, str]]:
    return {(r.name.canonicalize().to_text(), dns.rdatatype.to_text(r.rdtype)) for r in resp.answer}


@pytest.mark.parametrize("qname", list(ANY_NAMES))
def test_any_minimal(ask: Ask, transport: str, qname: str) -> None:
    """RFC 8482 §4.1 (a subset of the RRsets) or §4.2 (one synthesized HINFO).

    Over TCP a full answer is also allowed (RFC 8482 §4.4: a responder may
    answer conventionally over TCP).
    """
    resp = ask(dns.message.make_query(qname, "ANY"))
    ctx = show(resp)
    assert resp.rcode() == NOERROR, ctx
    assert resp.flags & dns.flags.AA, ctx
    got = rrs(resp.answer)
    assert got, "ANY must not get an empty answer" + ctx
    real = want(ANY_NAMES[qname])
    if any(r[3] == "HINFO" and r[4] == '"RFC8482" ""' for r in got):
        assert got == want([f'{qname} {next(iter(got))[1]} IN HINFO "RFC8482" ""']), ctx
        return
    assert got <= real, "ANY answer must be records at the name" + ctx
    # whole RRsets, never parts of one
    for key in rrset_keys(resp):
        assert {r for r in real if (r[0], r[3]) == key} <= got, ctx
    all_rrsets = {(r[0], r[3]) for r in real}
    if transport == "udp" or got != real:
        assert len(rrset_keys(resp)) < len(all_rrsets), "not minimal" + ctx


def test_any_nxdomain(ask: Ask) -> None:
    resp = ask(dns.message.make_query("nope.example.com.", "ANY"))
    assert resp.rcode() == NXDOMAIN, show(resp)
    assert rrs(resp.authority) == want(COM_NEG), show(resp)


def test_any_at_delegation_is_referral(ask: Ask) -> None:
    resp = ask(dns.message.make_query("host.sub.example.com.", "ANY"))
    assert not resp.flags & dns.flags.AA, show(resp)
    assert rrs(resp.authority) == want(SUB_REFERRAL), show(resp)
    assert rrs(resp.additional) == want(SUB_GLUE), show(resp)


# --- CHAOS ------------------------------------------------------------------


def test_chaos_version_bind_default(ask: Ask) -> None:
    resp = ask(dns.message.make_query("version.bind.", "TXT", rdclass="CH"))
    ctx = show(resp)
    assert resp.rcode() == NOERROR, ctx
    assert chaos_text(resp) == f"dnsserve {dnsserve.__version__}", ctx
    assert resp.answer[0].name == dns.name.from_text("version.bind."), ctx
    assert not resp.flags & dns.flags.RA, ctx


def test_chaos_id_server_default_off(ask: Ask) -> None:
    """The identity is off by default (config.py: ``identity`` None): REFUSED."""
    for qname in ("id.server.", "hostname.bind."):
        resp = ask(dns.message.make_query(qname, "TXT", rdclass="CH"))
        assert resp.rcode() == REFUSED, show(resp)
        assert not resp.answer, show(resp)


def test_chaos_other_names_refused(ask: Ask) -> None:
    for qname in ("nope.bind.", "www.example.com."):
        resp = ask(dns.message.make_query(qname, "TXT", rdclass="CH"))
        assert resp.rcode() == REFUSED, show(resp)
        assert not resp.answer, show(resp)


@pytest.fixture(scope="module", params=[1, 2], ids=["workers1", "workers2"])
def chaos_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ServerProc]:
    """A second server: version.bind off, id.server configured."""
    tmp = tmp_path_factory.mktemp("chaos")
    cfg = tmp / "dnsserve.toml"
    cfg.write_text('[server]\nversion = false\nidentity = "ns-test-1"\n')
    srv = start_server(tmp, "--config", str(cfg), workers=request.param)
    yield srv
    srv.stop()


def chaos_text(resp: dns.message.Message) -> str:
    assert len(resp.answer) == 1, show(resp)
    rrset = resp.answer[0]
    assert rrset.rdclass == dns.rdataclass.CH, show(resp)
    assert rrset.rdtype == dns.rdatatype.TXT, show(resp)
    return b"".join(b"".join(rd.strings) for rd in rrset).decode()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_chaos_configured(chaos_server: ServerProc, transport: str) -> None:
    ask = chaos_server.udp if transport == "udp" else chaos_server.tcp
    for qname in ("version.bind.", "version.server."):
        resp = ask(dns.message.make_query(qname, "TXT", rdclass="CH"))
        assert resp.rcode() == REFUSED, "version off: REFUSED" + show(resp)
        assert not resp.answer, show(resp)
    resp = ask(dns.message.make_query("id.server.", "TXT", rdclass="CH"))
    assert resp.rcode() == NOERROR, show(resp)
    assert chaos_text(resp) == "ns-test-1"
    # the zones are still served as usual
    resp = ask(dns.message.make_query("www.example.com.", "A"))
    assert rrs(resp.answer) == want(WWW_A), show(resp)


# --- question case, pipelining, classes (raw sockets) -----------------------


def recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def raw_exchange(
    server: ServerProc, transport: str, wire: bytes, timeout: float = 2.0
) -> bytes | None:
    """Send one raw message; return the raw response, or None on silence/close."""
    if transport == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(wire, (server.host, server.port))
            try:
                data, _ = s.recvfrom(65535)
            except TimeoutError:
                return None
            return data
    with socket.create_connection((server.host, server.port), timeout=timeout) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        try:
            head = recv_exact(s, 2)
            if head is None:
                return None
            return recv_exact(s, struct.unpack("!H", head)[0])
        except (TimeoutError, ConnectionResetError):
            return None


MIXED = [
    "WwW.eXaMpLe.CoM.",
    "NoPe.ExAmPlE.cOm.",
    "FoO9.WiLd.ExAmPlE.cOm.",
    "HoSt.SuB.eXaMpLe.CoM.",
    "ExAmPlE.NeT.",
]


@pytest.mark.parametrize("qname", MIXED)
def test_question_case_preserved(server: ServerProc, transport: str, qname: str) -> None:
    """The question comes back byte for byte, also after a lower-case query
    for the same name (a miss cache must not keep the first client's case)."""
    lower = dns.message.make_query(qname.lower(), "A")
    assert raw_exchange(server, transport, lower.to_wire()) is not None
    q = dns.message.make_query(qname, "A")
    wire = q.to_wire()
    data = raw_exchange(server, transport, wire)
    assert data is not None
    qlen = len(dns.name.from_text(qname).to_wire()) + 4
    assert data[12 : 12 + qlen] == wire[12 : 12 + qlen]
    resp = dns.message.from_wire(data)
    assert resp.question[0].name.to_text() == qname


def test_tcp_pipelining(server: ServerProc) -> None:
    """Five framed queries in one write; five answers, matched by ID (RFC 7766 §6.2.1.1)."""
    names = [
        "www.example.com.",
        "nope.example.com.",
        "alias.example.com.",
        "sub.example.com.",
        "www.example.org.",
    ]
    queries = [dns.message.make_query(n, "A", id=0x4000 + i) for i, n in enumerate(names)]
    blob = b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in queries))
    got: dict[int, dns.message.Message] = {}
    deadline = time.monotonic() + 10
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(blob)
        for _ in range(len(queries)):
            assert time.monotonic() < deadline
            head = recv_exact(s, 2)
            assert head is not None, f"connection closed after {len(got)} answers"
            body = recv_exact(s, struct.unpack("!H", head)[0])
            assert body is not None
            msg = dns.message.from_wire(body)
            got[msg.id] = msg
    assert set(got) == {q.id for q in queries}
    for q in queries:
        assert q.is_response(got[q.id])
    assert got[0x4001].rcode() == NXDOMAIN
    assert rrs(got[0x4000].answer) == want(WWW_A)


def class_query(qid: int, rdclass: int) -> bytes:
    name = dns.name.from_text("www.example.com.").to_wire()
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, rdclass)


@pytest.mark.parametrize(
    "rdclass", [255, 254, 42, 3, 4], ids=["ANY", "NONE", "class42", "CH-A", "HS"]
)
def test_other_classes(server: ServerProc, transport: str, rdclass: int) -> None:
    """Classes we serve no zone in: an error rcode or silence, never a crash.

    Issue 2 lists "unknown class" under bad input (FORMERR or silence);
    REFUSED and NOTIMP are what NSD and Knot send for classes without zones,
    so both are accepted too. QCLASS ANY may also get the normal IN answer.
    Then a normal query still answers.
    """
    data = raw_exchange(server, transport, class_query(0x5151, rdclass), timeout=1.0)
    if data is not None:
        resp = dns.message.from_wire(data)
        assert resp.id == 0x5151
        if rdclass == dns.rdataclass.ANY and resp.rcode() == NOERROR:
            # RFC 1035 §3.2.5: QCLASS * matches every class; Knot answers with IN data.
            assert rrs(resp.answer) == want(WWW_A), show(resp)
        else:
            assert resp.rcode() in (dns.rcode.FORMERR, REFUSED, dns.rcode.NOTIMP), show(resp)
            assert not resp.answer, show(resp)
    resp = server.udp(dns.message.make_query("www.example.com.", "A"))
    assert rrs(resp.answer) == want(WWW_A)
