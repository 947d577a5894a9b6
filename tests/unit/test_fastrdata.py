"""zones.fastrdata and zones.fastscan against dnspython, token by token.

Seeded random tokens from small alphabets (so that edge forms come up
often): an encoder either refuses (``NotFast``: dnspython will judge) or
gives exactly dnspython's bytes; it never takes what dnspython refuses.
"""

from __future__ import annotations

import random

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.ttl
import pytest

from dnsserve.zones import fastrdata as fr
from dnsserve.zones.fastscan import generate_text, is_plain, scan

ORIGIN = dns.name.from_text("gen.example.")


def dnspython(rtype: str, text: str) -> bytes | None:
    """The oracle: ``text`` is a zone file's bytes, one character each, as dnsserve reads it
    (its raw octets past ASCII go to dnspython as ``\\DDD``, as the zone readers give them)."""
    try:
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, dns.rdatatype.from_text(rtype), fr.escape_octets(text), ORIGIN,
            False, ORIGIN,
        )
    except (dns.exception.DNSException, ValueError, UnicodeError):
        return None
    return fr.rdata_wire(rdata)


def fast(rtype: str, text: str) -> bytes | None:
    tokens: list[str] = []
    if scan(text, 0, tokens) != 0:
        return None
    try:
        return fr.ENCODERS[fr.TYPES[rtype]](tokens, fr.NameCodec(ORIGIN))
    except fr.NotFast:
        return None


def random_token(rng: random.Random, alphabet: str, longest: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, longest)))


CASES = [
    ("A", "0123456789.", 16),
    ("A", "0125.", 12),
    ("AAAA", "0123456789abcdefABCDEF:.", 42),
    ("AAAA", "01f:", 20),
    ("MX", "0123456789 ab.\\", 12),
    ("TXT", 'ab "\\09 ;\xe9', 14),
    ("CAA", 'a0 "1\\', 12),
    ("SRV", "0169 a.", 14),
    ("SOA", "1hm0 a.", 24),
    ("DS", "0123456789abcdef ", 60),
    ("CNAME", "ab.\\0129@-*\xe9", 10),
]


@pytest.mark.parametrize(("rtype", "alphabet", "longest"), CASES)
def test_encoders_never_differ_from_dnspython(rtype: str, alphabet: str, longest: int) -> None:
    rng = random.Random(f"{rtype}{alphabet}")
    taken = 0
    for _ in range(3000):
        text = random_token(rng, alphabet, longest)
        mine = fast(rtype, text)
        if mine is not None:
            taken += 1
            assert mine == dnspython(rtype, text), (rtype, text)
    assert taken > 0 or rtype in ("DS", "SOA")


@pytest.mark.parametrize(
    ("rtype", "text"),
    [
        ("A", "192.0.2.1"), ("AAAA", "2001:db8::1"), ("AAAA", "::"), ("AAAA", "1:2:3:4:5:6:7::"),
        ("AAAA", "::2:3:4:5:6:7:8"), ("MX", "10 mail"), ("MX", "0 ."), ("NS", "ns1.example."),
        ("TXT", '"a b" c "\\"" "\\255\\000" ""'), ("SRV", "1 2 3 @"),
        # a zone file's bytes, a character each: raw octets (latin-1, UTF-8), escaped or not
        ("TXT", '"ünï"'), ("TXT", '"ünï"'.encode().decode("latin-1")), ("TXT", 'ün\\ï "\\\\ï"'),
        ("CNAME", "caf\xe9.x\\\xe9"),
        ("SOA", "ns1 host\\.master 1 1h 2m 3w 4d"), ("CAA", '0 issue "ca; a=1"'),
        ("DS", "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"), ("PTR", "x.\\065\\.y"),
        ("CNAME", "a.b.c"), ("DNAME", "@"),
    ],
)
def test_common_forms_are_fast_and_equal(rtype: str, text: str) -> None:
    assert fast(rtype, text) == dnspython(rtype, text) is not None


def test_ttl_like_dnspython() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        text = random_token(rng, "0129hmsdwHX", 8)
        try:
            expected: int | None = dns.ttl.from_text(text)
        except dns.exception.DNSException:
            expected = None
        try:
            mine: int | None = fr.ttl(text)
        except fr.NotFast:
            mine = None
        assert mine == expected, text


def test_scan_like_dnspython_tokenizer() -> None:
    rng = random.Random(4)
    for _ in range(3000):
        line = random_token(rng, 'ab "\\;\t()', 14)
        tokens: list[str] = []
        depth = scan(line, 0, tokens)
        if depth is None or depth:
            continue
        tok = dns.tokenizer.Tokenizer(line)
        theirs = []
        try:
            while True:  # bounded: the line is finite
                token = tok.get()
                if token.is_eol_or_eof():
                    break
                theirs.append(('"' if token.is_quoted_string() else "") + token.value)
        except dns.exception.DNSException:
            continue  # the caller hands such a line to dnspython whole
        assert tokens == theirs, line
        if is_plain(line):
            assert line.split() == theirs


def test_generate_text_like_dnspython() -> None:
    import dns.zonefile

    expand = dns.zonefile._generate_text  # the reference, in a test only
    for template in ["h$", "${1,3,d}", "${-2,2,x}a", "${0,4,X}.b", "$$x$", "a\\$b$", "${5,0,o}"]:
        for counter in (0, 7, 255, 4096):
            mine = generate_text(template, counter)
            if mine is not None:
                assert mine == expand(template, counter), (template, counter)
