"""zones.compile on ParsedRecords: what a fast parser hands over, judged on wire data.

A parser keeps duplicates, each record's own TTL, and records a master-file
reader would refuse; ``compile_records`` drops the duplicates, gives an RRset
the smallest TTL, and refuses (at the record's own line, the first in file
order) what dnspython's reader refused while reading.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from dns.rdatatype import RdataType

from dnsserve.zones.compile import compile_records
from dnsserve.zones.offload import OFFLOAD_BYTES, load_packed, worth_a_child
from dnsserve.zones.records import ParsedRecords
from dnsserve.zones.table import ZoneTable, pack_table, unpack_steps
from dnsserve.zones.versions import ZoneContent, content_steps, zone_content

ORIGIN = "z.example."


def wire(text: str) -> bytes:
    data = dns.name.from_text(text).to_wire()
    assert data is not None
    return data


def parsed(
    *rows: tuple[str, str, int, str], include: dict[int, str] | None = None
) -> ParsedRecords:
    """Records (owner, type, ttl, rdata text), one a line from line 1 of z.example.zone."""
    out = ParsedRecords(wire(ORIGIN))
    out.file_index("z.example.zone")
    for line, (owner, rdtype, ttl, text) in enumerate(rows, 1):
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, rdtype, text, dns.name.from_text(ORIGIN), relativize=False
        )
        file = out.file_index((include or {}).get(line, "z.example.zone"))
        out.add(wire(owner), dns.rdatatype.from_text(rdtype), ttl, rdata.to_wire(), file, line)
    return out


APEX = (
    ("z.example.", "SOA", 60, "ns1 h 1 2 3 4 5"),
    ("z.example.", "NS", 60, "ns1"),
    ("ns1.z.example.", "A", 60, "192.0.2.1"),
)


def test_duplicates_dropped_and_the_smallest_ttl_wins() -> None:
    compiled = compile_records(parsed(
        *APEX,
        ("www.z.example.", "A", 300, "192.0.2.2"),
        ("WWW.z.example.", "A", 60, "192.0.2.2"),
        ("www.z.example.", "A", 120, "192.0.2.3"),
        ("www.z.example.", "MX", 60, "10 NS1.z.example."),
        ("www.z.example.", "MX", 60, "10 ns1.z.example."),
    ))
    [warning] = compiled.problems  # the A RRset's TTLs differ: one warning, at the second
    assert (warning.severity, warning.line) == ("warning", 5)
    assert "different TTLs: served with the smallest, 60" in warning.message
    table = compiled.table
    assert table is not None
    www = dns.name.from_text("www.z.example.")
    a = table.rrset(www, RdataType.A)
    assert a is not None and a.ttl == 60
    assert sorted(r.to_text() for r in a) == ["192.0.2.2", "192.0.2.3"]
    mx = table.rrset(www, RdataType.MX)
    assert mx is not None and len(mx) == 1
    assert str(a.name) == "www.z.example."  # the owner as first written


def test_reader_rules_stop_at_the_first_in_file_order() -> None:
    cases = [
        ((("www.z.example.", "CNAME", 60, "ns1"), ("www.z.example.", "A", 60, "192.0.2.9")),
         5, "CNAME beside other data at www.z.example. (the first at line 4)"),
        ((("www.z.example.", "A", 60, "192.0.2.9"), ("www.z.example.", "CNAME", 60, "ns1")),
         5, "CNAME beside other data at www.z.example. (the first at line 4)"),
        ((("www.z.example.", "CNAME", 60, "ns1"), ("www.z.example.", "CNAME", 60, "ns2")),
         5, "more than one CNAME record at www.z.example. (the first at line 4)"),
        ((("www.z.example.", "SOA", 60, "ns1 h 1 2 3 4 5"),),
         4, "SOA record at www.z.example., not at the zone apex z.example."),
        ((("www.elsewhere.", "A", 60, "192.0.2.9"), ("x.z.example.", "CNAME", 60, "ns1"),
          ("x.z.example.", "TXT", 60, "x")),
         4, "owner www.elsewhere. is outside the zone z.example."),
        ((("z.example.", "CNAME", 60, "ns1"),), 4, "CNAME at the zone apex z.example."),
    ]
    for rows, line, message in cases:
        compiled = compile_records(parsed(*APEX, *rows))
        assert compiled.table is None
        assert [(p.line, p.message) for p in compiled.problems] == [(line, message)], rows


def test_the_same_singleton_twice_is_a_duplicate() -> None:
    compiled = compile_records(parsed(
        *APEX, ("www.z.example.", "CNAME", 60, "ns1"), ("www.z.example.", "CNAME", 30, "NS1"),
    ))
    assert [p.severity for p in compiled.problems] == ["warning"]  # the TTLs differ
    assert compiled.table is not None


def test_problems_name_the_included_file() -> None:
    compiled = compile_records(parsed(
        *APEX, ("www.z.example.", "CNAME", 60, "ns1"), ("www.z.example.", "A", 60, "192.0.2.9"),
        include={5: "include/hosts.inc"},
    ))
    [problem] = compiled.problems
    assert (problem.file, problem.line) == ("include/hosts.inc", 5)
    assert problem.message.endswith("(the first at z.example.zone:4)")


def test_warnings_at_the_record_line() -> None:
    compiled = compile_records(parsed(
        *APEX,
        ("z.example.", "MX", 60, "10 gone"),
        ("sub.z.example.", "NS", 60, "ns.sub"),
        ("z.example.", "MX", 60, "20 ns1"),
    ))
    assert compiled.table is not None
    assert [(p.line, p.message) for p in compiled.problems] == [
        (4, "MX target gone.z.example. of z.example. has no A or AAAA records in the zone"),
        (5, "NS target ns.sub.z.example. of sub.z.example. is below the delegation"
            " sub.z.example. and has no glue (A/AAAA) records"),
    ]


def test_wire_accessors() -> None:
    compiled = compile_records(parsed(*APEX, ("a.b.z.example.", "TXT", 60, '"x"')))
    table = compiled.table
    assert table is not None
    keys = set(table.owner_keys())
    assert keys == {wire(ORIGIN), wire("ns1.z.example."), wire("a.b.z.example.")}
    assert (wire("a.b.z.example."), int(RdataType.TXT)) in set(table.wire_rrset_keys())
    assert table.exists_key(wire("b.z.example."))  # an empty non-terminal
    assert not table.exists_key(wire("c.z.example."))
    stored = table.wire_node(wire("a.b.z.example."))
    assert stored == (wire("a.b.z.example."), [(int(RdataType.TXT), 60, [b"\x01x"])])


def test_a_packed_table_unpacks_a_slice_at_a_time() -> None:
    rows = [(f"h{i}.a.b.z.example.", "A", 60, f"192.0.2.{i}") for i in range(25)]
    table = compile_records(parsed(
        *APEX, *rows, ("sub.z.example.", "NS", 60, "ns.sub"),
        ("ns.sub.z.example.", "A", 60, "192.0.2.99"), ("d.z.example.", "DNAME", 60, "x.test."),
    )).table
    assert table is not None
    packed = pickle.loads(pickle.dumps(pack_table(table)))
    steps = list(unpack_steps(packed, step=10))
    assert steps[:-1] == [None] * 3  # 30 owners, 10 at a time
    copy = steps[-1]
    assert isinstance(copy, ZoneTable)
    assert copy.origin == table.origin
    assert list(copy.wire_rrset_keys()) == list(table.wire_rrset_keys())
    assert copy.exists_key(wire("b.z.example.")) and copy.exists_key(wire("a.b.z.example."))
    for qname, qtype in (("h3.a.b.z.example.", RdataType.A), ("x.sub.z.example.", RdataType.A),
                         ("y.d.z.example.", RdataType.A), ("nx.z.example.", RdataType.A)):
        name = dns.name.from_text(qname)
        assert copy.lookup(name, qtype) == table.lookup(name, qtype), qname


def test_only_large_zone_files_are_read_in_a_child(tmp_path: Path) -> None:
    (tmp_path / "small.example.zone").write_text("x" * 1000)
    assert not worth_a_child(tmp_path, None)
    elsewhere = tmp_path / "copy"
    elsewhere.write_bytes(b"x" * OFFLOAD_BYTES)
    assert worth_a_child(tmp_path, {dns.name.from_text("big.example."): elsewhere})


def test_load_packed_hands_back_tables_and_their_contents(tmp_path: Path) -> None:
    """What the child process computes, run in this one (no process started)."""
    hosts = "".join(f"h{i} A 192.0.2.{i % 250}\nh{i} MX 10 h0\n" for i in range(60))
    (tmp_path / "z.example.zone").write_text(
        "$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n" + hosts
    )
    packed = load_packed(tmp_path, None)
    origin = dns.name.from_text(ORIGIN)
    *slices, table = unpack_steps(packed.packed[origin], step=25)
    assert isinstance(table, ZoneTable) and slices
    *parts, content = content_steps(origin, packed.contents[origin], step=50)
    assert len(parts) == 3  # 123 records, 50 at a time
    assert content == zone_content(table)
    assert content == ZoneContent.from_wire(origin, packed.contents[origin])


def test_compacted_records_compile_alike() -> None:
    # compile_records compacts a large zone's records (COMPACT_RECORDS): the
    # columns must give the same table and problems, at the same lines
    cases = [
        (("www.z.example.", "A", 300, "192.0.2.2"), ("www.z.example.", "A", 60, "192.0.2.2"),
         ("www.z.example.", "A", 60, "192.0.2.3")),
        (("www.z.example.", "A", 60, "192.0.2.9"), ("www.z.example.", "CNAME", 60, "ns1")),
        (("z.example.", "MX", 60, "10 gone"), ("sub.z.example.", "NS", 60, "ns.sub"),
         ("Ns.Sub.z.example.", "A", 60, "192.0.2.4"), ("a.b.z.example.", "TXT", 60, '"x"')),
    ]
    for rows in cases:
        plain, compacted = parsed(*APEX, *rows), parsed(*APEX, *rows)
        compacted.compact()
        assert compacted.owners == plain.owners and compacted.rdatas == plain.rdatas
        want, got = compile_records(plain), compile_records(compacted)
        assert got.problems == want.problems, rows
        assert (got.table is None) == (want.table is None)
        if got.table is not None and want.table is not None:
            assert pack_table(got.table) == pack_table(want.table)
    column = compacted.rdatas
    assert list(column) == list(plain.rdatas) and column[-1] == plain.rdatas[-1]
    assert column[1:3] == plain.rdatas[1:3]
    try:
        compacted.add(wire("late.z.example."), 1, 60, b"\x7f\0\0\1", 0, 9)
    except TypeError:
        pass
    else:
        raise AssertionError("a compacted column took a record")
