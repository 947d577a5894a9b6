"""Reloading and swapping what the engine serves.

Owns the engine and the snapshots it serves: the first load, reloads (one at a
time, of the zone files *and* the configuration, in a daemon thread with a
deadline), re-selecting pools when the health view changes, and the
generation count. A reload reads the zone files that changed in a child
process (``zones.offload``) and adopts the tables between answers; what it
builds from them and when it is refused is ``staging``'s; here the result
is committed on the main loop with one reference swap, so a query is
answered either wholly from the old state or wholly from the new one. A
reload asked for while one runs is queued (any number coalesce into one); a
reload past ``server.reload_timeout`` is abandoned and reported (its child
process killed), and its thread never keeps the process from exiting.

Before it is served, a reload's snapshot is warmed (``warm``): the keys the
engine (or the workers, ``hot_keys``) answered lately from the miss index
are answered once from the new one, on the loop a slice at a time, so the
names clients ask now do not all take the slow path at once after the swap
(a million-record zone's answers are built when first asked).

Must not: touch sockets, the monitor or the state file.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace

import dns.name
import dns.rdatatype
import msgspec

from dnsserve.answer.engine import Engine
from dnsserve.answer.misses import MissIndex
from dnsserve.answer.policies import Pool
from dnsserve.answer.snapshot import Snapshot
from dnsserve.daemonthread import in_daemon_thread
from dnsserve.errors import DnsServeError
from dnsserve.health.model import HealthView
from dnsserve.settings import Settings
from dnsserve.staging import (
    Compared,
    Prepared,
    ReloadInput,
    ReloadRefused,
    Served,
    first_versions,
    prepare,
    select_all,
)
from dnsserve.zones.load import LoadedZones
from dnsserve.zones.offload import ChildLoad, Packed, adopt, adopt_now, worth_a_child
from dnsserve.zones.poolsign import pool_expiry
from dnsserve.zones.versions import ZoneContent, ZoneDiff, ZoneVersion

log = logging.getLogger("dnsserve")

FirstVersion = tuple[ZoneVersion, ZoneDiff, ZoneContent]  # a version to record, as in Prepared


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


class Reloader:
    """The engine and what it serves: first load, reloads and pool re-selection.

    Runs on the main loop. ``view`` gives the current health view;
    ``read_settings`` re-reads the configuration (in a worker thread);
    ``on_commit`` runs on the loop after each accepted load or reload with
    what was prepared (the app updates the monitor and records versions);
    ``on_swap`` after every swap, with the snapshot served from then on (the
    app passes it on to the answering workers); ``on_first`` on the loop with
    the first versions of the zones the start served with no earlier version
    (``staging.first_versions``), made after the first answer (``started``),
    and always before the next commit's ``on_commit``; ``hot_keys``, given when
    workers answer (this process answers no query), gives their hot keys: a
    reload's work then runs in one thread behind them (``_behind``), else on
    this loop in slices and in a thread.
    """

    def __init__(
        self,
        settings: Settings,
        view: Callable[[], HealthView],
        *,
        read_settings: Callable[[], Settings] | None = None,
        on_commit: Callable[[Prepared], Sequence[str]] | None = None,
        on_swap: Callable[[Snapshot], None] | None = None,
        hot_keys: Callable[[], Awaitable[list[bytes]]] | None = None,
        on_first: Callable[[Sequence[FirstVersion]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.served: Served | None = None
        self.last: ReloadResult | None = None
        self._view = view
        self._read_settings = read_settings
        self._on_commit = on_commit
        self._on_swap = on_swap
        self._hot_keys = hot_keys
        self._on_first = on_first
        self._first: Prepared | None = None  # the start's first versions, not yet recorded
        self._releasing: set[asyncio.Task[None]] = set()  # old zones being freed
        self._generation = 0
        self._reloading: asyncio.Future[ReloadResult] | None = None
        self._again: asyncio.Future[ReloadResult] | None = None  # the reload queued behind
        self.accepted = 0  # loads and reloads served
        self.refused = 0
        # Secondary zones past their expire (or with no copy yet): SERVFAIL.
        self.expired: frozenset[dns.name.Name] = frozenset()
        self._resign: asyncio.TimerHandle | None = None

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
        loaded: LoadedZones | None = None,
        compared: Mapping[dns.name.Name, Compared] | None = None,
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
            loaded=loaded,
            compared=compared or {},
        )

    def commit(self, prepared: Prepared) -> ReloadResult:
        """Main loop: serve the prepared snapshot."""
        self._generation += 1
        snapshot = replace(prepared.snapshot, generation=self._generation)
        snapshot = snapshot.with_expired(self.expired)
        retired: list[object] = [x for x in (self.engine and self.engine.snapshot, self.served)
                                 if x is not None]
        self.served = prepared.served
        self.settings = prepared.served.settings
        if self.engine is None:
            self.engine = Engine(snapshot)
        else:
            self.engine.swap(snapshot)
        if self._on_swap is not None:
            self._on_swap(snapshot)
        if retired:
            self._release_later(retired)
        served = prepared.served
        log.info(
            "serving %d zone(s) from %s with %d pool(s) (generation %d)",
            len(served.loaded.tables), self.settings.zones_dir, len(served.pools),
            self._generation,
        )
        for line in served.set_aside:
            log.error("%s", line)
        self.accepted += 1
        self._signatures_checked(snapshot)
        if self._first is not None and self._first is not prepared:
            self._record_first()  # the start's first versions go before this one's
        reported = tuple(self._on_commit(prepared)) if self._on_commit is not None else ()
        return ReloadResult(
            ok=True, at=time.time(), message=f"serving generation {self._generation}",
            warnings=prepared.warnings + served.set_aside + reported,
            generation=self._generation,
            zones={o.to_text(): z.serial for o, z in served.zones.items()},
        )

    def _signatures_checked(self, snapshot: Snapshot) -> None:
        """Note each signed zone's first signature expiry (status, /metrics), and set
        the timer that re-signs the online-signed zones before theirs run out: a
        reload (their zones are signed again at every load, their pools' signatures
        when they have less than ``refresh`` left)."""
        now = time.time()
        served = self.served
        assert served is not None
        expiry = served.signature_expiry
        signing = self.settings.signing()
        due: float | None = None
        pools = (pool_expiry(served.signer, snapshot.selections, now)
                 if served.signer is not None else {})
        for origin, how in signing.items():
            first = min([e for e in (expiry.get(origin), pools.get(origin))
                         if e is not None], default=None)
            if first is not None:
                at = first - how.refresh
                due = at if due is None else min(due, at)
        if self._resign is not None:
            self._resign.cancel()
            self._resign = None
        if due is None:
            return
        with contextlib.suppress(RuntimeError):  # no loop running: nothing to re-sign later
            loop = asyncio.get_running_loop()
            delay = max(RESIGN_MIN_DELAY, due - now)
            self._resign = loop.call_later(delay, self._resign_now)
            log.info("online-signed zones re-signed in %.0f s", delay)

    def _resign_now(self) -> None:
        self._resign = None
        log.info("re-signing the online-signed zones (signatures near their refresh time)")
        self.reload()

    @property
    def signature_expiry(self) -> dict[dns.name.Name, float]:
        """Each signed zone's first signature expiry (seconds since the epoch)."""
        return dict(self.served.signature_expiry) if self.served is not None else {}

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
        # As in a reload (``_reload``): no collector pass over the millions of
        # objects a big zone is made of while it loads; they are frozen after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            inp = replace(self._input(self.settings, force=force, accepted=accepted,
                                      allow_empty=allow_empty), defer_first=True)
            prepared = prepare(inp)
            self._first = prepared if prepared.first else None
            self.last = self.commit(prepared)
        finally:
            if collecting:
                gc.freeze()
                gc.enable()
        assert self.engine is not None
        return self.engine

    def started(self) -> None:
        """Call once answers flow: the first versions the first load left for
        later, then its miss index, are made in daemon threads, one after the
        other (together, their peaks of memory would add up; the versions go
        first so that their write to the state file is not on top of the index)."""
        prepared = self._first
        if prepared is None:
            self._misses_later()
            return
        try:
            future = in_daemon_thread(
                lambda: first_versions(prepared.first, at=prepared.first_at),
                name="dnsserve-versions")
        except RuntimeError:  # no running loop (a caller outside the server): now
            self._record_first()
            self._misses_later()
            return

        def done(f: asyncio.Future[list[FirstVersion]]) -> None:
            if f.cancelled():
                return
            if f.exception() is not None:
                self._first = None
                log.error("the zones' first versions were not recorded: %r", f.exception())
            else:
                self._record_first(f.result())
            self._misses_later()

        future.add_done_callback(done)

    def _misses_later(self) -> None:
        if self.engine is not None:
            _complete_later(self.engine.snapshot)

    def _record_first(self, versions: Sequence[FirstVersion] | None = None) -> None:
        """Hand the start's first versions to ``on_first`` (made now unless given),
        once: a later call, or the thread's result after a commit made them, does nothing."""
        prepared, self._first = self._first, None
        if prepared is None or self._on_first is None:
            return
        if versions is None:
            versions = first_versions(prepared.first, at=prepared.first_at)
        self._on_first(versions)

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
        # A full pass of the garbage collector walks every object the served
        # zones are made of, holding the GIL (over a second with a million
        # records) while answers wait; a reload makes millions of objects, so
        # it would set off several. None run during a reload; after it, what
        # is served is frozen out of the collector's sight (it is still freed
        # when no longer referenced) and collecting resumes.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return await self._reload_once(force)
        finally:
            if collecting:
                gc.freeze()
                gc.enable()

    async def _reload_once(self, force: bool) -> ReloadResult:
        deadline = self.settings.server.reload_timeout
        child: ChildLoad | None = None
        try:
            async with asyncio.timeout(deadline):
                settings = self.settings
                if self._read_settings is not None:
                    settings = await in_daemon_thread(self._read_settings)
                restart = _needs_restart(self.settings, settings)
                # Parsing and validating run in a child process (not under this
                # process's GIL); its tables are adopted here a slice at a time.
                before = self.served.loaded if self.served is not None else None
                extra = settings.copies_to_load()[0]
                packed = None
                compared: dict[dns.name.Name, Compared] = {}
                if worth_a_child(settings.zones_dir, extra):
                    served = self.served.contents if self.served is not None else {}
                    child = ChildLoad(settings.zones_dir, before, extra, settings.file_rules,
                                      served, settings.signing())
                    packed = await in_daemon_thread(child.run)
                    compared = {
                        o: Compared(served[o], ZoneDiff(c.removed, c.added), c.old_hash,
                                    c.new_hash)
                        for o, c in packed.compared.items() if o in served
                    }
                if self._hot_keys is not None:
                    # Workers answer: this process's loop answers none, so the rest
                    # runs in one thread, behind the workers (``_behind``).
                    keys = await self._hot_keys()
                    started = time.perf_counter()
                    prepared, done = await in_daemon_thread(
                        _behind, packed, before,
                        self._input(settings, force=force, compared=compared), keys)
                    _log_warm(done, len(keys), time.perf_counter() - started)
                else:
                    loaded = None
                    if packed is not None:
                        loaded = await adopt(packed, before, settings.zones_dir)
                    # Building the snapshot still runs in a thread of this process:
                    # while it does, the loop gets the GIL back within a millisecond.
                    with _short_switch_interval():
                        prepared = await in_daemon_thread(
                            _prepare_indexed,
                            self._input(settings, force=force, loaded=loaded, compared=compared),
                        )
                    await self._warm(prepared.snapshot)
        except TimeoutError:
            if child is not None:
                child.kill()
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

    async def _warm(self, snapshot: Snapshot) -> None:
        """Answer this engine's hot keys once from ``snapshot`` (its index keeps them)."""
        keys = self.engine.hot_keys() if self.engine is not None else []
        if keys:
            started = time.perf_counter()
            done = await warm(snapshot, keys, budget=WARM_SECONDS)
            _log_warm(done, len(keys), time.perf_counter() - started)

    def _release_later(self, roots: list[object]) -> None:
        """Free the zones served before a swap on the loop, a slice at a time
        (``release_steps``); without a running loop (a first load), at once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            roots.clear()
            return

        async def release() -> None:
            await asyncio.sleep(RELEASE_AFTER)
            for _ in release_steps(roots):
                await asyncio.sleep(WARM_PAUSE)  # as warming does (``warm``)

        task = loop.create_task(release())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    def _refused(self, lines: list[str], guard: bool) -> ReloadResult:
        self.refused += 1
        hint = " (dnsserve reload --force applies it once)" if guard else ""
        log.error("reload refused%s; still serving the previous zones and config:\n  %s",
                  hint, "\n  ".join(lines))
        return ReloadResult(ok=False, at=time.time(), message=f"reload refused{hint}",
                            errors=tuple(lines), generation=self._generation)

    def set_expired(self, expired: frozenset[dns.name.Name]) -> None:
        """Answer SERVFAIL for the zones in ``expired`` from the next query on.

        A zone that leaves the set is answered by the slow path at once, and
        prebuilt again by a reload (its pools rotate again).
        """
        recovered = self.expired - expired
        self.expired = expired
        if self.engine is None:
            return
        fresh = self.engine.snapshot.with_expired(expired)
        self.engine.swap(fresh)
        if self._on_swap is not None:
            self._on_swap(fresh)
        if recovered:
            self.reload()

    def reselect(self, reason: str) -> None:
        """Re-run every pool's policy on the current view; swap if any answer changed."""
        assert self.engine is not None
        current = self.engine.snapshot
        view = self._view()
        now = time.time()
        fresh = select_all(self.pools, view, now, current.selections)
        if self.served is not None and self.served.signer is not None:
            fresh = self.served.signer.sign(fresh, current.selections, now)
        changed = {k: v for k, v in fresh.items() if current.selections.get(k) != v}
        if not changed:
            return
        # A reason-only change is stored (for status) but rebuilds no answer.
        self._generation += 1
        fresh_snapshot = current.with_selections(changed, health=view,
                                                 generation=self._generation)
        self.engine.swap(fresh_snapshot)
        if self._on_swap is not None:
            self._on_swap(fresh_snapshot)
        for (owner, rdtype), selection in changed.items():
            before = current.selections.get((owner, rdtype))
            if before is not None and before.answers_same(selection):
                continue
            log.info(
                "%s %s now answers %s (%s; %s)",
                owner, dns.rdatatype.to_text(rdtype),
                ", ".join(sorted(selection.values())) or "NODATA", selection.reason, reason,
            )


# How long a thread may hold the GIL while another waits for it, during a reload
# (CPython's default is 5 ms: one answer could wait that long per switch).
RELOAD_SWITCH_INTERVAL = 0.001
# the re-signing timer never fires sooner than this after a load (a refresh of
# almost the whole validity must not turn into a reload loop)
RESIGN_MIN_DELAY = 10.0  # config_validate.MIN_RESIGN


# Added to the nice value of the thread that does a reload's work when workers
# answer (``_behind``; Linux sets it per thread): they get the cores first.
BEHIND_NICE = 10
# How long a slice of warming may hold the loop before answers are read again.
WARM_SLICE = 0.002
# The loop sleeps this long between two slices of warming (see ``warm``).
WARM_PAUSE = 0.004
# Warming stops after this long (the rest of the hot names are built when asked).
WARM_SECONDS = 90.0


async def warm(snapshot: Snapshot, keys: Sequence[bytes], *, budget: float) -> int:
    """Answer ``keys`` from ``snapshot``'s miss index, on the loop, ``WARM_SLICE`` at a
    time, ``WARM_PAUSE`` between slices; the loop reads and answers queries
    meanwhile. Returns how many were.

    Why pause, not just yield: a process that wants the CPU all the time
    waits for it behind every other runnable process when the machine is
    busy (tens of milliseconds); one that sleeps most of the time is woken
    at once by a query. So warming uses about a third of a core.

    What the index keeps is what the engine would keep answering them itself,
    so a key warmed is answered from then on as if it had been asked.
    """
    done = 0
    for step in _warm_steps(snapshot, keys, budget):
        if step is None:
            await asyncio.sleep(WARM_PAUSE)
        else:
            done = step
    return done


def _warm_steps(snapshot: Snapshot, keys: Sequence[bytes], budget: float) -> Iterator[int | None]:
    """``warm``'s work: None after each slice, the count last."""
    index = snapshot.misses
    if index is None or not index.ready:
        yield 0
        return
    zones, answers = snapshot.zones, snapshot.answers
    clock = time.perf_counter
    stop = clock() + budget
    until = clock() + WARM_SLICE
    done = 0
    for key in keys:
        if key in answers:
            continue
        try:
            index.answer(key, zones)
        except Exception:  # the engine answers it (SERVFAIL) when asked
            continue
        done += 1
        if clock() >= until:
            yield None
            if clock() >= stop:
                break
            until = clock() + WARM_SLICE
    yield done


def _behind(
    packed: Packed | None,
    before: LoadedZones | None,
    inp: ReloadInput,
    keys: Sequence[bytes],
) -> tuple[Prepared, int]:
    """A reload's work after the child, in one thread of a process that answers no
    query (the workers do): adopt, prepare, index, warm; at a lower CPU priority,
    so that the workers get the cores first."""
    with contextlib.suppress(OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid,
                       min(19, os.getpriority(os.PRIO_PROCESS, tid) + BEHIND_NICE))
    if packed is not None:
        inp = replace(inp, loaded=adopt_now(packed, before, inp.settings.zones_dir))
    prepared = _prepare_indexed(inp)
    done = 0
    for step in _warm_steps(prepared.snapshot, keys, WARM_SECONDS):
        done = step if step is not None else done
    return prepared, done


def _prepare_indexed(inp: ReloadInput) -> Prepared:
    """``prepare``, and its snapshot's miss index built (a reload's thread does both)."""
    prepared = prepare(inp)
    if prepared.snapshot.misses is not None:
        prepared.snapshot.misses.complete()
    return prepared


# A container with more items than this is taken apart a slice at a time.
RELEASE_BIG = 256
_CONTAINERS = (dict, list, tuple, set, frozenset)


def release_steps(roots: list[object], slice_seconds: float = WARM_SLICE) -> Iterator[None]:
    """Free what only ``roots`` holds, a slice at a time: None after each slice.

    Dropping the last reference to a million-record table or index frees
    millions of objects in one C call (a quarter of a second, the GIL held).
    Here an object is taken apart only while nothing but this function holds
    it (its reference count says so): a large container is emptied a slice
    at a time, any other object's referents are kept while it goes, then
    each in turn. Anything shared (a table the new zones kept, an object
    another thread reads) is only let go of, never changed. ``roots`` is
    emptied: the caller keeps no reference.
    """
    stack = list(roots)
    roots.clear()
    clock = time.perf_counter
    until = clock() + slice_seconds
    count = 0
    while stack:
        obj = stack.pop()
        count += 1
        if count & 255 == 0 and clock() >= until:
            yield None
            until = clock() + slice_seconds
        # references: ``obj`` here and getrefcount's argument; more = shared
        if sys.getrefcount(obj) > 2:
            continue
        if isinstance(obj, dict | list) and len(obj) > RELEASE_BIG:
            mapping = isinstance(obj, dict)
            take = obj.popitem if isinstance(obj, dict) else obj.pop
            while obj:
                item = take()
                if mapping:
                    item = item[1]  # (key, value): keys are names, bytes
                if isinstance(item, _CONTAINERS) and len(item) > RELEASE_BIG:
                    stack.append(item)
                del item
                count += 1
                if count & 255 == 0 and clock() >= until:
                    yield None
                    until = clock() + slice_seconds
        elif isinstance(obj, _CONTAINERS) and len(obj) > RELEASE_BIG:
            stack.append(list(obj))  # its items outlive it, then go a slice at a time
        elif gc.is_tracked(obj):
            stack.extend(gc.get_referents(obj))  # they outlive it, then go in turn
        del obj


# The old zones are taken apart this long after a swap: the reload's own
# frames that still hold them have ended by then.
RELEASE_AFTER = 0.1


def _log_warm(done: int, asked: int, seconds: float) -> None:
    if asked:
        log.info("reload: %d of %d hot names answered from the new zones before the swap "
                 "(%.1f s)", done, asked, seconds)


def _complete_later(snapshot: Snapshot) -> None:
    """Build the first load's miss index in a thread, once the zones are served.

    Until it is built, misses take the slow path (the same answers, slower):
    a million records' index is seconds the first answer need not wait for.
    """
    index = snapshot.misses
    if index is None or index.ready:
        return
    try:
        future = in_daemon_thread(index.complete, name="dnsserve-misses")
    except RuntimeError:  # no running loop (a caller outside the server): build it now
        index.complete()
        return

    def done(f: asyncio.Future[MissIndex]) -> None:
        if not f.cancelled() and f.exception() is not None:
            log.error("the miss index was not built (misses take the slow path): %r",
                      f.exception())

    future.add_done_callback(done)


@contextlib.contextmanager
def _short_switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, RELOAD_SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _needs_restart(old: Settings, new: Settings) -> tuple[str, ...]:
    """Settings a reload reads but cannot apply to a running process."""
    out = []
    for key in ("listen", "control", "state", "workers"):
        if getattr(old.server, key) != getattr(new.server, key):
            out.append(f"server.{key} changed in {new.config_name}: takes a restart")
    for section in ("rrl", "cookies"):  # the answering processes' guards are built at start
        if getattr(old.config, section) != getattr(new.config, section):
            out.append(f"[{section}] changed in {new.config_name}: takes a restart")
    return tuple(out)
