"""xfr.publish: the serial rule, coalescing, pool answers written into zone content."""

from __future__ import annotations

import dataclasses

import dns.flags
import dns.message
import dns.name
import dns.zone
import pytest
from dns.rdatatype import RdataType

from dnsserve.answer.policies import Selection
from dnsserve.xfr.outgoing import soa_record, soa_serial
from dnsserve.xfr.publish import (
    answer_values,
    next_serial,
    publish_delay,
    published_content,
    same_records,
    soa_answer,
)
from dnsserve.zones.compile import compile_zone
from dnsserve.zones.versions import ZoneContent, diff, zone_content
from testkit import SHIPPED_ZONES
from testkit.answers import build_engine

ORIGIN = dns.name.from_text("example.com.")
WWW = dns.name.from_text("www.example.com.")
NEW = dns.name.from_text("zzz.example.com.")


def content(extra: str = "") -> ZoneContent:
    text = ("$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hm 7 3600 600 86400 300\n@ NS ns1\n"
            "ns1 A 192.0.2.1\nwww A 192.0.2.10\nwww A 192.0.2.11\nwww TXT hello\n"
            "a.www A 192.0.2.99\n" + extra)
    return zone_content(compile_zone(dns.zone.from_text(text, ORIGIN, relativize=False),
                                     file="t", lines={}))


@pytest.mark.parametrize(("old", "now", "new"), [
    (7, 1_800_000_000.5, 1_800_000_000),  # unix time when it is later
    (1_800_000_000, 1_800_000_000.0, 1_800_000_001),  # twice in a second: one more
    (1_900_000_000, 1_800_000_000.0, 1_900_000_001),  # the old serial is ahead: one more
    (2**32 - 1, 5.0, 5),  # wraps (RFC 1982): 5 is later than 2**32 - 1
])
def test_serial_rule(old: int, now: float, new: int) -> None:
    assert next_serial(old, now) == new


@pytest.mark.parametrize(("last", "now", "delay"), [
    (None, 100.0, 0.0), (90.0, 100.0, 0.0), (98.0, 100.0, 3.0), (100.0, 100.0, 5.0),
])
def test_coalescing_delay(last: float | None, now: float, delay: float) -> None:
    assert publish_delay(last, now, 5.0) == delay


def selection(*values: str) -> Selection:
    return Selection((tuple(values),) if values else (), None, 20, False, "test")


def test_pool_set_replaces_the_file_set_in_canonical_order() -> None:
    base = content()
    out = published_content(base, {(WWW, RdataType.A): (20, ("192.0.2.12",))}, 1234)
    assert soa_serial(soa_record(out)) == 1234
    # the result is what a zone file with that set would give
    text_zone = ("$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hm 1234 3600 600 86400 300\n"
                 "@ NS ns1\nns1 A 192.0.2.1\nwww 20 A 192.0.2.12\nwww TXT hello\n"
                 "a.www A 192.0.2.99\n")
    want = zone_content(compile_zone(dns.zone.from_text(text_zone, ORIGIN, relativize=False),
                                     file="t", lines={}))
    assert out == want
    changes = diff(base, out)
    assert len(changes.removed) == 3 and len(changes.added) == 2  # SOA, www A x2 / SOA, www A


def test_a_pool_where_the_file_has_no_set() -> None:
    out = published_content(content(), {(NEW, RdataType.A): (20, ("192.0.2.5", "192.0.2.4"))}, 8)
    names = [r for r in out.records if r.startswith(NEW.to_digestable())]
    assert len(names) == 2 and names == sorted(names)
    assert list(out.records).index(names[0]) == len(out.records) - 2  # zzz sorts last


def test_never_empty() -> None:
    assert answer_values(RdataType.A, selection()) == ()
    base = content()
    out = published_content(base, {(WWW, RdataType.A): (20, ())}, 7)
    assert out == base  # the file's set stays
    assert same_records(out, published_content(base, {}, 99))


def test_cname_publishes_one_target() -> None:
    sel = Selection((("a.example.net.",), ("b.example.net.",)), None, 20, False, "x")
    assert answer_values(RdataType.CNAME, sel) == ("a.example.net.",)
    assert answer_values(RdataType.A, selection("192.0.2.2", "192.0.2.1")) == (
        "192.0.2.1", "192.0.2.2")


def test_the_engine_serves_the_published_soa() -> None:
    engine = build_engine(SHIPPED_ZONES)
    origin = dns.name.from_text("example.com.")
    base = zone_content(engine.snapshot.base[origin])
    published = published_content(base, {}, 4_000_000_000)
    key, prebuilt = soa_answer(published)
    snapshot = engine.snapshot
    engine.swap(dataclasses.replace(snapshot, answers={**snapshot.answers, key: prebuilt}))
    q = dns.message.make_query("EXAMPLE.com.", "SOA")
    r = dns.message.from_wire(engine.respond(q.to_wire(), tcp=False) or b"")
    assert r.flags & dns.flags.AA
    assert r.answer[0][0].serial == 4_000_000_000
    assert r.question[0].name.to_text() == "EXAMPLE.com."
