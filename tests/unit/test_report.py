"""report: the live commands' text, from documents to rich renderables (no I/O, no clock)."""

from __future__ import annotations

import io
from typing import Any

import dns.message
import dns.rrset
import msgspec
import pytest
from rich.console import Console, RenderableType

from dnsserve import report
from dnsserve.client import Explanation, MemberWhy, Selection
from dnsserve.statuspage import (
    MemberDoc,
    OverrideDoc,
    PoolDoc,
    PoolMemberDoc,
    ReloadDoc,
    SecondaryDoc,
    Status,
    SuspicionDoc,
)

NOW = 1_760_000_000.0  # 2025-10-09 08:53:20Z


def text(renderable: RenderableType) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None, markup=False).print(renderable)
    return out.getvalue()


def test_when_span_ago() -> None:
    assert report.when(NOW) == "2025-10-09 08:53:20Z"
    assert report.when(None) == "-"
    assert [report.span(s) for s in (0, 59, 60, 3599, 3600, 3725, 86400 * 3)] == [
        "0s", "59s", "1m", "59m", "1h00m", "1h02m", "3d"]
    assert report.ago(NOW - 90, NOW) == "1m ago"
    assert report.ago(NOW + 900, NOW) == "in 15m"
    assert report.ago(NOW, None) == "2025-10-09 08:53:20Z"
    assert report.ago(None, NOW) == "-"


@pytest.mark.parametrize(
    ("detail", "lines"),
    [
        (None, []),
        ("", []),
        ("one\ntwo", ["one", "two"]),
        (["zones/a.zone:3: bad TTL", {"zone": "b."}], ["zones/a.zone:3: bad TTL",
                                                       '{"zone": "b."}']),
        ({"pool": "www.example.com. A", "would_serve": ["192.0.2.1", "192.0.2.2"],
          "nothing": [], "count": 2},
         ["pool: www.example.com. A", "would_serve: 192.0.2.1, 192.0.2.2",
          "nothing: (nothing)", "count: 2"]),
        (42, ["42"]),
    ],
)
def test_detail_lines(detail: object, lines: list[str]) -> None:
    assert report.detail_lines(detail) == lines


def test_override_text() -> None:
    drain = OverrideDoc(kind="drain", reason="kernel", until=NOW + 900)
    assert report.override_text(drain, NOW).plain == \
        "drain until 2025-10-09 09:08:20Z (in 15m): kernel"
    assert report.override_text(drain, None).plain == "drain until 2025-10-09 09:08:20Z: kernel"
    assert report.override_text(OverrideDoc(kind="force-up"), NOW).plain == "force-up"
    assert report.override_text(None, NOW).plain == ""


def test_member_state_styles() -> None:
    state = report.member_state("down", "up", held=True)
    assert state.plain == "down (checks: up) held"
    assert state.spans[0].style == "dim" and state.style == "bold red"
    assert report.state_text("up").style == "bold green"


def status(**over: Any) -> Status:
    member = MemberDoc(member="web/192.0.2.1", monitor="web", address="192.0.2.1", real="down",
                       effective="down", since=NOW - 120, reason="HTTP 503", checked=NOW - 2,
                       ok=False, result="HTTP 503", latency=0.012)
    pool = PoolDoc(owner="www.example.com.", type="A", monitor="web", policy="priority",
                   when_all_down="fallback", ttl=30,
                   members=(PoolMemberDoc(member="web/192.0.2.1", value="192.0.2.1"),
                            PoolMemberDoc(member="web/192.0.2.9", value="192.0.2.9")),
                   answer=("198.51.100.1",), reason="every member down: fallback")
    return msgspec.structs.replace(Status(now=NOW, pools=(pool,), members=(member,)), **over)


def test_status_view() -> None:
    shown = text(report.status_view(status()))
    assert "www.example.com. A  policy priority, when all down: fallback, ttl 30" in shown
    assert "answer: 198.51.100.1  (every member down: fallback)" in shown
    assert "HTTP 503, 12 ms, 2s ago" in shown
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in shown.splitlines()]
    assert ["web/192.0.2.9", "192.0.2.9", "unknown", "", "", ""] in rows  # not in members
    assert "SUSPECT" not in shown and "problem" not in shown


def test_status_banners() -> None:
    shown = text(report.status_view(
        status(suspect=SuspicionDoc(since=NOW - 30, reason="4 of 4 failing"),
               last_reload=ReloadDoc(at=NOW - 60, ok=False, message="zones/x.zone:1: bad")),
        problems=["state file unwritable"]))
    assert "SUSPECT since 2025-10-09 08:52:50Z: the monitor suspects its own network and " \
           "holds member states (4 of 4 failing)" in shown
    assert "last reload refused 1m ago: zones/x.zone:1: bad" in shown
    assert "problem: state file unwritable" in shown
    assert "no pools" in text(report.status_view(Status(now=NOW)))


def test_secondary_zones_table() -> None:
    docs = (
        SecondaryDoc(zone="example.org.", primaries=("127.0.0.1:5301",), serial=7,
                     last_refresh=NOW - 60, next_refresh=NOW + 3540, expires_at=NOW + 86400,
                     transfers={"axfr": 1, "ixfr": 3}),
        SecondaryDoc(zone="example.net.", serial=None, expired=True, held=1,
                     last_error="127.0.0.1:5301: timed out", transfers={"axfr": 0}),
    )
    shown = text(report.status_view(Status(now=NOW, secondary=docs)))
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in shown.splitlines()]
    assert "secondary zones" in shown
    assert ["example.org.", "7", "1m ago", "in 59m", "in 1d", "axfr 1, ixfr 3", "-"] in rows
    assert ["example.net.", "-", "-", "-", "EXPIRED: SERVFAIL", "axfr 0, held 1",
            "127.0.0.1:5301: timed out"] in rows


def test_explanation_view() -> None:
    member = MemberWhy(member="web/192.0.2.1", value="192.0.2.1", real="up", effective="down",
                       reason="HTTP 200", override=OverrideDoc(kind="drain", reason="rack"))
    expl = Explanation(
        name="www.example.com.", type="A", rcode="NOERROR", answer=("192.0.2.1",),
        zone="example.com.", source="pool",
        pool=Selection(owner="www.example.com.", type="A", policy="all", when_all_down="all",
                       reason="every member down: all, as if up", all_down_rule_applied=True,
                       members=(member,), answer=("192.0.2.1",)),
    )
    shown = text(report.explanation_view(expl))
    assert "why: zone example.com., pool; answer NOERROR: 192.0.2.1" in shown
    assert "(applied: every member is down, so 'all' decides)" in shown
    assert "│ down (checks: up) │ HTTP 200 │ drain: rack │" in shown
    static = text(report.explanation_view(Explanation(name="a.", source="static", zone="a.")))
    assert static.strip() == "why: zone a., static; answer: (nothing)"


def test_dns_view_and_doc() -> None:
    msg = dns.message.make_response(dns.message.make_query("www.example.com.", "A"))
    msg.answer.append(dns.rrset.from_text("www.example.com.", 60, "IN", "A", "192.0.2.1"))
    shown = text(report.dns_view("127.0.0.1:5300", msg))
    assert shown.splitlines() == ["DNS @127.0.0.1:5300: NOERROR  flags: QR RD",
                                  "  www.example.com. 60 IN A 192.0.2.1"]
    assert report.dns_doc("127.0.0.1:5300", msg)["answer"] == ["www.example.com. 60 IN A 192.0.2.1"]
    assert text(report.dns_view("127.0.0.1:5300", None, "no DNS answer within 3 s")).strip() == \
        "DNS @127.0.0.1:5300: no DNS answer within 3 s"
    assert report.dns_doc("x", None, "timeout") == {"server": "x", "error": "timeout"}
