"""The status page at ``/`` in a real browser: headless Chromium (Debian's), driven by playwright.

What only a browser can tell: the page's inline script runs under its own
Content-Security-Policy (a blocked script or style is a console error), its
refresh (``GET fragment`` every 2 s, swapped in with ``innerHTML``) follows
the server, hostile text stays text in the DOM after a swap as well as in
the first render, and the page says so when the server is gone.

The first tests serve the page from the control endpoint with ``StatusApi``,
an in-memory Api whose status document the test changes; the last one runs
the real server with real HTTP backends on 127.0.0.x and stops one. Every
wait polls the DOM with a deadline (``testkit.wait``), through the page's own
refresh: nothing here reloads the page or asserts how long anything took.

Chromium comes from ``testkit.browser``: a missing browser skips these
tests, or fails them under ``DNSSERVE_REQUIRE_PEERS=1`` (CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
import uvloop

from dnsserve import control
from dnsserve.config import load_config, parse_hostport
from dnsserve.control import ControlError, ControlServer
from dnsserve.statuspage import EventDoc, MemberDoc, PoolDoc, PoolMemberDoc, Status, ZoneDoc
from testkit.browser import Watched, chromium, watched_page
from testkit.harness import Harness, monitor, pool
from testkit.wait import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

T = TypeVar("T")

TOKEN = "status-page-test-token-" + "x" * 20
NOW = 1_760_000_000.0
HOSTILE = '<img src=x onerror=alert(1)><script>alert(2)</script>"><b>bold</b>'


# -- an Api with a status the test changes --------------------------------------------------------


class StatusApi:
    """One pool of two members; ``down`` names the members whose checks fail."""

    def __init__(self) -> None:
        self.members = {"web/127.0.0.11": "127.0.0.11", "web/127.0.0.12": "127.0.0.12"}
        self.down: set[str] = set()
        self.owner = "www.example.com."
        self.reason = "HTTP 200"
        self.now = NOW

    def status(self) -> Status:
        def state(m: str) -> str:
            return "down" if m in self.down else "up"

        members = tuple(
            MemberDoc(member=m, monitor="web", address=a, real=state(m), effective=state(m),
                      since=self.now - 60, reason=self.reason if state(m) == "up" else
                      "connect refused", checked=self.now - 1, ok=state(m) == "up",
                      result="HTTP 200" if state(m) == "up" else "connect refused",
                      latency=0.002)
            for m, a in self.members.items()
        )
        up = tuple(a for m, a in self.members.items() if state(m) == "up")
        return Status(
            now=self.now, version="0.1.0",
            zones=(ZoneDoc(name="example.com.", file="zones/example.com.zone",
                           serial=2024010101, records=12, loaded_at=NOW - 3600),),
            pools=(PoolDoc(owner=self.owner, type="A", monitor="web", policy="all", ttl=20,
                           members=tuple(PoolMemberDoc(member=m, value=a)
                                         for m, a in self.members.items()),
                           answer=up),),
            members=members,
            events=(EventDoc(time=self.now - 60, member="web/127.0.0.11", from_state="down",
                             to_state="up", reason=self.reason),),
        )

    def answer(self, name: str, qtype: str, what_if_down: Sequence[str]) -> dict[str, Any]:
        raise ControlError(404, f"{name} is in no served zone")

    def events(self, since: float | None, member: str | None, limit: int) -> list[Any]:
        return []

    def set_override(self, member: str, kind: str, duration: float | None, reason: str,
                     force: bool) -> dict[str, Any]:
        raise ControlError(404, f"{member}: in no pool")

    def clear_override(self, member: str) -> dict[str, Any]:
        raise ControlError(404, f"{member}: in no pool")

    async def reload(self, force: bool) -> dict[str, Any]:
        return {"accepted": True}

    def metrics(self) -> str:
        return ""

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        return True, {}


API: control.Api = StatusApi()  # mypy checks that it has the Protocol's shape


class Served:
    """The control endpoint with a ``StatusApi``, on a uvloop loop in a thread of its own."""

    def __init__(self) -> None:
        self.api = StatusApi()
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: ControlServer | None = self._run(
            control.start_control(self.api, "127.0.0.1", 0, TOKEN))
        self.url = f"http://127.0.0.1:{self.server.address[1]}/"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close_server(self) -> None:
        """Stop listening and end every connection: the page loses its server."""
        server, self.server = self.server, None
        if server is not None:
            async def close() -> None:
                server.close()
                await server.wait_closed()

            self._run(close())

    def stop(self) -> None:
        self.close_server()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.loop.close()


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    w = watched_page(browser)
    try:
        yield w
    finally:
        w.page.close()


# -- reading the page -----------------------------------------------------------------------------


def member_state(page: Page, member: str) -> str | None:
    """The state shown in ``member``'s row of the pool table, or None when there is no such row."""
    name = page.locator("td:first-child", has_text=re.compile(f"^{re.escape(member)}$"))
    row = page.locator("#live tr", has=name)
    if row.count() != 1:
        return None
    return row.locator(".state").first.inner_text()


def wait_state(page: Page, member: str, state: str) -> None:
    wait_for(f"the page to show {member} {state}", lambda: member_state(page, member),
             lambda shown: shown == state, seconds=30.0, poll=0.2)


def open_page(watched: Watched, url: str) -> Page:
    page = watched.page
    response = page.goto(url)
    assert response is not None and response.status == 200
    return page


# -- against the control endpoint with StatusApi --------------------------------------------------


def test_page_follows_the_status_through_its_own_refresh(served: Served, watched: Watched) -> None:
    page = open_page(watched, served.url)
    assert page.title() == "dnsserve 0.1.0 status"
    assert "www.example.com. A" in page.locator("#live h3").inner_text()
    assert member_state(page, "web/127.0.0.11") == "up"
    assert member_state(page, "web/127.0.0.12") == "up"

    served.api.down.add("web/127.0.0.12")
    wait_state(page, "web/127.0.0.12", "down")
    assert member_state(page, "web/127.0.0.11") == "up"
    assert page.locator("#live .inanswer.mono", has_text="127.0.0.12").count() == 0

    served.api.down.clear()
    wait_state(page, "web/127.0.0.12", "up")
    assert watched.errors == [] and watched.dialogs == [] and watched.refused == []
    assert page.locator("#conn").inner_text() == ""


def test_hostile_text_stays_text_in_the_dom(served: Served, watched: Watched) -> None:
    served.api.owner = HOSTILE
    served.api.reason = HOSTILE
    page = open_page(watched, served.url)

    def injected() -> dict[str, int]:
        return {tag: page.locator(f"body {tag}").count() for tag in ("img", "b")} | {
            "script": page.locator("script").count()}

    assert injected() == {"img": 0, "b": 0, "script": 1}  # the page's own script only
    assert HOSTILE in page.locator("#live h3").inner_text()  # shown as the text it is
    # The same after the script has swapped a fragment in with innerHTML.
    served.api.down.add("web/127.0.0.11")
    wait_state(page, "web/127.0.0.11", "down")
    assert injected() == {"img": 0, "b": 0, "script": 1}
    assert HOSTILE in page.locator("#live").inner_text()
    assert watched.dialogs == []
    assert watched.errors == []  # nothing the CSP had to block, either


def test_page_says_when_the_server_is_gone(served: Served, watched: Watched) -> None:
    page = open_page(watched, served.url)
    assert member_state(page, "web/127.0.0.11") == "up"
    served.close_server()
    notice = wait_for("the page to say it cannot reach the server",
                      lambda: page.locator("#conn").inner_text(),
                      lambda text: text.startswith("Cannot reach the server"),
                      seconds=30.0, poll=0.2)
    assert "showing the last status" in notice
    assert "stale" in (page.locator("body").get_attribute("class") or "")
    assert member_state(page, "web/127.0.0.11") == "up"  # the last status stays


# -- the real server ------------------------------------------------------------------------------


def test_page_shows_a_member_going_down(harness: Harness, watched: Watched) -> None:
    hosts = ["127.0.0.231", "127.0.0.232", "127.0.0.233"]
    backends = harness.http(*hosts)
    owner = "status.example.com."
    config = harness.write_config([monitor(port=backends[hosts[0]].port)],
                                  [pool(owner, [{"address": h} for h in hosts])])
    host, port = parse_hostport(load_config(config).server.control)
    url = f"http://{host}:{port}/"
    harness.serve()
    members = [f"web/{h}" for h in hosts]
    harness.wait_up(members)
    wait_for("the control API to answer", lambda: _healthz(url), lambda code: code == 200)

    page = open_page(watched, url)
    assert owner in page.locator("#live").inner_text()
    for member in members:
        wait_state(page, member, "up")

    backends[hosts[1]].stop()
    wait_state(page, members[1], "down")
    assert member_state(page, members[0]) == member_state(page, members[2]) == "up"
    assert watched.errors == [] and watched.dialogs == [] and watched.refused == []


def _healthz(url: str) -> int | None:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url + "healthz", timeout=2.0).status_code
    return None
