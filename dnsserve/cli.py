"""The ``dnsserve`` command line (typer).

Owns argument parsing, exit codes and human/JSON output. It builds nothing
itself: ``app`` does. Errors the user can fix (a bad config key, a zone with a
syntax error) are printed as one line naming file, line or key, and exit 1.
"""

from __future__ import annotations

import enum
import logging
import sys
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from dnsserve import __version__, app
from dnsserve.errors import ConfigError

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
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


def _settings(config: Path | None, zones: Path | None, listen: list[str] | None) -> app.Settings:
    try:
        return app.settings(config, zones=zones, listen=listen)
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
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning")] = "info",
) -> None:
    """Serve the zones over UDP and TCP until SIGTERM or Ctrl-C."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    s = _settings(config, zones, listen)
    try:
        app.serve(s)
    except (OSError, ValueError) as exc:
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
    s = _settings(config, zones, None)
    problems = app.check(s)
    errors = [p for p in problems if p.severity == "error"]
    if fmt is Format.json:
        typer.echo(msgspec.json.encode([p.to_dict() for p in problems]).decode())
    else:
        for problem in problems:
            typer.echo(problem.to_text())
        if not errors:
            typer.echo(f"ok: {s.zones_dir} ({len(problems)} warning(s))")
    raise typer.Exit(1 if errors else 0)


def main() -> None:
    cli(prog_name="dnsserve")
