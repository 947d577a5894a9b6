"""The status document and its page, rendered without a server: Structs in, HTML out."""

from __future__ import annotations

import re

import msgspec
import pytest

from dnsserve.statuspage import (
    EventDoc,
    MemberDoc,
    OverrideDoc,
    PoolDoc,
    PoolMemberDoc,
    ReloadDoc,
    SecondaryDoc,
    Status,
    SuspicionDoc,
    ZoneDoc,
    decode_status,
    render_fragment,
    render_page,
)

NOW = 1_760_000_000.0  # 2025-10-09 08:53:20Z


def member(name: str = "web/127.0.0.11", **kw: object) -> MemberDoc:
    fields: dict[str, object] = {
        "member": name, "monitor": name.partition("/")[0], "address": name.partition("/")[2],
        "real": "up", "effective": "up", "since": NOW - 300,
    }
    fields.update(kw)
    return msgspec.convert(fields, MemberDoc)


def pool(*members: str, answer: tuple[str, ...] = ()) -> PoolDoc:
    return PoolDoc(
        owner="www.example.com.", type="A", monitor="web", policy="weighted",
        members=tuple(PoolMemberDoc(member=m, value=m.partition("/")[2], weight=3, priority=2)
                      for m in members),
        answer=answer,
    )


def text(html: str) -> str:
    """The page's text as a reader sees it: tags dropped, spaces squeezed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_an_empty_status_says_so() -> None:
    out = text(render_fragment(Status(now=NOW)))
    assert "status at 2025-10-09 08:53:20Z" in out
    for words in ("no pools configured", "no events yet", "no zones loaded"):
        assert words in out


@pytest.mark.parametrize(
    ("at", "shown"),
    [(NOW - 5, "5s ago"), (NOW - 300, "5m ago"), (NOW - 7300, "2h ago"),
     (NOW - 3 * 86400, "3d ago"), (NOW + 840, "in 14m")],
)
def test_times_are_relative_to_the_documents_now(at: float, shown: str) -> None:
    status = Status(now=NOW, members=(member(since=at),), pools=(pool("web/127.0.0.11"),))
    assert shown in text(render_fragment(status))


def test_member_row() -> None:
    m = member(
        effective="down", reason="HTTP 503", checked=NOW - 2, ok=False, result="HTTP 503",
        latency=0.0123, held=True,
        override=OverrideDoc(kind="drain", reason="kernel upgrade", until=NOW + 900),
    )
    status = Status(now=NOW, members=(m,), pools=(pool("web/127.0.0.11", answer=()),))
    html = render_fragment(status)
    out = text(html)
    assert "answers NODATA" in out
    assert "web/127.0.0.11 127.0.0.11 3 / 2 down (checks: up) held 5m ago HTTP 503" in out
    assert "fail 2s ago : HTTP 503, 12.3 ms" in out
    assert "drain until in 15m : kernel upgrade" in out
    assert '<span class="state down">down</span>' in html
    assert 'title="2025-10-09 08:48:20Z"' in html  # the UTC time behind "5m ago"


def test_member_in_the_answer_is_marked_and_an_unknown_member_shown() -> None:
    status = Status(now=NOW, members=(member(),),
                    pools=(pool("web/127.0.0.11", "web/127.0.0.12", answer=("127.0.0.11",)),))
    html = render_fragment(status)
    assert '<span class="mono inanswer">127.0.0.11</span>' in html
    assert '<span class="mono">127.0.0.12</span>' in html
    assert "unknown member" in text(html)
    assert "not checked yet" in text(html)


def test_banners() -> None:
    status = Status(
        now=NOW,
        suspect=SuspicionDoc(since=NOW - 60, reason="5 of 5 members failing in 2 pools"),
        last_reload=ReloadDoc(at=NOW - 10, ok=False, message="example.com.zone:3: bad TTL"),
    )
    out = text(render_fragment(status))
    assert "Suspect since 1m ago : the monitor suspects its own network" in out
    assert "5 of 5 members failing in 2 pools" in out
    assert "Last reload refused 10s ago : example.com.zone:3: bad TTL" in out
    calm = text(render_fragment(Status(now=NOW, last_reload=ReloadDoc(at=NOW, ok=True))))
    assert "Suspect" not in calm and "refused" not in calm


def test_zones_and_events() -> None:
    status = Status(
        now=NOW,
        zones=(ZoneDoc(name="example.com.", file="zones/example.com.zone", serial=7, records=12,
                       loaded_at=NOW - 3600, ok=False,
                       result="line 3: bad TTL; serving serial 7"),),
        events=(EventDoc(time=NOW - 30, member="*", to_state="suspicion", reason="all failing"),
                EventDoc(time=NOW - 90, member="web/127.0.0.11", from_state="up",
                         to_state="down", reason="timeout")),
    )
    out = text(render_fragment(status))
    assert ("example.com. 7 12 zones/example.com.zone 1h ago failed line 3: bad TTL; "
            "serving serial 7") in out
    assert "30s ago * - → suspicion all failing" in out.replace("&rarr;", "→")
    assert "1m ago web/127.0.0.11 up → down timeout" in out.replace("&rarr;", "→")


def test_secondary_zones() -> None:
    status = Status(now=NOW, secondary=(
        SecondaryDoc(zone="example.org.", serial=7, last_refresh=NOW - 60,
                     next_refresh=NOW + 3540, expires_at=NOW + 86400,
                     transfers={"axfr": 1, "ixfr": 2}),
        SecondaryDoc(zone="example.net.", expired=True, last_error="<timed out>", held=1,
                     transfers={"axfr": 0}),
    ))
    out = text(render_fragment(status))
    assert "Secondary zones" in out
    assert "example.org. 7 1m ago in 59m in 1d axfr 1, ixfr 2 -" in out
    assert "example.net. - - - expired: SERVFAIL axfr 0, held 1 &lt;timed out&gt;" in out
    assert "Secondary zones" not in text(render_fragment(Status(now=NOW)))


def test_page_wraps_the_fragment() -> None:
    status = Status(now=NOW, version="0.1.0")
    page = render_page(status)
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>dnsserve 0.1.0 status</title>" in page
    assert f'<main id="live">\n{render_fragment(status)}\n</main>' in page
    assert 'fetch("fragment"' in page and "2000" in page


def test_decode_ignores_fields_it_does_not_know() -> None:
    doc = {"now": NOW, "generation": 12, "members": [
        {"member": "web/a", "monitor": "web", "address": "a", "real": "up", "effective": "up",
         "passes": 3}]}
    status = decode_status(doc)
    assert status.members[0].member == "web/a"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "Object missing required field `now`"),
        ({"now": NOW, "pools": [{"owner": "a.", "type": "A", "monitor": "m", "policy": "all",
                                 "members": [{"member": "m/a", "value": "a", "weight": "3"}]}]},
         "Expected `int`, got `str` - at `$.pools[0].members[0].weight`"),
    ],
)
def test_decode_names_what_is_wrong(doc: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError) as err:
        decode_status(doc)
    assert str(err.value) == message
