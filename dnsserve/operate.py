"""The commands that look at running servers, on one node or a fleet: status, query, history.

Owns those commands' flags, their output (rich tables from ``report``, or
JSON: a list with one document per node, ``{"node": URL, "name": NAME, ...}``)
and exit codes (1 when any node failed; the others are still shown). Also
what every command shares: the options (``ConfigOpt``, ``NodeOpt``,
``Format``), ``load`` (the settings, or exit 1), ``targets``,
``resolve_member``, ``parse_duration`` and the reporting of a failed node;
``cli`` and ``change`` use them. Talks to servers only through ``client``
(via ``fleet``) and over DNS; the one exception, ``status --offline``, reads
the state file and says so. Must not: write the state file.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import msgspec
import typer
from rich.console import Console
from rich.text import Text

from dnsserve import fleet, report
from dnsserve.client import (
    Client,
    ControlClientError,
    Explanation,
    Node,
    Reply,
)
from dnsserve.config import member_ids, parse_hostport
from dnsserve.control_access import TOKEN_ENV
from dnsserve.errors import ConfigError, DnsServeError
from dnsserve.fleet import Outcome, Target
from dnsserve.health.model import MemberId
from dnsserve.settings import Settings, load_settings, settings_as_written
from dnsserve.statuspage import EventDoc, OverrideDoc
from dnsserve.store import ALARM_MEMBER, Store

app = typer.Typer()

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: ./dnsserve.toml if present)."),
]


class Format(enum.StrEnum):
    text = "text"
    json = "json"


def load(config: Path | None, zones: Path | None = None,
         listen: list[str] | None = None, control: str | None = None,
         workers: int | None = None) -> Settings:
    """The settings, or the config's errors on stderr and exit 1."""
    try:
        return load_settings(config, zones=zones, listen=listen, control=control,
                             workers=workers)
    except ConfigError as exc:
        typer.echo(f"dnsserve: {exc}", err=True)
        raise typer.Exit(1) from None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '2h', '1d' -> seconds."""
    value, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "s")
    try:
        seconds = float(value) * _UNITS[unit]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 15m, 2h or 1d") from None
    if not 0 < seconds < float("inf"):
        raise typer.BadParameter(f"{text!r}: a duration must be positive")
    return seconds


NodeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--node",
        help="A server's control API, http://ADDRESS:PORT, or the name of a node in the "
        "config; repeat for several. Default: every node of the config, else the local server.",
    ),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="text or json")]


def console(err: bool = False) -> Console:
    """Server text is never markup; lines are not wrapped (tables fit the width); colour
    only on a terminal (rich's rule, and NO_COLOR)."""
    return Console(stderr=err, markup=False, highlight=False, emoji=False, soft_wrap=True)


def load_for_live(config: Path | None) -> Settings:
    """The settings for a command that acts on running servers.

    A config with errors must not lock the operator out of a running server
    (halfway through an edit, a drain is what is needed): its errors are
    shown as a warning, and the server's address, state file and listen
    addresses are read from it as written (members then by MONITOR/ADDRESS).
    """
    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"dnsserve: warning: the config has errors (the server refuses a reload "
                   f"until they are fixed):\n  {str(exc).replace(chr(10), chr(10) + '  ')}",
                   err=True)
    return settings_as_written(config)


def targets(config: Path | None, nodes: list[str] | None) -> tuple[Settings, list[Target]]:
    settings = load_for_live(config)
    try:
        return settings, fleet.targets(settings, nodes or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--node") from None


def resolve_member(text: str, settings: Settings) -> MemberId:
    """MONITOR/ADDRESS, or a bare address when exactly one monitor checks it.

    With a config that has pools, the member must be one of theirs: a typo
    must not become an override that silently does nothing.
    """
    known = member_ids(settings.config)
    if "/" in text:
        try:
            member = MemberId.from_text(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if known and member not in known:
            listed = ", ".join(m.to_text() for m in known)
            typer.echo(f"dnsserve: {text}: in no pool of {settings.config_name} ({listed})",
                       err=True)
            raise typer.Exit(1)
        return member
    matches = [m for m in known if m.address == text]
    if len(matches) != 1:
        found = ", ".join(m.to_text() for m in matches) or "none in the config"
        raise typer.BadParameter(f"{text!r}: name the member as MONITOR/ADDRESS ({found})")
    return matches[0]


def prefix(node: Node, several: bool) -> str:
    return f"{node.label}: " if several else ""


_HINTS = {
    401: f"the server wants its control token: give --token-file, or set ${TOKEN_ENV}",
    403: f"this token is not the server's (the .token file beside its state file); give "
         f"--token-file, or set ${TOKEN_ENV}",
}


def report_error(
    outcome: Outcome[Any], several: bool, hint: str = "", hints: Mapping[int, str] | None = None
) -> None:
    """One failed node on stderr: the message, the server's detail, and what to do
    (``hints`` by HTTP status, else ``hint``)."""
    err = outcome.error
    assert err is not None
    out = console(err=True)
    out.print(Text(f"dnsserve: {prefix(outcome.node, several)}{err.message}"))
    for line in report.detail_lines(err.detail):
        out.print(Text(f"  {line}"))
    status = err.status or 0
    hint = (hints or {}).get(status) or _HINTS.get(status, hint)
    if hint:
        out.print(Text(f"  {hint}", style="dim"))


def exit_for(outcomes: Sequence[Outcome[Any]]) -> None:
    raise typer.Exit(1 if any(o.error is not None for o in outcomes) else 0)


def per_node(
    outcomes: Sequence[Outcome[Any]],
    fmt: Format,
    show: Callable[[Console, Any], None],
    *,
    hint: str = "",
) -> None:
    """A read command's output: the JSON list, or a section per node (its reply
    shown by ``show``, or its error with ``hint`` when no server answered); then
    exit 1 when any node failed."""
    if fmt is Format.json:
        json_docs(outcomes, lambda reply: dict(reply.raw))
        exit_for(outcomes)
    out = console()
    for o in outcomes:
        out.print(report.node_rule(o.node))
        if o.result is not None:
            show(out, o.result)
        else:
            unreachable = o.error is not None and o.error.status is None
            report_error(o, len(outcomes) > 1, hint=hint if unreachable else "")
    exit_for(outcomes)


def json_docs(outcomes: Sequence[Outcome[Any]], doc: Callable[[Any], dict[str, Any]]) -> None:
    """One JSON list, a document per node: ``{"node": URL, "name": NAME, ...}``."""
    docs = []
    for o in outcomes:
        head = {"node": o.node.url, "name": o.node.name}
        if o.error is not None:
            docs.append({**head, "error": o.error.message, "status": o.error.status,
                         "detail": o.error.detail})
        else:
            docs.append({**head, **doc(o.result)})
    typer.echo(msgspec.json.encode(docs).decode())


@app.command()
def status(
    config: ConfigOpt = None,
    nodes: NodeOpt = None,
    events: Annotated[int, typer.Option("--events", help="How many recent events.")] = 10,
    fmt: FormatOpt = Format.text,
    offline: Annotated[
        bool, typer.Option("--offline", help="Read the state file, not the running server.")
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="With --offline: the state file (default: the config's)."),
    ] = None,
) -> None:
    """Pools, members (state, since, last check, override) and events of each running server."""
    if offline:
        if nodes:
            raise typer.BadParameter("--offline reads this host's state file: no --node")
        _status_offline(config, state, events, fmt)
        return
    _, chosen = targets(config, nodes)

    def show(out: Console, reply: Any) -> None:
        problems = reply.raw.get("problems", []) if isinstance(reply.raw, dict) else []
        out.print(report.status_view(reply.doc, [str(p) for p in problems], events))

    per_node(fleet.run(chosen, lambda c, _: c.status()), fmt, show, hint=(
        "is `dnsserve serve` running there? `dnsserve status --offline` reads the state file"))


def _status_offline(config: Path | None, state: Path | None, events: int, fmt: Format) -> None:
    settings = load(config)
    path = state if state is not None else settings.state_path
    if not path.exists():
        typer.echo(f"dnsserve: {path}: no state file (start the server once, or check "
                   "--state / -c)", err=True)
        raise typer.Exit(1)
    try:
        with Store.open(path) as store:
            states = store.load_states()
            overrides = store.load_overrides(time.time())
            recent = store.events(limit=events)
            alarms = store.events(limit=1, member=ALARM_MEMBER)
    except DnsServeError as exc:
        typer.echo(f"dnsserve: {exc}", err=True)
        raise typer.Exit(1) from None
    suspect = bool(alarms) and alarms[0].to_state == "suspicion"
    if fmt is Format.json:
        doc = {
            "offline": True,
            "members": {
                m.to_text(): {
                    "state": h.state.value, "since": h.since, "reason": h.reason,
                    "override": overrides[m].kind.value if m in overrides else None,
                    "override_until": overrides[m].until if m in overrides else None,
                }
                for m, h in sorted(states.items())
            },
            "events": recent,
            "suspect": suspect,
        }
        typer.echo(msgspec.json.encode(doc).decode())
        return
    out = console()
    if suspect:
        out.print(Text(f"SUSPECT since {report.when(alarms[0].time)}: the monitor suspects its "
                       f"own network and holds member states ({alarms[0].reason})",
                       style="bold yellow"))
    rows = []
    for m in sorted(set(states) | set(overrides)):
        h, o = states.get(m), overrides.get(m)
        doc_o = OverrideDoc(kind=o.kind.value, reason=o.reason, until=o.until) if o else None
        rows.append((m.to_text(), h.state.value if h else "unseen", h.since if h else None,
                     h.reason if h else "", doc_o))
    out.print(report.offline_table(rows))
    if recent:
        docs = [EventDoc(time=e.time, member=e.member, to_state=e.to_state,
                         from_state=e.from_state, reason=e.reason) for e in recent]
        out.print(report.events_table(docs, None, title="recent events (state file)"))


@dataclass(frozen=True, slots=True)
class _Asked:
    """``query`` on one node: the DNS answer (or why none) and the API's explanation."""

    server: str
    msg: dns.message.Message | None
    dns_error: str
    reply: Reply[Explanation | None] | None
    api_error: ControlClientError | None


DNS_TIMEOUT = 3.0


def _ask_dns(where: tuple[str, int], qname: str, qtype: str) -> tuple[dns.message.Message | None,
                                                                        str]:
    query = dns.message.make_query(qname, qtype)
    query.flags &= ~dns.flags.RD  # an authoritative server: no recursion wanted
    try:
        msg, _ = dns.query.udp_with_fallback(query, where[0], port=where[1], timeout=DNS_TIMEOUT)
    except dns.exception.Timeout:
        return None, f"no DNS answer within {DNS_TIMEOUT:.0f} s"
    except (OSError, dns.exception.DNSException) as exc:
        return None, f"DNS query failed: {exc}"
    return msg, ""


@app.command()
def query(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The name to ask about.")],
    qtype: Annotated[str, typer.Argument(metavar="[TYPE]", help="A record type.")] = "A",
    config: ConfigOpt = None,
    nodes: NodeOpt = None,
    server: Annotated[
        str | None,
        typer.Option("--server", help="ADDR:PORT to ask over DNS (default: the node's dns in "
                     "the config, else the config's first listen address)."),
    ] = None,
    what_if_down: Annotated[
        list[str] | None,
        typer.Option("--what-if-down", help="Show the answer with this member down too "
                     "(nothing changes); repeat for several."),
    ] = None,
    fmt: FormatOpt = Format.text,
) -> None:
    """Ask each server over DNS and over its API: the answer, and why."""
    settings, chosen = targets(config, nodes)
    try:
        qname = dns.name.from_text(name).to_text()
        rdtype = dns.rdatatype.RdataType.make(qtype.upper()).name
    except (dns.exception.DNSException, ValueError) as exc:
        raise typer.BadParameter(f"{name} {qtype}: {exc}") from None
    down = [resolve_member(m, settings).to_text() for m in what_if_down or []]
    if server is not None:
        if len(chosen) > 1:
            raise typer.BadParameter("--server asks one server: name one --node with it")
        try:
            chosen = [replace(chosen[0], dns=parse_hostport(server))]
        except ValueError as exc:
            raise typer.BadParameter(f"{server!r}: {exc}", param_hint="--server") from None

    def ask(client: Client, target: Target) -> _Asked:
        where = target.dns or fleet.local_dns(settings)
        shown = f"[{where[0]}]:{where[1]}" if ":" in where[0] else f"{where[0]}:{where[1]}"
        msg, dns_error = _ask_dns(where, qname, rdtype)
        try:
            reply, api_error = client.answer(qname, rdtype, down), None
        except ControlClientError as exc:
            reply, api_error = None, exc
        return _Asked(shown, msg, dns_error, reply, api_error)

    outcomes = [
        o if o.result is None or o.result.api_error is None
        else Outcome(o.node, o.result, o.result.api_error)
        for o in fleet.run(chosen, ask)
    ]
    failed = any(o.error is not None or (o.result and o.result.msg is None) for o in outcomes)
    if fmt is Format.json:
        json_docs(outcomes, lambda a: {"dns": report.dns_doc(a.server, a.msg, a.dns_error),
                                        "explanation": a.reply.raw if a.reply else None})
        raise typer.Exit(1 if failed else 0)
    out = console()
    for o in outcomes:
        out.print(report.node_rule(o.node))
        if o.result is not None:
            out.print(report.dns_view(o.result.server, o.result.msg, o.result.dns_error))
            reply = o.result.reply
            if reply is not None and reply.doc is not None:
                out.print(report.explanation_view(reply.doc))
            elif reply is not None:
                out.print(Text("why (as the server sent it):", style="bold"))
                out.print(Text(msgspec.json.format(msgspec.json.encode(reply.raw)).decode()))
        if o.error is not None:
            report_error(o, len(outcomes) > 1)
    raise typer.Exit(1 if failed else 0)


@app.command()
def history(
    config: ConfigOpt = None,
    nodes: NodeOpt = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events of the last 90s, 15m, 1h, 2d.")
    ] = None,
    member: Annotated[
        str | None, typer.Option("--member", help="Only this member's: MONITOR/ADDRESS.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most this many, newest first.")
    ] = 100,
    fmt: FormatOpt = Format.text,
) -> None:
    """State changes, overrides and alarms of each server, newest first."""
    settings, chosen = targets(config, nodes)
    after = time.time() - parse_duration(since) if since else None
    who = resolve_member(member, settings).to_text() if member else None

    def show(out: Console, reply: Any) -> None:
        if not reply.doc:
            out.print(Text("no events", style="dim"))
        else:
            out.print(report.events_table(reply.doc, None))

    per_node(fleet.run(chosen, lambda c, _: c.events(after, who, limit)), fmt, show)
