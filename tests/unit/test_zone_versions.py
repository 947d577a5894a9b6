"""Zone versions (zones.versions): content, hash, diff, wire form, serials. Pure, no sockets.

Zones are built from text through the project's own compile path; dnspython's
ZONEMD digest (RFC 8976) is the oracle for the canonical form and order.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Iterator
from typing import cast

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import dns.zonetypes
import pytest
from dns.rdatatype import RdataType

from dnsserve.zones import versions
from dnsserve.zones.compile import compile_zone
from dnsserve.zones.load import load_zone_file, load_zones
from dnsserve.zones.table import ZoneTable
from dnsserve.zones.versions import (
    Record,
    Records,
    ZoneContent,
    ZoneDiff,
    ZoneVersion,
    canonical_order,
    content_hash,
    diff,
    new_version,
    records_wire,
    serial_gt,
    serial_next,
    serial_problem,
    split_records,
    to_rrsets,
    zone_content,
)
from testkit import SHIPPED_ZONES

SHIPPED = SHIPPED_ZONES
ORIGIN = "example.com."
APEX = """\
$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 2025112601 7200 3600 1209600 300
@ NS ns1
@ NS ns2
ns1 A 192.0.2.1
ns2 A 192.0.2.2
"""
# Every type with a fast canonical encoder, names in mixed case, and the
# rest through dnspython's own writer.
BODY = """\
www A 192.0.2.10
www A 192.0.2.11
www AAAA 2001:db8::10
WWW.Example.COM. TXT "v=spf1 -all"
alias CNAME WWW.example.com.
@ MX 10 Mail.example.com.
@ MX 20 mail2.example.net.
mail A 192.0.2.25
old DNAME New.Example.NET.
_sip._tcp SRV 10 5 5060 SIP.example.com.
sip A 192.0.2.30
@ CAA 0 issue "ca.example.net"
sub NS NS.Sub.example.com.
ns.sub A 192.0.2.53
1 PTR Host.Example.COM.
"""


def table(text: str, origin: str = ORIGIN) -> ZoneTable:
    zone = dns.zone.from_text(text, origin, relativize=False)
    return compile_zone(zone, file="test.zone", lines={})


def content(text: str, origin: str = ORIGIN) -> ZoneContent:
    return zone_content(table(text, origin))


def parsed(records: tuple[bytes, ...]) -> list[Record]:
    return [Record.from_wire(rr) for rr in records]


def texts(records: tuple[bytes, ...]) -> list[str]:
    return [r.to_text() for r in parsed(records)]


# -- content and hash ----------------------------------------------------------------


def test_content_is_zonemd_simple_input() -> None:
    """Canonical form and order (RFC 4034 §6) are exactly what ZONEMD hashes."""
    text = APEX + BODY
    zone = dns.zone.from_text(text, ORIGIN, relativize=False)
    expected = zone.compute_digest(dns.zonetypes.DigestHashAlgorithm.SHA384).digest
    assert hashlib.sha384(content(text).to_wire()).digest() == expected


def test_shipped_zones_match_zonemd() -> None:
    loaded = load_zones(SHIPPED, log_problems=False)
    assert loaded.tables
    for origin, t in loaded.tables.items():
        zone, _ = load_zone_file(loaded.files[origin], origin, include_dir=SHIPPED)
        expected = zone.compute_digest(dns.zonetypes.DigestHashAlgorithm.SHA384).digest
        assert hashlib.sha384(zone_content(t).to_wire()).digest() == expected, origin


def test_fast_encoders_equal_dnspython() -> None:
    t = table(APEX + BODY)
    by_key = {(r.owner, r.rdtype, r.rdata) for r in parsed(zone_content(t).records)}
    checked = set()
    for name, rdtype in t.rrset_keys():
        rrset = t.rrset(name, rdtype)
        assert rrset is not None
        for rdata in rrset:
            assert (name.to_digestable(), rdtype, rdata.to_digestable(t.origin)) in by_key
            checked.add(rdtype)
    fast = {RdataType.A, RdataType.NS, RdataType.CNAME, RdataType.PTR, RdataType.DNAME}
    assert fast | {RdataType.MX, RdataType.AAAA, RdataType.SRV} <= checked


class Interleaved:
    """A table whose rrset_keys yields an owner's types apart, with new Name objects."""

    def __init__(self, table: ZoneTable) -> None:
        self.table = table
        self.origin = table.origin

    def rrset_keys(self) -> Iterator[tuple[dns.name.Name, RdataType]]:
        keys = list(self.table.rrset_keys())
        for name, rdtype in keys[::2] + keys[1::2]:
            yield dns.name.from_text(name.to_text()), rdtype

    def node(self, name: dns.name.Name) -> object:
        return self.table.node(name)


def test_content_does_not_depend_on_key_order() -> None:
    t = table(APEX + BODY)
    assert zone_content(cast(ZoneTable, Interleaved(t))) == zone_content(t)


def test_records_are_canonical_and_ordered() -> None:
    c = content(APEX + BODY)
    records = parsed(c.records)
    owners = [r.name() for r in records]
    assert owners == sorted(owners)  # dnspython orders names canonically
    assert all(r.owner == r.owner.lower() for r in records)
    assert [r.rdtype for r in records[:3]] == [RdataType.NS, RdataType.NS, RdataType.SOA]
    www = [r for r in records if r.name() == dns.name.from_text("www.example.com.")]
    assert [r.rdtype for r in www] == [RdataType.A, RdataType.A, RdataType.TXT, RdataType.AAAA]
    assert www[0].rdata < www[1].rdata
    assert texts(c.records[2:3]) == [
        "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com."
        " 2025112601 7200 3600 1209600 300"
    ]


def test_canonical_order_is_rfc4034() -> None:
    # RFC 4034 §6.1's example, shuffled
    names = [
        "z.example.",
        "\\001.z.example.",
        "*.z.example.",
        "\\200.z.example.",
        "example.",
        "a.example.",
        "yljkjljk.a.example.",
        "Z.a.example.",
        "zABC.a.EXAMPLE.",
    ]
    expected = [
        "example.",
        "a.example.",
        "yljkjljk.a.example.",
        "Z.a.example.",
        "zABC.a.EXAMPLE.",
        "z.example.",
        "\\001.z.example.",
        "*.z.example.",
        "\\200.z.example.",
    ]
    parsed = [dns.name.from_text(n) for n in names]
    assert [n.to_text() for n in sorted(parsed, key=canonical_order)] == expected


def test_hash_ignores_file_order_and_case() -> None:
    lines = BODY.splitlines()
    shuffled = APEX + "\n".join(reversed(lines)) + "\n"
    upper = APEX + BODY.replace("www A", "WwW A").replace("Mail.", "MAIL.")
    base = content(APEX + BODY)
    assert content(shuffled) == base
    assert content_hash(content(shuffled)) == content_hash(base)
    assert content_hash(content(upper)) == content_hash(base)


@pytest.mark.parametrize(
    "edit",
    [
        ("www A 192.0.2.11\n", "www A 192.0.2.12\n"),  # rdata
        ("mail A 192.0.2.25\n", "mail 301 A 192.0.2.25\n"),  # a TTL
        ("www A 192.0.2.11\n", ""),  # a record
        ("2025112601", "2025112602"),  # the serial
        ("Mail.example.com.", "mail3.example.com."),  # a name inside rdata
    ],
    ids=["rdata", "ttl", "removed", "serial", "rdata-name"],
)
def test_hash_changes_with_content(edit: tuple[str, str]) -> None:
    base = APEX + BODY
    changed = base.replace(*edit)
    assert changed != base
    assert content_hash(content(changed)) != content_hash(content(base))


def test_hash_is_pinned() -> None:
    """The hash is persisted: a change of form or order must be deliberate."""
    assert content_hash(content(APEX)) == (
        "5491979b6e5e17d323ecaf74afa968d782ef86229a542af0e33b71e9bba595b3"
    )


def test_serial() -> None:
    assert content(APEX).serial == 2025112601
    c = content(APEX)
    no_soa = ZoneContent(
        c.origin, tuple(rr for rr in c.records if Record.from_wire(rr).rdtype != RdataType.SOA)
    )
    with pytest.raises(ValueError, match="no SOA"):
        _ = no_soa.serial


# -- wire form ---------------------------------------------------------------------


def test_wire_round_trip() -> None:
    c = content(APEX + BODY)
    back = ZoneContent.from_wire(c.origin, c.to_wire())
    assert back == c
    soa = Record.from_wire(back.records[2])
    assert soa.rdtype is RdataType.SOA
    assert soa.rdclass is dns.rdataclass.RdataClass.IN
    assert soa.to_wire() == back.records[2]
    assert split_records(b"") == ()
    some = c.records[3:7]
    assert split_records(b"".join(some)) == some


@pytest.mark.parametrize(
    "cut",
    [
        lambda w: w[:-1],  # rdata short
        lambda w: w[:5],  # inside the owner name
        lambda w: w[: w.index(b"\x00") + 4],  # inside type/class/TTL
        lambda w: b"\xc0\x0c" + w,  # a compression pointer is not canonical
    ],
    ids=["rdata", "owner", "fixed", "pointer"],
)
def test_from_wire_refuses_malformed(cut: Callable[[bytes], bytes]) -> None:
    wire = content(APEX).to_wire()
    with pytest.raises(ValueError):
        split_records(cut(wire))


def test_record_is_one_record() -> None:
    first, second = content(APEX).records[:2]
    with pytest.raises(ValueError, match="bytes after the record"):
        Record.from_wire(first + second)
    with pytest.raises(ValueError):
        Record.from_wire(first[:-1])


@pytest.mark.parametrize("cost", [1, 10**9], ids=["binary-search", "one-pass"])
def test_types_at(cost: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways of finding an owner's types (chosen by how many owners are asked for)."""
    monkeypatch.setattr(versions, "_SEARCH_COST", cost)
    many = "".join(f"h{i:03d} A 198.51.100.{i}\nh{i:03d} TXT x\n" for i in range(200))
    c = content(APEX + many + BODY)
    www, h7, h199, apex, absent = (
        dns.name.from_text(n, dns.name.from_text(ORIGIN)).to_digestable()
        for n in ("www", "h007", "h199", "@", "nowhere.sub")
    )
    assert c.types_at({www, h7, h199, apex, absent}) == {
        www: {RdataType.A, RdataType.AAAA, RdataType.TXT},
        h7: {RdataType.A, RdataType.TXT},
        h199: {RdataType.A, RdataType.TXT},
        apex: {RdataType.NS, RdataType.SOA, RdataType.MX, RdataType.CAA},
    }
    owners = {Record.from_wire(rr).owner for rr in c.records}
    assert len(c.types_at(owners | {absent})) == len(owners)


def test_to_rrsets_rebuilds_the_zone() -> None:
    t = table(APEX + BODY)
    rrsets = to_rrsets(zone_content(t).records)
    assert len(rrsets) == sum(1 for _ in t.rrset_keys())
    for rrset in rrsets:
        original = t.rrset(rrset.name, RdataType(rrset.rdtype))
        assert original is not None
        assert rrset == original  # dnspython compares case-insensitively
        assert rrset.ttl == original.ttl


# -- diff and versions -------------------------------------------------------------


def test_diff_nothing() -> None:
    d = diff(content(APEX + BODY), content(APEX + BODY))
    assert d == ZoneDiff((), ())
    assert not d


def test_diff_add_remove_ttl() -> None:
    old = content(APEX + BODY)
    new_text = (APEX + BODY).replace("2025112601", "2025112602").replace(
        "mail A 192.0.2.25\n", "mail 600 A 192.0.2.25\n"
    ).replace("sip A 192.0.2.30\n", "") + "new A 192.0.2.99\n"
    d = diff(old, content(new_text))
    assert texts(d.removed) == [
        "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com."
        " 2025112601 7200 3600 1209600 300",
        "mail.example.com. 300 IN A 192.0.2.25",
        "sip.example.com. 300 IN A 192.0.2.30",
    ]
    assert texts(d.added) == [
        "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com."
        " 2025112602 7200 3600 1209600 300",
        "mail.example.com. 600 IN A 192.0.2.25",
        "new.example.com. 300 IN A 192.0.2.99",
    ]
    back = diff(content(new_text), old)
    assert (back.removed, back.added) == (d.added, d.removed)


def test_new_version() -> None:
    old, new = content(APEX), content(APEX.replace("2025112601", "2025112602") + BODY)
    changes = diff(old, new)
    v = new_version(new, changes, at=1700000000.5)
    assert v == ZoneVersion(
        zone="example.com.",
        serial=2025112602,
        hash=content_hash(new),
        records=len(new),
        added=len(BODY.splitlines()) + 1,
        removed=1,
        at=1700000000.5,
    )
    first = new_version(old, None, at=1.0)
    assert (first.records, first.added, first.removed) == (len(old), len(old), 0)


# -- serials -----------------------------------------------------------------------

HALF = 2**31
TOP = 2**32 - 1


@pytest.mark.parametrize(
    ("a", "b", "later"),
    [
        (1, 0, True),
        (0, 1, False),
        (5, 5, False),
        (0, TOP, True),  # wrapped: 0 follows 2**32-1
        (TOP, 0, False),
        (HALF - 1, 0, True),  # the farthest "later"
        (HALF, 0, False),  # exactly half-way: undefined (RFC 1982 §3.2), never later
        (0, HALF, False),
        (HALF + 1, 0, False),  # past half-way: 0 is the later one
        (0, HALF + 1, True),
        (2025112602, 2025112601, True),
    ],
)
def test_serial_gt(a: int, b: int, later: bool) -> None:
    assert serial_gt(a, b) is later


def test_serial_next_and_range() -> None:
    assert serial_next(0) == 1
    assert serial_next(TOP) == 0
    assert serial_gt(serial_next(TOP), TOP)
    for bad in (-1, 2**32):
        with pytest.raises(ValueError):
            serial_next(bad)
        with pytest.raises(ValueError):
            serial_gt(bad, 0)


def version(serial: int, digest: str) -> ZoneVersion:
    return ZoneVersion(
        zone=ORIGIN, serial=serial, hash=digest, records=5, added=0, removed=0, at=0.0
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (version(7, "a"), version(7, "a"), None),
        (version(7, "a"), version(8, "b"), None),
        (version(TOP, "a"), version(0, "b"), None),  # wrapped forward
        (version(7, "a"), version(7, "b"), "the serial stayed 7"),
        (version(8, "a"), version(7, "b"), "went from 8 to 7, which is not later"),
        (version(0, "a"), version(HALF, "b"), "went from 0 to 2147483648, which is not later"),
    ],
)
def test_serial_problem(old: ZoneVersion, new: ZoneVersion, expected: str | None) -> None:
    found = serial_problem(old, new)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith("example.com.: the content changed")
        assert expected in found
        assert "secondaries will not pick the change up" in found


def test_serial_problem_from_content() -> None:
    old = content(APEX + BODY)
    new = content(APEX + BODY.replace("192.0.2.30", "192.0.2.31"))
    v_old = new_version(old, None, at=0.0)
    v_new = new_version(new, diff(old, new), at=1.0)
    assert v_old.serial == v_new.serial and v_old.hash != v_new.hash
    assert serial_problem(v_old, v_new) is not None


def test_content_from_wire_equals_content_from_decoded_rrsets() -> None:
    from dnsserve.zones.versions import _decoded_content

    tables = [table(APEX + BODY), *load_zones(SHIPPED, log_problems=False).tables.values()]
    for t in tables:
        assert zone_content(t) == _decoded_content(t), t.origin


def test_records_are_one_bytes_read_one_record_at_a_time() -> None:
    c = content(APEX + BODY)
    records = c.records
    assert isinstance(records, Records) and records.to_wire() is c.to_wire()
    plain = tuple(records)
    assert records == plain and plain == records and records[-1] == plain[-1]
    assert records[1:3] == plain[1:3] and len(records) == len(plain)
    again = pickle.loads(pickle.dumps(records))
    assert again == records and hash(again) == hash(records)
    assert Records.of(plain) == records and records_wire(plain) == c.to_wire()
    assert ZoneContent(c.origin, plain) == c  # a content built by hand equals a loaded one


def test_diff_of_records_reads_only_what_differs() -> None:
    # Records find their common first and last records on the bytes: the same diff
    base = APEX + BODY
    edits = [
        base.replace("2025112601", "2025112602"),  # a new serial: the first records
        base.replace("1 PTR Host.Example.COM.\n", ""),  # the last record gone
        base + "zzz TXT last\n",  # one more at the end
        base.replace("mail A 192.0.2.25\n", "mail A 192.0.2.26\n"),  # in the middle
        base.replace("www A 192.0.2.10\n", "www 60 A 192.0.2.10\n"),  # a TTL
        APEX,  # most of it gone
    ]
    old = content(base)
    assert isinstance(old.records, Records)
    for text in edits:
        new = content(text)
        assert isinstance(new.records, Records)
        want = diff(ZoneContent(old.origin, tuple(old.records)),
                    ZoneContent(new.origin, tuple(new.records)))
        assert diff(old, new) == want and diff(new, old) == ZoneDiff(want.added, want.removed)
        assert want  # every edit is a change


@pytest.mark.parametrize("rdtype, text", [
    ("RRSIG", "A 13 3 300 20300101000000 20200101000000 12345 Example.COM. "
              "AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHHIIIIJJJJKKKKLLLLMMMMNNNNOOOOPPPPQQQQRRRRSSSSTTTT"),
    ("NSEC", "Next.Example.COM. A AAAA RRSIG NSEC"),
    ("NSEC3", "1 1 10 AABBCC 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG"),
    ("NSEC3PARAM", "1 0 10 AABBCC"),
])
def test_dnssec_types_are_canonical_as_dnspython_writes_them(rdtype: str, text: str) -> None:
    """The signed zones' types skip dnspython (a zone's content is mostly them)."""
    from dnsserve.zones.versions import canonical_rdata

    rdata = dns.rdata.from_text("IN", rdtype, text)
    origin = dns.name.from_text(ORIGIN)
    assert canonical_rdata(rdata.rdtype, rdata.to_wire(), origin) == rdata.to_digestable(origin)
