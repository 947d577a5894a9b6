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
from dnsserve.answer.snapshot import PoolKey, Snapshot, build_snapshot, find_zone
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
from dnsserve.errors import ConfigError
from dnsserve.health.guard import Suspicion
from dnsserve.health.model import HealthView, MemberHealth, MemberId, OverrideEntry, State
from dnsserve.health.monitor import Monitor, Target
from dnsserve.health.probes import CheckSpec, ProbeResult
from dnsserve.store import Store, Writer
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
        kind=monitor.kind,
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
    """One running server: engine, listeners, monitor, store and the reload path.

    Threads: the main loop owns ``view``, the engine and every swap; the
    monitor thread calls ``on_result``/``on_suspicion``, which only hand work
    on (to the loop, and to the state-file writer thread). Zone loading on
    SIGHUP and state-file reads run in worker threads, so neither a large
    zone nor a locked state file stalls answers.
    """

    def __init__(self, s: Settings) -> None:
        self.settings = s
        self.loaded: LoadedZones | None = None
        self.engine: Engine | None = None
        self.servers: net.Servers | None = None
        self.pools: tuple[Pool, ...] = ()
        self.store: Store | None = None
        self.writer: Writer | None = None
        self.monitor: Monitor | None = None
        self.view = HealthView()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._generation = 0
        self._persisted: dict[MemberId, MemberHealth] = {}  # monitor thread only
        self._reloading: asyncio.Future[None] | None = None
        self._state_id: tuple[int, int] | None = None

    # -- zones and snapshots --------------------------------------------------

    def _prepare(self) -> tuple[LoadedZones, tuple[Pool, ...], Snapshot]:
        """Load every zone and build a whole new snapshot (any thread; swaps nothing)."""
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
        pools = self.pools
        if self.settings.config.pool:
            errors = check_pools_against_zones(
                self.settings.config, tables.keys(), file=self.settings.config_name
            )
            if errors:
                raise ConfigError("\n".join(errors))
            pools = pools_from_config(self.settings.config, tables.keys())
        previous = self.engine.snapshot.selections if self.engine is not None else {}
        server = self.settings.server
        snapshot = build_snapshot(
            tables,
            selections=select_all(pools, self.view, time.time(), previous),
            version=server.version,
            identity=server.identity,
            health=self.view,
        )
        return LoadedZones(tables, loaded.problems, loaded.files), pools, snapshot

    def _commit(self, loaded: LoadedZones, pools: tuple[Pool, ...], snapshot: Snapshot) -> None:
        """Main loop: serve the prepared snapshot."""
        self._generation += 1
        snapshot = replace(snapshot, generation=self._generation)
        self.loaded, self.pools = loaded, pools
        if self.engine is None:
            self.engine = Engine(snapshot)
        else:
            self.engine.swap(snapshot)
        log.info(
            "serving %d zone(s) from %s with %d pool(s) (generation %d)",
            len(loaded.tables), self.settings.zones_dir, len(pools), self._generation,
        )

    def load(self) -> None:
        """Load and serve the zones now (at start, before the listeners)."""
        self._commit(*self._prepare())

    def reload(self) -> None:
        """SIGHUP: load zones and overrides again, off the loop; one reload at a time."""
        if self._reloading is not None and not self._reloading.done():
            log.info("reload already running; ignoring SIGHUP")
            return
        self._reloading = asyncio.ensure_future(self._reload())

    async def _reload(self) -> None:
        try:
            prepared = await asyncio.to_thread(self._prepare)
        except Exception:
            log.exception("reload failed; still serving the previous snapshot")
            return
        self._commit(*prepared)
        self.reselect("reload")  # flips that arrived while the zones loaded
        await self.poll_overrides()

    def reselect(self, reason: str) -> None:
        """Re-run every pool's policy on the current view; swap if any answer changed."""
        assert self.engine is not None
        current = self.engine.snapshot
        fresh = select_all(self.pools, self.view, time.time(), current.selections)
        changed = {k: v for k, v in fresh.items() if current.selections.get(k) != v}
        if not changed:
            return
        # A reason-only change is stored (for status) but rebuilds no answer.
        self._generation += 1
        self.engine.swap(
            current.with_selections(changed, health=self.view, generation=self._generation)
        )
        for (owner, rdtype), selection in changed.items():
            before = current.selections.get((owner, rdtype))
            if before is not None and before.answers_same(selection):
                continue
            log.info(
                "%s %s now answers %s (%s; %s)",
                owner, dns.rdatatype.to_text(rdtype),
                ", ".join(sorted(selection.values())) or "NODATA", selection.reason, reason,
            )

    # -- health (monitor thread -> main loop, writer thread) -----------------

    def on_result(
        self, member: MemberId, result: ProbeResult, health: MemberHealth, flipped: bool, at: float
    ) -> None:
        """Monitor thread: hand a flip to the main loop, then queue its record.

        A check that does not flip changes no answer, so only flips cross to
        the main loop; the state file is written by the writer thread, so a
        slow or locked file never delays a flip or the next check.
        """
        assert self.writer is not None and self._loop is not None
        if flipped:
            self._loop.call_soon_threadsafe(self._apply_health, member, health)
        before = self._persisted.get(member)
        self._persisted[member] = health
        if flipped:
            old = before.state if before else None
            self.writer.submit("record_transition", member, old, health.state, health.reason,
                               at, health)
        elif before is None or not result.ok or before.failures or before.state is State.DOWN:
            # First sight, or counters moving toward (or away from) a flip;
            # a steady member writes nothing.
            self.writer.submit("save_state", member, health)

    def on_suspicion(self, event: Suspicion) -> None:
        """Monitor thread: show the suspicion, then record the alarm and restored members."""
        assert self.writer is not None and self._loop is not None
        self._loop.call_soon_threadsafe(self._apply_suspicion, event)
        kind = "suspicion" if event.suspect else "suspicion-cleared"
        self.writer.submit("record_alarm", kind, event.reason, event.at)
        for member, health in event.restored.items():
            before = self._persisted.get(member)
            self._persisted[member] = health
            self.writer.submit("record_transition", member, before.state if before else None,
                               health.state, "suspicion", event.at, health)

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

    async def poll_overrides(self) -> None:
        """Take drains and force-ups from the state file (read in a worker thread)."""
        if self.store is None:
            return
        await asyncio.to_thread(self._check_state_file)
        now = time.time()
        overrides = await asyncio.to_thread(self.store.load_overrides, now)
        current = dict(self.view.overrides)
        expired = any(e.until is not None and e.until <= now for e in current.values())
        if overrides == current and not expired:
            return  # nothing new, nothing expired: no policy runs
        if self.monitor is not None and set(overrides) - set(current):
            # An operator forced states: that ends a suspicion.
            await asyncio.to_thread(self.monitor.clear_suspicion)
        self.view = replace(self.view, overrides=MappingProxyType(overrides))
        self.reselect("overrides")

    def _check_state_file(self) -> None:
        """Worker thread: reopen the state file when it was deleted or replaced."""
        assert self.store is not None and self.writer is not None
        path = self.settings.state_path
        try:
            st = path.stat()
            now_id: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            now_id = None
        if now_id == self._state_id:
            return
        log.error("state file %s was deleted or replaced; reopening it", path)
        store = Store.open(path)
        st = path.stat()
        self._state_id = (st.st_dev, st.st_ino)
        old, self.store, self.writer.store = self.store, store, store
        if self.monitor is not None:
            store.save_states(self.monitor.health())
        old.close()

    async def _poll_forever(self) -> None:
        monitor_lost = False
        while True:
            await asyncio.sleep(OVERRIDE_POLL)
            if self.monitor is not None and not self.monitor.alive and not monitor_lost:
                # Answers keep the last states; say so loudly and in the state file.
                monitor_lost = True
                log.critical("the monitor thread died: health answers are frozen at the "
                             "last states until a restart")
                if self.writer is not None:
                    self.writer.submit("record_alarm", "monitor-died",
                                       "monitor thread died; states frozen", time.time())
            try:
                await self.poll_overrides()
            except Exception:
                log.exception("reading overrides failed")

    # -- lifecycle ------------------------------------------------------------

    def _start_health(self) -> None:
        path = self.settings.state_path
        self.store = Store.open(path)
        st = path.stat()
        self._state_id = (st.st_dev, st.st_ino)
        self.writer = Writer(self.store)
        states = self.store.load_states()
        self._persisted = dict(states)
        overrides: dict[MemberId, OverrideEntry] = self.store.load_overrides(time.time())
        known = set(member_ids(self.settings.config))
        for member in sorted(set(overrides) - known):
            log.warning(
                "override %s for %s: no pool in %s has this member; it has no effect",
                overrides[member].kind.value, member.to_text(), self.settings.config_name,
            )
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
            if self.writer is not None:
                self.writer.close()
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
