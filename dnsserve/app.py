"""The composition root: builds the concrete objects, wires them, swaps snapshots.

Owns the server's lifecycle: read the configuration, load zones, build the
first snapshot, bind the listeners, handle signals (SIGTERM/SIGINT stop,
SIGHUP reloads zones), and later the monitor thread and the state file.
Siblings never import each other; this module connects them with callbacks.

A reload never leaves a half-applied zone: every zone file is loaded and
compiled into a new snapshot first; a zone that fails keeps serving its last
good version, and the error is logged with file and line.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import msgspec
import uvloop

from dnsserve import net
from dnsserve.answer.engine import Engine
from dnsserve.answer.snapshot import Snapshot, build_snapshot
from dnsserve.config import Config, ServerConfig, load_config
from dnsserve.errors import ConfigError
from dnsserve.zones.compile import ZoneProblem
from dnsserve.zones.load import LoadedZones, check_zones, load_zones
from dnsserve.zones.table import ZoneTable

log = logging.getLogger("dnsserve")

DEFAULT_CONFIG = Path("dnsserve.toml")


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective settings: the config file (if any) with flags applied."""

    config: Config
    config_path: Path | None
    zones_dir: Path
    server: ServerConfig = field(default_factory=ServerConfig)


def settings(
    config_path: Path | None = None,
    *,
    zones: Path | None = None,
    listen: Sequence[str] | None = None,
) -> Settings:
    """Read the config (``-c``, else ./dnsserve.toml when present) and apply flags.

    Paths in the file are relative to the file's directory; flags to the cwd.
    """
    if config_path is None and DEFAULT_CONFIG.is_file():
        config_path = DEFAULT_CONFIG
    if config_path is not None:
        if not config_path.is_file():
            raise ConfigError(f"{config_path}: no such configuration file")
        config = load_config(config_path)
        base = config_path.resolve().parent
    else:
        config = Config()
        base = Path.cwd()
    server = config.server
    if listen:
        server = msgspec.structs.replace(server, listen=tuple(listen))
    zones_dir = zones if zones is not None else base / server.zones
    return Settings(config, config_path, zones_dir, server)


def snapshot_from(
    tables: Mapping[dns.name.Name, ZoneTable], server: ServerConfig, generation: int = 0
) -> Snapshot:
    return build_snapshot(
        tables, version=server.version, identity=server.identity, generation=generation
    )


def build_engine(zones_dir: Path, server: ServerConfig | None = None) -> Engine:
    """An engine over the zones in ``zones_dir``, with no sockets (tests, benchmarks)."""
    loaded = load_zones(zones_dir)
    return Engine(snapshot_from(loaded.tables, server or ServerConfig()))


def check(s: Settings) -> list[ZoneProblem]:
    """Every problem in the zones (errors and warnings), for ``dnsserve check``."""
    return check_zones(s.zones_dir)


class Server:
    """One running server: engine, listeners and the reload path."""

    def __init__(self, s: Settings) -> None:
        self.settings = s
        self.loaded: LoadedZones | None = None
        self.engine: Engine | None = None
        self.servers: net.Servers | None = None
        self._stop = asyncio.Event()
        self._generation = 0

    def load(self) -> None:
        loaded = load_zones(self.settings.zones_dir)
        tables = dict(loaded.tables)
        if self.loaded is not None:
            # A zone that fails to reload keeps its last good version.
            for origin, table in self.loaded.tables.items():
                if origin not in tables and origin in _failed(loaded):
                    log.error("zone %s failed to reload; still serving the last good version",
                              origin)
                    tables[origin] = table
        self._generation += 1
        snapshot = snapshot_from(tables, self.settings.server, self._generation)
        self.loaded = LoadedZones(tables, loaded.problems, loaded.files)
        if self.engine is None:
            self.engine = Engine(snapshot)
        else:
            self.engine.swap(snapshot)
        log.info("serving %d zone(s) from %s (generation %d)",
                 len(tables), self.settings.zones_dir, self._generation)

    def reload(self) -> None:
        try:
            self.load()
        except Exception:
            log.exception("reload failed; still serving the previous snapshot")

    async def run(self) -> None:
        self.load()
        assert self.engine is not None
        server = self.settings.server
        self.servers = await net.serve(
            self.engine,
            server.listen,
            tcp_idle_timeout=server.tcp_idle_timeout,
            tcp_max_connections=server.tcp_max_connections,
        )
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        try:
            await self._stop.wait()
        finally:
            log.info("stopping")
            self.servers.close()
            await self.servers.wait_closed()


def _failed(loaded: LoadedZones) -> set[dns.name.Name]:
    """Origins whose file had an error this time."""
    out: set[dns.name.Name] = set()
    for problem in loaded.problems:
        if problem.severity == "error" and problem.zone:
            try:
                out.add(dns.name.from_text(problem.zone))
            except dns.exception.DNSException:
                continue
    return out


def serve(s: Settings) -> None:
    """Run the server until SIGTERM or SIGINT."""
    uvloop.run(Server(s).run())
