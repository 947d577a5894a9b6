"""Headless Chromium for the tests of web pages, driven by playwright.

Owns: finding Debian's ``chromium`` (``/usr/bin/chromium``), launching it
headless through playwright's ``executable_path``, a page that may load only
loopback URLs, and the record of what went wrong on it (console errors,
uncaught exceptions, dialogs). A missing ``chromium``, or a missing
``playwright`` package, skips the calling test, or fails it under
``DNSSERVE_REQUIRE_PEERS=1`` (``testkit.peers.missing``).

Must not: download a browser (``playwright install`` is never needed: the
package drives the Debian browser), or let a page reach anything but
loopback. ``--no-sandbox``: the tests may run as root, where Chromium's
sandbox refuses to start.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from testkit.peers import missing, required_binary

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Route

ARGS = ["--headless=new", "--no-sandbox"]


def _loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the duration of the block."""
    path = required_binary("chromium", "browser")
    try:
        sync_api = importlib.import_module("playwright.sync_api")
    except ImportError:
        missing("the playwright package is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page and what went wrong on it so far."""

    page: Page
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions
    dialogs: list[str] = field(default_factory=list)  # alert(), confirm(): none expected
    refused: list[str] = field(default_factory=list)  # requests off loopback, aborted


def watched_page(browser: Browser) -> Watched:
    """A new page that records its errors and dialogs and may load loopback URLs only."""
    page = browser.new_page()
    watched = Watched(page)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            watched.errors.append(f"console: {msg.text}")

    def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_route(route: Route) -> None:
        if _loopback(route.request.url):
            route.continue_()
        else:
            watched.refused.append(route.request.url)
            route.abort()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))
    page.on("dialog", on_dialog)
    page.route("**/*", on_route)
    return watched
