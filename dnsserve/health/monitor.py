"""The monitor thread: when to check whom, on trio, in its own OS thread.

Owns scheduling (first checks spread over the interval in phases that
members of one interval share, ``timers.phase_slots``, then every ``interval``
from the scheduled start so nothing drifts; ``health.timers`` wakes each member
when its check is due), per-check timeouts (a check still running at
``timeout`` is cancelled and is a failure "timeout"), at most one check in
flight per member, the concurrency bound (by default what the schedules need
when every check runs to its timeout, 64 to 256: it bounds bursts, at start or
after a reload, and a steady schedule is not late for it), injecting the TLS contexts
(``health.tls``, one per TLS setting) into https probes, and feeding results
through the tracker and the guard. What it did (counters, recent check
starts) goes to its ``health.checklog``.

Must not: touch asyncio, sqlite or the snapshot. Every result leaves through
``on_result`` as a ``CheckOutcome`` (``health.targets``; suspicion changes through
``on_suspicion``), called in this
thread; the app forwards them to its loop with ``loop.call_soon_threadsafe`` and
writes the store off the query path. Event times are ``time.time()``; the
schedule runs on trio's clock.

A check that could not run on this host (``ProbeResult.local_error``) is no
verdict on the member: it goes to ``health.localerrors`` instead of the
tracker, the guard and ``on_result``, so the member keeps its state.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Set
from types import MappingProxyType

import trio

from dnsserve.health import guard as guard_rules
from dnsserve.health.checklog import CheckLog, CheckRecord
from dnsserve.health.guard import GuardConfig, GuardState, Suspicion
from dnsserve.health.localerrors import LocalErrors
from dnsserve.health.model import MemberHealth, MemberId
from dnsserve.health.probes import (
    TIMEOUT,
    ProbeResult,
    local_cause,
    local_result,
    probe,
)
from dnsserve.health.targets import (
    CheckOutcome,
    OnResult,
    OnSuspicion,
    Target,
    concurrency_needed,
    dedupe,
    guard_window,
)
from dnsserve.health.timers import Timers, phase_slots, tick_for
from dnsserve.health.tls import TlsContexts
from dnsserve.health.tracker import never_seen, observe

log = logging.getLogger(__name__)


class Monitor:
    def __init__(
        self,
        targets: Iterable[Target | tuple],
        initial: Mapping[MemberId, MemberHealth],
        on_result: OnResult,
        *,
        pools: Mapping[MemberId, Set[str]] | None = None,
        suspect_fraction: float = 1.0,
        on_suspicion: OnSuspicion | None = None,
        max_concurrency: int | None = None,
        seed: int | None = None,
        ring_size: int = 10_000,
    ) -> None:
        self._targets = dedupe(targets)
        self._health: dict[MemberId, MemberHealth] = {
            m: h for m, h in initial.items() if m in self._targets
        }
        self._on_result = on_result
        self._on_suspicion = on_suspicion
        self._fraction = suspect_fraction
        self._pools = pools
        self._guard_config = self._make_guard_config()
        self._guard = GuardState()
        self._max_concurrency = max_concurrency  # None: concurrency_needed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # the health copy readers see
        self._log = CheckLog(ring_size)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        # trio-thread state, set in _main
        self._token: trio.lowlevel.TrioToken | None = None
        self._main_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._limiter: trio.CapacityLimiter | None = None
        self._scopes: dict[MemberId, trio.CancelScope] = {}
        self._timers = Timers(tick_for(t.interval for t in self._targets.values()))
        self._per_interval = Counter(t.interval for t in self._targets.values())
        self._origin = 0.0  # trio clock: where every schedule's phases count from
        self._tls = TlsContexts()
        self._local_errors = LocalErrors(self._log)

    # -- other threads ------------------------------------------------------

    def start(self, ready_timeout: float = 10.0) -> None:
        if self._thread is not None:
            raise RuntimeError("monitor already started")
        self._thread = threading.Thread(target=self._run, name="dnsserve-monitor", daemon=True)
        self._thread.start()
        ready = self._ready.wait(ready_timeout)
        if not ready or self._token is None or not self._thread.is_alive():
            raise RuntimeError("monitor thread did not start")

    def stop(self, timeout: float = 5.0) -> bool:
        """Cancel every check and join the thread; False if it did not end in time."""
        if self._thread is None:
            return True
        if self._token is not None and self._main_scope is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._main_scope.cancel)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("monitor thread did not stop within %.1f s", timeout)
            return False
        return True

    def check_now(self, member: MemberId) -> bool:
        """Ask for a check of ``member`` as soon as none is in flight; False if unknown."""
        if member not in self._targets or self._token is None:
            return False
        try:
            self._token.run_sync_soon(self._trigger, member)
        except trio.RunFinishedError:
            return False
        return True

    def clear_suspicion(self) -> None:
        """An operator forced states: leave suspicion (thread-safe)."""
        self._call(self._force)

    def update_members(
        self,
        targets: Iterable[Target | tuple],
        initial: Mapping[MemberId, MemberHealth] | None = None,
        pools: Mapping[MemberId, Set[str]] | None = None,
    ) -> None:
        """Reload: stop checking removed members, start new ones, restart changed ones."""
        found = dedupe(targets)
        self._call(self._update, found, dict(initial or {}), pools)

    @property
    def alive(self) -> bool:
        """The monitor thread runs (False before start, after stop, or if it died)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def suspect(self) -> bool:
        return self._guard.suspect

    def health(self) -> dict[MemberId, MemberHealth]:
        with self._lock:
            return dict(self._health)

    def counters(self) -> dict[str, int]:
        return self._log.counters()

    def records(self) -> list[CheckRecord]:
        return self._log.records()

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        if self._token is not None:
            try:
                trio.from_thread.run_sync(fn, *args, trio_token=self._token)
                return
            except trio.RunFinishedError:
                pass
        fn(*args)  # not running: nothing else touches the state

    # -- the trio thread ----------------------------------------------------

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException:
            log.exception("monitor thread failed")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._origin = trio.current_time()
        self._limiter = trio.CapacityLimiter(self._bound())
        try:
            with trio.CancelScope() as scope:
                self._main_scope = scope
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._timers.run)
                    for member, target in self._targets.items():
                        self._spawn(target, at_once=member not in self._health)
                    self._ready.set()
                    await trio.sleep_forever()
        finally:
            self._nursery = None

    def _spawn(self, target: Target, *, at_once: bool) -> None:
        assert self._nursery is not None
        # A TLS context is built now: loading CA roots is not the check's time.
        # A bad ca_file fails each check of this member, not the monitor.
        with contextlib.suppress(OSError):
            self._tls.for_spec(target.spec)
        scope = trio.CancelScope()  # made here so a cancel before the task starts holds
        self._scopes[target.member] = scope
        self._nursery.start_soon(self._schedule, target, at_once, scope)

    async def _schedule(self, target: Target, at_once: bool, scope: trio.CancelScope) -> None:
        with scope:
            await self._checks(target, at_once)

    async def _checks(self, target: Target, at_once: bool) -> None:
        member, interval = target.member, target.interval
        start = trio.current_time()
        # Jitter: the first checks spread over the interval, in phase slots shared
        # by members of the same interval (``timers.phase_slots``), from one origin.
        slots = phase_slots(self._per_interval[interval], interval, self._timers.tick)
        base = self._origin + self._rng.randrange(slots) * interval / slots
        base += max(0, math.ceil((start - base) / interval)) * interval
        if at_once:
            await self._check(target, start)
        k = 0
        while True:
            due = base + k * interval
            now = trio.current_time()
            if due < now:  # came due while a check ran: skip, keep the phase
                missed = math.ceil((now - due) / interval)
                self._log.count("skipped", missed)
                k += missed
                continue
            if await self._timers.sleep_until(member, due):
                self._log.count("triggered")
                await self._check(target, None)
                continue
            await self._check(target, due)
            k += 1

    async def _check(self, target: Target, scheduled: float | None) -> None:
        limiter = self._limiter
        assert limiter is not None
        try:  # no checkpoint when a token is free: the probe has its own
            limiter.acquire_nowait()
        except trio.WouldBlock:
            await limiter.acquire()
        try:
            record = CheckRecord(target.member, scheduled, trio.current_time(), time.time())
            self._log.started(record)
            result = TIMEOUT
            with trio.move_on_after(target.spec.timeout):
                result = await self._probe(target)
            took = trio.current_time() - record.started
        finally:
            limiter.release()
        late = 0.0 if scheduled is None else max(0.0, record.started - scheduled)
        self._settle(target, result, time.time(), took, late)

    async def _probe(self, target: Target) -> ProbeResult:
        spec = target.spec
        try:
            tls = self._tls.for_spec(spec)
        except OSError as exc:  # ca_file missing or not PEM (ssl.SSLError is an OSError)
            return ProbeResult(False, "tls config error", f"{spec.ca_file}: {exc}"[:200])
        try:
            return await probe(spec, target.member.address, tls=tls)
        except Exception as exc:  # a probe bug must not end the monitor
            local = local_cause(exc)
            if local is not None:  # out of memory or descriptors here, not a bug
                return local_result(local)
            log.exception("probe of %s failed unexpectedly", target.member.to_text())
            self._log.count("probe_errors")
            return ProbeResult(False, "probe error", f"{type(exc).__name__}: {exc}"[:200])

    def _settle(
        self, target: Target, result: ProbeResult, at: float, took: float = 0.0, late: float = 0.0
    ) -> None:
        member = target.member
        if self._targets.get(member) != target:  # removed or changed by a reload
            return
        if result.local_error:
            self._local_errors.note(member, result, at)
            return
        before = self._health.get(member)
        proposed, flipped = observe(
            before, result.ok, result.reason, at, rise=target.rise, fall=target.fall
        )
        out = guard_rules.settle(
            self._guard, self._guard_config, member,
            ok=result.ok, reason=result.reason, before=before or never_seen(at),
            proposed=proposed, flipped=flipped, members=self._health, now=at,
        )
        self._guard = out.guard
        with self._lock:
            self._health.update(out.restored)
            self._health[member] = out.health
        self._log.settled(
            ok=result.ok, timeout=result.reason == "timeout",
            flipped=out.flipped, held=flipped and not out.flipped,
        )
        if out.flipped:
            log.info("%s is %s: %s", member.to_text(), out.health.state.value, out.health.reason)
        if out.event is not None:
            self._emit(out.event)
        try:
            self._on_result(
                CheckOutcome(member, result, before, out.health, out.flipped, at, took, late)
            )
        except Exception:
            self._log.count("callback_errors")
            log.exception("on_result failed for %s", member.to_text())

    def _emit(self, event: Suspicion) -> None:
        if event.suspect:
            self._log.count("suspicions")
            log.warning(
                "suspecting the monitor's own network (%s): holding previous states",
                event.reason,
            )
        else:
            log.warning("suspicion cleared: %s", event.reason)
        if self._on_suspicion is None:
            return
        try:
            self._on_suspicion(event)
        except Exception:
            self._log.count("callback_errors")
            log.exception("on_suspicion failed")

    def _force(self) -> None:
        held = self._guard.held
        self._guard, was_on = guard_rules.forced(self._guard)
        if was_on:
            why = "states forced by an operator"
            self._emit(Suspicion(False, time.time(), held, MappingProxyType({}), why))

    def _trigger(self, member: MemberId) -> None:
        if member in self._scopes:
            self._timers.trigger(member)

    def _update(
        self,
        found: dict[MemberId, Target],
        initial: dict[MemberId, MemberHealth],
        pools: Mapping[MemberId, Set[str]] | None,
    ) -> None:
        for member, target in list(self._targets.items()):
            if found.get(member) != target:
                scope = self._scopes.pop(member, None)
                if scope is not None:
                    scope.cancel()
                self._timers.forget(member)
                if member not in found:
                    with self._lock:
                        self._health.pop(member, None)
        old = self._targets
        self._targets = found
        with self._lock:
            for member, health in initial.items():
                if member in found:
                    self._health.setdefault(member, health)
        if pools is not None:
            self._pools = pools
        self._guard_config = self._make_guard_config()
        self._timers.tick = tick_for(t.interval for t in found.values())
        self._per_interval = Counter(t.interval for t in found.values())
        if self._limiter is not None:
            self._limiter.total_tokens = self._bound()
        if self._nursery is None:  # not running: _main spawns every target
            return
        for member, target in found.items():
            if old.get(member) != target:
                self._spawn(target, at_once=member not in self._health)

    def _bound(self) -> int:
        if self._max_concurrency is not None:
            return self._max_concurrency
        return concurrency_needed(self._targets.values())

    def _make_guard_config(self) -> GuardConfig | None:
        window = guard_window(self._targets.values())
        if self._pools is None or window <= 0:
            return None
        return GuardConfig(
            pools=MappingProxyType({m: frozenset(p) for m, p in self._pools.items()}),
            window=window,
            fraction=self._fraction,
        )
