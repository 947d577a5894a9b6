"""Health state, kept in step: the monitor thread, the loop's view and the state file.

Owns the route of every health fact from where it is decided to where it is
read: the monitor's results into the main loop's ``HealthView`` and into the
state file, overrides (drain, force-up) from the state file into the view,
the state file itself (opened at start, reopened when it is replaced), and the
alarm when the monitor thread dies. Also maps the config's monitors and pools
to the monitor's targets (``check_spec``, ``targets``, ``pool_names``).

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

Overrides have the state file as their source (``dnsserve drain`` writes it);
the view takes them every ``OVERRIDE_POLL`` seconds and on reload.

Threads: ``on_result``/``on_suspicion`` run in the monitor thread and only
hand work on (``loop.call_soon_threadsafe`` for the view, the ``Writer`` for
the file). Everything else runs on the main loop; state-file reads run in
worker threads so a locked file never stalls answers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import dns.rcode
import dns.rdatatype

from dnsserve.answer.policies import Pool
from dnsserve.config import Config, MonitorConfig, member_ids
from dnsserve.health.guard import Suspicion
from dnsserve.health.model import HealthView, MemberHealth, MemberId, State
from dnsserve.health.monitor import CheckOutcome, Monitor, Target
from dnsserve.health.probes import CheckSpec
from dnsserve.settings import Settings
from dnsserve.store import Store, Writer

log = logging.getLogger("dnsserve")

OVERRIDE_POLL = 1.0  # seconds between reads of the overrides in the state file

OnChange = Callable[[str], None]  # main loop: the view changed, for this reason


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


def pool_names(pools: Sequence[Pool]) -> dict[MemberId, set[str]]:
    """Which pools each member serves (for the self-suspicion guard)."""
    out: dict[MemberId, set[str]] = {}
    for pool in pools:
        name = f"{pool.owner}/{dns.rdatatype.to_text(pool.rdtype)}"
        for pm in pool.members:
            out.setdefault(pm.member, set()).add(name)
    return out


class HealthSync:
    """The monitor, the state file and the loop's ``HealthView``, kept in step."""

    def __init__(self, settings: Settings, on_change: OnChange) -> None:
        self.settings = settings
        self.view = HealthView()
        self.store: Store | None = None
        self.writer: Writer | None = None
        self.monitor: Monitor | None = None
        self._on_change = on_change
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state_id: tuple[int, int] | None = None
        self._poller: asyncio.Future[None] | None = None

    # -- lifecycle (main loop) ---------------------------------------------------

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the state file; the view starts from its states and overrides."""
        self._loop = loop
        path = self.settings.state_path
        self.store = Store.open(path)
        self._state_id = _file_id(path)
        self.writer = Writer(self.store)
        states = self.store.load_states()
        overrides = self.store.load_overrides(time.time())
        known = set(member_ids(self.settings.config))
        for member in sorted(set(overrides) - known):
            log.warning(
                "override %s for %s: no pool in %s has this member; it has no effect",
                overrides[member].kind.value, member.to_text(), self.settings.config_name,
            )
        self.view = HealthView(
            members=MappingProxyType(states), overrides=MappingProxyType(overrides)
        )

    def start_monitor(self, pools: Sequence[Pool]) -> None:
        """Start checking every member of ``pools``, from the states in the view."""
        self.monitor = Monitor(
            targets(self.settings.config, pools),
            dict(self.view.members),
            self.on_result,
            pools=pool_names(pools),
            suspect_fraction=self.settings.server.suspect_fraction,
            on_suspicion=self.on_suspicion,
        )
        self.monitor.start()
        self._poller = asyncio.ensure_future(self._poll_forever())

    def stop_monitor(self) -> None:
        """Stop checking (and polling overrides); the state file stays open."""
        if self._poller is not None:
            self._poller.cancel()
        if self.monitor is not None:
            self.monitor.stop()

    def close(self) -> None:
        """Stop the monitor, finish pending writes, close the state file."""
        self.stop_monitor()
        if self.writer is not None:
            self.writer.close()
        if self.store is not None:
            self.store.close()

    # -- the monitor thread --------------------------------------------------------

    def on_result(self, outcome: CheckOutcome) -> None:
        """Monitor thread: hand a flip to the main loop, then queue its record.

        A check that does not flip changes no answer, so only flips cross to
        the main loop; the state file is written by the writer thread, so a
        slow or locked file never delays a flip or the next check.
        """
        assert self.writer is not None and self._loop is not None
        member, health, before = outcome.member, outcome.health, outcome.before
        if outcome.flipped:
            self._loop.call_soon_threadsafe(self._apply_health, member, health)
            self.writer.submit(functools.partial(
                Store.record_transition, member=member,
                old=before.state if before else None, new=health.state,
                reason=health.reason, at=outcome.at, health=health,
            ))
        elif (before is None or not outcome.result.ok or before.failures
              or before.state is State.DOWN):
            # First sight, or counters moving toward (or away from) a flip;
            # a steady member writes nothing.
            self.writer.submit(functools.partial(Store.save_state, member=member, health=health))

    def on_suspicion(self, event: Suspicion) -> None:
        """Monitor thread: show the suspicion, then record the alarm and restored members."""
        assert self.writer is not None and self._loop is not None
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

    def _apply_health(self, member: MemberId, health: MemberHealth) -> None:
        members = dict(self.view.members)
        members[member] = health
        self.view = replace(self.view, members=MappingProxyType(members))
        self._on_change(f"{member.to_text()} {health.state.value}: {health.reason}")

    def _apply_suspicion(self, event: Suspicion) -> None:
        members = {**self.view.members, **event.restored}
        self.view = replace(
            self.view, members=MappingProxyType(members), suspect=event.suspect
        )
        self._on_change("suspicion " + ("entered" if event.suspect else "cleared"))

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
        self._on_change("overrides")

    def _check_state_file(self) -> None:
        """Worker thread: reopen the state file when it was deleted or replaced."""
        assert self.store is not None and self.writer is not None
        path = self.settings.state_path
        if _file_id(path) == self._state_id:
            return
        log.error("state file %s was deleted or replaced; reopening it", path)
        store = Store.open(path)
        self._state_id = _file_id(path)
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
                    self.writer.submit(functools.partial(
                        Store.record_alarm, kind="monitor-died",
                        reason="monitor thread died; states frozen", at=time.time(),
                    ))
            try:
                await self.poll_overrides()
            except Exception:
                log.exception("reading overrides failed")


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``, or None when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino
