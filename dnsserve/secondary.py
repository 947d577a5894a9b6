"""dnsserve as a secondary: refreshing zones from their primaries (AXFR/IXFR in).

Owns, per ``[[zone]]`` with ``primaries``, one ``SecondaryZone``: a task on
the main loop that waits for its refresh (the SOA timers, or a NOTIFY, or an
operator's ``refresh``), asks the primaries for their SOA serial (UDP, then
TCP when truncated) and, when theirs is later, transfers the zone (IXFR when
we hold a copy, else AXFR; TSIG when the zone names a ``key``). The rules
(timers, RFC 1982, expiry) are ``xfr.refresh``'s; here the clock is read,
the jitter drawn and ``inbound``'s blocking dnspython calls run in worker
threads, each bounded by a timeout.

A transferred version goes through the deletion guard against what is
served (unless the zone sets ``guard = false``): held back, it is reported
and the last good version keeps serving. Accepted, it is written atomically
(temporary file, fsync, rename) to ``<state dir>/secondary/<origin>.zone``
and served by a reload (``staging`` loads the copies beside the zone
files), so a restart serves the last copy at once. Zones past their expire
(or with no copy yet) are handed to the reloader, which answers SERVFAIL
for them until a refresh succeeds.

Must not: answer queries, swap snapshots or build them (the app's callbacks
do), or write anything but the copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.name
import dns.rdtypes.ANY.SOA
import dns.tsig
import dns.zone
from dns.rdatatype import RdataType

from dnsserve import inbound
from dnsserve.answer.lookup import key_parts
from dnsserve.config_schema import ZoneConfig
from dnsserve.config_values import parse_hostport
from dnsserve.daemonthread import in_daemon_thread
from dnsserve.errors import ConfigError, DnsServeError
from dnsserve.inbound import TransferError
from dnsserve.settings import Settings
from dnsserve.statuspage import SecondaryDoc
from dnsserve.transfers import load_keyring
from dnsserve.xfr import refresh
from dnsserve.xfr.refresh import Action, RefreshState, Timers
from dnsserve.zones.compile import compile_zone
from dnsserve.zones.deletions import check_deletions
from dnsserve.zones.table import closest_origin
from dnsserve.zones.versions import Record, ZoneContent, zone_content

log = logging.getLogger("dnsserve")


@dataclass(frozen=True, slots=True)
class Hooks:
    """What a secondary zone asks of the rest of the server (the app wires these)."""

    served: Callable[[dns.name.Name], ZoneContent | None]  # the content served now
    protected: Callable[[dns.name.Name], Collection[tuple[dns.name.Name, RdataType]]]
    serve: Callable[[], Awaitable[tuple[bool, str]]]  # load the copies (a reload)
    expired: Callable[[frozenset[dns.name.Name]], None]  # zones to answer SERVFAIL


@dataclass
class SecondaryZone:
    """One secondary zone: its refresh task, its state and its counters."""

    config: ZoneConfig
    path: Path  # the copy
    hooks: Hooks
    keyring: Mapping[dns.name.Name, dns.tsig.Key]
    fraction: float  # server.max_delete_fraction
    state: RefreshState = field(default_factory=RefreshState)
    refreshes: int = 0
    failures: int = 0
    held_back: int = 0
    transfers: dict[str, int] = field(default_factory=lambda: {"axfr": 0, "ixfr": 0})
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _refreshing: bool = False
    _again: bool = False  # a NOTIFY came during a refresh: refresh once more after it

    @property
    def origin(self) -> dns.name.Name:
        return dns.name.from_text(self.config.name)

    @property
    def key(self) -> dns.tsig.Key | None:
        if self.config.key is None:
            return None
        return self.keyring.get(dns.name.from_text(self.config.key))

    def start(self, now: float) -> None:
        """The state from the copy on disk (served already): refresh at once."""
        content = self.hooks.served(self.origin)
        if content is not None and self.path.is_file():
            soa = _soa_of(content)
            self.state = refresh.loaded(content.serial, _timers(soa), self.path.stat().st_mtime,
                                        now)

    def notify_allowed(self, peer: str, key_name: dns.name.Name | None) -> str:
        """Why a NOTIFY from ``peer`` (TSIG-verified as ``key_name``) is refused, or ""."""
        if self.config.key is not None and key_name != dns.name.from_text(self.config.key):
            return f"not signed with the zone's key {self.config.key}"
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return f"{peer} is not an address"
        if self.config.allow_notify:
            if any(address in ipaddress.ip_network(p, strict=False)
                   for p in self.config.allow_notify):
                return ""
            return f"{peer} is not in allow_notify"
        if any(address == ipaddress.ip_address(parse_hostport(p, default_port=53)[0])
               for p in self.config.primaries):
            return ""
        return f"{peer} is none of the primaries (allow_notify is empty)"

    def wake(self) -> None:
        """Refresh now (a NOTIFY, or an operator's request); during a refresh, once
        more after it (RFC 1996 §4.4: the change may be newer than what it asked for)."""
        self._again = self._refreshing
        self.state = refresh.notified(self.state, time.time())
        self._wake.set()

    def status(self, now: float) -> SecondaryDoc:
        s = self.state
        return SecondaryDoc(
            zone=self.config.name, primaries=self.config.primaries, serial=s.serial,
            last_refresh=s.last_refresh, last_success=s.last_success,
            next_refresh=s.next_refresh, expires_at=s.expires_at(), expired=s.expired(now),
            last_error=s.last_error, refreshes=self.refreshes, failures=self.failures,
            transfers=dict(self.transfers), held=self.held_back,
        )

    async def run(self, changed: Callable[[], None]) -> None:
        """Refresh when due, forever; ``changed`` after every refresh and expiry.

        A bug in one round is logged and the next round comes ``retry`` seconds
        later: the zone's task must not end while the server runs.
        """
        while True:
            try:
                await self._round(changed)
            except Exception:
                log.exception("zone %s: refresh task error; going on", self.config.name)
                await asyncio.sleep(self.state.timers.retry)

    async def _round(self, changed: Callable[[], None]) -> None:
        now = time.time()
        due = self.state.next_refresh
        expires = self.state.expires_at()
        if expires is not None and expires > now:
            due = min(due, expires)
        if due > now:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(due - now):
                    await self._wake.wait()
            self._wake.clear()
            changed()  # an expiry may have come
            return
        await self.refresh()
        changed()

    async def refresh(self) -> None:
        """One refresh: check the serial, transfer when later, serve the result."""
        self._refreshing, self._again = True, False
        try:
            await self._refresh()
        finally:
            self._refreshing = False
        if self._again:
            self.state = refresh.notified(self.state, time.time())

    async def _refresh(self) -> None:
        self.refreshes += 1
        errors = []
        for primary in self.config.primaries:
            try:
                if await self._refresh_from(primary):
                    return
            except (DnsServeError, OSError, ValueError, dns.exception.DNSException) as exc:
                errors.append(f"{primary}: {inbound.error_text(exc)}")
            except Exception as exc:  # a bug must not end the zone's refresh task
                log.exception("refreshing zone %s from %s", self.config.name, primary)
                errors.append(f"{primary}: internal error: {exc!r}")
        self.failures += 1
        error = "; ".join(errors) or "no primary"
        # a primary down for hours must not log every retry: only a new reason
        level = logging.DEBUG if error == self.state.last_error else logging.WARNING
        log.log(level, "zone %s: refresh failed (%s); retrying every %d s", self.config.name,
                error, self.state.timers.retry)
        self.state = refresh.failed(self.state, error, time.time(), _draw())

    async def _refresh_from(self, primary: str) -> bool:
        """True when the refresh is over (current, transferred, or held back)."""
        host, port = parse_hostport(primary, default_port=53)
        served = self.hooks.served(self.origin)
        ours = served.serial if served is not None else None
        theirs = await in_daemon_thread(self._soa_serial, host, port, name="dnsserve-refresh")
        decided = refresh.action(ours, theirs)
        if decided is Action.CURRENT:
            assert served is not None
            with contextlib.suppress(OSError):
                os.utime(self.path)  # the copy's mtime: when it was last confirmed current
            self.state = refresh.succeeded(self.state, theirs, _timers(_soa_of(served)),
                                           time.time(), _draw())
            return True
        if decided is Action.BEHIND:
            raise TransferError(f"its serial {theirs} is older than ours ({ours}): not taken "
                                "(RFC 1982)")
        zone, kind = await in_daemon_thread(self._transfer, host, port, ours is not None,
                                          name="dnsserve-refresh")
        content = zone_content(compile_zone(zone, file=f"<transfer from {primary}>", lines={}))
        if refresh.action(ours, content.serial) is Action.BEHIND:  # changed since its SOA
            raise TransferError(f"transferred serial {content.serial} is older than ours "
                                f"({ours}): not taken (RFC 1982)")
        if served is not None and self.config.guard:
            lines = check_deletions(served, content, protected=self.hooks.protected(self.origin),
                                    max_delete_fraction=self.fraction)
            if lines:
                self.held_back += 1
                error = (f"serial {content.serial} from {primary} held back by the deletion "
                         f"guard (still serving {served.serial}): {'; '.join(lines)}")
                log.error("zone %s: %s", self.config.name, error)
                self.state = refresh.held(self.state, error, time.time(), _draw())
                return True
        await in_daemon_thread(inbound.write_copy, self.path, zone, name="dnsserve-refresh")
        ok, message = await self.hooks.serve()
        if not ok:
            raise TransferError(f"serial {content.serial} transferred ({kind}) but not served: "
                                f"{message}")
        self.transfers[kind] += 1
        log.info("zone %s: serial %d from %s by %s", self.config.name, content.serial, primary,
                 kind.upper())
        self.state = refresh.succeeded(self.state, content.serial,
                                       _timers(_soa_of(content)), time.time(), _draw())
        return True

    def _key(self) -> dns.tsig.Key | None:
        key = self.key
        if key is None and self.config.key is not None:
            raise TransferError(f"the key {self.config.key} could not be loaded")
        return key

    def _soa_serial(self, host: str, port: int) -> int:
        """The primary's SOA serial (a worker thread; a test replaces it)."""
        return inbound.soa_serial(self.origin, host, port, self._key())

    def _transfer(self, host: str, port: int, incremental: bool) -> tuple[dns.zone.Zone, str]:
        """AXFR, or IXFR onto our copy (a worker thread; a test replaces it)."""
        got = inbound.transfer(self.origin, host, port, self._key(),
                               self.path if incremental else None)
        return got.zone, got.kind


def _soa_of(content: ZoneContent) -> dns.rdtypes.ANY.SOA.SOA:
    apex = content.origin.to_digestable()
    for rr in content.records:  # the apex sorts first
        if not rr.startswith(apex):
            break
        record = Record.from_wire(rr)
        if record.rdtype == RdataType.SOA:
            soa = record.to_rdata()
            assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
            return soa
    raise TransferError(f"no SOA at the apex of {content.origin}")


def _timers(soa: dns.rdtypes.ANY.SOA.SOA) -> Timers:
    return Timers.from_soa(int(soa.refresh), int(soa.retry), int(soa.expire))


def _draw() -> float:
    return random.uniform(0.0, refresh.MAX_JITTER)


class Secondaries:
    """Every secondary zone of the config: their tasks, the expired set, status."""

    def __init__(self, settings: Settings, hooks: Hooks) -> None:
        self.hooks = hooks
        self.zones: dict[dns.name.Name, SecondaryZone] = {}
        self._tasks: dict[dns.name.Name, asyncio.Task[None]] = {}
        self._expired: frozenset[dns.name.Name] | None = None
        self._running = False
        self._follow(settings)

    def _follow(self, settings: Settings) -> list[SecondaryZone]:
        """Take the config's secondary zones: new ones made (and returned), gone ones
        dropped, the others given their new settings."""
        wanted = {dns.name.from_text(z.name): z for z in settings.config.zone if z.primaries}
        copies = settings.secondary_copies()
        keyring: Mapping[dns.name.Name, dns.tsig.Key] = {}
        if wanted:
            base = settings.config_path.parent if settings.config_path else Path.cwd()
            try:
                keyring = load_keyring(settings.config, base)
            except ConfigError as exc:  # the app stops the start for it; on a reload, say so
                log.error("secondary zones: %s; transfers that need a key fail", exc)
        for origin in [o for o in self.zones if o not in wanted]:
            del self.zones[origin]
            task = self._tasks.pop(origin, None)
            if task is not None:
                task.cancel()
        made = []
        for origin, config in wanted.items():
            zone = self.zones.get(origin)
            if zone is None:
                zone = self.zones[origin] = SecondaryZone(
                    config, copies[origin], self.hooks,
                    keyring, settings.server.max_delete_fraction,
                )
                made.append(zone)
            else:
                zone.config, zone.keyring = config, keyring
                zone.fraction = settings.server.max_delete_fraction
        return made

    def start(self) -> None:
        """On the main loop: take each copy's state, tell the reloader what has
        expired, and start the refresh tasks."""
        self._running = True
        self._start(list(self.zones.values()))

    def _start(self, zones: list[SecondaryZone]) -> None:
        now = time.time()
        for zone in zones:
            zone.start(now)
        self.changed()
        for zone in zones:
            self._tasks[zone.origin] = asyncio.ensure_future(zone.run(self.changed))

    def apply(self, settings: Settings) -> None:
        """After a reload: follow the config's secondary zones (added, removed, changed)."""
        if self._running:
            self._start(self._follow(settings))
            self.changed()

    def changed(self) -> None:
        now = time.time()
        expired = frozenset(o for o, z in self.zones.items() if z.state.expired(now))
        if expired != self._expired:
            for origin in expired - (self._expired or frozenset()):
                why = self.zones[origin].state.last_error or "no copy yet"
                log.error("zone %s expired: answering SERVFAIL until a refresh succeeds (%s)",
                          origin, why)
            for origin in (self._expired or frozenset()) - expired:
                log.info("zone %s: serving again", origin)
            self._expired = expired
            self.hooks.expired(expired)

    def wake(self, origin: dns.name.Name) -> bool:
        """Refresh ``origin`` now; False when it is not a secondary zone."""
        zone = self.zones.get(origin)
        if zone is None:
            return False
        zone.wake()
        return True

    def on_notify(
        self, origin: dns.name.Name, peer: str, key_name: dns.name.Name | None
    ) -> bool | None:
        """A NOTIFY for ``origin`` from ``peer`` (its TSIG verified as ``key_name``):
        True (NOERROR) and a refresh at once when it is allowed, False (REFUSED) when
        not, None when ``origin`` is not a secondary zone (the hand-off answers)."""
        zone = self.zones.get(origin)
        if zone is None:
            log.info("NOTIFY for %s from %s ignored: not a secondary zone", origin, peer)
            return None
        why = zone.notify_allowed(peer, key_name)
        if why:
            log.warning("NOTIFY for %s from %s refused: %s", origin, peer, why)
            return False
        log.info("NOTIFY for %s from %s: refreshing now", origin, peer)
        zone.wake()
        return True

    def expire_for_key(self, key: bytes) -> int | None:
        """The engine's RFC 7314 EXPIRE callback: the seconds left of the secondary
        zone that holds the query's name (an answer key), None for other zones."""
        qname = key_parts(key)[0]
        origin = closest_origin(qname, self.zones)
        return None if origin is None else self.zones[origin].state.remaining(time.time())

    def status(self) -> list[SecondaryDoc]:
        now = time.time()
        return [z.status(now) for z in self.zones.values()]

    async def stop(self) -> None:
        self._running = False
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
