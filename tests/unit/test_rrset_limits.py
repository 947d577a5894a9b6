"""RRsets too large for a DNS message: ``zones.compile`` rule 7.

Rule 7 is an error when an RRset's wire form cannot fit a message after a
header and the longest question (``RRSET_MAX`` octets), a warning when its
smallest answer is over 1,232 octets (UDP truncates it). The same through the
real server and CLI: tests/integration/test_rrset_size.py.
"""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.renderer
import dns.zone
import pytest
from dns.rdatatype import RdataType

from dnsserve.zones.compile import RRSET_MAX, check_zone, compile_zone, rrset_sizes
from dnsserve.zones.table import ZoneTable

HEAD = "$TTL 60\n@ IN SOA ns1 hostmaster 1 60 60 600 60\n  IN NS ns1\nns1 IN A 192.0.2.1\n"


def zone(origin: str, body: str) -> dns.zone.Zone:
    return dns.zone.from_text(HEAD + body, origin, relativize=False, check_origin=False)


def table(origin: str, body: str) -> ZoneTable:
    return compile_zone(zone(origin, body), file=f"{origin}zone", lines={})


def txt_lines(lengths: list[int]) -> str:
    return "".join(f'big IN TXT "{i:04d}{"x" * (n - 4)}"\n' for i, n in enumerate(lengths))


def txt_rrset_of(size: int) -> str:
    """A TXT RRset at big.t.example. of exactly ``size`` octets in wire form."""
    owner = len(dns.name.from_text("big.t.example.").to_wire() or b"")
    lengths, total = [], owner - 2  # every record: a 2-octet pointer, 10 fixed, 1 + n of string
    while size - total > 2 + 10 + 1 + 255:
        lengths.append(255)
        total += 2 + 10 + 1 + 255
    lengths.append(size - total - 2 - 10 - 1)
    return txt_lines(lengths)


def sizes(body: str) -> tuple[int, int]:
    z = zone("t.example.", body)
    name = dns.name.from_text("big.t.example.")
    rdataset = z.find_rdataset(name, RdataType.TXT)
    return rrset_sizes(name, rdataset)


@pytest.mark.parametrize("size", [RRSET_MAX - 1, RRSET_MAX, RRSET_MAX + 1])
def test_rule_7_errs_exactly_past_the_largest_rrset_a_message_holds(size: int) -> None:
    body = txt_rrset_of(size)
    assert sizes(body)[0] == size
    problems = check_zone(zone("t.example.", body), file="t.example.zone", lines={})
    errors = [p for p in problems if p.severity == "error"]
    if size <= RRSET_MAX:
        assert not errors
        assert any("over UDP" in p.message for p in problems)  # far over 1,232 octets
    else:
        assert len(errors) == 1 and "does not fit in a DNS message" in errors[0].message
        assert "TXT RRset at big.t.example." in errors[0].message


def test_an_rrset_rendered_alone_after_the_longest_question_fits_a_message() -> None:
    """What rule 7 promises: the largest RRset it lets through, answered to a 255-octet qname."""
    body = txt_rrset_of(RRSET_MAX)
    z = zone("t.example.", body)
    rrset = z.find_rrset("big.t.example.", RdataType.TXT)
    longest = dns.name.Name([b"b" * 63] * 3 + [b"b" * 61, b""])  # shares nothing with the owner
    assert len(longest.to_wire() or b"") == 255
    renderer = dns.renderer.Renderer(max_size=65535)
    renderer.add_question(longest, RdataType.TXT)
    renderer.add_rrset(dns.renderer.ANSWER, rrset)  # does not raise TooBig
    renderer.write_header()
    assert len(renderer.get_wire()) <= 65535


def test_udp_warning_threshold() -> None:
    """75 A records make a 1,232-octet answer at most; more are warned about."""
    few = "".join(f"w IN A 10.0.0.{i}\n" for i in range(60))
    many = "".join(f"w IN A 10.0.{i // 256}.{i % 256}\n" for i in range(100))
    for body, warned in ((few, False), (many, True)):
        problems = check_zone(zone("u.example.", body), file="u.example.zone", lines={})
        assert any("over UDP" in p.message for p in problems) == warned
        assert not [p for p in problems if p.severity == "error"]
