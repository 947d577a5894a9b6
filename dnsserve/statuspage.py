"""The status document (what ``GET /api/v1/status`` returns) and the status page at ``/``.

Owns the shape of the status document as Structs (``Status`` and its parts:
the contract between the app, which fills it, and every reader of it) and
its rendering to one self-contained HTML page. Pure: the time shown as
"ago" is measured from ``Status.now``, which the app sets; no clock, no I/O.
It must not know where the data comes from, nor fetch anything.

Rules:
1. Every text taken from the document goes through ``_e`` (``html.escape``
   with quotes) before it is written into HTML, attribute or element alike;
   numbers are formatted, never pasted.
2. The page works without JavaScript: the server renders the whole page.
   A small inline script replaces ``<main id="live">`` every ``REFRESH_MS``
   with ``GET fragment`` (``render_fragment``, the same renderer), so there
   is one renderer, in Python, and no HTML is built in JavaScript.
3. ``CSP`` allows exactly the page's inline script and style (by hash),
   requests to its own origin and nothing else: injected markup could not
   run a script even if rule 1 were broken.
4. The document is decoded leniently (``decode_status``): fields the page
   does not know are ignored, so the app may add some; a missing required
   field or a wrong type is an error that names its path.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html

import msgspec

REFRESH_MS = 2000


# Each Struct ignores unknown fields (msgspec's default: rule 4).


class OverrideDoc(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # "drain" | "force-up"
    reason: str = ""
    until: float | None = None  # None: until removed
    set_at: float | None = None


class MemberDoc(msgspec.Struct, frozen=True, kw_only=True):
    member: str  # "MONITOR/ADDRESS"
    monitor: str
    address: str
    real: str  # "up" | "down": what its checks say
    effective: str  # with the override applied: what answers use
    since: float | None = None  # of the real state; None: never checked yet
    reason: str = ""  # why the real state is what it is
    checked: float | None = None  # when the last check completed
    ok: bool | None = None  # whether it passed
    result: str = ""  # its result: "HTTP 200", "timeout", "connection refused"
    latency: float | None = None  # seconds it took
    override: OverrideDoc | None = None
    held: bool = False  # state held by the self-suspicion guard


class PoolMemberDoc(msgspec.Struct, frozen=True, kw_only=True):
    member: str  # "MONITOR/ADDRESS", a key into Status.members
    value: str  # what the pool answers with it: an address or a CNAME target
    weight: int = 1
    priority: int = 1


class PoolDoc(msgspec.Struct, frozen=True, kw_only=True):
    owner: str
    type: str  # "A" | "AAAA" | "CNAME"
    monitor: str
    policy: str  # "all" | "weighted" | "priority"
    when_all_down: str = "all"
    ttl: int | None = None
    members: tuple[PoolMemberDoc, ...] = ()
    answer: tuple[str, ...] = ()  # the values it answers with now
    reason: str = ""  # why: the selection's reason


class ZoneDoc(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    file: str = ""
    serial: int | None = None  # None: never loaded
    records: int | None = None
    loaded_at: float | None = None  # when the version served now was loaded
    ok: bool = True  # the last load or reload of this zone succeeded
    result: str = ""  # its outcome, e.g. the error that kept the old version
    # a signed zone: when its first RRSIG expires (seconds since the epoch)
    signatures_expire: float | None = None


class SecondaryDoc(msgspec.Struct, frozen=True, kw_only=True):
    """A secondary zone's refresh state (``secondary.SecondaryZone``)."""

    zone: str
    primaries: tuple[str, ...] = ()
    serial: int | None = None  # of the copy served; None: no copy yet
    last_refresh: float | None = None  # the last attempt
    last_success: float | None = None  # the last check or transfer that left us current
    next_refresh: float | None = None
    expires_at: float | None = None
    expired: bool = False  # answering SERVFAIL
    last_error: str = ""
    refreshes: int = 0
    failures: int = 0
    transfers: dict[str, int] = msgspec.field(default_factory=dict)  # axfr/ixfr -> count
    held: int = 0  # transfers the deletion guard held back


class ReloadDoc(msgspec.Struct, frozen=True, kw_only=True):
    at: float
    ok: bool
    message: str = ""


class SuspicionDoc(msgspec.Struct, frozen=True, kw_only=True):
    since: float
    reason: str = ""


class EventDoc(msgspec.Struct, frozen=True, kw_only=True):
    time: float
    member: str  # "*" for an alarm of the guard
    to_state: str
    from_state: str | None = None
    reason: str = ""


class Status(msgspec.Struct, frozen=True, kw_only=True):
    now: float  # the server's clock when the document was made
    version: str = ""
    zones: tuple[ZoneDoc, ...] = ()
    pools: tuple[PoolDoc, ...] = ()
    members: tuple[MemberDoc, ...] = ()
    suspect: SuspicionDoc | None = None  # set while the guard holds states
    last_reload: ReloadDoc | None = None
    events: tuple[EventDoc, ...] = ()  # the most recent, newest first
    problems: tuple[str, ...] = ()  # what an operator must know: state file, pools set aside
    secondary: tuple[SecondaryDoc, ...] = ()  # the secondary zones' refreshes


def decode_status(builtins: object) -> Status:
    """A status document from plain data (``msgspec.to_builtins`` of what the app gave).

    Raises ``msgspec.ValidationError`` naming the path of a bad field.
    """
    return msgspec.convert(builtins, Status)


# --- HTML --------------------------------------------------------------------

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.3em 0 1em;background:#fff}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}.muted{color:#777}.mono{font-family:monospace}
.state{font-weight:600;padding:0 .4em;border-radius:3px;color:#fff}
.up{background:#2e7d32}.down{background:#c62828}.unknown{background:#777}
.badge{padding:0 .4em;border-radius:3px;border:1px solid;font-size:.9em}
.drain{color:#e65100}.force-up{color:#1565c0}.held{color:#8d6e00}
.inanswer{font-weight:600}.banner{padding:.6em 1em;margin:.6em 0;border-radius:4px}
.suspect{background:#fff3cd;border:1px solid #e0b400}
.bad{background:#fdecea;border:1px solid #c62828}
#conn:empty{display:none}body.stale #live{opacity:.5}
""".strip()

_SCRIPT = (
    """
(function () {
  "use strict";
  var live = document.getElementById("live"), conn = document.getElementById("conn");
  function lost(why) {
    conn.textContent = "Cannot reach the server (" + why + "); showing the last status.";
    document.body.classList.add("stale");
  }
  function tick() {
    if (document.hidden) { return; }
    fetch("fragment", {cache: "no-store"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (text) {
      live.innerHTML = text;
      conn.textContent = "";
      document.body.classList.remove("stale");
    }).catch(function (err) { lost(err.message); });
  }
  setInterval(tick, REFRESH_MS);
})();
"""
    .replace("REFRESH_MS", str(REFRESH_MS))
    .strip()
)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = (
    f"default-src 'none'; script-src {_sha256(_SCRIPT)}; style-src {_sha256(_STYLE)}; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _utc(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _when(at: float | None, now: float) -> str:
    """A time as "3m ago" / "in 14m", the UTC time in its title; "-" for none."""
    if at is None:
        return '<span class="muted">-</span>'
    rel = f"in {_span(at - now)}" if at > now else f"{_span(now - at)} ago"
    iso = datetime.datetime.fromtimestamp(at, tz=datetime.UTC).isoformat()
    return f'<time datetime="{_e(iso)}" title="{_e(_utc(at))}">{_e(rel)}</time>'


def _state(state: str) -> str:
    css = state if state in ("up", "down") else "unknown"
    return f'<span class="state {css}">{_e(state)}</span>'


def _table(headers: tuple[str, ...], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _row(*cells: str) -> str:
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _override(o: OverrideDoc | None, now: float) -> str:
    if o is None:
        return ""
    css = "force-up" if o.kind == "force-up" else "drain"
    until = f" until {_when(o.until, now)}" if o.until is not None else " until removed"
    reason = f": {_e(o.reason)}" if o.reason else ""
    return f'<span class="badge {css}">{_e(o.kind)}</span>{until}{reason}'


def _check(m: MemberDoc, now: float) -> str:
    if m.checked is None:
        return '<span class="muted">not checked yet</span>'
    verdict = "pass" if m.ok else ("fail" if m.ok is not None else "?")
    latency = f", {m.latency * 1000:.1f} ms" if m.latency is not None else ""
    return f"{_e(verdict)} {_when(m.checked, now)}: {_e(m.result)}{_e(latency)}"


def _member_state(m: MemberDoc | None, now: float) -> tuple[str, str, str]:
    """(state cell, since cell, check cell) of one member, or of an unknown one."""
    if m is None:
        return _state("unknown"), _when(None, now), '<span class="muted">unknown member</span>'
    state = _state(m.effective)
    if m.real != m.effective:
        state += f' <span class="muted">(checks: {_e(m.real)})</span>'
    if m.held:
        state += ' <span class="badge held" title="held by the self-suspicion guard">held</span>'
    since = _when(m.since, now) + (f'<br><span class="muted">{_e(m.reason)}</span>'
                                   if m.reason else "")
    return state, since, _check(m, now)


def _pool(pool: PoolDoc, members: dict[str, MemberDoc], now: float) -> str:
    answer = ", ".join(pool.answer) or "NODATA"
    head = (
        f'<h3><span class="mono">{_e(pool.owner)} {_e(pool.type)}</span> '
        f'<span class="muted">policy {_e(pool.policy)}, monitor {_e(pool.monitor)}, '
        f"when all down: {_e(pool.when_all_down)}"
        + (f", ttl {pool.ttl}" if pool.ttl is not None else "")
        + "</span></h3>"
        f'<p>answers <span class="mono inanswer">{_e(answer)}</span>'
        + (f' <span class="muted">({_e(pool.reason)})</span>' if pool.reason else "")
        + "</p>"
    )
    rows = []
    for pm in pool.members:
        m = members.get(pm.member)
        state, since, check = _member_state(m, now)
        value = f'<span class="mono{" inanswer" if pm.value in pool.answer else ""}">' \
                f"{_e(pm.value)}</span>"
        rows.append(_row(
            f'<span class="mono">{_e(pm.member)}</span>', value,
            f"{pm.weight} / {pm.priority}", state, since, check,
            _override(m.override if m else None, now),
        ))
    headers = ("member", "answers", "weight / priority", "state", "since", "last check",
               "override")
    return head + _table(headers, rows, "no members")


def _zones(zones: tuple[ZoneDoc, ...], now: float) -> str:
    rows = [
        _row(
            f'<span class="mono">{_e(z.name)}</span>',
            _e(z.serial) if z.serial is not None else '<span class="muted">-</span>',
            _e(z.records) if z.records is not None else '<span class="muted">-</span>',
            f'<span class="mono">{_e(z.file)}</span>', _when(z.loaded_at, now),
            ("" if z.ok else '<span class="badge drain">failed</span> ') + _e(z.result),
        )
        for z in zones
    ]
    return _table(("zone", "serial", "records", "file", "loaded", "last load"), rows,
                  "no zones loaded")


def _secondary(zones: tuple[SecondaryDoc, ...], now: float) -> str:
    muted = '<span class="muted">-</span>'
    rows = [
        _row(
            f'<span class="mono">{_e(z.zone)}</span>',
            _e(z.serial) if z.serial is not None else muted,
            _when(z.last_refresh, now), _when(z.next_refresh, now),
            '<span class="badge drain">expired: SERVFAIL</span>' if z.expired
            else _when(z.expires_at, now),
            _e(", ".join(f"{k} {n}" for k, n in sorted(z.transfers.items()))
               + (f", held {z.held}" if z.held else "")),
            _e(z.last_error) if z.last_error else muted,
        )
        for z in zones
    ]
    return _table(("zone", "serial", "last refresh", "next refresh", "expires", "transfers",
                   "last error"), rows, "no secondary zones")


def _events(events: tuple[EventDoc, ...], now: float) -> str:
    rows = [
        _row(
            _when(e.time, now), f'<span class="mono">{_e(e.member)}</span>',
            (_state(e.from_state) if e.from_state else '<span class="muted">-</span>')
            + " &rarr; " + (_state(e.to_state) if e.to_state in ("up", "down")
                            else f'<span class="badge held">{_e(e.to_state)}</span>'),
            _e(e.reason),
        )
        for e in events
    ]
    return _table(("when", "member", "change", "reason"), rows, "no events yet")


def render_fragment(status: Status) -> str:
    """The live part of the page: banners, pools, events, zones (rule 2)."""
    now = status.now
    parts = [f'<p class="muted">status at {_e(_utc(now))}</p>']
    if status.suspect is not None:
        parts.append(
            f'<div class="banner suspect"><strong>Suspect</strong> since '
            f"{_when(status.suspect.since, now)}: the monitor suspects its own network and "
            f"holds member states. {_e(status.suspect.reason)}</div>"
        )
    if status.last_reload is not None and not status.last_reload.ok:
        parts.append(
            f'<div class="banner bad"><strong>Last reload refused</strong> '
            f"{_when(status.last_reload.at, now)}: {_e(status.last_reload.message)}</div>"
        )
    parts.extend(
        f'<div class="banner bad"><strong>Problem</strong>: {_e(problem)}</div>'
        for problem in status.problems
    )
    members = {m.member: m for m in status.members}
    parts.append("<h2>Pools</h2>")
    parts.extend(_pool(p, members, now) for p in status.pools)
    if not status.pools:
        parts.append('<p class="muted">no pools configured</p>')
    parts.append("<h2>Recent events</h2>" + _events(status.events, now))
    parts.append("<h2>Zones</h2>" + _zones(status.zones, now))
    if status.secondary:
        parts.append("<h2>Secondary zones</h2>" + _secondary(status.secondary, now))
    return "\n".join(parts)


def render_page(status: Status) -> str:
    """The whole page: head, style, the fragment in ``<main id="live">``, the script."""
    title = f"dnsserve {status.version}".strip()
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} status</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>{_e(title)}</h1>"
        '<div id="conn" class="banner bad" role="status"></div>\n'
        f'<main id="live">\n{render_fragment(status)}\n</main>\n'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
