"""zones.parse (fast) against zones.parse_reference (the loader's dnspython reader).

The same files go to both paths: the shipped zones, every zone file and
zone text found under tests/, seeded generated zones that use every form the
fast path takes (and some it hands to dnspython), and seeded mutations of
them (a character dropped, doubled or replaced). Either both read the file
and give identical columns (owners, types, TTLs, rdata, file and line of
every record), or both fail with the same file, line and message.
"""

from __future__ import annotations

import ast
import os
import random
import re
from pathlib import Path

import dns.name
import dns.rdata
import pytest

from dnsserve.errors import ZoneError
from dnsserve.zones import parse
from dnsserve.zones.fastscan import raw_octet
from dnsserve.zones.load import origin_from_path
from dnsserve.zones.parse import parse_zone_file
from dnsserve.zones.parse_reference import parse_zone_file_dnspython
from dnsserve.zones.records import ParsedRecords
from testkit import ROOT, SHIPPED_ZONES, TEST_DATA


def outcome(records: ParsedRecords) -> tuple[object, ...]:
    return (
        records.origin,
        list(records.owners),
        list(records.types),
        list(records.ttls),
        list(records.rdatas),
        [records.where(i) for i in range(len(records))],
        [(records.file_names[f], line, message, rule)
         for f, line, message, rule in records.warnings],
    )


def both(path: Path, origin: dns.name.Name, include_dir: Path) -> tuple[object, object]:
    """(fast, reference) outcome: the columns, or ("error", file, line, message)."""
    results: list[object] = []
    for read in (parse_zone_file, parse_zone_file_dnspython):
        try:
            results.append(outcome(read(path, origin, include_dir=include_dir)))
        except ZoneError as exc:
            results.append(("error", exc.file, exc.line, exc.message))
    return results[0], results[1]


def assert_same(path: Path, origin: dns.name.Name, include_dir: Path) -> object:
    fast, reference = both(path, origin, include_dir)
    if (
        fast != reference
        and isinstance(fast, tuple)
        and isinstance(reference, tuple)
        and fast[0] != "error"
        and reference[0] != "error"
    ):
        for column, (x, y) in enumerate(zip(fast, reference, strict=True)):
            if x != y:
                at = next(
                    (i for i, (a, b) in enumerate(zip(x, y, strict=False)) if a != b),
                    min(len(x), len(y)),
                )
                raise AssertionError(
                    f"{path}: column {column} differs at record {at}: "
                    f"fast {x[at : at + 1]} reference {y[at : at + 1]}"
                )
    assert fast == reference, path.read_text(errors="replace")[:2000]
    return reference


# -- the files in the repository -------------------------------------------------


def zone_files() -> list[Path]:
    found = sorted(SHIPPED_ZONES.glob("*.zone"))
    found += sorted(TEST_DATA.rglob("*.zone"))
    return found


@pytest.mark.parametrize("path", zone_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_zone_files(path: Path) -> None:
    assert_same(path, origin_from_path(path), path.parent)


def zone_texts() -> list[str]:
    """String constants under tests/ that look like zone files."""
    texts = []
    for source in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "\n" in node.value
                and re.search(r"\bSOA\b|\$ORIGIN|\$TTL", node.value)
            ):
                texts.append(node.value)
    return texts


def test_zone_texts_in_tests(tmp_path: Path) -> None:
    texts = zone_texts()
    assert len(texts) > 10
    for i, text in enumerate(texts):
        m = re.search(r"^\$ORIGIN\s+(\S+)", text, re.M)
        origin = dns.name.from_text(m.group(1) if m else "example.com.")
        path = tmp_path / f"text{i}.zone"
        path.write_text(text)
        assert_same(path, origin, tmp_path)


# -- generated zones with every form ------------------------------------------------

ORIGIN = "gen.example."


def _label(rng: random.Random) -> str:
    base = rng.choice(["www", "Mail", "API", "host", "a-b", "x1", "_srv", "*", "db", "NS"])
    return base if base == "*" else f"{base}{rng.randint(0, 99)}"


def _name(rng: random.Random, origin: str) -> str:
    r = rng.random()
    if r < 0.1:
        return "@"
    if r < 0.25:
        return f"{_label(rng)}.{origin}"  # absolute
    if r < 0.3:
        return rng.choice(["esc\\.dot", "d\\065ta", "UPPER.Case", "sp\\032ace", "b\\\\s"])
    if r < 0.35:
        return f"{_label(rng)}.{_label(rng)}"
    return _label(rng).replace("*", "star")


def _ttl(rng: random.Random) -> str:
    return rng.choice(["300", "1h", "1h30m", "2d", "1W", "0", "86400", "10m5s"])


def _txt(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 3)):
        parts.append(rng.choice([
            '"hello world"', '"semi;colon"', '"paren ( )"', '"esc \\" quote"',
            '"back\\\\slash"', '"\\065\\066C"', 'unquoted', '""', '"tab\there"',
            '"ünïcode"', '"v=spf1 -all"', 'esc\\ aped',
        ]))
    return " ".join(parts)


def _rdata(rng: random.Random, origin: str) -> tuple[str, str]:
    kind = rng.choice([
        "A", "A", "AAAA", "NS", "CNAME", "MX", "TXT", "TXT", "SRV", "PTR", "CAA", "DS",
        "DNAME", "GENERIC", "NAPTR", "SSHFP", "HINFO", "aaaa", "mx",
    ])
    n = rng.randint(0, 255)
    if kind == "A":
        return "A", rng.choice([f"192.0.2.{n}", f"10.{n}.0.1", "0.0.0.0", "255.255.255.255"])
    if kind in ("AAAA", "aaaa"):
        return kind, rng.choice([
            f"2001:db8::{n:x}", "::1", "::", "2001:DB8:0:0:0:0:0:1", "fe80::1:2:3:4",
            "1:2:3:4:5:6:7::", "::ffff:192.0.2.1", f"2001:db8:{n:x}::",
        ])
    if kind in ("NS", "CNAME", "PTR", "DNAME"):
        return kind, _name(rng, origin)
    if kind in ("MX", "mx"):
        return kind, f"{rng.randint(0, 65535)} {_name(rng, origin)}"
    if kind == "TXT":
        return "TXT", _txt(rng)
    if kind == "SRV":
        return "SRV", f"{rng.randint(0, 10)} {rng.randint(0, 100)} {rng.randint(1, 65535)} " \
            f"{_name(rng, origin)}"
    if kind == "CAA":
        return "CAA", rng.choice([
            '0 issue "letsencrypt.org"', "128 iodef \"mailto:a@b.example\"", "0 issuewild \";\"",
            '0 "issue" "ca.example; account=1"', "0 tbs Unquoted",
        ])
    if kind == "DS":
        return "DS", rng.choice([
            "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118",
            "12345 13 2 ( 3490A6806D47F17A34C29E2CE80E8A999FFBE4BE\n"
            "              3490A6806D47F17A34C29E2C )",
            "1 RSASHA256 2 3490A6806D47F17A34C29E2CE80E8A999FFBE4BE3490A6806D47F17A34C29E2C",
        ])
    if kind == "GENERIC":
        return rng.choice([("TYPE65280", "\\# 4 0A000001"), ("A", "\\# 4 C0000201"),
                           ("TXT", "\\# 3 026869")])
    if kind == "NAPTR":
        return "NAPTR", '100 10 "S" "SIP+D2U" "" _sip._udp'
    if kind == "SSHFP":
        return "SSHFP", "1 1 123456789abcdef67890123456789abcdef67890"
    return "HINFO", '"PC" "Linux"'


def _record(rng: random.Random, origin: str, blank: bool) -> str:
    rtype, rdata = _rdata(rng, origin)
    owner = "" if blank else _name(rng, origin)
    if rtype in ("CNAME", "DNAME"):
        owner = f"alias{rng.randint(0, 10**6)}" if not blank else owner
    order = rng.random()
    ttl, klass = _ttl(rng), rng.choice(["IN", "in", "In"])
    if order < 0.25:
        middle = f"{ttl} {klass}"
    elif order < 0.5:
        middle = f"{klass} {ttl}"
    elif order < 0.7:
        middle = klass
    elif order < 0.85:
        middle = ttl
    else:
        middle = ""
    sep = rng.choice([" ", "\t", "  ", " \t "])
    if rng.random() < 0.15 and "(" not in rdata:  # over several lines, in parentheses
        rdata = "(\n   " + rdata.replace('" "', '" ; one\n  "') + rng.choice([" )", "\n)"])
    line = sep.join(x for x in (owner, middle, rtype, rdata) if x)
    if blank:
        line = sep + line
    if rng.random() < 0.2:
        line += rng.choice(["  ; a comment", ";x", " ; (not a paren) \"nor a quote"])
    return line


def generated_zone(seed: int, directory: Path) -> Path:
    rng = random.Random(seed)
    origin = ORIGIN
    lines = [
        "; generated",
        f"$ORIGIN {origin}" if rng.random() < 0.7 else "",
        "$TTL 1h" if rng.random() < 0.8 else "",
        rng.choice([
            "@ IN SOA ns1 hostmaster 2026120101 7200 3600 1209600 300",
            "@ 3600 IN SOA ns1.gen.example. Host\\.Master ( 1 ; serial\n"
            "     2h ; refresh\n   1h 2W\n   5m )",
            "@ SOA ns1 hostmaster 1 2 3 4 5",
        ]),
        "  IN NS ns1",
        "ns1 A 192.0.2.53",
    ]
    include = directory / f"inc{seed}.inc"
    include.write_text(
        f"; included\nincluded A 192.0.2.1\n  TXT \"in include\"\n$TTL 5\nafter 1.2.3.4\n"
        f"{_record(rng, origin, False)}\n"
    )
    include.write_text(include.read_text().replace("after 1.2.3.4", "after A 1.2.3.4"))
    sub = "sub." + origin
    for _ in range(rng.randint(20, 80)):
        r = rng.random()
        if r < 0.03:
            lines.append(f"$ORIGIN {sub}")
            origin = sub
        elif r < 0.05:
            lines.append(f"$ORIGIN {ORIGIN}")
            origin = ORIGIN
        elif r < 0.07:
            lines.append(f"$TTL {_ttl(rng)}")
        elif r < 0.09:
            lines.append(rng.choice([
                f"$INCLUDE {include.name}",
                f"$INCLUDE {include.name} inc.{ORIGIN}",
                f'$INCLUDE "{include.name}" inc ; comment',
            ]))
        elif r < 0.12:
            lines.append(rng.choice([
                "$GENERATE 1-20 host$ A 10.0.0.$",
                "$GENERATE 0-30/3 gen-${1,3,d} 60 IN A 192.0.2.${10}",
                "$GENERATE 1-5 ${0,4,x}.hex CNAME tgt$",
                "$GENERATE 1-5 ${-1,2,X}.hex IN PTR tgt${5,3,o}.example.",
                "$GENERATE 1-4 ${0,4,n}nib A 10.1.1.$",
                "$GENERATE 1-3 sp$ AAAA 2001:db8::$",
                "$GENERATE 1-3 dollar$$x A 10.2.2.$",
            ]))
        elif r < 0.14:
            lines.append(rng.choice(["", "   ", "; only a comment", "\t; tab comment"]))
        else:
            blank = rng.random() < 0.15
            lines.append(_record(rng, origin, blank))
    path = directory / f"gen{seed}.zone"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("seed", range(20))
def test_generated_zones(tmp_path: Path, seed: int) -> None:
    path = generated_zone(seed, tmp_path)
    assert_same(path, dns.name.from_text(ORIGIN), tmp_path)


def test_generated_zones_mostly_read(tmp_path: Path) -> None:
    """The generator is not all errors: most of its zones are read, with every type."""
    read = 0
    types: set[int] = set()
    for seed in range(60):
        path = generated_zone(seed, tmp_path)
        try:
            records = parse_zone_file(path, dns.name.from_text(ORIGIN), include_dir=tmp_path)
        except ZoneError:
            continue
        read += 1
        types.update(records.types)
    assert read >= 20
    assert {1, 2, 5, 6, 12, 15, 16, 28, 33, 39, 43, 257} <= types


def _mutate(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text))
    r = rng.random()
    if r < 0.3:
        return text[:i] + text[i + 1 :]
    if r < 0.5:
        return text[:i] + text[i] + text[i:]
    return text[:i] + rng.choice('"();\\\n \t$@.0aZ:') + text[i + 1 :]


@pytest.mark.parametrize("seed", range(14))
def test_mutated_zones(tmp_path: Path, seed: int) -> None:
    """Broken zones: both fail alike (or both read the same records)."""
    rng = random.Random(1000 + seed)
    path = generated_zone(seed, tmp_path)
    text = path.read_text()
    for _ in range(8):
        text = _mutate(rng, text)
        path.write_text(text)
        assert_same(path, dns.name.from_text(ORIGIN), tmp_path)


# -- errors: the same file, line and message ----------------------------------------

BAD = [
    ("unknown type", "www A 192.0.2.1\nwww BOGUS 1\n", 2),
    ("bad address", "www A 192.0.2.1\nwww A 192.0.2.256\n", 2),
    ("leading zero", "www A 192.0.2.01\n", 1),
    ("short address", "www A 192.0.2\n", 1),
    ("bad aaaa", "www AAAA 2001:db8:::1\n", 1),
    ("missing rdata", "www MX 10\n", 1),
    ("extra rdata", "www CNAME a b\n", 1),
    ("mx preference too big", "www MX 65536 mail\n", 1),
    ("label too long", f"{'a' * 64} A 192.0.2.1\n", 1),
    ("name too long", ("a" * 60 + ".") * 5 + " A 192.0.2.1\n", 1),
    ("empty label", "a..b A 192.0.2.1\n", 1),
    (
        "one label past 255 octets",
        f"$TTL 1\n$ORIGIN {'a' * 60}.{'b' * 60}.{'c' * 60}.gen.example.\n{'x' * 60} A 192.0.2.1\n",
        3,
    ),
    (
        "a target past 255 octets",
        f"$TTL 1\n$ORIGIN {'a' * 60}.{'b' * 60}.{'c' * 60}.gen.example.\nx MX 1 {'y' * 60}\n",
        3,
    ),
    ("bad ttl", "www 1x A 192.0.2.1\n", 1),
    ("ttl too big", "www 4294967296 A 192.0.2.1\n", 1),
    ("other class", "www CH A 192.0.2.1\n", 1),
    ("unclosed paren", "a A 192.0.2.1\nb TXT ( \"x\"\nc A 192.0.2.3\n", 3),
    ("extra paren", "a A 192.0.2.1 )\n", 1),
    ("unclosed quote", 'a TXT "abc\nb A 192.0.2.1\n', 1),
    ("txt too long", f'a TXT "{"x" * 256}"\n', 1),
    ("bad escape", 'a TXT "\\256"\n', 1),
    ("quoted owner", '"a" A 192.0.2.1\n', 1),
    ("quoted address", 'a A "192.0.2.1"\n', 1),
    ("rdata too long", "a TXT " + " ".join([f'"{"x" * 255}"'] * 260) + "\n", 1),
    ("generate huge", "$GENERATE 0-70000 h$ A 10.0.0.1\n", 1),
    ("generate bad range", "$GENERATE 5-1 h$ A 10.0.0.$\n", 1),
    ("generate bad modifier", "$GENERATE 1-3 h${x} A 10.0.0.$\n", 1),
    ("generate bad rdata", "$GENERATE 250-260 h$ A 10.0.0.$\n", 1),
    ("unknown directive", "$BOGUS 1\n", 1),
    ("generate two rdata tokens", "$GENERATE 1-3 m$ MX 10 mail ; two tokens\n", 1),
    ("ttl directive", "$TTL\n", 1),
    ("missing include", "$INCLUDE nowhere.inc\n", 1),
    ("include loop", "$INCLUDE self.zone\n", 1),
    ("include outside", "$INCLUDE /etc/passwd\n", 1),
    ("include escapes", "$INCLUDE ../../../../../../../../etc/passwd\n", 1),
    ("include directory", "$INCLUDE .\n", 1),
    ("line too long", "a A 192.0.2.1\nb TXT " + "x" * (1 << 20) + "\n", 2),
    ("record too long", "a TXT ( \"x\"\n" + ("; " + "c" * 60_000 + "\n") * 18 + ")\n", 1),
    ("long token excerpt", "a A \x01" + "y" * 1000 + "\n", 1),
    ("no ttl", "$ORIGIN gen.example.\nwww A 192.0.2.1\n", 2),
    ("bad generic", "a TYPE65280 \\# 3 0A00\n", 1),
    ("caa tag", '0 issue! "x"\n', 1),
    ("caa tag2", 'a CAA 0 is-sue "x"\n', 1),
    ("ds digest", "a DS 1 8 2 ABCD\n", 1),
    ("srv port", "_s._tcp SRV 0 0 70000 a\n", 1),
    ("soa fields", "@ SOA ns1 hostmaster 1 2 3 4\n", 1),
    ("soa ttl unit", "@ SOA ns1 hostmaster 1 2 3 4 5x\n", 1),
    ("paren in parens", "a TXT ( \"x\"\n  \"y\" ; c\n  bad\"\n", 3),
]


@pytest.mark.parametrize(("text", "line"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_same_error(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "self.zone"
    ttl = "" if "no ttl" in text or text.startswith("$ORIGIN") else "$TTL 300\n"
    path.write_text(ttl + text)
    fast, reference = both(path, dns.name.from_text(ORIGIN), tmp_path)
    assert fast == reference
    assert isinstance(fast, tuple) and fast[0] == "error", fast
    assert fast[1] == str(path)
    assert fast[2] == line + (1 if ttl else 0)
    assert fast[3]


def test_error_in_included_file_names_it(tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "bad.inc").write_text("ok A 192.0.2.1\n\nbad A 300.0.0.1\n")
    path = tmp_path / "z.zone"
    path.write_text("$TTL 60\n@ SOA ns hm 1 2 3 4 5\n$INCLUDE inc/bad.inc\n")
    fast, reference = both(path, dns.name.from_text(ORIGIN), tmp_path)
    assert fast == reference
    assert fast[:3] == ("error", str(tmp_path / "inc" / "bad.inc"), 3)  # type: ignore[index]


RAW = [  # raw 8-bit bytes: octets in strings and labels, the same on both paths
    # (file body, an octet string the records must hold, the line warned about)
    (b'a TXT "caf\xe9" caf\xe9 "a\\\xe9b" "\\\\\xe9"\n',  # quoted, bare, escaped, after \\
     b"\x04caf\xe9\x04caf\xe9\x03a\xe9b\x02\\\xe9", 3),
    (b"caf\xe9 A 192.0.2.1\nUP\xc9 A 192.0.2.2\nesc\\\xe9 MX 10 caf\xe9\n",  # owners, target
     b"\x00\x0a\x04caf\xe9\x03gen", 3),
    (b'a TXT "caf\xc3\xa9"\n\xc3\xa9t\xc3\xa9 CNAME caf\xc3\xa9.example.net.\n',  # UTF-8
     b"\x05caf\xc3\xa9\x07example", 3),
    (b"; caf\xe9 only in comments\na A 192.0.2.1 ; \xe9\n", b"\xc0\x00\x02\x01", None),
    (b'a TXT ( "x" ; \xe9\n  "\xe8" )\n$ORIGIN s\xe9.gen.example.\nb A 192.0.2.3\n',
     b"\x01b\x02s\xe9\x03gen", 4),  # not the comment
    (b"$GENERATE 1-3 g$\xe9 A 10.0.0.$\n", b"\x03g3\xe9\x03gen", 3),
    (b'a TXT "\xe9\n', None, None),  # an unclosed quote: the same error
]


@pytest.mark.parametrize(("body", "held", "warned"), RAW, ids=range(len(RAW)))
def test_raw_octets_read_the_same(
    tmp_path: Path, body: bytes, held: bytes | None, warned: int | None
) -> None:
    path = tmp_path / "z.zone"
    path.write_bytes(b"$TTL 60\n@ SOA ns hm 1 2 3 4 5\n" + body)
    found = assert_same(path, dns.name.from_text(ORIGIN), tmp_path)
    assert isinstance(found, tuple)
    if held is None:
        assert found[0] == "error"
        return
    owners, rdatas, warnings = found[1], found[4], found[6]
    assert any(held in wire for wire in [*owners, *rdatas]), (owners, rdatas)
    assert [w[1] for w in warnings] == ([] if warned is None else [warned])


def test_raw_octets_in_an_include_and_its_name(tmp_path: Path) -> None:
    """An ``$INCLUDE`` of a file whose name has a raw octet; each file warns at its end."""
    (tmp_path / os.fsdecode(b"caf\xe9.inc")).write_bytes(b'i TXT "\xe8"\n')
    path = tmp_path / "z.zone"
    path.write_bytes(b'$TTL 60\na TXT "\xe9"\n$INCLUDE caf\xe9.inc\nb A 192.0.2.1\n')
    fast, reference = both(path, dns.name.from_text(ORIGIN), tmp_path)
    assert fast == reference
    assert isinstance(fast, tuple) and fast[0] != "error", fast
    included = str(tmp_path / os.fsdecode(b"caf\xe9.inc"))
    assert [w[:2] for w in fast[6]] == [(included, 1), (str(path), 2)]  # type: ignore[index]


def test_raw_octet_warning_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first raw octet outside a comment is found where lines cross the reader's chunks."""
    monkeypatch.setattr(parse, "_CHUNK", 50)
    lines = [f"h{i} A 192.0.2.{i % 250} ; caf\xe9" for i in range(40)]
    lines.insert(33, 'late TXT "caf\xe9"')
    path = tmp_path / "z.zone"
    path.write_bytes(("$TTL 60\n" + "\n".join(lines) + "\n").encode("latin-1"))
    fast, reference = both(path, dns.name.from_text(ORIGIN), tmp_path)
    assert fast == reference
    assert isinstance(fast, tuple) and [w[1] for w in fast[6]] == [35]  # type: ignore[index]


def test_include_depth(tmp_path: Path) -> None:
    for i in range(12):
        (tmp_path / f"d{i}.inc").write_text(f"x{i} A 192.0.2.{i}\n$INCLUDE d{i + 1}.inc\n")
    path = tmp_path / "z.zone"
    path.write_text("$TTL 60\n$INCLUDE d0.inc\n")
    fast, reference = both(path, dns.name.from_text(ORIGIN), tmp_path)
    assert fast == reference
    assert "nested more than" in str(fast)


@pytest.mark.parametrize(
    "data",
    [
        b"$TTL 60\nbad A 1.2.3\na TXT \"\xff\"\n",  # a raw octet after an error
        b"$TTL 60\r\na A 192.0.2.1\r\nb TXT \"x\"\r\n",  # CRLF
        b"$TTL 60\ra A 192.0.2.1\rb A 192.0.2.2",  # CR alone, no final newline
        b"$TTL 60\na A 192.0.2.1\nb TXT ( \"x\"",  # unbalanced at the end, no newline
        b"$TTL 60\na A 192.0.2.1\n$GENERATE 1-2 g$ A 10.0.0.$",  # no final newline
        b"\xef\xbb\xbf$TTL 60\na A 192.0.2.1\n",  # a byte order mark
        b"$TTL 60\na TXT \"caf\xc3\xa9\" ; \xc3\xa9\n\xc3\xa9t\xc3\xa9 A 192.0.2.1\n",  # UTF-8
    ],
)
def test_file_forms(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "z.zone"
    path.write_bytes(data)
    assert_same(path, dns.name.from_text(ORIGIN), tmp_path)


def test_lines_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines and multi-line records across the reader's chunk boundaries read the same."""
    monkeypatch.setattr(parse, "_CHUNK", 97)
    rng = random.Random(5)
    lines = ["$TTL 60", "@ SOA ns hm ( 1 2", " 3 4 5 )"]
    for i in range(300):
        lines.append(_record(rng, ORIGIN, False).replace("alias", f"alias{i}-"))
    path = tmp_path / "z.zone"
    path.write_text("\n".join(lines) + "\n")
    fast, reference = both(path, dns.name.from_text(ORIGIN), tmp_path)
    assert fast == reference
    path.write_text("\n".join(lines))
    fast, reference = both(path, dns.name.from_text(ORIGIN), tmp_path)
    assert fast == reference


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("www.example.net. A 192.0.2.1\n  TXT \"same owner\"\nin A 192.0.2.2\n", 2),
        ("$GENERATE 1-3 h$.example.net. A 10.0.0.$\nin A 192.0.2.2\n", 2),
        ("$ORIGIN example.net.\nx A 192.0.2.1\n$ORIGIN gen.example.\ny A 192.0.2.2\n", 3),
    ],
    ids=["owner", "generate", "origin"],
)
def test_outside_owner_left_out_with_a_warning(tmp_path: Path, text: str, line: int) -> None:
    """A record outside the origin is left out, with the same warning on both paths."""
    path = tmp_path / "z.zone"
    path.write_text("$TTL 300\n" + text)
    fast, reference = both(path, dns.name.from_text(ORIGIN), tmp_path)
    assert fast == reference
    assert isinstance(fast, tuple) and fast[0] != "error", fast
    warnings = fast[-1]
    assert isinstance(warnings, list) and warnings
    assert all("outside the zone gen.example.: record left out" in w[2] for w in warnings)
    assert warnings[0][:2] == (str(path), line)


@pytest.mark.parametrize(
    ("line", "octet"),
    [
        ('a TXT "x" ; caf\xe9', None),  # in the comment
        ('a TXT "x;\xe9"', 0xE9),  # a ";" in quotes starts no comment
        ("a TXT x\\;\xe9", 0xE9),  # nor an escaped one
        ("a TXT \xe8 ; \xe9", 0xE8),  # before the comment
        ('a TXT "\xe9', 0xE9),  # a line that cannot be read alone counts whole
        ("; \xe9 (", None),
    ],
)
def test_raw_octet_outside_comments(line: str, octet: int | None) -> None:
    assert raw_octet(line) == octet


QUOTED_GENERATE = [  # a quoted $GENERATE right-hand side, read as named-checkzone reads it
    # (line, the rdata of its first record as named-checkzone -D prints it)
    ('$GENERATE 1-3 host$ TXT "v=spf1 -all"', 'host1 TXT "v=spf1" "-all"'),
    ('$GENERATE 1-3 g$ IN TXT "g$"', 'g1 TXT "g1"'),
    ('$GENERATE 1-3 a$ 60 TXT "a $"', 'a1 TXT "a" "1"'),
    ('$GENERATE 1-3 q$ TXT "\\"a b\\" c"', 'q1 TXT "a b" "c"'),
    ('$GENERATE 1-3 s$ TXT "a;b c"', 's1 TXT "a"'),
    ('$GENERATE 1-3 m$ MX "10 mail$"', "m1 MX 10 mail1"),
    ('$GENERATE 1-3 h$ HINFO "pc$ os"', 'h1 HINFO "pc1" "os"'),  # not a fast type
]


@pytest.mark.parametrize(("line", "first"), QUOTED_GENERATE, ids=range(len(QUOTED_GENERATE)))
def test_generate_quoted_right_hand_side(tmp_path: Path, line: str, first: str) -> None:
    path = tmp_path / "z.zone"
    path.write_text(f"$TTL 60\n{line}\n")
    origin = dns.name.from_text(ORIGIN)
    found = assert_same(path, origin, tmp_path)
    assert isinstance(found, tuple) and found[0] != "error", found
    owner, rtype, text = first.split(" ", 2)
    want = dns.rdata.from_text("IN", rtype, text, origin)
    assert found[1][0] == dns.name.from_text(owner, origin).to_wire()  # type: ignore[index]
    assert found[4][0] == want.to_wire(origin=origin)  # type: ignore[index]
    assert len(found[1]) == 3  # type: ignore[index,arg-type]


@pytest.mark.parametrize("line", [
    '$GENERATE 1-3 "h$" A 10.0.0.$',  # a quoted left-hand side
    '$GENERATE 1-3 h$ "A" 10.0.0.$',  # a quoted type
    '$GENERATE 1-3 h$ TXT "a" b',  # more after the quoted right-hand side
])
def test_generate_quoted_elsewhere_refused(tmp_path: Path, line: str) -> None:
    """named-checkzone refuses these too."""
    path = tmp_path / "z.zone"
    path.write_text(f"$TTL 60\n{line}\n")
    fast, reference = both(path, dns.name.from_text(ORIGIN), tmp_path)
    assert fast == reference
    assert isinstance(fast, tuple) and fast[:3] == ("error", str(path), 2), fast
