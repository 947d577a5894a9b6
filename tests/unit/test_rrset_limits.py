"""RRsets too large for a DNS message: ``zones.compile`` rule 7, and zones left out at prebuild.

Rule 7 is an error when an RRset's wire form cannot fit a message after a
header and the longest question (``RRSET_MAX`` octets), a warning when its
smallest answer is over 1,232 octets (UDP truncates it). A zone whose RRsets
all fit but one of whose answers does not (additional data included) is left
out by ``build_snapshot`` and named in ``Snapshot.left_out``; the other zones
are served. The same through the real server and CLI:
tests/integration/test_rrset_size.py.
"""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.renderer
import dns.zone
import pytest
from dns.rdatatype import RdataType

from dnsserve.answer.engine import Engine
from dnsserve.answer.snapshot import build_snapshot
from dnsserve.zones.compile import check_zone, compile_zone
from dnsserve.zones.limits import RRSET_MAX, rrset_sizes
from dnsserve.zones.table import ZoneTable
from testkit.answers import ask

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


@pytest.fixture(scope="module")
def too_big() -> ZoneTable:
    """Each A RRset fits (~34 KB); the MX answer with both as additional data does not."""
    big = zone("kid.p.example.", "@ IN MX 10 t1\n@ IN MX 20 t2\n")
    for n in (1, 2):  # added as objects: 4,200 lines of text would take dnspython a second
        node = big.find_node(dns.name.from_text(f"t{n}.kid.p.example."), create=True)
        rdataset = node.find_rdataset(dns.rdataclass.IN, RdataType.A, create=True)
        rdataset.update_ttl(60)
        for i in range(2100):
            rdataset.add(dns.rdtypes.IN.A.A(dns.rdataclass.IN, RdataType.A,
                                            f"10.{n}.{i // 256}.{i % 256}"))
    return compile_zone(big, file="kid.p.example.zone", lines={})


def test_a_zone_whose_answer_cannot_be_prebuilt_is_left_out_and_the_others_served(
    too_big: ZoneTable,
) -> None:
    good = table("good.example.", "www IN A 192.0.2.80\n")
    origin = too_big.origin
    snapshot = build_snapshot({origin: too_big, good.origin: good})
    assert set(snapshot.left_out) == {origin}
    assert "kid.p.example. MX" in snapshot.left_out[origin]
    assert "TooBig" in snapshot.left_out[origin]
    assert set(snapshot.zones) == {good.origin} and set(snapshot.base) == {good.origin}
    engine = Engine(snapshot)
    assert ask(engine, "www.good.example.", "A").answer
    assert ask(engine, "kid.p.example.", "MX").rcode() == dns.rcode.REFUSED


def test_a_left_out_child_is_answered_by_its_parent(too_big: ZoneTable) -> None:
    """Leaving a zone out rebuilds the rest without it: the parent's delegation answers."""
    parent = table("p.example.", "kid IN NS ns1.kid\nns1.kid IN A 192.0.2.9\n")
    snapshot = build_snapshot({too_big.origin: too_big, parent.origin: parent})
    assert set(snapshot.left_out) == {too_big.origin}
    r = ask(Engine(snapshot), "kid.p.example.", "MX")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority  # a referral


def test_nothing_is_left_out_of_zones_that_build() -> None:
    good = table("good.example.", "www IN A 192.0.2.80\n")
    assert build_snapshot({good.origin: good}).left_out == {}
