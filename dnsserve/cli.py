"""The ``dnsserve`` command line (typer).

Owns argument parsing, exit codes and human/JSON output. It builds nothing
itself: ``app`` does. Errors the user can fix (a bad config key, a zone with a
syntax error) are printed as one line naming file, line or key, and exit 1.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from dnsserve import __version__, app, preflight
from dnsserve.config import member_ids
from dnsserve.demo import HELP, Backends
from dnsserve.errors import ConfigError, DnsServeError
from dnsserve.health.model import MemberId, Override, OverrideEntry
from dnsserve.settings import Settings, load_settings
from dnsserve.store import ALARM_MEMBER, Store

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="dnsserve: an authoritative DNS server with health-based answers.",
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: ./dnsserve.toml if present)."),
]
ZonesOpt = Annotated[
    Path | None, typer.Option("--zones", help="Directory of <origin>.zone files.")
]


class Format(enum.StrEnum):
    text = "text"
    json = "json"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dnsserve {__version__}")
        raise typer.Exit()


@cli.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """dnsserve: an authoritative DNS server with health-based answers."""


def _settings(
    config: Path | None, zones: Path | None, listen: list[str] | None, control: str | None = None
) -> Settings:
    try:
        return load_settings(config, zones=zones, listen=listen, control=control)
    except ConfigError as exc:
        typer.echo(f"dnsserve: {exc}", err=True)
        raise typer.Exit(1) from None


@cli.command()
def serve(
    config: ConfigOpt = None,
    zones: ZonesOpt = None,
    listen: Annotated[
        list[str] | None,
        typer.Option(
            "--listen", "-l", help="ADDR:PORT for UDP and TCP; repeat for more ([::1]:5300)."
        ),
    ] = None,
    control: Annotated[
        str | None,
        typer.Option("--control", help="ADDR:PORT of the control API ('' turns it off)."),
    ] = None,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Start even when no zone loads.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Accept zone files the deletion guard refuses at start."),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning")] = "info",
) -> None:
    """Serve the zones over UDP and TCP until SIGTERM or Ctrl-C.

    SIGHUP (or `dnsserve reload`) loads the zones and the config again.
    """
    # Until the loop installs its handler, a SIGHUP (a reload) must not kill us.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # One line per check would drown the log; flips and answer changes are logged.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    settings = _settings(config, zones, listen, control)
    # A reload reads the file again, with the same flags applied over it.
    path = settings.config_path
    reread = functools.partial(load_settings, path, zones=zones, listen=listen, control=control)
    try:
        app.serve(settings, read_settings=reread, allow_empty=allow_empty, force=force)
    except (OSError, ValueError, DnsServeError) as exc:
        typer.echo(f"dnsserve: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


@cli.command()
def check(
    config: ConfigOpt = None,
    zones: ZonesOpt = None,
    fmt: Annotated[Format, typer.Option("--format", help="text or json")] = Format.text,
) -> None:
    """Load every zone (and the config); print each problem; exit 1 on any error."""
    settings = _settings(config, zones, None)
    problems = preflight.check(settings)
    errors = [p for p in problems if p.severity == "error"]
    if fmt is Format.json:
        typer.echo(msgspec.json.encode([p.to_dict() for p in problems]).decode())
    else:
        for problem in problems:
            typer.echo(problem.to_text())
        if not errors:
            typer.echo(f"ok: {settings.zones_dir} ({len(problems)} warning(s))")
    raise typer.Exit(1 if errors else 0)


StateOpt = Annotated[
    Path | None,
    typer.Option("--state", help="State file (default: the config's [server] state)."),
]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '2h', '1d' -> seconds."""
    value, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "s")
    try:
        seconds = float(value) * _UNITS[unit]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 15m, 2h or 1d") from None
    if seconds <= 0:
        raise typer.BadParameter(f"{text!r}: a duration must be positive")
    return seconds


@contextlib.contextmanager
def _store(path: Path) -> Iterator[Store]:
    """The state file, with its errors as one line and exit 1."""
    try:
        with Store.open(path) as store:
            yield store
    except DnsServeError as exc:
        typer.echo(f"dnsserve: {exc}", err=True)
        raise typer.Exit(1) from None


def _state(config: Path | None, state: Path | None) -> tuple[Path, Settings]:
    """The state file to use; it must exist (the server creates it at its first start)."""
    settings = _settings(config, None, None)
    path = state if state is not None else settings.state_path
    if not path.exists():
        typer.echo(f"dnsserve: {path}: no state file (start the server once, or check "
                   "--state / -c)", err=True)
        raise typer.Exit(1)
    return path, settings


def _member(text: str, settings: Settings) -> MemberId:
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


def _set_override(
    kind: Override, member: str, config: Path | None, state: Path | None,
    duration: str | None, reason: str,
) -> None:
    path, settings = _state(config, state)
    who = _member(member, settings)
    now = time.time()
    until = now + parse_duration(duration) if duration else None
    with _store(path) as store:
        store.set_override(who, OverrideEntry(kind, until, reason), now)
    expiry = f" until {_when(until)}" if until else ""
    typer.echo(f"{who.to_text()}: {kind.value}{expiry} (in {path}; a running server "
               "applies it at its next start)")


DurationOpt = Annotated[
    str | None, typer.Option("--for", help="Expire after this long: 90s, 15m, 2h, 1d.")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why, shown in status.")]


@cli.command()
def drain(
    member: Annotated[str, typer.Argument(help="MONITOR/ADDRESS (or ADDRESS)")],
    config: ConfigOpt = None,
    state: StateOpt = None,
    duration: DurationOpt = None,
    reason: ReasonOpt = "",
) -> None:
    """Force a member down (out of every answer), optionally for a while."""
    _set_override(Override.DRAIN, member, config, state, duration, reason)


@cli.command("force-up")
def force_up(
    member: Annotated[str, typer.Argument(help="MONITOR/ADDRESS (or ADDRESS)")],
    config: ConfigOpt = None,
    state: StateOpt = None,
    duration: DurationOpt = None,
    reason: ReasonOpt = "",
) -> None:
    """Force a member up whatever its checks say, optionally for a while."""
    _set_override(Override.FORCE_UP, member, config, state, duration, reason)


@cli.command()
def undrain(
    member: Annotated[str, typer.Argument(help="MONITOR/ADDRESS (or ADDRESS)")],
    config: ConfigOpt = None,
    state: StateOpt = None,
) -> None:
    """Remove a member's override (drain or force-up): its checks decide again."""
    path, settings = _state(config, state)
    who = _member(member, settings)
    with _store(path) as store:
        removed = store.clear_override(who)
    typer.echo(f"{who.to_text()}: " + ("override removed" if removed else "had no override"))


@cli.command()
def status(
    config: ConfigOpt = None,
    state: StateOpt = None,
    events: Annotated[int, typer.Option("--events", help="How many recent events.")] = 10,
    fmt: Annotated[Format, typer.Option("--format", help="text or json")] = Format.text,
) -> None:
    """Members' states, overrides and recent events, from the state file."""
    path, _ = _state(config, state)
    with _store(path) as store:
        states = store.load_states()
        overrides = store.load_overrides(time.time())
        recent = store.events(limit=events)
        alarms = store.events(limit=1, member=ALARM_MEMBER)
    suspect = bool(alarms) and alarms[0].to_state == "suspicion"
    if fmt is Format.json:
        doc = {
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
    if suspect:
        typer.echo(f"SUSPECT since {_when(alarms[0].time)}: the monitor suspects its own "
                   f"network and holds member states ({alarms[0].reason})")
    for m in sorted(set(states) | set(overrides)):
        h = states.get(m)
        line = f"{m.to_text():32} {h.state.value if h else 'unseen':6}"
        if h:
            line += f" since {_when(h.since)}  {h.reason}"
        if m in overrides:
            o = overrides[m]
            line += f"  [{o.kind.value}{' until ' + _when(o.until) if o.until else ''}"
            line += f"{': ' + o.reason if o.reason else ''}]"
        typer.echo(line)
    if recent:
        typer.echo("recent events:")
    for e in recent:
        typer.echo(f"  {_when(e.time)} {e.member} {e.from_state or '-'} -> "
                   f"{e.to_state} {e.reason}")


@cli.command()
def demo(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Config whose pool uses the demo backends.")
    ] = Path("dnsserve.toml"),
) -> None:
    """Serve with three demo HTTP backends on 127.0.0.11-13:8080; stop one, watch it fail over."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = _settings(config, None, None)
    backends = Backends()
    try:
        backends.start_all()
    except OSError as exc:
        typer.echo(f"dnsserve: cannot start the demo backends: {exc}", err=True)
        raise typer.Exit(1) from None

    def console() -> None:
        typer.echo(HELP, err=True)
        for line in sys.stdin:
            reply = backends.command(line)
            if reply is None:
                break
            if reply:
                typer.echo(reply, err=True)
        os.kill(os.getpid(), signal.SIGINT)  # stdin closed or "quit": stop the server

    threading.Thread(target=console, daemon=True).start()
    try:
        app.serve(settings)
    except (OSError, ValueError, DnsServeError) as exc:
        typer.echo(f"dnsserve: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        backends.stop_all()


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.datetime.fromtimestamp(at, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def main() -> None:
    cli(prog_name="dnsserve")
