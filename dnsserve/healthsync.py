"""Health state, kept in step: the monitor thread, the loop's view and the state file.

Owns the route of every health fact from where it is decided to where it is
read: the monitor's results into the main loop's ``HealthView`` and into the
state file; overrides (drain, force-up) from the control API and from
``overrides.toml`` into the view, with their expiry; the recent-events ring
the status and events endpoints read; and the alarm when the monitor thread
dies. Also maps the config's monitors and pools to the monitor's targets
(``check_spec``, ``targets``, ``pool_names``).

One source, two copies. A member's real health (state, counters, last check)
has one source: the tracker state the monitor thread holds (``Monitor.health()``).
Derived from it:

    HealthSync.view   the main loop's copy, replaced on every flip the monitor
                      reports (and on suspicion and overrides); the answers
                      are selected from it. Counters there may lag: only
                      states matter to answers.
    the state file    a record written after the fact by the writer thread
                      (flips with their events, counters as they move), read
                      at start to seed the monitor, never per query.

Overrides have the view as their source while the server runs (the control
API changes it on the loop); the state file keeps the API's overrides for
the next start, and ``overrides.toml`` (beside the zones directory) declares
overrides in git: applied at start and on every reload, and removed when
they leave the file.

Threads: ``on_result``/``on_suspicion`` run in the monitor thread and only
hand work on (``loop.call_soon_threadsafe`` for the view, the ``Writer`` for
the file). Everything else runs on the main loop and never waits for the
state file: writes are queued, and the state file is read only at start.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from dnsserve.answer.policies import Pool
from dnsserve.config import member_ids
from dnsserve.errors import ConfigError
from dnsserve.health.guard import Suspicion
from dnsserve.health.model import HealthView, MemberHealth, MemberId, OverrideEntry, State
from dnsserve.health.monitor import Monitor
from dnsserve.health.targets import CheckOutcome
from dnsserve.health_inputs import OVERRIDES_FILE, pool_names, read_overrides_file, targets
from dnsserve.metrics import ServerMetrics
from dnsserve.settings import Settings
from dnsserve.statewriter import Writer
from dnsserve.store import ALARM_MEMBER, Event, Store

log = logging.getLogger("dnsserve")

EVENT_RING = 10_000  # recent events kept in memory for status and /api/v1/events
ALIVE_POLL = 1.0  # seconds between looks at the monitor thread and the state file


OnChange = Callable[[str], None]  # main loop: the view changed, for this reason


@dataclass(frozen=True, slots=True)
class LastCheck:
    """A member's most recent check, for status."""

    ok: bool
    result: str
    took: float
    at: float


class HealthSync:
    """The monitor, the state file and the loop's ``HealthView``, kept in step."""

    def __init__(
        self, settings: Settings, on_change: OnChange, metrics: ServerMetrics | None = None
    ) -> None:
        self.settings = settings
        self.view = HealthView()
        self.monitor: Monitor | None = None
        self.events: collections.deque[Event] = collections.deque(maxlen=EVENT_RING)
        self.checks: dict[MemberId, LastCheck] = {}  # written by the monitor thread
        self.suspect_since: tuple[float, str] | None = None
        self.monitor_lost = False
        self._metrics = metrics
        self._on_change = on_change
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: asyncio.Future[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._event_id = 0
        self._file_id: tuple[int, int] | None = None
        self._reopening = False
        self.writer = Writer(settings.state_path, on_recover=self._rewrite)

    @property
    def store_problem(self) -> str | None:
        """Why the state file is not being written, or None."""
        return self.writer.problem

    @property
    def overrides_path(self) -> Path:
        return self.settings.zones_dir.parent / OVERRIDES_FILE

    # -- lifecycle (main loop) ---------------------------------------------------

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the state file; the view starts from its states, overrides and events.

        A state file that cannot be opened leaves health in memory (the
        writer retries); it never stops the server.
        """
        self._loop = loop
        store = self.writer.open_now()
        self._file_id = _file_id(self.settings.state_path)
        states: dict[MemberId, MemberHealth] = {}
        overrides: dict[MemberId, OverrideEntry] = {}
        if store is not None:
            try:
                states = store.load_states()
                overrides = store.load_overrides(time.time())
                self.events.extend(reversed(store.events(limit=1000)))
            except Exception as exc:  # a damaged row must not stop DNS
                log.error("state file %s: %s; starting with no recorded health",
                          self.settings.state_path, exc)
        known = set(member_ids(self.settings.config))
        for member in sorted(set(overrides) - known):
            log.warning(
                "override %s for %s: no pool in %s has this member; it has no effect",
                overrides[member].kind.value, member.to_text(), self.settings.config_name,
            )
        if self.events:
            self._event_id = max(e.id for e in self.events)
        self.writer.start()
        self.view = HealthView(
            members=MappingProxyType(states), overrides=MappingProxyType(overrides)
        )
        self._schedule_expiry()

    def apply_pools(self, pools: Sequence[Pool], settings: Settings) -> None:
        """Check every member of ``pools`` (start, or a reload changed them).

        Members that stay keep their state and history; new ones start
        unseen (up) and are checked at once; removed ones stop being checked.
        """
        self.settings = settings
        monitor_targets = targets(settings.config, pools)
        if self.monitor is None:
            if not monitor_targets:
                return
            self.monitor = Monitor(
                monitor_targets,
                dict(self.view.members),
                self.on_result,
                pools=pool_names(pools),
                suspect_fraction=settings.server.suspect_fraction,
                on_suspicion=self.on_suspicion,
            )
            self.monitor.start()
            self._poller = asyncio.ensure_future(self._watch())
            return
        self.monitor.update_members(monitor_targets, dict(self.view.members), pool_names(pools))

    def stop_monitor(self) -> None:
        """Stop checking; the state file stays open for the last writes."""
        if self._poller is not None:
            self._poller.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
        if self.monitor is not None:
            self.monitor.stop()

    def close(self) -> None:
        """Stop the monitor, finish pending writes, close the state file."""
        self.stop_monitor()
        self.writer.close()

    # -- the monitor thread --------------------------------------------------------

    def on_result(self, outcome: CheckOutcome) -> None:
        """Monitor thread: hand a flip to the main loop, then queue its record.

        A check that does not flip changes no answer, so only flips cross to
        the main loop; the state file is written by the writer thread, so a
        slow or locked file never delays a flip or the next check.
        """
        assert self._loop is not None
        member, health, before = outcome.member, outcome.health, outcome.before
        self.checks[member] = LastCheck(
            outcome.result.ok, outcome.result.reason, outcome.took, outcome.at
        )
        if self._metrics is not None:
            self._metrics.check_duration.labels(monitor=member.monitor).observe(outcome.took)
            self._metrics.check_lateness.labels(monitor=member.monitor).observe(outcome.late)
            if not outcome.result.ok:
                self._metrics.check_failures.labels(monitor=member.monitor).inc()
        if outcome.flipped:
            if self._metrics is not None:
                self._metrics.state_changes.labels(
                    monitor=member.monitor, to=health.state.value
                ).inc()
            old = before.state if before else None
            self._loop.call_soon_threadsafe(self._apply_health, member, health, old, outcome.at)
            self.writer.submit(functools.partial(
                Store.record_transition, member=member, old=old, new=health.state,
                reason=health.reason, at=outcome.at, health=health,
            ))
        elif (before is None or not outcome.result.ok or before.failures
              or before.state is State.DOWN):
            # First sight, or counters moving toward (or away from) a flip;
            # a steady member writes nothing.
            self.writer.submit(functools.partial(Store.save_state, member=member, health=health))

    def on_suspicion(self, event: Suspicion) -> None:
        """Monitor thread: show the suspicion, then record the alarm and restored members."""
        assert self._loop is not None
        if self._metrics is not None and event.suspect:
            self._metrics.suspicions.inc()
        self._loop.call_soon_threadsafe(self._apply_suspicion, event)
        kind = "suspicion" if event.suspect else "suspicion-cleared"
        self.writer.submit(functools.partial(
            Store.record_alarm, kind=kind, reason=event.reason, at=event.at
        ))
        for member, health in event.restored.items():
            # The guard restores only members it saw flip down (guard.Suspicion).
            self.writer.submit(functools.partial(
                Store.record_transition, member=member, old=State.DOWN, new=health.state,
                reason="suspicion", at=event.at, health=health,
            ))

    # -- the main loop -----------------------------------------------------------

    def _event(self, member: str, from_state: str | None, to_state: str, reason: str,
               at: float) -> None:
        """Remember an event for status and /api/v1/events (the file has its own)."""
        self._event_id += 1
        monitor = "" if member == ALARM_MEMBER else member.partition("/")[0]
        self.events.append(Event(self._event_id, at, member, monitor, from_state, to_state,
                                 reason))

    def _apply_health(
        self, member: MemberId, health: MemberHealth, old: State | None, at: float
    ) -> None:
        members = dict(self.view.members)
        members[member] = health
        self.view = replace(self.view, members=MappingProxyType(members))
        self._event(member.to_text(), old.value if old else None, health.state.value,
                    health.reason, at)
        self._on_change(f"{member.to_text()} {health.state.value}: {health.reason}")

    def _apply_suspicion(self, event: Suspicion) -> None:
        members = {**self.view.members, **event.restored}
        self.view = replace(
            self.view, members=MappingProxyType(members), suspect=event.suspect
        )
        self.suspect_since = (event.at, event.reason) if event.suspect else None
        self._event(ALARM_MEMBER, None, "suspicion" if event.suspect else "suspicion-cleared",
                    event.reason, event.at)
        self._on_change("suspicion " + ("entered" if event.suspect else "cleared"))

    # -- overrides ---------------------------------------------------------------

    def set_override(self, member: MemberId, entry: OverrideEntry) -> None:
        """An operator's drain or force-up: in the answers now, in the file after."""
        self._replace_overrides({**self.view.overrides, member: entry})
        until = "" if entry.until is None else " until " + datetime.fromtimestamp(
            entry.until, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        self._record_override(member, entry.kind.value, f"{entry.reason}{until}".strip())
        if entry.source == "api":
            self.writer.submit(functools.partial(
                Store.set_override, member=member, entry=entry, at=entry.set_at or time.time()
            ))
        if self.monitor is not None:
            # An operator forced states: that ends a suspicion.
            self.monitor.clear_suspicion()
        self._on_change(f"{entry.kind.value} {member.to_text()}")

    def clear_override(self, member: MemberId, why: str = "removed") -> bool:
        """Remove ``member``'s override; False when it had none."""
        if member not in self.view.overrides:
            return False
        overrides = dict(self.view.overrides)
        entry = overrides.pop(member)
        self._replace_overrides(overrides)
        self._record_override(member, f"{entry.kind.value}-{why}", entry.reason)
        self.writer.submit(functools.partial(Store.clear_override, member=member))
        self._on_change(f"override of {member.to_text()} {why}")
        return True

    def apply_overrides_file(self, known: Collection[MemberId]) -> list[str]:
        """Take ``overrides.toml`` again: its entries replace the file's previous
        ones. Returns problems: a file that does not read leaves the file's
        entries as they were; an entry for a member in no pool (``known``) is
        left out (a typo must not become a drain that does nothing)."""
        try:
            wanted = read_overrides_file(self.overrides_path, time.time())
        except ConfigError as exc:
            log.error("%s", exc)
            return [str(exc)]
        problems = []
        for member in sorted(set(wanted) - set(known)):
            del wanted[member]
            problems.append(f"{self.overrides_path}: {member.to_text()}: in no pool; "
                            "its override is left out")
            log.error("%s", problems[-1])
        current = dict(self.view.overrides)
        for member, entry in list(current.items()):
            if entry.source == "file" and member not in wanted:
                del current[member]
                self._record_override(member, f"{entry.kind.value}-removed",
                                      "left overrides.toml")
        for member, entry in wanted.items():
            old = current.get(member)
            if old is None or (old.kind, old.until, old.reason) != (
                entry.kind, entry.until, entry.reason
            ):
                current[member] = entry
                self._record_override(member, entry.kind.value, entry.reason)
        if current != dict(self.view.overrides):
            self._replace_overrides(current)
            self._on_change("overrides.toml")
        return problems

    def _record_override(self, member: MemberId, what: str, reason: str) -> None:
        at = time.time()
        self._event(member.to_text(), None, what, reason, at)
        self.writer.submit(functools.partial(
            Store.record_event, member=member.to_text(), monitor=member.monitor,
            from_state=None, to_state=what, reason=reason, at=at,
        ))
        log.info("%s: %s (%s)", member.to_text(), what, reason or "no reason given")

    def _replace_overrides(self, overrides: Mapping[MemberId, OverrideEntry]) -> None:
        self.view = replace(self.view, overrides=MappingProxyType(dict(overrides)))
        self._schedule_expiry()

    def _schedule_expiry(self) -> None:
        """Wake at the next override's expiry (timers, not polling)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        ends = [e.until for e in self.view.overrides.values() if e.until is not None]
        if ends and self._loop is not None:
            delay = max(0.0, min(ends) - time.time())
            self._expiry = self._loop.call_later(delay, self._expire)

    def _expire(self) -> None:
        now = time.time()
        gone = [m for m, e in self.view.overrides.items()
                if e.until is not None and e.until <= now]
        for member in gone:
            self.clear_override(member, "expired")
        self._schedule_expiry()

    # -- the state file --------------------------------------------------------------

    def _rewrite(self, store: Store) -> None:
        """Writer thread, after the state file works again: write what memory holds."""
        if self.monitor is not None:
            store.save_states(self.monitor.health())
        for member, entry in dict(self.view.overrides).items():
            if entry.source == "api":
                store.set_override(member, entry, entry.set_at or time.time())

    async def _watch(self) -> None:
        """Say loudly when the monitor thread dies; probe a failing state file."""
        while True:
            await asyncio.sleep(ALIVE_POLL)
            if self.monitor is not None and not self.monitor.alive and not self.monitor_lost:
                # Answers keep the last states; say so loudly and in the state file.
                self.monitor_lost = True
                log.critical("the monitor thread died: health answers are frozen at the "
                             "last states until a restart")
                reason = "monitor thread died; states frozen"
                self._event(ALARM_MEMBER, None, "monitor-died", reason, time.time())
                self.writer.submit(functools.partial(
                    Store.record_alarm, kind="monitor-died", reason=reason, at=time.time(),
                ))
            now_id = await asyncio.to_thread(_file_id, self.settings.state_path)
            if self._reopening:  # the writer made the file again: remember the new one
                self._file_id, self._reopening = now_id, False
            elif now_id != self._file_id and self.writer.problem is None:
                log.error("state file %s was deleted or replaced; reopening it",
                          self.settings.state_path)
                self.writer.reopen()
                self._reopening = True
            if self.writer.problem is not None and self.monitor is not None:
                # A write that works again is how the writer notices recovery.
                self.writer.submit(functools.partial(
                    Store.save_states, states=self.monitor.health()
                ))


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``, or None when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino
