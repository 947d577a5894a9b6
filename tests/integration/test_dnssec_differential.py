"""Differential test: pre-signed zones served by dnsserve, Knot DNS and NSD.

Owns the comparison of DNSSEC answers (issue 8 §1): ``testkit.signing``'s
zone is signed at test time with ``dnssec-signzone`` three ways (NSEC with
ECDSA P-256, NSEC3 with Ed25519, NSEC3 with opt-out), loaded by dnsserve
(one process and two workers), knotd and nsd, and asked every query of
``testkit.signing.QUERIES`` with DO (UDP and TCP) and without.

What is compared (``compare()``):

1. rcode, the flags QR AA TC, the OPT record (version, payload, DO).
2. A truncated UDP answer (TC in either): rcode and TC only (RFC 2181 §9
   leaves what a truncated message carries to the server).
3. Otherwise the answer and authority sections as sets of RRsets (owner
   lower-cased, type, type covered, TTL, rdata), RRSIGs, NSEC and NSEC3
   included; additional: the A/AAAA RRsets and the RRSIGs over them.
4. NSD, configured with ``minimal-responses: no``, adds the apex NS RRset
   (and its RRSIG) to the authority of positive answers, and its addresses
   to the additional section; it answers ANY and RRSIG queries with every
   RRset. Against NSD the apex NS and its RRSIG in authority and the
   additional section are left out, and ANY and RRSIG queries are Knot's
   alone.

Also the NSEC3 records' own owner names (RFC 5155 §7.2.8): NXDOMAIN, as
Knot and NSD answer them.

Must not: talk to anything but loopback, or leave a process running.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from testkit.peers import Peer, start_knot, start_nsd
from testkit.server import ServerProc, start_server
from testkit.signing import ORIGIN, QUERIES, SignedZone, qname, sign_zone

RdataType = dns.rdatatype.RdataType
TIMEOUT = 3.0
VARIANTS = {
    "nsec-ecdsa": {"algorithm": "ECDSAP256SHA256"},
    "nsec3-ed25519": {"algorithm": "ED25519", "nsec3_salt": "aabbcc"},
    "nsec3-optout": {"algorithm": "ECDSAP256SHA256", "nsec3_salt": "-", "opt_out": True},
}
_ADDRESSES = {RdataType.A, RdataType.AAAA}


@dataclass(frozen=True)
class Served:
    zone: SignedZone
    knot: Peer
    nsd: Peer


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp(request.param)
    zone = sign_zone(tmp / "keys", **VARIANTS[request.param])  # type: ignore[arg-type]
    knot = start_knot({ORIGIN: zone.path}, tmp / "knot")
    try:
        nsd = start_nsd({ORIGIN: zone.path}, tmp / "nsd")
    except BaseException:
        knot.stop()
        raise
    yield Served(zone, knot, nsd)
    nsd.stop()
    knot.stop()


@pytest.fixture(params=[1, 2], ids=["workers1", "workers2"])
def ours(request: pytest.FixtureRequest, served: Served, tmp_path: Path) -> Iterator[ServerProc]:
    srv = start_server(tmp_path, zones=served.zone.path.parent, workers=request.param)
    yield srv
    srv.stop()


Key = tuple[str, str, str, int, tuple[str, ...]]


def _key(rrset: dns.rrset.RRset) -> Key:
    return (rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype),
            dns.rdatatype.to_text(rrset.covers), rrset.ttl,
            tuple(sorted(rd.to_text().lower() for rd in rrset)))


@dataclass(frozen=True)
class Norm:
    rcode: str
    flags: str
    opt: str
    answer: frozenset[Key]
    authority: frozenset[Key]
    additional: frozenset[Key]

    @property
    def tc(self) -> bool:
        return "TC" in self.flags.split()


def normalise(r: dns.message.Message) -> Norm:
    opt = "none" if r.edns < 0 else f"v{r.edns} {r.payload} do={bool(r.ednsflags & dns.flags.DO)}"
    flags = dns.flags.to_text(r.flags & (dns.flags.QR | dns.flags.AA | dns.flags.TC))
    return Norm(
        dns.rcode.to_text(r.rcode()), flags, opt,
        frozenset(_key(x) for x in r.answer), frozenset(_key(x) for x in r.authority),
        frozenset(_key(x) for x in r.additional
                  if x.rdtype in _ADDRESSES or x.covers in _ADDRESSES),
    )


def ask(host: str, port: int, name: str, rdtype: str, *, do: bool, tcp: bool) -> Norm:
    q = dns.message.make_query(qname(name), rdtype, use_edns=0, payload=1232, want_dnssec=do)
    r = (dns.query.tcp if tcp else dns.query.udp)(q, host, port=port, timeout=TIMEOUT)
    return normalise(r)


def _apex_ns(key: Key) -> bool:
    return key[0] == ORIGIN and "NS" in (key[1], key[2])


def compare(ours: Norm, ref: Norm, *, nsd: bool = False) -> list[str]:
    """The differences that matter (module docstring), as short strings."""
    diffs = [f for f in ("rcode", "flags", "opt") if getattr(ours, f) != getattr(ref, f)]
    if ours.tc or ref.tc:
        return [d for d in diffs if d in ("rcode", "flags")]
    if ours.answer != ref.answer:
        diffs.append("answer")
    mine, theirs = ours.authority, ref.authority
    if nsd:
        mine = frozenset(k for k in mine if not _apex_ns(k))
        theirs = frozenset(k for k in theirs if not _apex_ns(k))
    if mine != theirs:
        diffs.append("authority")
    if not nsd and ours.additional != ref.additional:
        diffs.append("additional")
    return diffs


def _cases() -> list[tuple[str, str, bool, bool]]:
    cases = [(name, rdtype, True, False) for name, rdtype in QUERIES]
    cases += [(name, rdtype, False, False) for name, rdtype in QUERIES]
    cases += [(name, rdtype, True, True) for name, rdtype in QUERIES[::3]]
    cases += [("big", "TXT", True, True), ("mid", "TXT", True, True)]
    return cases


def _show(norm: Norm) -> str:
    lines = [f"  {norm.rcode} [{norm.flags}] {norm.opt}"]
    for title in ("answer", "authority", "additional"):
        lines += [f"  {title}: {k}" for k in sorted(getattr(norm, title))]
    return "\n".join(lines)


def test_compare_catches_a_difference() -> None:
    """The comparison can fail: a missing RRSIG in authority is a difference."""
    sig = ("signed.example.", "RRSIG", "SOA", 300, ("soa 13 2 ...",))
    soa = ("signed.example.", "SOA", "TYPE0", 300, ("ns1 ...",))
    full = Norm("NOERROR", "QR AA", "v0 1232 do=True", frozenset(), frozenset({soa, sig}),
                frozenset())
    bare = Norm("NOERROR", "QR AA", "v0 1232 do=True", frozenset(), frozenset({soa}),
                frozenset())
    assert compare(full, full) == []
    assert compare(bare, full) == ["authority"]


def test_signed_same_as_knot_and_nsd(served: Served, ours: ServerProc) -> None:
    failures = []
    signed_answers = 0
    for name, rdtype, do, tcp in _cases():
        mine = ask(ours.host, ours.port, name, rdtype, do=do, tcp=tcp)
        knot = ask(served.knot.host, served.knot.port, name, rdtype, do=do, tcp=tcp)
        signed_answers += any(k[1] == "RRSIG" for k in mine.answer | mine.authority)
        diffs = compare(mine, knot)
        if diffs:
            failures.append(f"{name} {rdtype} do={do} tcp={tcp} vs knot: {diffs}\n"
                            f" dnsserve:\n{_show(mine)}\n knot:\n{_show(knot)}")
        if rdtype in ("ANY", "RRSIG"):
            continue
        nsd = ask(served.nsd.host, served.nsd.port, name, rdtype, do=do, tcp=tcp)
        diffs = compare(mine, nsd, nsd=True)
        if diffs:
            failures.append(f"{name} {rdtype} do={do} tcp={tcp} vs nsd: {diffs}\n"
                            f" dnsserve:\n{_show(mine)}\n nsd:\n{_show(nsd)}")
    assert not failures, "\n".join(failures[:6]) + f"\n({len(failures)} differences)"
    assert signed_answers >= len(QUERIES)  # DO answers carry signatures (the zone is signed)


def _nsec3_owners(zone: SignedZone, count: int) -> list[str]:
    """The first ``count`` NSEC3 owner names of the signed zone file, relative to ORIGIN."""
    signed = dns.zone.from_file(str(zone.path), ORIGIN, relativize=False)
    origin = dns.name.from_text(ORIGIN)
    owners = sorted(name.relativize(origin).to_text() for name, node in signed.nodes.items()
                    if node.get_rdataset(dns.rdataclass.IN, RdataType.NSEC3) is not None)
    return owners[:count]


def test_nsec3_owner_names_are_nxdomain_as_knot_and_nsd(served: Served,
                                                         ours: ServerProc) -> None:
    """RFC 5155 §7.2.8 (erratum 4622): a query for an NSEC3 record's owner name, where
    nothing but the NSEC3 is, is answered as for a name that does not exist: NXDOMAIN
    with its proof, whatever the type (NSEC3 and RRSIG too), as Knot and NSD answer."""
    if not served.zone.nsec3:
        pytest.skip("an NSEC zone has no NSEC3 owner names")
    owners = _nsec3_owners(served.zone, 2)
    assert len(owners) == 2
    failures = []
    for name in owners:
        for rdtype in ("A", "TXT", "NSEC3", "RRSIG"):
            for do in (True, False):
                mine = ask(ours.host, ours.port, name, rdtype, do=do, tcp=False)
                assert mine.rcode == "NXDOMAIN", (name, rdtype, do, _show(mine))
                peers = [("knot", served.knot)]
                if rdtype != "RRSIG":
                    peers.append(("nsd", served.nsd))
                for peer_name, peer in peers:
                    theirs = ask(peer.host, peer.port, name, rdtype, do=do, tcp=False)
                    diffs = compare(mine, theirs, nsd=peer_name == "nsd")
                    if diffs:
                        failures.append(f"{name} {rdtype} do={do} vs {peer_name}: {diffs}\n"
                                        f" dnsserve:\n{_show(mine)}\n {peer_name}:\n"
                                        f"{_show(theirs)}")
    assert not failures, "\n".join(failures[:6]) + f"\n({len(failures)} differences)"


def test_without_do_nothing_dnssec_is_added(served: Served, ours: ServerProc) -> None:
    """Without DO no RRSIG, NSEC or NSEC3 is added (an RRSIG or NSEC query still answers)."""
    added = {"RRSIG", "NSEC", "NSEC3"}
    for name, rdtype in QUERIES:
        if rdtype in added:
            continue
        r = ask(ours.host, ours.port, name, rdtype, do=False, tcp=True)
        assert not any(k[1] in added for k in r.answer | r.authority | r.additional), name
