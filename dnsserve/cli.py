"""The ``dnsserve`` command line (typer).

Owns argument parsing, exit codes and human/JSON output. It builds nothing
itself: ``app`` does. Errors the user can fix (a bad config key, a zone with a
syntax error) are printed as one line naming file, line or key, and exit 1.
``serve``, ``check``, ``demo`` and ``tsig-keygen`` are here; the commands that operate a
running server (``status``, ``query``, ``drain`` ...) are ``operate``'s, merged
into this app.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import dns.exception
import dns.name
import msgspec
import typer
import uvloop

from dnsserve import __version__, app, change, config_validate_ops, operate, preflight, watch
from dnsserve.demo import HELP, Backends
from dnsserve.errors import ConfigError, DnsServeError
from dnsserve.operate import ConfigOpt, load
from dnsserve.posture import output
from dnsserve.posture.findings import counts
from dnsserve.settings import load_settings, settings_as_written
from dnsserve.xfr import keys
from dnsserve.zones import dnskeys, online

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="dnsserve: an authoritative DNS server with health-based answers.",
)
cli.add_typer(operate.app)
cli.add_typer(change.app)

ZonesOpt = Annotated[
    Path | None, typer.Option("--zones", help="Directory of <origin>.zone files.")
]


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
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Processes that answer (default: one per CPU, at most 8)."),
    ] = None,
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
    settings = load(config, zones, listen, control, workers)
    # A reload reads the file again, with the same flags applied over it.
    reread = functools.partial(load_settings, settings.config_path, zones=zones, listen=listen,
                               control=control, workers=workers)
    try:
        app.serve(settings, read_settings=reread, allow_empty=allow_empty, force=force)
    except (OSError, ValueError, DnsServeError) as exc:
        typer.echo(f"dnsserve: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


class CheckFormat(enum.StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"


@cli.command()
def check(
    config: ConfigOpt = None,
    zones: ZonesOpt = None,
    fmt: Annotated[
        CheckFormat, typer.Option("--format", help="text (grouped by file), json or sarif")
    ] = CheckFormat.text,
    strict: Annotated[
        bool, typer.Option("--strict", help="Warnings count as errors (exit 1).")
    ] = False,
    against: Annotated[
        str | None,
        typer.Option("--against", metavar="REF",
                     help="Also list what changed since REF (a git revision of the zones "
                     "directory, or another directory) and flag what the reload guard refuses."),
    ] = None,
    resolve: Annotated[
        str | None,
        typer.Option("--resolve", metavar="ADDRESS:PORT",
                     help="Ask this resolver about CNAME targets in takeover-prone hosting "
                     "suffixes: NXDOMAIN is an error."),
    ] = None,
) -> None:
    """Load every zone (and the config) and run the posture rules; print each finding
    and each zone that would be served (serial, records); exit 1 on any error
    (with --strict, on any warning too)."""
    try:
        settings = load_settings(config, zones=zones)
        zones_dir = settings.zones_dir
        report = preflight.check(settings, against=against, resolve=resolve)
    except ConfigError as exc:  # every config error, and the zones' problems too
        if against is not None and str(exc).startswith("--against"):
            typer.echo(f"dnsserve: {exc}", err=True)
            raise typer.Exit(1) from None
        if resolve is not None and str(exc).startswith("--resolve"):
            typer.echo(f"dnsserve: {exc}", err=True)
            raise typer.Exit(1) from None
        # the bad keys are errors; the zones the file names are still checked
        written = settings_as_written(config)
        zones_dir = zones if zones is not None else written.zones_dir
        report = preflight.check_without_config(zones_dir, str(exc).splitlines(),
                                                written.file_rules)
    errors, warnings = counts(report.problems, strict=strict)
    if fmt is CheckFormat.json:
        typer.echo(msgspec.json.encode(output.to_json(report.problems)).decode())
    elif fmt is CheckFormat.sarif:
        typer.echo(msgspec.json.encode(output.to_sarif(report.problems, root=Path.cwd())).decode())
    else:
        for line in output.to_text(report.problems):
            typer.echo(line)
        for zone in report.zones:
            typer.echo(zone.to_text())
        if not errors:
            typer.echo(f"ok: {zones_dir} ({len(report.zones)} zone(s), {warnings} warning(s))")
        elif strict and not report.errors:
            typer.echo(f"failed (--strict): {zones_dir} ({warnings} warning(s))")
    raise typer.Exit(1 if errors else 0)


@cli.command("watch")
def watch_command(
    config: ConfigOpt = None,
    zones: ZonesOpt = None,
    server: Annotated[
        list[str] | None,
        typer.Option("--server",
                     help="ADDRESS:PORT to watch besides the config's watch.servers; repeat."),
    ] = None,
    interval: Annotated[
        float | None, typer.Option("--interval", help="Seconds between rounds (default 5).")
    ] = None,
    control: Annotated[
        str | None, typer.Option("--control", help="http://ADDRESS:PORT of our control API.")
    ] = None,
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="ADDRESS:PORT (loopback) of watch's /metrics.")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning")] = "info",
) -> None:
    """Ask every nameserver of every zone, on an interval, and report each deviation
    from the zone files and our pools once when it starts and once when it clears."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = load(config, zones)
    flags: dict[str, object] = {k: v for k, v in (("interval", interval), ("control", control),
                               ("metrics", metrics)) if v is not None}
    if server:
        flags["servers"] = (*settings.config.watch.servers, *server)
    try:
        cfg = msgspec.structs.replace(settings.config.watch, **flags)
        problems = config_validate_ops.check_watch(cfg, "command line")
        if problems:
            raise ConfigError("\n".join(problems))
        uvloop.run(watch.watch(settings, cfg))
    except (OSError, ValueError, DnsServeError) as exc:
        typer.echo(f"dnsserve: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


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
    settings = load(config, None, None)
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


@cli.command("tsig-keygen")
def tsig_keygen(
    name: Annotated[str, typer.Argument(help="The key's name (as secondaries will name it).")],
    algorithm: Annotated[
        str, typer.Option("--algorithm", "-a", help="hmac-sha256, hmac-sha384 or hmac-sha512.")
    ] = "hmac-sha256",
) -> None:
    """Print a new TSIG key in BIND's key syntax (as tsig-keygen writes it).

    Save it as a file for [\\[key]] key_file, or give it to Knot (keymgr) and NSD.
    """
    try:
        key = keys.generate(name, algorithm, secrets.token_bytes(64))
        keys.algorithm_name(algorithm)
        dns.name.from_text(name)
    except (keys.KeySyntaxError, ValueError, dns.exception.DNSException) as exc:
        typer.echo(f"tsig-keygen: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(keys.to_text(key), nl=False)


dnssec_app = typer.Typer(no_args_is_help=True, help="DNSSEC of zones dnsserve signs itself.")
cli.add_typer(dnssec_app, name="dnssec")


def _zone_name(zone: str) -> dns.name.Name:
    try:
        return dns.name.from_text(zone)
    except dns.exception.DNSException as exc:
        typer.echo(f"dnsserve: {zone}: {exc}", err=True)
        raise typer.Exit(1) from None


@cli.command("dnssec-keygen")
def dnssec_keygen(
    zone: Annotated[str, typer.Argument(help="The zone the keys sign (example.com.).")],
    algorithm: Annotated[
        str, typer.Option("--algorithm", "-a", help=" or ".join(online.ALGORITHMS) + ".")
    ] = online.DEFAULT_ALGORITHM,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to write them (default: keys/ZONE/).")
    ] = None,
) -> None:
    """Make a KSK and a ZSK for ZONE in BIND's key files (K<zone>.+<alg>.+<tag>.key and
    .private), for [\\[zone]] dnssec.keys; dnssec-signzone and dnssec-dsfromkey read them."""
    origin = _zone_name(zone)
    if algorithm not in online.ALGORITHMS:
        typer.echo(f"dnsserve: --algorithm {algorithm}: use "
                   f"{' or '.join(online.ALGORITHMS)}", err=True)
        raise typer.Exit(1)
    target = directory or Path("keys") / origin.to_text(omit_final_dot=True)
    for path in dnskeys.generate(origin, algorithm, target):
        typer.echo(str(path))


@dnssec_app.command("ds")
def dnssec_ds(
    zone: Annotated[str, typer.Argument(help="A zone with [\\[zone]] dnssec keys.")],
    config: ConfigOpt = None,
    keys_dir: Annotated[
        Path | None, typer.Option("--keys", help="The key directory (default: the config's).")
    ] = None,
) -> None:
    """Print the DS records (SHA-256) of ZONE's KSK, for the parent zone."""
    origin = _zone_name(zone)
    if keys_dir is None:
        signing = load(config).signing().get(origin)
        if signing is None:
            typer.echo(f"dnsserve: zone {origin} has no [[zone]] dnssec keys in the config "
                       "(or give --keys DIR)", err=True)
            raise typer.Exit(1)
        keys_dir = Path(signing.keys)
    try:
        found = dnskeys.read_keys(keys_dir, origin)
    except ConfigError as exc:
        typer.echo(f"dnsserve: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in online.ds_records(found, origin):
        typer.echo(line)


def main() -> None:
    cli(prog_name="dnsserve")
