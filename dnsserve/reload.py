"""Loading, reloading and swapping what the engine serves.

Owns the engine and the snapshots it serves: the first load, reloads (one at a
time, in a worker thread) of the zone files *and* the configuration,
re-selecting pools when the health view changes, and the generation count. A
snapshot is built whole from an immutable ``ReloadInput`` by ``prepare``,
which may run in any thread and reads nothing the main loop owns; the main
loop then ``commit``s it with one reference swap, so a query is answered
either wholly from the old state or wholly from the new one.

A reload is all or nothing. These refuse it (the old zones and config keep
serving, and the refusal lists why):

    what                                                    overridden by
    the config file does not parse or validate              -
    a pool is inside no loaded zone, or beside a CNAME      -
    the deletion guard (``zones.versions``): a zone would   ``force`` (once)
      lose its apex SOA or NS, a pool's name, a served
      RRset, or more than ``max_delete_fraction`` of it

These do not refuse it, and are reported with it: a zone whose file fails to
load or is gone keeps its last good version; a zone whose content changed
while its serial did not (secondaries would never pick it up); settings that
take a restart (listen, control, state).

At start there is nothing old to keep: a zone that fails to load is not
served and the pools inside it are set aside (the other zones serve); a zone
the guard refuses against the last version accepted in the state file serves
that last version instead. Starting with no zone at all is an error unless
``allow_empty``.

Must not: touch sockets, the monitor or the state file (what to record is
handed out through ``Prepared``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import dns.exception
import dns.name
import dns.rdatatype
import dns.zone
import msgspec

from dnsserve.answer.engine import Engine
from dnsserve.answer.policies import Pool, Selection, select
from dnsserve.answer.snapshot import PoolKey, Snapshot, build_snapshot
from dnsserve.config import place_pools
from dnsserve.errors import DnsServeError
from dnsserve.health.model import HealthView
from dnsserve.settings import Settings
from dnsserve.zones.compile import compile_zone
from dnsserve.zones.deletions import check_deletions
from dnsserve.zones.load import LoadedZones, load_zones
from dnsserve.zones.table import ZoneTable
from dnsserve.zones.versions import (
    ZoneContent,
    ZoneDiff,
    ZoneVersion,
    diff,
    new_version,
    serial_problem,
    to_rrsets,
    zone_content,
)

log = logging.getLogger("dnsserve")


class ReloadRefused(DnsServeError):
    """A reload that must not be applied; ``lines`` say why, one problem each."""

    def __init__(self, lines: Sequence[str], *, guard: bool = False) -> None:
        self.lines = tuple(lines)
        self.guard = guard  # refused by the deletion guard only: ``force`` applies it
        super().__init__("\n".join(self.lines))


class ReloadResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one load or reload did, for the log, the API and ``dnsserve reload``."""

    ok: bool
    at: float
    message: str
    errors: tuple[str, ...] = ()  # why it was refused
    warnings: tuple[str, ...] = ()  # what was reported with it
    forced: bool = False
    generation: int = 0
    zones: dict[str, int] = msgspec.field(default_factory=dict)  # origin -> serial served


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    """One served zone, for status: where it came from and how its last load went."""

    origin: dns.name.Name
    file: str
    serial: int
    records: int
    loaded_at: float  # when the version served now was accepted
    ok: bool = True  # the last load of its file succeeded
    result: str = ""


@dataclass(frozen=True, slots=True)
class Served:
    """What is served now: the zones (with their content for the guard) and pools."""

    settings: Settings
    loaded: LoadedZones
    contents: Mapping[dns.name.Name, ZoneContent]
    pools: tuple[Pool, ...]
    zones: Mapping[dns.name.Name, ZoneInfo]
    set_aside: tuple[str, ...] = ()  # pools not served, and why
    unserved: Mapping[dns.name.Name, str] = field(default_factory=dict)  # zones failed at start


@dataclass(frozen=True, slots=True)
class ReloadInput:
    """Everything ``prepare`` reads, captured on the main loop at one moment."""

    settings: Settings
    previous: Served | None  # None at start
    accepted: Mapping[dns.name.Name, ZoneContent]  # at start: the state file's last versions
    view: HealthView
    selections: Mapping[PoolKey, Selection]
    now: float
    force: bool = False
    allow_empty: bool = False


@dataclass(frozen=True, slots=True)
class Prepared:
    """A whole new state to serve, not yet swapped in, and what to record of it."""

    served: Served
    snapshot: Snapshot
    versions: tuple[tuple[ZoneVersion, ZoneDiff, ZoneContent], ...]  # accepted changes
    warnings: tuple[str, ...] = ()


def select_all(
    pools: Sequence[Pool],
    view: HealthView,
    now: float,
    previous: Mapping[PoolKey, Selection],
) -> dict[PoolKey, Selection]:
    """Every pool's selection under ``view`` (``previous`` serves "hold")."""
    return {
        (p.owner, p.rdtype): select(p, view, now, previous.get((p.owner, p.rdtype)))
        for p in pools
    }


def prepare(inp: ReloadInput) -> Prepared:
    """Load every zone and build a whole new snapshot (any thread; swaps nothing).

    Raises ReloadRefused with every reason when the result must not be served.
    """
    settings, previous = inp.settings, inp.previous
    loaded = load_zones(settings.zones_dir)
    failed = _failed(loaded)
    tables = dict(loaded.tables)
    zones: dict[dns.name.Name, ZoneInfo] = {}
    warnings: list[str] = []
    if previous is not None:
        # A reload never silently deletes what we serve: a zone that fails to
        # load, or whose file is gone, keeps its last good version (a restart
        # drops a removed zone on purpose).
        for origin, table in previous.loaded.tables.items():
            if origin not in tables:
                why = "failed to reload" if origin in failed else "lost its zone file"
                line = f"zone {origin} {why}; still serving the last good version"
                log.error("%s", line)
                warnings.append(line)
                tables[origin] = table
                zones[origin] = replace(previous.zones[origin], ok=False, result=why)
    if not tables and not inp.allow_empty:
        why = "; ".join(p.to_text() for p in loaded.errors) or "no zone files"
        raise ReloadRefused([f"no zone could be loaded from {settings.zones_dir}: {why}"])
    placed = place_pools(settings.config, tables, failed, file=settings.config_name)
    pools, set_aside, errors = placed.pools, list(placed.set_aside), list(placed.errors)
    if previous is not None and set_aside:
        errors += set_aside  # a reload never drops a pool that the config still names
    if errors:
        raise ReloadRefused(errors)
    contents, versions, guard = _versions(inp, tables, pools, warnings)
    if guard and not inp.force:
        if previous is not None:
            raise ReloadRefused([line for lines in guard.values() for line in lines],
                                guard=True)
        for origin, lines in guard.items():  # at start: serve the last accepted version
            tables[origin] = _table_from(inp.accepted[origin])
            contents[origin] = inp.accepted[origin]
            versions = [v for v in versions if v[2].origin != origin]
            line = (f"zone {origin}: the file would delete what was served ("
                    f"{'; '.join(lines)}); serving the last accepted version (serial "
                    f"{contents[origin].serial}) instead; dnsserve serve --force accepts the file")
            log.error("%s", line)
            warnings.append(line)
    for origin in tables:
        if origin not in zones:
            content = contents[origin]
            old = previous.zones.get(origin) if previous is not None else None
            changed = old is None or any(v[2].origin == origin for v in versions)
            zones[origin] = ZoneInfo(
                origin, str(loaded.files.get(origin, old.file if old else "")),
                content.serial, len(content), inp.now if changed or old is None else
                old.loaded_at,
            )
    snapshot = build_snapshot(
        tables,
        selections=select_all(pools, inp.view, inp.now, inp.selections),
        version=settings.server.version,
        identity=settings.server.identity,
        health=inp.view,
    )
    unserved = {o: _why(loaded, o) for o in failed if o not in tables}
    served = Served(
        settings, LoadedZones(tables, loaded.problems, loaded.files), contents, pools, zones,
        tuple(set_aside), unserved,
    )
    return Prepared(served, snapshot, tuple(versions), tuple(warnings))


def _why(loaded: LoadedZones, origin: dns.name.Name) -> str:
    text = origin.to_text()
    return "; ".join(p.to_text() for p in loaded.errors if p.zone == text) or "failed to load"


def _versions(
    inp: ReloadInput,
    tables: Mapping[dns.name.Name, ZoneTable],
    pools: Sequence[Pool],
    warnings: list[str],
) -> tuple[
    dict[dns.name.Name, ZoneContent],
    list[tuple[ZoneVersion, ZoneDiff, ZoneContent]],
    dict[dns.name.Name, list[str]],
]:
    """Each zone's content, the versions to record, and the guard's refusals by zone."""
    previous = inp.previous
    before = previous.contents if previous is not None else inp.accepted
    fraction = inp.settings.server.max_delete_fraction
    contents: dict[dns.name.Name, ZoneContent] = {}
    versions: list[tuple[ZoneVersion, ZoneDiff, ZoneContent]] = []
    refusals: dict[dns.name.Name, list[str]] = {}
    for origin, table in tables.items():
        old = before.get(origin)
        kept = previous is not None and table is previous.loaded.tables.get(origin)
        if old is not None and kept:
            contents[origin] = old  # kept (failed or lost file): nothing new
            continue
        content = zone_content(table)
        contents[origin] = content
        changes = diff(old, content) if old is not None else ZoneDiff((), content.records)
        if old is not None and not changes:
            continue
        if old is not None:
            protected = {(p.owner, p.rdtype) for p in pools if p.owner.is_subdomain(origin)}
            lines = check_deletions(
                old, content, protected=protected, max_delete_fraction=fraction,
                changes=changes,
            )
            if lines:
                refusals[origin] = lines
        version = new_version(content, changes, at=inp.now)
        if old is not None:
            old_version = new_version(old, ZoneDiff((), ()), at=inp.now)
            if (problem := serial_problem(old_version, version)) is not None:
                warnings.append(f"zone {origin}: {problem}")
        versions.append((version, changes, content))
    return contents, versions, refusals


def _table_from(content: ZoneContent) -> ZoneTable:
    """A served table from recorded content (the last accepted version)."""
    zone = dns.zone.Zone(content.origin, relativize=False)
    for rrset in to_rrsets(content.records):
        zone.replace_rdataset(rrset.name, rrset)
    return compile_zone(zone, file="<state file>", lines={})


class Reloader:
    """The engine and what it serves: first load, reloads and pool re-selection.

    Runs on the main loop. ``view`` gives the current health view;
    ``read_settings`` re-reads the configuration (in a worker thread);
    ``on_commit`` runs on the loop after each accepted load or reload with
    what was prepared (the app updates the monitor and records versions).
    """

    def __init__(
        self,
        settings: Settings,
        view: Callable[[], HealthView],
        *,
        read_settings: Callable[[], Settings] | None = None,
        on_commit: Callable[[Prepared], None] | None = None,
    ) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.served: Served | None = None
        self.last: ReloadResult | None = None
        self._view = view
        self._read_settings = read_settings
        self._on_commit = on_commit
        self._generation = 0
        self._reloading: asyncio.Future[ReloadResult] | None = None
        self._again: asyncio.Future[ReloadResult] | None = None  # the reload queued behind
        self.accepted = 0  # loads and reloads served
        self.refused = 0

    @property
    def pools(self) -> tuple[Pool, ...]:
        return self.served.pools if self.served is not None else ()

    @property
    def unserved(self) -> Mapping[dns.name.Name, str]:
        """Zones whose file failed at start and so are not served, with why."""
        return self.served.unserved if self.served is not None else {}

    def _input(
        self,
        settings: Settings,
        *,
        force: bool = False,
        accepted: Mapping[dns.name.Name, ZoneContent] | None = None,
        allow_empty: bool = False,
    ) -> ReloadInput:
        return ReloadInput(
            settings=settings,
            previous=self.served,
            accepted=accepted or {},
            view=self._view(),
            selections=self.engine.snapshot.selections if self.engine is not None else {},
            now=time.time(),
            force=force,
            allow_empty=allow_empty,
        )

    def commit(self, prepared: Prepared) -> ReloadResult:
        """Main loop: serve the prepared snapshot."""
        self._generation += 1
        snapshot = replace(prepared.snapshot, generation=self._generation)
        self.served = prepared.served
        self.settings = prepared.served.settings
        if self.engine is None:
            self.engine = Engine(snapshot)
        else:
            self.engine.swap(snapshot)
        served = prepared.served
        log.info(
            "serving %d zone(s) from %s with %d pool(s) (generation %d)",
            len(served.loaded.tables), self.settings.zones_dir, len(served.pools),
            self._generation,
        )
        for line in served.set_aside:
            log.error("%s", line)
        self.accepted += 1
        if self._on_commit is not None:
            self._on_commit(prepared)
        return ReloadResult(
            ok=True, at=time.time(), message=f"serving generation {self._generation}",
            warnings=prepared.warnings + served.set_aside, generation=self._generation,
            zones={o.to_text(): z.serial for o, z in served.zones.items()},
        )

    def load(
        self,
        accepted: Mapping[dns.name.Name, ZoneContent] | None = None,
        *,
        force: bool = False,
        allow_empty: bool = False,
    ) -> Engine:
        """Load and serve the zones now (at start, before the listeners).

        ``accepted`` is each zone's last accepted content (the state file's):
        the deletion guard checks the files against it. Raises ReloadRefused.
        """
        inp = self._input(self.settings, force=force, accepted=accepted, allow_empty=allow_empty)
        self.last = self.commit(prepare(inp))
        assert self.engine is not None
        return self.engine

    def reload(self, *, force: bool = False) -> asyncio.Future[ReloadResult]:
        """Load the config and zones again, off the loop; one reload at a time.

        A request that arrives while a reload runs is not dropped: one more
        reload follows the current one (any number of requests coalesce into
        it, and all get its result), so an edit saved during a long reload
        is served.
        """
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self._reload(force))
            return self._reloading
        if self._again is None:
            log.info("reload requested while one runs; another follows it")
            self._again = asyncio.ensure_future(self._after(self._reloading, force))
        return self._again

    async def _after(self, running: asyncio.Future[ReloadResult], force: bool) -> ReloadResult:
        await asyncio.wait([running])
        self._again = None
        self._reloading = asyncio.ensure_future(self._reload(force))
        return await self._reloading

    async def _reload(self, force: bool) -> ReloadResult:
        deadline = self.settings.server.reload_timeout
        try:
            async with asyncio.timeout(deadline):
                settings = self.settings
                if self._read_settings is not None:
                    settings = await in_daemon_thread(self._read_settings)
                restart = _needs_restart(self.settings, settings)
                prepared = await in_daemon_thread(prepare, self._input(settings, force=force))
        except TimeoutError:
            # The thread cannot be stopped (a blocked read: a FIFO, a dead NFS
            # mount); it is a daemon, so it never keeps the process from exiting,
            # and whatever it returns later is thrown away.
            result = self._refused([f"reload abandoned after {deadline:g} s (server."
                                    "reload_timeout): a zone or config file did not finish "
                                    "loading"], False)
        except ReloadRefused as exc:
            result = self._refused(list(exc.lines), exc.guard)
        except DnsServeError as exc:
            result = self._refused(str(exc).splitlines(), False)
        except Exception as exc:
            log.exception("reload failed; still serving the previous zones and config")
            result = self._refused([f"internal error: {exc!r}"], False)
        else:
            result = self.commit(prepared)
            self.reselect("reload")  # flips that arrived while the zones loaded
            if force:
                result = msgspec.structs.replace(result, forced=True)
            if restart:
                result = msgspec.structs.replace(result, warnings=result.warnings + restart)
            for line in result.warnings:
                log.warning("reload: %s", line)
        self.last = result
        return result

    def _refused(self, lines: list[str], guard: bool) -> ReloadResult:
        self.refused += 1
        hint = " (dnsserve reload --force applies it once)" if guard else ""
        log.error("reload refused%s; still serving the previous zones and config:\n  %s",
                  hint, "\n  ".join(lines))
        return ReloadResult(ok=False, at=time.time(), message=f"reload refused{hint}",
                            errors=tuple(lines), generation=self._generation)

    def reselect(self, reason: str) -> None:
        """Re-run every pool's policy on the current view; swap if any answer changed."""
        assert self.engine is not None
        current = self.engine.snapshot
        view = self._view()
        fresh = select_all(self.pools, view, time.time(), current.selections)
        changed = {k: v for k, v in fresh.items() if current.selections.get(k) != v}
        if not changed:
            return
        # A reason-only change is stored (for status) but rebuilds no answer.
        self._generation += 1
        self.engine.swap(
            current.with_selections(changed, health=view, generation=self._generation)
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


def _needs_restart(old: Settings, new: Settings) -> tuple[str, ...]:
    """Settings a reload reads but cannot apply to a running process."""
    out = []
    for key in ("listen", "control", "state"):
        if getattr(old.server, key) != getattr(new.server, key):
            out.append(f"server.{key} changed in {new.config_name}: takes a restart")
    return tuple(out)


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


T = TypeVar("T")


def in_daemon_thread(fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
    """Run ``fn(*args)`` in a new daemon thread; its result as a future on this loop.

    Unlike ``asyncio.to_thread`` (whose executor threads are joined at exit),
    a thread stuck reading a file never keeps SIGTERM from ending the process.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return  # abandoned (timed out, or the server is stopping)
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def run() -> None:
        try:
            value = fn(*args)
        except BaseException as exc:
            outcome: tuple[bool, Any] = (False, exc)
        else:
            outcome = (True, value)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="dnsserve-reload", daemon=True).start()
    return future
