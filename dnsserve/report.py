"""What the CLI's live commands print: rich tables of a node's status, an answer and why, events.

Owns the text form of the control API's documents: a table per pool with
its members (state in colour, since, last check, override), an answer's
explanation (zone, static or pool, policy, each member's state, reason and
override, the all-down rule, a what-if), events, a 409's or 422's detail,
and the state file's view for ``status --offline``. Functions of the
decoded documents: no I/O, no clock ("ago" counts from the server's ``now``),
no exit codes. Must not: fetch anything, or let a server's text restyle the
output: every such text goes into a ``rich.text.Text``, never parsed as
markup.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from typing import Any

import dns.flags
import dns.message
import dns.rcode
from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from dnsserve.client import Explanation, MemberWhy, Node, Selection
from dnsserve.statuspage import (
    EventDoc,
    MemberDoc,
    OverrideDoc,
    PoolDoc,
    SecondaryDoc,
    Status,
    ZoneDoc,
)
from dnsserve.zones.signed import EXPIRY_WARNING

STATE_STYLE = {"up": "bold green", "down": "bold red"}


def when(at: float | None) -> str:
    """A Unix time as UTC, to the second; "-" for none."""
    if at is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(at, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def span(seconds: float) -> str:
    """A duration, coarse: 42s, 5m, 3h05m, 2d."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d"


def ago(at: float | None, now: float | None) -> str:
    """"5m ago" (or "in 5m") from the server's ``now``; the UTC time when ``now`` is unknown."""
    if at is None:
        return "-"
    if now is None:
        return when(at)
    return f"{span(now - at)} ago" if now >= at else f"in {span(at - now)}"


def state_text(state: str) -> Text:
    return Text(state or "?", style=STATE_STYLE.get(state, "dim"))


def member_state(effective: str, real: str, held: bool = False) -> Text:
    """What answers use, in colour; what the checks say beside it when they differ."""
    text = state_text(effective)
    if real and real != effective:
        text.append(f" (checks: {real})", style="dim")
    if held:
        text.append(" held", style="yellow")
    return text


def override_text(o: OverrideDoc | None, now: float | None) -> Text:
    if o is None:
        return Text("")
    text = Text(o.kind, style="bold yellow" if o.kind == "drain" else "bold cyan")
    if o.until is not None:
        text.append(f" until {when(o.until)}")
        if now is not None:
            text.append(f" ({ago(o.until, now)})", style="dim")
    if o.reason:
        text.append(f": {o.reason}")
    return text


def detail_lines(detail: object) -> list[str]:
    """A server error's ``detail`` as lines, whatever its shape (text, list or mapping)."""
    if detail is None or detail == "" or detail == [] or detail == {}:
        return []
    if isinstance(detail, str):
        return detail.splitlines()
    if isinstance(detail, list | tuple):
        return [v if isinstance(v, str) else _compact(v) for v in detail]
    if isinstance(detail, dict):
        return [f"{k}: {_value(v)}" for k, v in detail.items()]
    return [_compact(detail)]


def _value(value: Any) -> str:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return ", ".join(value) if value else "(nothing)"
    return value if isinstance(value, str) else _compact(value)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def node_rule(node: Node) -> Rule:
    title = f"{node.name} ({node.url})" if node.name else node.url
    return Rule(Text(title, style="bold"), align="left")


# --- status --------------------------------------------------------------------


def status_view(status: Status, problems: Sequence[str] = (), events: int = 10) -> Group:
    """Banners, a table per pool, the zones and the most recent ``events``."""
    now = status.now
    parts: list[RenderableType] = []
    if status.suspect is not None:
        parts.append(Text(
            f"SUSPECT since {when(status.suspect.since)}: the monitor suspects its own network "
            f"and holds member states ({status.suspect.reason})", style="bold yellow"))
    reload = status.last_reload
    if reload is not None and not reload.ok:
        parts.append(Text(f"last reload refused {ago(reload.at, now)}: {reload.message}",
                          style="bold red"))
    parts.extend(Text(f"problem: {p}", style="bold red") for p in problems)
    members = {m.member: m for m in status.members}
    if not status.pools:
        parts.append(Text("no pools: every name is answered from its zone file"))
    parts.extend(_pool_table(pool, members, now) for pool in status.pools)
    if status.zones:
        parts.append(_zones_table(status.zones, now))
    if status.secondary:
        parts.append(_secondary_table(status.secondary, now))
    if events and status.events:
        parts.append(events_table(status.events[:events], now, title="recent events"))
    return Group(*parts)


def _titled(title: Text, table: Table, caption: Text | None = None) -> Group:
    """A table between its title and caption lines: they never wrap to the table's width."""
    return Group(title, table, *([caption] if caption is not None else []))


def _pool_table(pool: PoolDoc, members: dict[str, MemberDoc], now: float) -> Group:
    title = Text(f"{pool.owner} {pool.type}", style="bold")
    title.append(f"  policy {pool.policy}, when all down: {pool.when_all_down}")
    if pool.ttl is not None:
        title.append(f", ttl {pool.ttl}")
    caption = Text("answer: ")
    caption.append(", ".join(pool.answer) or "(nothing)", style="bold")
    if pool.reason:
        caption.append(f"  ({pool.reason})")
    table = Table()
    for column in ("member", "answers", "state", "since", "last check", "override"):
        table.add_column(column)
    for pm in pool.members:
        m = members.get(pm.member)
        if m is None:
            table.add_row(Text(pm.member), Text(pm.value), Text("unknown", style="dim"))
            continue
        table.add_row(
            Text(pm.member), Text(pm.value), member_state(m.effective, m.real, m.held),
            Text(ago(m.since, now)), _last_check(m, now), override_text(m.override, now),
        )
    return _titled(title, table, caption)


def _last_check(m: MemberDoc, now: float) -> Text:
    if m.checked is None:
        return Text("not yet", style="dim")
    text = Text(m.result or ("pass" if m.ok else "fail"),
                style="" if m.ok or m.ok is None else "red")
    if m.latency is not None:
        text.append(f", {m.latency * 1000:.0f} ms")
    text.append(f", {ago(m.checked, now)}", style="dim")
    return text


def _zones_table(zones: Iterable[ZoneDoc], now: float) -> Group:
    table = Table()
    zones = list(zones)
    signed = any(z.signatures_expire is not None for z in zones)
    for column in ("zone", "serial", "records", "loaded", "last load"):
        table.add_column(column)
    if signed:
        table.add_column("signatures expire")
    for z in zones:
        expiry = [] if not signed else [Text(
            "-" if z.signatures_expire is None else ago(z.signatures_expire, now),
            style="bold red" if z.signatures_expire is not None
            and z.signatures_expire - now < EXPIRY_WARNING else "")]
        table.add_row(
            Text(z.name), Text("-" if z.serial is None else str(z.serial)),
            Text("-" if z.records is None else str(z.records)), Text(ago(z.loaded_at, now)),
            Text(z.result or ("ok" if z.ok else "failed"), style="" if z.ok else "bold red"),
            *expiry,
        )
    return _titled(Text("zones", style="bold"), table)


def _secondary_table(zones: Iterable[SecondaryDoc], now: float) -> Group:
    table = Table()
    for column in ("secondary zone", "serial", "last refresh", "next refresh", "expires",
                   "transfers", "last error"):
        table.add_column(column)
    for z in zones:
        expiry = (Text("EXPIRED: SERVFAIL", style="bold red") if z.expired
                  else Text(ago(z.expires_at, now)))
        transfers = ", ".join(f"{kind} {n}" for kind, n in sorted(z.transfers.items()))
        if z.held:
            transfers += f", held {z.held}"
        table.add_row(
            Text(z.zone), Text("-" if z.serial is None else str(z.serial)),
            Text(ago(z.last_refresh, now)), Text(ago(z.next_refresh, now)), expiry,
            Text(transfers), Text(z.last_error or "-", style="bold red" if z.last_error else ""),
        )
    return _titled(Text("secondary zones", style="bold"), table)


def events_table(events: Iterable[EventDoc], now: float | None, title: str = "events") -> Group:
    table = Table()
    for column in ("time", "member", "change", "reason"):
        table.add_column(column)
    for e in events:
        change = Text(f"{e.from_state} -> " if e.from_state else "")
        change.append_text(state_text(e.to_state) if e.to_state in STATE_STYLE
                           else Text(e.to_state, style="yellow"))
        time_text = when(e.time) + (f" ({ago(e.time, now)})" if now is not None else "")
        table.add_row(Text(time_text), Text(e.member), change, Text(e.reason))
    return _titled(Text(title, style="bold"), table)


# --- an answer and why --------------------------------------------------------


def dns_view(server: str, msg: dns.message.Message | None, error: str = "") -> Group:
    """What the server said over DNS: rcode, flags, the answer (or authority) records."""
    head = Text(f"DNS @{server}: ", style="bold")
    if msg is None:
        head.append(error or "no answer", style="bold red")
        return Group(head)
    rcode = dns.rcode.to_text(msg.rcode())
    head.append(rcode, style="bold green" if msg.rcode() == dns.rcode.NOERROR else "bold red")
    head.append(f"  flags: {dns.flags.to_text(msg.flags)}")
    lines: list[RenderableType] = [head]
    section = msg.answer or msg.authority
    label = "" if msg.answer else "authority: "
    for rrset in section:
        lines.extend(Text(f"  {label}{line}") for line in rrset.to_text().splitlines())
    if not msg.answer and not msg.authority:
        lines.append(Text("  (no records)", style="dim"))
    return Group(*lines)


def dns_doc(server: str, msg: dns.message.Message | None, error: str = "") -> dict[str, Any]:
    """The same, for --format json."""
    if msg is None:
        return {"server": server, "error": error}
    return {
        "server": server,
        "rcode": dns.rcode.to_text(msg.rcode()),
        "flags": dns.flags.to_text(msg.flags),
        "answer": [line for r in msg.answer for line in r.to_text().splitlines()],
        "authority": [line for r in msg.authority for line in r.to_text().splitlines()],
    }


def explanation_view(expl: Explanation) -> Group:
    """Zone, static or pool, the selection with each member, and the what-if."""
    head = Text("why: ", style="bold")
    head.append(f"zone {expl.zone or '(none)'}, {expl.source or 'unknown source'}")
    head.append(f"; answer {expl.rcode}: " if expl.rcode != "" else "; answer: ")
    head.append(", ".join(expl.answer) or "(nothing)", style="bold")
    parts: list[RenderableType] = [head]
    if expl.pool is not None:
        parts.append(selection_table(expl.pool, "pool"))
    if expl.what_if_down is not None:
        parts.append(selection_table(expl.what_if_down, "what if down"))
    return Group(*parts)


def selection_table(sel: Selection, kind: str) -> Group:
    title = Text(f"{kind}: ", style="bold")
    if sel.down:
        title.append(", ".join(sel.down) + "  ", style="bold red")
    if sel.owner:
        title.append(f"{sel.owner} {sel.type}  ")
    title.append(f"policy {sel.policy or '?'}, when all down: {sel.when_all_down or '?'}")
    if sel.all_down_rule_applied:
        title.append(f" (applied: every member is down, so '{sel.when_all_down}' decides)",
                     style="bold yellow")
    caption = Text("selected: ")
    caption.append(", ".join(sel.answer) or "(nothing)", style="bold")
    if sel.reason:
        caption.append(f"  ({sel.reason})")
    table = Table()
    for column in ("member", "answers", "state", "reason", "override"):
        table.add_column(column)
    for m in sel.members:
        table.add_row(*_member_why(m))
    return _titled(title, table, caption)


def _member_why(m: MemberWhy) -> tuple[Text, ...]:
    return (Text(m.member), Text(m.value), member_state(m.effective, m.real), Text(m.reason),
            override_text(m.override, None))


# --- the state file, for status --offline ----------------------------------------------------


OFFLINE = "OFFLINE: from the state file, not the running server"


def offline_table(rows: Iterable[tuple[str, str, float | None, str, OverrideDoc | None]]) -> Group:
    """(member, state, since, reason, override) rows read from the state file."""
    table = Table()
    for column in ("member", "state", "since", "reason", "override"):
        table.add_column(column)
    for member, state, since, reason, override in rows:
        table.add_row(Text(member), state_text(state), Text(when(since)), Text(reason),
                      override_text(override, None))
    return _titled(Text(OFFLINE, style="bold yellow"), table)
