"""The composition root: builds the concrete objects, wires them, swaps snapshots.

Owns the server's lifecycle: read the configuration, load zones, build the
first snapshot, bind the listeners, start the monitor thread, handle signals
(SIGTERM/SIGINT stop, SIGHUP reloads zones and overrides). Siblings never
import each other; this module connects them with callbacks:

    monitor thread --on_result--> store (in that thread, off the query path)
                   --call_soon_threadsafe--> main loop: new HealthView,
                   pools re-selected, snapshot.with_selections, engine.swap

Overrides (drain, force-up) live in the state file; the main loop re-reads
them every OVERRIDE_POLL seconds (never per query) and on SIGHUP.

A reload never leaves a half-applied zone: every zone file is loaded and
compiled into a new snapshot first; a zone that fails keeps serving its last
good version, and the error is logged with file and line.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import msgspec
import uvloop

from dnsserve import net
from dnsserve.answer.engine import Engine
from dnsserve.answer.policies import Pool, Selection, select
from dnsserve.answer.snapshot import PoolKey, build_snapshot, find_zone
from dnsserve.config import (
    Config,
    MonitorConfig,
    ServerConfig,
    check_pools_against_zones,
    config_warnings,
    load_config,
    member_id,
    pools_from_config,
)
from dnsserve.errors import ConfigError, DnsServeError
from dnsserve.health.guard import Suspicion
from dnsserve.health.model import HealthView, MemberHealth, MemberId, OverrideEntry, State
from dnsserve.health.monitor import Monitor, Target
from dnsserve.health.probes import CheckSpec, Kind, ProbeResult
from dnsserve.store import Store
from dnsserve.zones.compile import ZoneProblem
from dnsserve.zones.load import LoadedZones, load_zones
from dnsserve.zones.table import ZoneTable

log = logging.getLogger("dnsserve")

DEFAULT_CONFIG = Path("dnsserve.toml")
OVERRIDE_POLL = 1.0  # seconds between reads of the overrides in the state file


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective settings: the config file (if any) with flags applied."""

    config: Config
    config_path: Path | None
    zones_dir: Path
    server: ServerConfig = field(default_factory=ServerConfig)
    state_path: Path = Path("dnsserve.db")

    @property
    def config_name(self) -> str:
        return str(self.config_path) if self.config_path is not None else "<no config>"


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
    return Settings(config, config_path, zones_dir, server, base / server.state)


def check_spec(monitor: MonitorConfig) -> CheckSpec:
    """A monitor's config as the probe's parameters."""
    command = monitor.command if monitor.command is not None else ()
    return CheckSpec(
        kind=Kind(monitor.kind),
        port=monitor.probe_port or 0,
        path=monitor.path,
        host=monitor.host or "",
        expect_status=tuple(monitor.expect_status),
        expect_body=monitor.expect_body or "",
        timeout=monitor.timeout,
        query_name=monitor.query_name or "",
        query_type=dns.rdatatype.RdataType.make(monitor.query_type),
        expect_rcode=dns.rcode.Rcode.make(monitor.expect_rcode),
        expect_answer=monitor.expect_answer,
        command=command,
        tls_verify=monitor.tls_verify,
        ca_file=monitor.ca_file or "",
    )


def targets(config: Config, pools: Sequence[Pool]) -> list[Target]:
    """One target per member (monitor, probe address), shared by every pool."""
    monitors = {m.name: m for m in config.monitor}
    out: dict[MemberId, Target] = {}
    for pool in pools:
        for pm in pool.members:
            m = monitors[pm.member.monitor]
            out.setdefault(
                pm.member, Target(pm.member, check_spec(m), m.interval, m.rise, m.fall)
            )
    return list(out.values())


def member_ids(config: Config) -> list[MemberId]:
    """Every member the config's pools name (for the CLI to resolve a bare address)."""
    return sorted({member_id(pool, m) for pool in config.pool for m in pool.members})


def pool_names(pools: Sequence[Pool]) -> dict[MemberId, set[str]]:
    """Which pools each member serves (for the self-suspicion guard)."""
    out: dict[MemberId, set[str]] = {}
    for pool in pools:
        name = f"{pool.owner}/{dns.rdatatype.to_text(pool.rdtype)}"
        for pm in pool.members:
            out.setdefault(pm.member, set()).add(name)
    return out


def select_all(
    pools: Sequence[Pool],
    view: HealthView,
    now: float,
    previous: Mapping[PoolKey, Selection],
) -> dict[PoolKey, Selection]:
    return {
        (p.owner, p.rdtype): select(p, view, now, previous.get((p.owner, p.rdtype)))
        for p in pools
    }


def build_engine(zones_dir: Path, server: ServerConfig | None = None) -> Engine:
    """An engine over the zones in ``zones_dir``, with no sockets (tests, benchmarks)."""
    loaded = load_zones(zones_dir)
    server = server or ServerConfig()
    return Engine(
        build_snapshot(loaded.tables, version=server.version, identity=server.identity)
    )


@dataclass(frozen=True, slots=True)
class Problem:
    """A config problem in the shape of a zone problem, for ``dnsserve check``."""

    text: str
    severity: str

    def to_text(self) -> str:
        return self.text if self.severity == "error" else f"warning: {self.text}"

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "message": self.text}


def check(s: Settings) -> list[ZoneProblem | Problem]:
    """Every problem in the zones and the config (errors and warnings)."""
    loaded = load_zones(s.zones_dir, log_problems=False)
    problems: list[ZoneProblem | Problem] = list(loaded.problems)
    if s.config.pool:
        origins = loaded.tables.keys()
        errors = check_pools_against_zones(s.config, origins, file=s.config_name)
        problems += [Problem(e, "error") for e in errors]
        if not errors:
            pools = pools_from_config(s.config, origins)
            problems += [Problem(w, "warning") for w in static_mismatches(pools, loaded.tables)]
    problems += [Problem(w, "warning") for w in config_warnings(s.config, file=s.config_name)]
    return problems


def static_mismatches(
    pools: Sequence[Pool], tables: Mapping[dns.name.Name, ZoneTable]
) -> list[str]:
    """Where a zone's static records and a pool's members disagree.

    A secondary (or any other server) serves the static set from the zone
    file; when it differs from the pool, the two answer differently.
    """
    out = []
    for pool in pools:
        table = find_zone(tables, pool.owner, pool.rdtype)
        rrset = table.rrset(pool.owner, pool.rdtype) if table is not None else None
        static = {rd.to_text().lower() for rd in rrset} if rrset is not None else set()
        members = {pm.value.lower() for pm in pool.members}
        what = f"{pool.owner} {dns.rdatatype.to_text(pool.rdtype)}"
        if not static:
            out.append(f"{what}: the zone has no static records for this pool; "
                       "a secondary serving the zone file answers NODATA")
        elif static != members:
            out.append(f"{what}: the zone's static records ({', '.join(sorted(static))}) differ "
                       f"from the pool's members ({', '.join(sorted(members))})")
    return out


class Server:
    """One running server: engine, listeners, monitor, store and the reload path."""

    def __init__(self, s: Settings) -> None:
        self.settings = s
        self.loaded: LoadedZones | None = None
        self.engine: Engine | None = None
        self.servers: net.Servers | None = None
        self.pools: tuple[Pool, ...] = ()
        self.store: Store | None = None
        self.monitor: Monitor | None = None
        self.view = HealthView()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._generation = 0
        self._persisted: dict[MemberId, MemberHealth] = {}  # monitor thread only

    # -- zones and snapshots (main loop) -------------------------------------

    def load(self) -> None:
        loaded = load_zones(self.settings.zones_dir)
        tables = dict(loaded.tables)
        if self.loaded is not None:
            # A reload never silently deletes what we serve: a zone that fails
            # to load, or whose file is gone, keeps its last good version
            # (a restart drops a removed zone on purpose).
            failed = _failed(loaded)
            for origin, table in self.loaded.tables.items():
                if origin not in tables:
                    why = "failed to reload" if origin in failed else "lost its zone file"
                    log.error("zone %s %s; still serving the last good version", origin, why)
                    tables[origin] = table
        if self.settings.config.pool:
            errors = check_pools_against_zones(
                self.settings.config, tables.keys(), file=self.settings.config_name
            )
            if errors:
                raise ConfigError("\n".join(errors))
            self.pools = pools_from_config(self.settings.config, tables.keys())
        self._generation += 1
        previous = self.engine.snapshot.selections if self.engine is not None else {}
        server = self.settings.server
        snapshot = build_snapshot(
            tables,
            selections=select_all(self.pools, self.view, time.time(), previous),
            version=server.version,
            identity=server.identity,
            generation=self._generation,
            health=self.view,
        )
        self.loaded = LoadedZones(tables, loaded.problems, loaded.files)
        if self.engine is None:
            self.engine = Engine(snapshot)
        else:
            self.engine.swap(snapshot)
        log.info(
            "serving %d zone(s) from %s with %d pool(s) (generation %d)",
            len(tables), self.settings.zones_dir, len(self.pools), self._generation,
        )

    def reselect(self, reason: str) -> None:
        """Re-run every pool's policy on the current view; swap if any answer changed."""
        assert self.engine is not None
        current = self.engine.snapshot
        fresh = select_all(self.pools, self.view, time.time(), current.selections)
        changed = {k: v for k, v in fresh.items() if current.selections.get(k) != v}
        if not changed:
            return  # the prebuilt answers stay; nothing to swap
        self._generation += 1
        self.engine.swap(
            current.with_selections(changed, health=self.view, generation=self._generation)
        )
        for (owner, rdtype), selection in changed.items():
            log.info(
                "%s %s now answers %s (%s; %s)",
                owner, dns.rdatatype.to_text(rdtype),
                ", ".join(sorted(selection.values())) or "NODATA", selection.reason, reason,
            )

    def reload(self) -> None:
        try:
            self.load()
            self.poll_overrides()
        except Exception:
            log.exception("reload failed; still serving the previous snapshot")

    # -- health (monitor thread -> main loop) --------------------------------

    def on_result(
        self, member: MemberId, result: ProbeResult, health: MemberHealth, flipped: bool, at: float
    ) -> None:
        """Monitor thread: persist, then hand a flip to the main loop.

        A check that does not flip changes no answer, so only flips cross to
        the main loop. A failing state file is logged and never stops a flip
        from reaching the answers.
        """
        assert self.store is not None and self._loop is not None
        before = self._persisted.get(member)
        try:
            if flipped:
                self.store.record_transition(
                    member, before.state if before else None, health.state, health.reason, at,
                    health,
                )
            elif before is None or not result.ok or before.failures or before.state is State.DOWN:
                # First sight, or counters moving toward (or away from) a flip;
                # a steady member writes nothing.
                self.store.save_state(member, health)
        except DnsServeError:
            log.exception("state file: cannot record %s", member.to_text())
        self._persisted[member] = health
        if flipped:
            self._loop.call_soon_threadsafe(self._apply_health, member, health)

    def on_suspicion(self, event: Suspicion) -> None:
        """Monitor thread: record the alarm (and every restored member), then show it."""
        assert self.store is not None and self._loop is not None
        kind = "suspicion" if event.suspect else "suspicion-cleared"
        try:
            self.store.record_alarm(kind, event.reason, event.at)
            for member, health in event.restored.items():
                before = self._persisted.get(member)
                self.store.record_transition(
                    member, before.state if before else None, health.state, "suspicion",
                    event.at, health,
                )
                self._persisted[member] = health
        except DnsServeError:
            log.exception("state file: cannot record the %s alarm", kind)
        self._loop.call_soon_threadsafe(self._apply_suspicion, event)

    def _apply_health(self, member: MemberId, health: MemberHealth) -> None:
        members = dict(self.view.members)
        members[member] = health
        self.view = replace(self.view, members=MappingProxyType(members))
        self.reselect(f"{member.to_text()} {health.state.value}: {health.reason}")

    def _apply_suspicion(self, event: Suspicion) -> None:
        members = {**self.view.members, **event.restored}
        self.view = replace(
            self.view, members=MappingProxyType(members), suspect=event.suspect
        )
        self.reselect("suspicion " + ("entered" if event.suspect else "cleared"))

    def poll_overrides(self) -> None:
        """Main loop: take drains and force-ups from the state file (not per query)."""
        if self.store is None:
            return
        overrides = self.store.load_overrides(time.time())
        if overrides != dict(self.view.overrides):
            if self.monitor is not None and set(overrides) - set(self.view.overrides):
                self.monitor.clear_suspicion()  # an operator forced states
            self.view = replace(self.view, overrides=MappingProxyType(overrides))
        self.reselect("overrides")  # also applies expiries

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(OVERRIDE_POLL)
            try:
                self.poll_overrides()
            except Exception:
                log.exception("reading overrides failed")

    # -- lifecycle ------------------------------------------------------------

    def _start_health(self) -> None:
        self.store = Store.open(self.settings.state_path)
        states = self.store.load_states()
        self._persisted = dict(states)
        overrides: dict[MemberId, OverrideEntry] = self.store.load_overrides(time.time())
        self.view = HealthView(
            members=MappingProxyType(states), overrides=MappingProxyType(overrides)
        )

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.settings.config.pool:
            self._start_health()
        self.load()
        assert self.engine is not None
        server = self.settings.server
        self.servers = await net.serve(
            self.engine,
            server.listen,
            tcp_idle_timeout=server.tcp_idle_timeout,
            tcp_max_connections=server.tcp_max_connections,
        )
        poller = None
        if self.pools:
            self.monitor = Monitor(
                targets(self.settings.config, self.pools),
                dict(self.view.members),
                self.on_result,
                pools=pool_names(self.pools),
                suspect_fraction=server.suspect_fraction,
                on_suspicion=self.on_suspicion,
            )
            self.monitor.start()
            poller = asyncio.ensure_future(self._poll_forever())
        loop = self._loop
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        try:
            await self._stop.wait()
        finally:
            log.info("stopping")
            if poller is not None:
                poller.cancel()
            if self.monitor is not None:
                self.monitor.stop()
            self.servers.close()
            await self.servers.wait_closed()
            if self.store is not None:
                self.store.close()


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
