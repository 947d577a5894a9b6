"""Loading, reloading and swapping what the engine serves.

Owns the engine and the snapshots it serves: the first load, reloads (one at a
time, in a worker thread), re-selecting pools when the health view changes,
and the generation count. A snapshot is built whole from an immutable
``ReloadInput`` (zone files, config, the health view and selections at that
moment) by ``prepare``, which may run in any thread and reads nothing the
main loop owns; the main loop then ``commit``s it with one reference swap.

A reload never leaves a half-applied zone: every zone file is loaded and
compiled into a new snapshot first; a zone that fails, or whose file is gone,
keeps serving its last good version, and the error is logged with file and line.

Must not: touch sockets, the monitor or the state file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import dns.exception
import dns.name
import dns.rdatatype

from dnsserve.answer.engine import Engine
from dnsserve.answer.policies import Pool, Selection, select
from dnsserve.answer.snapshot import PoolKey, Snapshot, build_snapshot
from dnsserve.config import Config, ServerConfig, check_pools_against_zones, pools_from_config
from dnsserve.errors import ConfigError
from dnsserve.health.model import HealthView
from dnsserve.settings import Settings
from dnsserve.zones.load import LoadedZones, load_zones

log = logging.getLogger("dnsserve")


@dataclass(frozen=True, slots=True)
class ReloadInput:
    """Everything ``prepare`` reads, captured on the main loop at one moment."""

    zones_dir: Path
    config: Config
    config_name: str
    server: ServerConfig
    previous: LoadedZones | None  # what is served now; None at start
    view: HealthView
    selections: Mapping[PoolKey, Selection]
    now: float


@dataclass(frozen=True, slots=True)
class Prepared:
    """A whole new state to serve, not yet swapped in."""

    loaded: LoadedZones
    pools: tuple[Pool, ...]
    snapshot: Snapshot


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
    """Load every zone and build a whole new snapshot (any thread; swaps nothing)."""
    loaded = load_zones(inp.zones_dir)
    tables = dict(loaded.tables)
    if inp.previous is not None:
        # A reload never silently deletes what we serve: a zone that fails to
        # load, or whose file is gone, keeps its last good version (a restart
        # drops a removed zone on purpose).
        failed = _failed(loaded)
        for origin, table in inp.previous.tables.items():
            if origin not in tables:
                why = "failed to reload" if origin in failed else "lost its zone file"
                log.error("zone %s %s; still serving the last good version", origin, why)
                tables[origin] = table
    pools: tuple[Pool, ...] = ()
    if inp.config.pool:
        errors = check_pools_against_zones(inp.config, tables.keys(), file=inp.config_name)
        if errors:
            raise ConfigError("\n".join(errors))
        pools = pools_from_config(inp.config, tables.keys())
    snapshot = build_snapshot(
        tables,
        selections=select_all(pools, inp.view, inp.now, inp.selections),
        version=inp.server.version,
        identity=inp.server.identity,
        health=inp.view,
    )
    return Prepared(LoadedZones(tables, loaded.problems, loaded.files), pools, snapshot)


class Reloader:
    """The engine and what it serves: first load, reloads and pool re-selection.

    Runs on the main loop; ``view`` gives the current health view, and
    ``after_reload`` runs once a reload is served (the app re-reads overrides).
    """

    def __init__(
        self,
        settings: Settings,
        view: Callable[[], HealthView],
        after_reload: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.loaded: LoadedZones | None = None
        self.pools: tuple[Pool, ...] = ()
        self._view = view
        self._after_reload = after_reload
        self._generation = 0
        self._reloading: asyncio.Future[None] | None = None
        self._again = False  # a reload was asked for while one ran

    def _input(self) -> ReloadInput:
        s = self.settings
        return ReloadInput(
            zones_dir=s.zones_dir,
            config=s.config,
            config_name=s.config_name,
            server=s.server,
            previous=self.loaded,
            view=self._view(),
            selections=self.engine.snapshot.selections if self.engine is not None else {},
            now=time.time(),
        )

    def commit(self, prepared: Prepared) -> None:
        """Main loop: serve the prepared snapshot."""
        self._generation += 1
        snapshot = replace(prepared.snapshot, generation=self._generation)
        self.loaded, self.pools = prepared.loaded, prepared.pools
        if self.engine is None:
            self.engine = Engine(snapshot)
        else:
            self.engine.swap(snapshot)
        log.info(
            "serving %d zone(s) from %s with %d pool(s) (generation %d)",
            len(prepared.loaded.tables), self.settings.zones_dir, len(prepared.pools),
            self._generation,
        )

    def load(self) -> Engine:
        """Load and serve the zones now (at start, before the listeners)."""
        self.commit(prepare(self._input()))
        assert self.engine is not None
        return self.engine

    def reload(self) -> None:
        """SIGHUP: load zones again, off the loop; one reload at a time.

        A request that arrives while a reload runs is not dropped: one more
        reload follows the current one (any number of requests coalesce into
        it), so an edit saved during a long reload is served.
        """
        if self._reloading is not None and not self._reloading.done():
            if not self._again:
                log.info("reload requested while one runs; another follows it")
            self._again = True
            return
        self._reloading = asyncio.ensure_future(self._reload_until_settled())

    async def _reload_until_settled(self) -> None:
        while True:
            self._again = False
            await self._reload()
            if not self._again:
                return

    async def _reload(self) -> None:
        try:
            prepared = await asyncio.to_thread(prepare, self._input())
        except Exception:
            log.exception("reload failed; still serving the previous snapshot")
            return
        self.commit(prepared)
        self.reselect("reload")  # flips that arrived while the zones loaded
        if self._after_reload is not None:
            await self._after_reload()

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
