"""Zone loading and validation: zones.load and zones.compile, no sockets.

Fixtures in tests/data/zones_bad/ are one zone per file, named <origin>.zone like
real zones; the line a problem must be reported on carries a ``; <- error``
(or ``; <- warning``) comment, so the expected line follows the file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone
import pytest
from dns.rdatatype import RdataType

from dnsserve.errors import ZoneError
from dnsserve.zones.compile import (
    SourceMap,
    ZoneProblem,
    check_zone,
    compile_zone,
)
from dnsserve.zones.load import (
    MAX_GENERATE,
    check_zones,
    load_zone_file,
    load_zones,
    origin_from_path,
)
from dnsserve.zones.parse import parse_zone_file
from dnsserve.zones.table import ZoneTable
from testkit import SHIPPED_ZONES, TEST_DATA

SHIPPED = SHIPPED_ZONES
BAD = TEST_DATA / "zones_bad"


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def marked_line(path: Path, marker: str = "<- error") -> int:
    lines = [i for i, text in enumerate(path.read_text().splitlines(), 1) if marker in text]
    assert len(lines) == 1, f"{path} must mark exactly one line with {marker!r}"
    return lines[0]


def load_and_compile(path: Path) -> ZoneTable:
    zone, sources = load_zone_file(path, origin_from_path(path), include_dir=path.parent)
    return compile_zone(zone, file=str(path), lines=sources)


# -- the shipped zones -------------------------------------------------------------


def test_shipped_zones_load_clean() -> None:
    assert [p.to_text() for p in check_zones(SHIPPED)] == []
    loaded = load_zones(SHIPPED)
    zone_files = sorted(SHIPPED.glob("*.zone"))
    assert len(zone_files) >= 3
    assert loaded.files == {origin_from_path(p): p for p in zone_files}
    assert set(loaded.tables) == set(loaded.files)
    for origin, table in loaded.tables.items():
        assert isinstance(table, ZoneTable)
        assert table.origin == origin


def test_shipped_reverse_zone_uses_include_and_generate() -> None:
    path = SHIPPED / "100.51.198.in-addr.arpa.zone"
    zone, sources = load_zone_file(path, origin_from_path(path), include_dir=SHIPPED)
    apex = name("100.51.198.in-addr.arpa.")
    ns = zone.get_rdataset(apex, RdataType.NS)
    assert ns is not None
    assert {r.target for r in ns} == {name("ns1.example.com."), name("ns2.example.com.")}
    ns_source = sources.record(apex, next(iter(ns)))
    assert ns_source is not None
    assert ns_source.file == str(SHIPPED / "include" / "example.com-ns.inc")
    ptrs = {
        n.relativize(apex).to_text(): rds[0].target.to_text()
        for n, rds in ((n, zone.get_rdataset(n, RdataType.PTR)) for n in zone.nodes)
        if rds is not None
    }
    assert ptrs == {str(i): f"host{i}.example.com." for i in range(1, 21)}


# -- bad zones: the right error, file and line -----------------------------------

# (zone file, file that holds the marked line or None for line 0, words of the message)
BAD_CASES = [
    ("syntax-error.example.zone", "syntax-error.example.zone", "syntax error at '192.0.2.300'"),
    ("missing-rdata.example.zone", "missing-rdata.example.zone", "expecting"),
    ("unbalanced.example.zone", "unbalanced.example.zone", "parentheses opened at line 3"),
    ("two-soa.example.zone", "two-soa.example.zone", "more than one SOA record"),
    ("soa-not-apex.example.zone", "soa-not-apex.example.zone", "not at the zone apex"),
    ("no-ns.example.zone", "no-ns.example.zone", "no NS records at the zone apex"),
    ("no-soa.example.zone", None, "no SOA record at the zone apex"),
    ("empty.example.zone", None, "no SOA record at the zone apex"),
    ("cname-other.example.zone", "cname-other.example.zone", "CNAME beside other data"),
    ("other-cname.example.zone", "other-cname.example.zone", "CNAME beside other data"),
    ("two-cname.example.zone", "two-cname.example.zone", "more than one CNAME record"),
    ("cname-apex.example.zone", "cname-apex.example.zone", "CNAME at the zone apex"),
    ("generate-huge.example.zone", "generate-huge.example.zone", f"more than {MAX_GENERATE}"),
    ("bad-include.example.zone", "bad-include.example.zone", "include/missing.inc"),
    ("include-syntax.example.zone", "include/syntax-error.inc", "not-an-address"),
    ("include-loop.example.zone", "include/loop.inc", "$INCLUDE loop"),
]


OCCLUDED = TEST_DATA / "zones_occluded"


def test_occluded_and_outside_data_load_with_a_warning() -> None:
    """What NSD, Knot and BIND load (data below a cut or a DNAME, an owner outside
    the origin) loads here too: one warning at the marked line, the zone served."""
    loaded = load_zones(OCCLUDED, log_problems=False)
    files = sorted(OCCLUDED.glob("*.zone"))
    assert set(loaded.tables) == {origin_from_path(p) for p in files}
    for path in files:
        found = [p for p in loaded.problems if p.file == str(path)]
        assert [(p.severity, p.line) for p in found] == [
            ("warning", marked_line(path, "<- warning"))
        ], found
        assert any(w in found[0].message for w in ("occluded", "record left out"))


@pytest.fixture(scope="module")
def bad_problems() -> list[ZoneProblem]:
    return check_zones(BAD)


@pytest.mark.parametrize(("zone_file", "marked", "words"), BAD_CASES, ids=lambda c: str(c))
def test_bad_zone_reports_file_and_line(
    bad_problems: list[ZoneProblem], zone_file: str, marked: str | None, words: str
) -> None:
    path = BAD / zone_file
    origin = origin_from_path(path).to_text()
    file = str(BAD / marked) if marked else str(path)
    line = marked_line(BAD / marked) if marked else 0
    errors = [p for p in bad_problems if p.zone == origin and p.severity == "error"]
    assert errors, f"no error for {zone_file}"
    first = errors[0]
    assert (first.file, first.line) == (file, line), first.to_text()
    assert words in first.message
    # compile_zone raises the same first error, as a ZoneError with file and line
    with pytest.raises(ZoneError) as raised:
        load_and_compile(path)
    assert (raised.value.file, raised.value.line) == (first.file, first.line)
    # the load's problem also names the zone when the error is in an included file
    suffix = "" if file == str(path) else f" (in zone {origin}, {path}: the zone is not served)"
    assert raised.value.message + suffix == first.message


def test_every_bad_fixture_is_a_case() -> None:
    served = {"good.example.zone", "warnings.example.zone"}
    on_disk = {p.name for p in BAD.glob("*.zone")} - served
    assert on_disk == {case[0] for case in BAD_CASES}


def test_bad_zones_do_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dnsserve.zones.load"):
        loaded = load_zones(BAD)
    assert set(loaded.tables) == {name("good.example."), name("warnings.example.")}
    assert loaded.files[name("good.example.")] == BAD / "good.example.zone"
    failed = {p.zone for p in loaded.errors}
    assert failed == {origin_from_path(BAD / case[0]).to_text() for case in BAD_CASES}
    # each failure is logged with file and line
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    line = marked_line(BAD / "two-soa.example.zone")
    assert f"{BAD / 'two-soa.example.zone'}:{line}: error: more than one SOA" in logged
    assert f"{BAD / 'include' / 'loop.inc'}:" in logged
    caplog.clear()
    quiet = load_zones(BAD, log_problems=False)
    assert quiet.problems == loaded.problems
    assert set(quiet.tables) == set(loaded.tables)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_warnings_are_reported_and_the_zone_served(bad_problems: list[ZoneProblem]) -> None:
    path = BAD / "warnings.example.zone"
    text = path.read_text().splitlines()
    expected = {i for i, t in enumerate(text, 1) if "<- warning" in t}
    found = [p for p in bad_problems if p.zone == "warnings.example."]
    assert {p.severity for p in found} == {"warning"}
    assert {p.line for p in found} == expected
    assert all(p.file == str(path) for p in found)
    messages = " | ".join(p.message for p in found)
    for words in ("has no A or AAAA", "is a CNAME", "no glue", "DS at the zone apex"):
        assert words in messages
    assert isinstance(load_and_compile(path), ZoneTable)


# -- master-file syntax ------------------------------------------------------------


@pytest.fixture(scope="module")
def good() -> tuple[dns.zone.Zone, SourceMap]:
    path = BAD / "good.example.zone"
    return load_zone_file(path, name("good.example."), include_dir=BAD)


def test_include_with_origin_and_restored_state(good: tuple[dns.zone.Zone, SourceMap]) -> None:
    zone, sources = good
    pc1 = zone.get_rdataset(name("pc1.lab.good.example."), RdataType.A)
    assert pc1 is not None and pc1.ttl == 60  # $TTL inside the included file
    after = zone.get_rdataset(name("after.good.example."), RdataType.A)
    assert after is not None and after.ttl == 3600  # ... does not outlive it
    where = sources.owner(name("pc1.lab.good.example."))
    assert where is not None
    assert (where.file, where.line) == (str(BAD / "include" / "good-hosts.inc"), 4)
    assert sources[name("after.good.example.")] == marked_line(
        BAD / "good.example.zone", "a record after the includes"
    )


def test_include_does_not_depend_on_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    zone, _ = load_zone_file(BAD / "good.example.zone", name("good.example."), include_dir=BAD)
    assert zone.get_rdataset(name("good.example."), RdataType.NS) is not None


def test_include_absolute_path(tmp_path: Path) -> None:
    inc = tmp_path / "elsewhere" / "ns.inc"
    inc.parent.mkdir()
    inc.write_text("@ IN NS ns1\n")
    (tmp_path / "abs.example.zone").write_text(
        f"$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n$INCLUDE {inc}\nns1 A 192.0.2.1\n"
    )
    loaded = load_zones(tmp_path)
    assert [p.to_text() for p in loaded.problems] == []
    assert name("abs.example.") in loaded.tables


def test_generate(good: tuple[dns.zone.Zone, SourceMap]) -> None:
    zone, sources = good
    made = sorted(n.to_text() for n in zone.nodes if n.labels[0].startswith(b"node"))
    assert made == [f"node{i + 10:03}.good.example." for i in (1, 4, 7, 10)]
    rdataset = zone.get_rdataset(name("node014.good.example."), RdataType.A)
    assert rdataset is not None and rdataset[0].address == "198.51.100.4"
    line = marked_line(BAD / "good.example.zone", "$GENERATE 1-10/3")
    assert {sources[name(n)] for n in made} == {line}


@pytest.mark.parametrize("bad_range", ["10-1", "1-10/0", "x-3", "5"])
def test_generate_bad_range(tmp_path: Path, bad_range: str) -> None:
    path = tmp_path / "gen.example.zone"
    path.write_text(
        f"$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n$GENERATE {bad_range} h$ A 192.0.2.$\n"
    )
    with pytest.raises(ZoneError) as raised:
        load_zone_file(path, name("gen.example."), include_dir=tmp_path)
    assert (raised.value.file, raised.value.line) == (str(path), 4)


def test_rfc3597_unknown_types(good: tuple[dns.zone.Zone, SourceMap]) -> None:
    zone, _ = good
    opaque = zone.get_rdataset(name("opaque.good.example."), 65280)
    assert opaque is not None and opaque[0].to_wire() == bytes.fromhex("0A000001")
    empty = zone.get_rdataset(name("empty.good.example."), 65281)
    assert empty is not None and empty[0].to_wire() == b""
    shipped, _ = load_zone_file(
        SHIPPED / "example.com.zone", name("example.com."), include_dir=SHIPPED
    )
    unknown = shipped.get_rdataset(name("unknown.example.com."), 65280)
    assert unknown is not None and unknown[0].to_wire() == bytes.fromhex("0A000001")


def test_escapes_in_names_and_txt(good: tuple[dns.zone.Zone, SourceMap]) -> None:
    zone, _ = good
    owner = dns.name.Name((b"a.b", b"good", b"example", b""))
    txt = zone.get_rdataset(owner, RdataType.TXT)
    assert txt is not None
    assert txt[0].strings == (b'escaped "dot" in the owner', b"ABC")


def test_crlf_and_comment_only_lines(tmp_path: Path) -> None:
    path = tmp_path / "crlf.example.zone"
    path.write_bytes(
        b"; comment\r\n$TTL 60\r\n@ SOA ns1 h 1 2 3 4 5\r\n@ NS ns1\r\n\r\nns1 A 192.0.2.300\r\n"
    )
    with pytest.raises(ZoneError) as raised:
        load_zone_file(path, name("crlf.example."), include_dir=tmp_path)
    assert raised.value.line == 6


def test_include_nested_too_deep(tmp_path: Path) -> None:
    # a chain of distinct files, each including the next: bounded, no loop
    for i in range(12):
        (tmp_path / f"chain{i}.inc").write_text(f"$INCLUDE chain{i + 1}.inc\n")
    (tmp_path / "chain12.inc").write_text("")
    path = tmp_path / "deep.example.zone"
    path.write_text("$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n$INCLUDE chain0.inc\n")
    with pytest.raises(ZoneError, match="nested more than"):
        load_zone_file(path, name("deep.example."), include_dir=tmp_path)


def test_raw_octets_are_read_as_octets(tmp_path: Path) -> None:
    """A raw 8-bit byte is that octet in a string and in a label, as BIND and NSD read
    it (RFC 1035 §5.1), not UTF-8 and not IDNA; valid UTF-8 is its own octets too."""
    path = tmp_path / "latin1.example.zone"
    path.write_bytes(b'$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1 ; caf\xc3\xa9\n'
                     b'@ TXT "caf\xe9" caf\xc3\xa9\ncaf\xe9 A 192.0.2.1\n'
                     b'\xc3\xa9t\xc3\xa9 CNAME caf\xe9\n')
    zone, _ = load_zone_file(path, name("latin1.example."), include_dir=tmp_path)
    txt = zone.get_rdataset(name("latin1.example."), "TXT")
    assert txt is not None and [r.strings for r in txt] == [(b"caf\xe9", b"caf\xc3\xa9")]
    owner = dns.name.Name([b"caf\xe9", b"latin1", b"example", b""])
    assert zone.get_rdataset(owner, "A") is not None
    alias = dns.name.Name([b"\xc3\xa9t\xc3\xa9", b"latin1", b"example", b""])
    cname = zone.get_rdataset(alias, "CNAME")
    assert cname is not None and cname[0].target == owner
    parsed = parse_zone_file(path, name("latin1.example."), include_dir=tmp_path)
    # the first raw octet outside a comment (line 4), with the escape every peer loads
    assert [(line, message[:28]) for _, line, message, _ in parsed.warnings] == [
        (4, "a raw octet 0xe9 (the file's")]
    assert "\\233 loads everywhere" in parsed.warnings[0][2]


# -- the zones directory -----------------------------------------------------------


def test_missing_and_empty_directory(tmp_path: Path) -> None:
    missing = check_zones(tmp_path / "nope")
    assert [(p.file, p.line, p.severity) for p in missing] == [(str(tmp_path / "nope"), 0, "error")]
    (tmp_path / "README").write_text("not a zone\n")
    (tmp_path / ".#example.com.zone").write_text("editor lock\n")
    (tmp_path / "sub.zone").mkdir()
    loaded = load_zones(tmp_path)
    assert loaded.tables == {}
    assert [p.message for p in loaded.errors] == ["no <origin>.zone files here"]


def test_zones_directory_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "dnsserve.toml").write_text("[server]\n")
    (problem,) = check_zones(tmp_path / "dnsserve.toml")
    assert problem.message == "the zones directory is not a directory (a file?)"
    assert problem.file == str(tmp_path / "dnsserve.toml") and problem.severity == "error"


def test_two_files_for_one_origin(tmp_path: Path) -> None:
    text = "$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
    for file in ("dup.example.zone", "DUP.example..zone", "other.example.zone"):
        (tmp_path / file).write_text(text)
    loaded = load_zones(tmp_path)
    assert set(loaded.tables) == {name("other.example.")}
    dup = [p for p in loaded.errors if name(p.zone) == name("dup.example.")]
    assert {p.file for p in dup} == {
        str(tmp_path / "dup.example.zone"),
        str(tmp_path / "DUP.example..zone"),
    }


def test_origin_from_file_name() -> None:
    assert origin_from_path(Path("zones/example.com.zone")) == name("example.com.")
    assert origin_from_path(Path("example.com..zone")) == name("example.com.")
    assert origin_from_path(Path("root.zone")) == dns.name.root
    assert origin_from_path(Path("2.0.192.in-addr.arpa.zone")) == name("2.0.192.in-addr.arpa.")
    for bad in ("a..b.zone", f"{'x' * 64}.zone", ".zone"):
        with pytest.raises(ZoneError):
            origin_from_path(Path(bad))


def test_root_zone(tmp_path: Path) -> None:
    (tmp_path / "root.zone").write_text(
        "$TTL 60\n. SOA a.root-servers.net. h 1 2 3 4 5\n. NS a.root-servers.net.\n"
        "com. NS a.gtld-servers.net.\n"
        "a.root-servers.net. A 198.41.0.4\n"
        "net. NS a.gtld-servers.net.\n"
        "a.gtld-servers.net. A 192.5.6.30\n"  # glue of both com. and net.
    )
    loaded = load_zones(tmp_path)
    assert [p.to_text() for p in loaded.problems] == []
    assert loaded.tables[dns.name.root].origin == dns.name.root


def test_problem_text_and_json() -> None:
    problem = ZoneProblem("zones/x.zone", 7, "error", "bad thing", "x.")
    assert problem.to_text() == "zones/x.zone:7: error: bad thing"
    assert ZoneProblem("zones/x.zone", 0, "warning", "w", "x.").to_text() == (
        "zones/x.zone: warning: w"
    )
    assert json.loads(json.dumps(problem.to_dict())) == {
        "file": "zones/x.zone",
        "line": 7,
        "severity": "error",
        "message": "bad thing",
        "zone": "x.",
    }


# -- check_zone on zones built in memory ---------------------------------------------

APEX = "$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"


def zone_of(text: str, origin: str = "z.example.") -> dns.zone.Zone:
    return dns.zone.from_text(APEX + text, origin, relativize=False, check_origin=False)


def messages(zone: dns.zone.Zone, severity: str = "error") -> list[str]:
    return [p.message for p in check_zone(zone, file="z", lines={}) if p.severity == severity]


def add_rdataset(zone: dns.zone.Zone, owner: str, rdtype: str, text: str) -> None:
    """Put data in a node behind dnspython's back, as a transfer or a bug might."""
    rdataset = dns.rdataset.from_text("IN", rdtype, 60, text)
    zone.nodes.setdefault(name(owner), dns.node.Node()).rdatasets.append(rdataset)


def test_check_zone_clean() -> None:
    assert check_zone(zone_of("www A 192.0.2.2\n"), file="z", lines={}) == []


def test_check_zone_cname_beside_other_data() -> None:
    zone = zone_of("alias CNAME www\nwww A 192.0.2.2\n")
    assert messages(zone) == []
    add_rdataset(zone, "alias.z.example.", "TXT", '"x"')
    assert messages(zone) == ["CNAME at alias.z.example. beside other data (TXT)"]


def test_check_zone_cname_beside_rrsig_and_nsec_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "z.example.zone"
    path.write_text(
        APEX + "alias CNAME www\nwww A 192.0.2.2\n"
        "alias NSEC www CNAME RRSIG NSEC\n"
        "alias RRSIG CNAME 13 3 60 20300101000000 20200101000000 1 z.example. AAAA\n"
    )
    assert isinstance(load_and_compile(path), ZoneTable)


def test_check_zone_soa_and_owner_outside() -> None:
    zone = zone_of("")
    add_rdataset(zone, "www.z.example.", "SOA", "ns1.z.example. h. 1 2 3 4 5")
    add_rdataset(zone, "www.elsewhere.", "A", "192.0.2.9")
    assert messages(zone) == [
        "SOA record at www.z.example., not at the zone apex z.example.",
        "www.elsewhere. is outside the zone z.example.",
    ]


def test_check_zone_apex_cname_and_missing_apex() -> None:
    zone = dns.zone.Zone(name("z.example."), relativize=False)
    add_rdataset(zone, "z.example.", "CNAME", "www.example.org.")
    assert messages(zone) == [
        "no SOA record at the zone apex z.example.",
        "no NS records at the zone apex z.example.",
        "CNAME at the zone apex z.example.",
    ]


def test_check_zone_nested_delegation_and_glue() -> None:
    zone = zone_of(
        "sub NS ns.sub\nns.sub A 192.0.2.10\n"  # glue: fine
        "deep.sub NS ns.deep.sub\n"  # a cut below a cut: occluded
        "other NS ns.sub\n"  # sibling glue for 'other' lives below 'sub'
        'third NS ns.third\nns.third AAAA 2001:db8::3\nx.ns.third TXT "no"\n'
    )
    assert messages(zone) == []
    occluded = [m for m in messages(zone, "warning") if "occluded" in m]
    assert occluded == [
        "NS at deep.sub.z.example. is below the delegation sub.z.example.: occluded, not"
        " served (queries get the referral; only NS, DS and glue belong there)",
        "TXT at x.ns.third.z.example. is below the delegation third.z.example.: occluded,"
        " not served (queries get the referral; only NS, DS and glue belong there)",
    ]
    zone = zone_of("sub NS ns.sub\nother NS a.sub\na.sub A 192.0.2.11\nns.sub A 192.0.2.10\n")
    assert messages(zone) == []
    assert messages(zone, "warning") == [
        "A at a.sub.z.example. is below the delegation sub.z.example. but not one of its"
        " NS targets: served only as glue for another delegation"
    ]


def test_check_zone_glue_at_the_cut_itself() -> None:
    zone = zone_of("sub NS sub\nsub A 192.0.2.10\nsub DS 1 13 2 " + "00" * 32 + "\n")
    assert messages(zone) == []
    assert messages(zone, "warning") == []


def test_check_zone_targets() -> None:
    zone = zone_of(
        "@ MX 10 mail.wild\n*.wild A 192.0.2.7\n"  # resolved by the wildcard: fine
        "@ MX 0 .\n"  # null MX
        "_x._tcp SRV 0 0 1 gone\n"
        "www DS 1 13 2 " + "00" * 32 + "\n"
        "dept DNAME example.org.\n@ MX 20 m.dept\n"  # rewritten by the DNAME: not ours
        "sub NS ns.sub\nsub NS ns1\n@ MX 30 x.sub\n"  # below a delegation: not ours
    )
    assert messages(zone) == []
    assert messages(zone, "warning") == [
        "SRV target gone.z.example. of _x._tcp.z.example. has no A or AAAA records in the zone",
        "DS at www.z.example., which is not a delegation",
        "NS target ns.sub.z.example. of sub.z.example. is below the delegation sub.z.example."
        " and has no glue (A/AAAA) records",
    ]


def test_check_zone_names_record_lines(tmp_path: Path) -> None:
    path = tmp_path / "z.example.zone"
    path.write_text(APEX + "www A 192.0.2.2\nwww.sub A 192.0.2.3\nsub NS ns.example.org.\n")
    zone, sources = load_zone_file(path, name("z.example."), include_dir=tmp_path)
    [problem] = check_zone(zone, file=str(path), lines=sources)
    assert (problem.file, problem.line, problem.severity) == (str(path), 6, "warning")
    assert problem.message.endswith(
        "is below the delegation sub.z.example. (line 7): occluded, not served (queries get"
        " the referral; only NS, DS and glue belong there)"
    )
    # a plain {owner: line} mapping works too
    [plain] = check_zone(zone, file="f", lines={name("www.sub.z.example."): 42})
    assert (plain.file, plain.line) == ("f", 42)


# -- reloading only what changed ----------------------------------------------------


def test_a_reload_reads_again_only_the_zones_whose_files_changed(tmp_path: Path) -> None:
    inc = tmp_path / "include"
    inc.mkdir()
    (inc / "hosts.inc").write_text("www A 192.0.2.2\n")
    (tmp_path / "a.example.zone").write_text(APEX + "$INCLUDE include/hosts.inc\n")
    (tmp_path / "b.example.zone").write_text(APEX + "www A 192.0.2.3\n")
    a, b = name("a.example."), name("b.example.")
    first = load_zones(tmp_path)
    assert set(first.fingerprints) == {a, b} and first.reused == frozenset()
    assert [f for f, *_ in first.fingerprints[a]] == [
        str(tmp_path / "a.example.zone"), str(inc / "hosts.inc")
    ]
    second = load_zones(tmp_path, previous=first)
    assert second.reused == {a, b}
    assert second.tables[a] is first.tables[a] and second.tables[b] is first.tables[b]
    # an included file changed: its zone is read again, the other kept
    (inc / "hosts.inc").write_text("www A 192.0.2.22\n")
    os.utime(inc / "hosts.inc", ns=(1, 1))
    third = load_zones(tmp_path, previous=second)
    assert third.reused == {b}
    www = third.tables[a].rrset(name("www.a.example."), RdataType.A)
    assert www is not None and {r.to_text() for r in www} == {"192.0.2.22"}
    # a zone that fails is read again every time, and its error reported each time
    (tmp_path / "b.example.zone").write_text(APEX + "www A 192.0.2.300\n")
    fourth = load_zones(tmp_path, previous=third)
    assert b not in fourth.tables and b not in fourth.fingerprints
    assert [p.zone for p in fourth.errors] == ["b.example."]
    assert load_zones(tmp_path, previous=fourth).errors == fourth.errors
