"""The deletion guard (zones.deletions), rule by rule of its table. Pure, no sockets.

Each case edits one base zone and says which refusal lines, exactly, come
back; an empty list means the reload is accepted.
"""

from __future__ import annotations

import dns.name
import dns.zone
import pytest
from dns.rdatatype import RdataType

from dnsserve.zones.compile import compile_zone
from dnsserve.zones.deletions import SMALL_ZONE_ALLOWANCE, check_deletions
from dnsserve.zones.versions import Record, ZoneContent, diff, zone_content

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
HOSTS = "".join(f"h{i} A 198.51.100.{i}\nh{i} A 198.51.100.{100 + i}\n" for i in range(10))
BASE = (
    APEX
    + """\
www A 192.0.2.10
www A 192.0.2.11
www A 192.0.2.12
www AAAA 2001:db8::10
api A 192.0.2.20
api AAAA 2001:db8::20
ftp A 192.0.2.21
ftp AAAA 2001:db8::21
alias CNAME www
@ MX 10 mail
mail A 192.0.2.25
"""
    + HOSTS
)
BASE_RECORDS = 36  # the fraction limit is 3.6: four records gone are too many


def content(text: str) -> ZoneContent:
    zone = dns.zone.from_text(text, ORIGIN, relativize=False)
    return zone_content(compile_zone(zone, file="test.zone", lines={}))


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def edit(*pairs: tuple[str, str], add: str = "") -> str:
    text = BASE
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text + add


def gone(line: str) -> tuple[str, str]:
    return (line + "\n", "")


API_A = {(name("api.example.com."), RdataType.A)}

CASES: list[tuple[str, str, set[tuple[dns.name.Name, RdataType]], list[str]]] = [
    ("same zone", BASE, set(), []),
    ("serial only", edit(("2025112601", "2025112602")), set(), []),
    # rule 7: fewer records, the RRset kept
    ("one A of three", edit(gone("www A 192.0.2.12")), set(), []),
    ("rdata replaced", edit(("www A 192.0.2.12", "www A 192.0.2.13")), set(), []),
    # rule 8: a TTL change everywhere removes and adds every record in the diff
    ("every TTL", edit(("$TTL 300", "$TTL 600")), set(), []),
    # rule 4
    (
        "RRset emptied, name kept",
        edit(*map(gone, ["www A 192.0.2.10", "www A 192.0.2.11", "www A 192.0.2.12"])),
        set(),
        ["example.com.: 1 RRset(s) would be emptied: www.example.com. A"],
    ),
    (
        "name gone",
        edit(gone("ftp A 192.0.2.21"), gone("ftp AAAA 2001:db8::21")),
        set(),
        ["example.com.: 2 RRset(s) would be emptied: ftp.example.com. A AAAA (the name would go)"],
    ),
    (
        "two owners",
        edit(gone("ftp AAAA 2001:db8::21"), gone("mail A 192.0.2.25")),
        set(),
        [
            "example.com.: 2 RRset(s) would be emptied: ftp.example.com. AAAA;"
            " mail.example.com. A (the name would go)"
        ],
    ),
    (
        "apex MX emptied",
        edit(gone("@ MX 10 mail")),
        set(),
        ["example.com.: 1 RRset(s) would be emptied: example.com. MX"],
    ),
    # rules 5 and 6: the owner still answers
    (
        "A and AAAA replaced by a CNAME",
        edit(gone("api A 192.0.2.20"), ("api AAAA 2001:db8::20", "api CNAME www")),
        set(),
        [],
    ),
    ("CNAME replaced by an A", edit(("alias CNAME www", "alias A 192.0.2.10")), set(), []),
    # rule 3, and no exemption for a pool's own (owner, type)
    (
        "pool name gone",
        edit(gone("api A 192.0.2.20"), gone("api AAAA 2001:db8::20")),
        API_A,
        ["example.com.: 1 pool name(s) would go: api.example.com. (pool A)"],
    ),
    (
        "pool's RRset replaced by a CNAME",
        edit(gone("api A 192.0.2.20"), ("api AAAA 2001:db8::20", "api CNAME www")),
        API_A,
        ["example.com.: 1 RRset(s) would be emptied: api.example.com. A"],
    ),
    (
        "pool untouched, another name gone",
        edit(gone("ftp A 192.0.2.21"), gone("ftp AAAA 2001:db8::21")),
        API_A | {(name("www.example.org."), RdataType.A)},
        ["example.com.: 2 RRset(s) would be emptied: ftp.example.com. A AAAA (the name would go)"],
    ),
    # rule 9
    (
        "three records gone",
        edit(*(gone(f"h{i} A 198.51.100.{i}") for i in range(3))),
        set(),
        [],
    ),
    (
        "four records gone",
        edit(*(gone(f"h{i} A 198.51.100.{i}") for i in range(4))),
        set(),
        [
            "example.com.: 4 of 36 records would go (11.1%, more than 10%):"
            " h0.example.com. A 198.51.100.0; h1.example.com. A 198.51.100.1;"
            " h2.example.com. A 198.51.100.2; h3.example.com. A 198.51.100.3"
        ],
    ),
    (
        "four addresses renumbered",
        edit(*((f"A 198.51.100.{i}\n", f"A 203.0.113.{i}\n") for i in range(4))),
        set(),
        [
            "example.com.: 4 of 36 records would go (11.1%, more than 10%):"
            " h0.example.com. A 198.51.100.0; h1.example.com. A 198.51.100.1;"
            " h2.example.com. A 198.51.100.2; h3.example.com. A 198.51.100.3"
        ],
    ),
    (
        "several rules at once",
        edit(
            *map(gone, ["api A 192.0.2.20", "api AAAA 2001:db8::20", "ftp A 192.0.2.21"]),
            *map(gone, ["ftp AAAA 2001:db8::21"]),
        ),
        API_A,
        [
            "example.com.: 1 pool name(s) would go: api.example.com. (pool A)",
            "example.com.: 2 RRset(s) would be emptied: ftp.example.com. A AAAA"
            " (the name would go)",
            "example.com.: 4 of 36 records would go (11.1%, more than 10%):"
            " api.example.com. A 192.0.2.20; api.example.com. AAAA 2001:db8::20;"
            " ftp.example.com. A 192.0.2.21; ftp.example.com. AAAA 2001:db8::21",
        ],
    ),
]


def test_base_zone_size() -> None:
    assert len(content(BASE)) == BASE_RECORDS


@pytest.mark.parametrize(
    ("new", "protected", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rules(
    new: str, protected: set[tuple[dns.name.Name, RdataType]], expected: list[str]
) -> None:
    old_content, new_content = content(BASE), content(new)
    found = check_deletions(old_content, new_content, protected=protected)
    assert found == expected
    # the diff the caller already has gives the same verdict
    changes = diff(old_content, new_content)
    assert check_deletions(old_content, new_content, protected=protected, changes=changes) == found


def without(c: ZoneContent, rdtype: RdataType) -> ZoneContent:
    apex = c.origin.to_digestable()
    return ZoneContent(
        c.origin,
        tuple(rr for rr in c.records if Record.from_wire(rr)[:2] != (apex, rdtype)),
    )


def test_apex_soa_and_ns() -> None:
    """Rules 1 and 2: a compiled zone always has them; a content from elsewhere may not."""
    old = content(BASE)
    assert check_deletions(old, without(old, RdataType.SOA)) == [
        "example.com.: the apex SOA would go"
    ]
    assert check_deletions(old, without(old, RdataType.NS)) == [
        "example.com.: the apex NS records would go: ns1.example.com.; ns2.example.com."
    ]


def test_small_zone_allowance() -> None:
    """Rule 9 below 30 records: SMALL_ZONE_ALLOWANCE records may always go."""
    assert SMALL_ZONE_ALLOWANCE == 3
    five = APEX  # SOA, two NS, two A
    assert len(content(five)) == 5
    assert check_deletions(content(five + "www A 192.0.2.10\n"), content(five)) == [
        "example.com.: 1 RRset(s) would be emptied: www.example.com. A (the name would go)"
    ]
    www = "".join(f"www A 192.0.2.{10 + i}\n" for i in range(6))
    old = content(APEX + www)
    assert check_deletions(old, content(APEX + www.replace("192.0.2.15\n", "192.0.2.99\n"))) == []
    kept = "".join(f"www A 192.0.2.{10 + i}\n" for i in range(3))
    assert check_deletions(old, content(APEX + kept)) == []  # 3 of 11 gone
    assert check_deletions(old, content(APEX + kept[: kept.rindex("www")])) == [
        "example.com.: 4 of 11 records would go (36.4%, more than 10%):"
        " www.example.com. A 192.0.2.12; www.example.com. A 192.0.2.13;"
        " www.example.com. A 192.0.2.14; www.example.com. A 192.0.2.15"
    ]


def test_refusal_lists_are_bounded() -> None:
    hosts = "".join(f"h{i:02d} A 198.51.100.{i}\nh{i:02d} A 203.0.113.{i}\n" for i in range(30))
    old = content(APEX + hosts)
    new = content(APEX + hosts.replace("A 203.0.113.", "A 192.0.2."))
    [line] = check_deletions(old, new)
    assert line.startswith("example.com.: 30 of 65 records would go (46.2%, more than 10%):")
    assert line.count("A 203.0.113.") == 10
    assert line.endswith("h09.example.com. A 203.0.113.9; and 20 more")


def test_fraction_is_a_knob() -> None:
    old = content(BASE)
    new = content(edit(*(gone(f"h{i} A 198.51.100.{i}") for i in range(4))))
    assert check_deletions(old, new, max_delete_fraction=1.0) == []
    assert check_deletions(old, new, max_delete_fraction=0.2) == []
    assert len(check_deletions(old, new, max_delete_fraction=0.0)) == 1


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_bad_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="max_delete_fraction"):
        check_deletions(content(BASE), content(BASE), max_delete_fraction=fraction)


def test_two_zones_are_not_compared() -> None:
    other = dns.zone.from_text(
        APEX.replace("example.com.", "example.org."), "example.org.", relativize=False
    )
    with pytest.raises(ValueError, match="not one zone"):
        check_deletions(content(BASE), zone_content(compile_zone(other, file="o", lines={})))
