"""The commands that change a running server: drain, force-up, undrain and reload.

Owns those commands' flags and output; each acts on every node ``fleet``
chooses, with the node's bearer token, and reports each node apart (exit 1
when any failed or refused). A drain the server refuses (409: it would leave
a pool with no member up) changes nothing unless ``--yes``, which shows the
refusal and sends it again with ``force``. Must not: write the state file:
every change goes through the control API.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from dnsserve import fleet, report
from dnsserve.client import Client, ControlClientError, OverrideResult, Reply
from dnsserve.control_access import TOKEN_ENV
from dnsserve.fleet import Target
from dnsserve.operate import (
    ConfigOpt,
    NodeOpt,
    console,
    exit_for,
    parse_duration,
    prefix,
    report_error,
    resolve_member,
    targets,
)

app = typer.Typer()

MemberArg = Annotated[str, typer.Argument(metavar="MEMBER", help="MONITOR/ADDRESS (or ADDRESS)")]

TokenFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help=f"The control token's file (default: ${TOKEN_ENV}, else the file beside the "
        "state file).",
    ),
]

DurationOpt = Annotated[
    str | None, typer.Option("--for", help="Expire after this long: 90s, 15m, 2h, 1d.")
]

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why: shown in status and events.")]


def _override(
    kind: str, member: str, config: Path | None, nodes: list[str] | None,
    token_file: Path | None, duration: str | None, reason: str, yes: bool,
) -> None:
    settings, chosen = targets(config, nodes)
    who = resolve_member(member, settings).to_text()
    seconds = parse_duration(duration) if duration else None

    def act(client: Client, _: Target) -> tuple[Reply[OverrideResult], ControlClientError | None]:
        if kind == "force-up":
            return client.force_up(who, duration=seconds, reason=reason), None
        try:
            return client.drain(who, duration=seconds, reason=reason), None
        except ControlClientError as exc:
            if exc.status != 409 or not yes:
                raise
            return client.drain(who, duration=seconds, reason=reason, force=True), exc

    outcomes = fleet.run(chosen, act, token_flag=token_file, state_path=settings.state_path)
    several = len(outcomes) > 1
    out = console()
    for o in outcomes:
        if o.result is None:
            report_error(o, several, hints={409: "nothing changed there; add --yes to drain "
                                                  "anyway"})
            continue
        reply, warning = o.result
        if warning is not None:
            out.print(Text(f"{prefix(o.node, several)}warning: {warning.message}",
                           style="bold yellow"))
            for detail in report.detail_lines(warning.detail):
                out.print(Text(f"  {detail}", style="yellow"))
        line = Text(f"{prefix(o.node, several)}{reply.doc.member or who}: ")
        line.append_text(report.override_text(reply.doc.override, None) if reply.doc.override
                         else Text(kind))
        if reply.doc.effective:
            line.append(" (now ")
            line.append_text(report.state_text(reply.doc.effective))
            line.append(")")
        out.print(line)
    exit_for(outcomes)


YesOpt = Annotated[
    bool, typer.Option("--yes", help="Drain even when a pool is left with no member up.")
]


def _override_command(kind: str, doc: str) -> Callable[..., None]:
    """``drain`` and ``force-up``: one command each, the same options."""

    def command(
        member: MemberArg,
        config: ConfigOpt = None,
        nodes: NodeOpt = None,
        token_file: TokenFileOpt = None,
        duration: DurationOpt = None,
        reason: ReasonOpt = "",
        yes: YesOpt = False,
    ) -> None:
        _override(kind, member, config, nodes, token_file, duration, reason, yes)

    command.__doc__ = doc
    return command


drain = app.command("drain")(_override_command(
    "drain", "Force a member down (out of every answer) on each server, optionally for a while."
))
force_up = app.command("force-up")(_override_command(
    "force-up", "Force a member up whatever its checks say, on each server, optionally for a "
    "while. (--yes is accepted and changes nothing: a force-up never empties a pool.)"
))


@app.command()
def undrain(
    member: MemberArg,
    config: ConfigOpt = None,
    nodes: NodeOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Remove a member's override (drain or force-up) on each server: its checks decide again."""
    settings, chosen = targets(config, nodes)
    who = resolve_member(member, settings).to_text()
    outcomes = fleet.run(chosen, lambda c, _: c.undrain(who), token_flag=token_file,
                         state_path=settings.state_path)
    several = len(outcomes) > 1
    for o in outcomes:
        if o.result is None:
            report_error(o, several)
            continue
        done = "override removed" if o.result.doc.removed is not False else "had no override"
        typer.echo(f"{prefix(o.node, several)}{who}: {done}")
    exit_for(outcomes)


@app.command()
def reload(
    config: ConfigOpt = None,
    nodes: NodeOpt = None,
    token_file: TokenFileOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Apply, once, a reload the deletion guard refuses.")
    ] = False,
) -> None:
    """Load zones and config again on each server; refused (exit 1) on errors unless --force."""
    settings, chosen = targets(config, nodes)
    outcomes = fleet.run(chosen, lambda c, _: c.reload(force=force), token_flag=token_file,
                         state_path=settings.state_path)
    several = len(outcomes) > 1
    for o in outcomes:
        if o.result is None:
            report_error(o, several, hints={422: "the old versions still serve; --force "
                                                  "overrides the deletion guard once"})
            continue
        typer.echo(f"{prefix(o.node, several)}reload: ok")
        for line in report.detail_lines(o.result.doc):
            typer.echo(f"  {line}")
    exit_for(outcomes)


@app.command()
def refresh(
    zone: Annotated[str, typer.Argument(metavar="ZONE", help="A secondary zone.")],
    config: ConfigOpt = None,
    nodes: NodeOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Refresh a secondary zone on each server now, as a NOTIFY would (status shows how it went)."""
    settings, chosen = targets(config, nodes)
    outcomes = fleet.run(chosen, lambda c, _: c.refresh(zone), token_flag=token_file,
                         state_path=settings.state_path)
    several = len(outcomes) > 1
    for o in outcomes:
        if o.result is None:
            report_error(o, several)
            continue
        typer.echo(f"{prefix(o.node, several)}refresh of {zone}: started")
    exit_for(outcomes)
