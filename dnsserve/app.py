"""The composition root: builds the running server's parts and wires them together.

Owns construction, wiring and the lifecycle only: read the settings, build
the parts, bind the listeners and the control API, handle signals
(SIGTERM/SIGINT stop, SIGHUP reloads zones and config), and stop everything
in order. What each part does lives in its own module:

    settings    the config file with flags applied
    reload      the engine, snapshots, reloads (with the deletion guard) and
                pool re-selection
    healthsync  the monitor thread, the loop's health view, overrides and the
                state file
    operations  what the control API asks of the running server
    control     the control API's HTTP endpoint
    net         the DNS listeners (with ``[server] workers = 1``)
    workers     the answering worker processes (workers >= 2): forked from
                this process, told every swap; this process answers none
    handoff     transfers, NOTIFY in and signed queries (what the engine hands off)
    transfers   the TSIG keyring, each zone's transfer rule, IXFR history
    notify      the NOTIFY sender
    publishing  publish mode: pool answers written into transferred zones
    secondary   the secondary zones' refreshes (AXFR/IXFR in)

Siblings never import each other; this module connects them with callbacks:

    monitor thread --HealthSync.on_result--> writer thread (state file)
                   --call_soon_threadsafe--> main loop: HealthSync.view
                   --on_change--> Reloader.reselect --> Engine.swap
    SIGHUP, POST /api/v1/reload --> Reloader.reload (worker thread) --> commit
                   --on_commit--> zone versions recorded, monitor targets and
                                  overrides.toml applied, the keyring and
                                  transfer rules applied, IXFR history noted,
                                  NOTIFY sent for zones whose serial moved
    health change, commit --poke--> Publisher --on_publish--> IXFR history, NOTIFY
    net --hand_off--> HandOff.handle (AXFR/IXFR, NOTIFY, TSIG) --> messages
    NOTIFY in --HandOff.on_notify--> Secondaries.on_notify --> a refresh now
    SecondaryZone (a copy written) --Hooks.serve--> Reloader.reload
                  (expired or not) --Hooks.expired--> Reloader.set_expired
    every Engine.swap --on_swap--> WorkerSet.serve --> each worker process
    a worker's hand-off --HandOffRequest--> WorkerSet --hand_off--> HandOff.handle
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import secrets
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import dns.name
import uvloop
from dns.rdatatype import RdataType

from dnsserve import net
from dnsserve.answer.edns import keepalive_units
from dnsserve.answer.policies import Pool, Selection
from dnsserve.answer.snapshot import Snapshot
from dnsserve.config_schema import worker_count
from dnsserve.config_values import parse_hostport
from dnsserve.control import ControlServer, start_control
from dnsserve.control_access import TokenError, ensure_token, token_path
from dnsserve.errors import ConfigError, DnsServeError
from dnsserve.handoff import HandOff
from dnsserve.healthsync import HealthSync
from dnsserve.metrics import Registry, server_metrics
from dnsserve.notify import Notifier
from dnsserve.operations import Operations
from dnsserve.publishing import Publisher
from dnsserve.reload import Reloader
from dnsserve.secondary import Hooks, Secondaries
from dnsserve.settings import Settings, defences
from dnsserve.staging import Prepared
from dnsserve.store import Store
from dnsserve.transfers import load_keyring, publish_zones, zone_settings
from dnsserve.workers import WorkerSet
from dnsserve.xfr.outgoing import diff_serials
from dnsserve.xfr.publish import PoolKey, soa_answer
from dnsserve.zones.versions import ZoneContent, ZoneDiff, ZoneVersion, records_wire

log = logging.getLogger("dnsserve")


class Server:
    """One running server: listeners, control API, reloader and health, wired.

    Threads: the main loop owns the health view, the engine and every swap;
    the monitor thread and the state-file writer are ``HealthSync``'s.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        read_settings: Callable[[], Settings] | None = None,
        allow_empty: bool = False,
        force: bool = False,
    ) -> None:
        self.settings = settings
        self.registry = Registry()
        self.metrics = server_metrics(self.registry)
        count = worker_count(settings.server.workers, len(os.sched_getaffinity(0)))
        self.health = HealthSync(settings, on_change=self._health_changed, metrics=self.metrics)
        self.reloader = Reloader(
            settings, view=lambda: self.health.view, read_settings=read_settings,
            on_commit=self._committed, on_swap=self._swapped,
            hot_keys=self._hot_keys if count > 1 else None, on_first=self._first_versions,
        )
        self.secondaries = Secondaries(settings, Hooks(
            served=self._served_content, protected=self._protected, serve=self._serve_copies,
            expired=self.reloader.set_expired,
        ))
        self.ops = Operations(
            self.reloader, self.health, self.registry, self.metrics,
            lambda: self.workers or self.listeners, secondaries=self.secondaries,
            workers=lambda: self.workers, outgoing=self._outgoing_counts,
        )
        self.handoff = HandOff(self._respond, self._contents)
        self.handoff.on_notify = self.secondaries.on_notify  # NOTIFY in: a secondary refreshes
        self.handoff.error_opt = self._error_opt  # our OPT (NSID) on its answers too
        self.notifier = Notifier()
        self.publisher = Publisher(self._file_contents, self._pool_state, self._published)
        self.listeners: net.Listeners | None = None
        # RRL and cookies: made once here, so every worker shares the cookie secret
        self.defences = defences(settings, count, secrets.token_bytes(16))
        # Workers hand transfers, NOTIFY, signed queries and (with secondary
        # zones) EDNS EXPIRE to this process, which holds the keyring, the IXFR
        # history and the secondary zones: HandOff.handle answers them here.
        self.workers = WorkerSet(
            count, settings.server, lambda: self.reloader.engine,
            hand_off=self.handoff.handle_offloaded, defences=self.defences,
        ) if count > 1 else None
        self.control: ControlServer | None = None
        self._allow_empty = allow_empty
        self._force = force
        self._started = False
        self._stop = asyncio.Event()

    async def _hot_keys(self) -> list[bytes]:
        """What a reload warms its snapshot with: the workers' hot keys."""
        return await self.workers.hot_keys() if self.workers is not None else []

    def _respond(self, data: bytes, *, tcp: bool) -> bytes | None:
        """The engine's answer to what ``HandOff`` answers (a signed query's unsigned
        form): without a server cookie, as with workers (the cookie hook holds the
        client of the last query the guard passed, not this one's)."""
        engine = self.reloader.engine
        if engine is None:
            return None
        cookies, engine.cookies = engine.cookies, None
        try:
            return engine.respond(data, tcp=tcp)
        finally:
            engine.cookies = cookies

    def _error_opt(self, data: bytes, tcp: bool) -> bytes:
        """The engine's OPT for an answer ``HandOff`` makes itself (b"": no engine yet)."""
        engine = self.reloader.engine
        return b"" if engine is None else engine.error_opt(data, tcp)

    def _outgoing_counts(self) -> dict[str, int]:
        h, n = self.handoff.stats, self.notifier.stats
        return {
            "axfr": h.axfr, "ixfr": h.ixfr, "refused": h.refused, "notauth": h.notauth,
            "notify_sent": n.sent, "notify_acknowledged": n.acknowledged,
            "notify_given_up": n.given_up, "published": self.publisher.publications,
        }

    def _file_contents(self) -> Mapping[dns.name.Name, ZoneContent]:
        served = self.reloader.served
        return {} if served is None else served.contents

    def _contents(self) -> dict[dns.name.Name, ZoneContent]:
        """What transfers give: the zone files' contents, published ones in their place."""
        return {**self._file_contents(), **self.publisher.published}

    def _pool_state(self) -> tuple[Sequence[Pool], Mapping[PoolKey, Selection]]:
        engine = self.reloader.engine
        return self.reloader.pools, ({} if engine is None else engine.snapshot.selections)

    def _published(
        self, origin: dns.name.Name, content: ZoneContent, changes: ZoneDiff | None
    ) -> None:
        if changes is not None and diff_serials(changes) is not None:
            self.handoff.history.add(origin, changes)
        self._serve_published_soa()
        self._notify(origin, at_once=True)

    def _serve_published_soa(self) -> None:
        """The engine answers each published zone's apex SOA with the published serial."""
        engine = self.reloader.engine
        if engine is None or not self.publisher.published:
            return
        entries = dict(soa_answer(c) for c in self.publisher.published.values())
        snapshot = engine.snapshot
        engine.swap(dataclasses.replace(snapshot, answers={**snapshot.answers, **entries}))
        if self.workers is not None:
            self.workers.answers(entries)  # an unsigned serial check reaches a worker

    def _apply_transfers(self, settings: Settings) -> None:
        """The keyring and the zones' transfer rules of ``settings``. A key file that
        cannot be read stops the start (ConfigError); on a reload the old ones stay."""
        base = settings.config_path.resolve().parent if settings.config_path else Path.cwd()
        try:
            keyring = load_keyring(settings.config, base)
            zones = zone_settings(settings.config)
        except ConfigError as exc:
            if not self._started:
                raise  # at start: the server does not run without the keys it was given
            log.error("TSIG keys or transfer rules not applied (the previous ones stay): %s", exc)
            return
        self.handoff.keyring = keyring
        self.handoff.zones = zones
        engine = self.reloader.engine
        if engine is not None:
            engine.keyring = keyring
            engine.hand_off = True

    def _notify(self, origin: dns.name.Name, *, at_once: bool = False) -> None:
        """NOTIFY the zone's secondaries: after a load or reload with the notifier's
        delay, and with workers once every worker answers the new serial (a
        secondary asks one of them for the SOA next); for a publication
        ``at_once`` (publish mode serves from this process alone)."""
        if self.workers is not None and not at_once:
            self.workers.after_settled(functools.partial(self._notify_now, origin))
        else:
            self._notify_now(origin, at_once=at_once)

    def _notify_now(self, origin: dns.name.Name, *, at_once: bool = False) -> None:
        zone = self.handoff.zones.get(origin)
        if zone is None or not zone.notify:
            return
        key = self.handoff.keyring.get(zone.notify_key) if zone.notify_key else None
        self.notifier.notify(origin, zone.notify, key, delay=0.0 if at_once else None)

    def _served_content(self, origin: dns.name.Name) -> ZoneContent | None:
        served = self.reloader.served
        return served.contents.get(origin) if served is not None else None

    def _protected(self, origin: dns.name.Name) -> set[tuple[dns.name.Name, RdataType]]:
        return {(p.owner, p.rdtype) for p in self.reloader.pools if p.owner.is_subdomain(origin)}

    async def _serve_copies(self) -> tuple[bool, str]:
        """A secondary zone's new copy is on disk: serve it by a reload."""
        result = await self.reloader.reload()
        return result.ok, "; ".join(result.errors) or result.message

    def _health_changed(self, reason: str) -> None:
        if self.reloader.engine is not None:
            self.reloader.reselect(reason)
            if self.publisher.zones:
                self.publisher.poke()

    def _swapped(self, snapshot: Snapshot) -> None:
        if self.workers is not None:
            self.workers.serve(snapshot)

    def _committed(self, prepared: Prepared) -> list[str]:
        """After a load or reload is served: record it, and follow its config.
        Returns what to report with it (``overrides.toml``'s problems)."""
        self._apply_transfers(prepared.served.settings)
        publish = publish_zones(prepared.served.settings.config, prepared.served.contents)
        self._record(prepared.versions, publish)
        self.publisher.set_zones(publish)
        self._serve_published_soa()
        if self._started:
            self.health.apply_pools(prepared.served.pools, prepared.served.settings)
            self.secondaries.apply(prepared.served.settings)
        known = {pm.member for pool in prepared.served.pools for pm in pool.members}
        return self.health.apply_overrides_file(known)

    def _first_versions(self, versions: Sequence[tuple[ZoneVersion, ZoneDiff, ZoneContent]]
                        ) -> None:
        """The first versions of the zones the start served (made after the first answer)."""
        self._record(versions, publish_zones(self.reloader.settings.config,
                                             self._file_contents()))

    def _record(self, versions: Sequence[tuple[ZoneVersion, ZoneDiff, ZoneContent]],
                publish: Mapping[dns.name.Name, object]) -> None:
        """Accepted versions: into the state file, the IXFR history, NOTIFY out."""
        for version, changes, content in versions:
            self.health.writer.submit(functools.partial(
                Store.record_zone_version, version=version,
                # the stored bytes, not copies: a first version's "added" is its content
                removed=records_wire(changes.removed), added=records_wire(changes.added),
                content=content.to_wire(),
            ))
            if content.origin in publish:
                continue  # the publisher records and announces what it publishes
            if diff_serials(changes) is not None:  # a new serial: IXFR can carry it
                self.handoff.history.add(content.origin, changes)
            if changes:
                self._notify(content.origin)

    def _sighup(self) -> None:
        log.info("SIGHUP: reloading the zones and %s", self.settings.config_name)
        self.reloader.reload()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        server = self.settings.server
        self.health.open(loop)
        store = self.health.writer.store
        accepted = {}
        if store is not None:
            try:
                accepted = await asyncio.to_thread(store.accepted_contents)
            except DnsServeError as exc:  # a damaged state file must not stop DNS
                log.error("%s; the deletion guard cannot check the zones at start", exc)
            await self._load_history(store, accepted)
        # The token file is read, or made and fsynced, in a thread while the zones load.
        token_file = loop.run_in_executor(
            None, ensure_token, token_path(self.settings.state_path)) if server.control else None
        engine = self.reloader.load(accepted, force=self._force, allow_empty=self._allow_empty)
        self.secondaries.start()  # before the listeners: a zone with no copy is SERVFAIL
        if self.secondaries.zones:
            engine.expire = self.secondaries.expire_for_key  # RFC 7314 EXPIRE
        # RFC 7828: the idle timeout the listeners apply (fixed at start, as they are)
        engine.tcp_keepalive = keepalive_units(server.tcp_idle_timeout)
        # Before the listeners: once a query is answered, a SIGHUP must reload.
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._sighup)
        # The token file before any answer: whoever sees an answer may read it at once.
        token = await self._control_token(token_file) if token_file is not None else ""
        try:
            if self.workers is not None:
                # The control API first: the first worker answers before the others
                # are ready, and whoever sees an answer may use the API at once.
                if server.control:
                    self.control = await self._start_control(token)
                await self.workers.start()
            else:
                self.listeners = await net.serve(
                    engine,
                    server.listen,
                    tcp_idle_timeout=server.tcp_idle_timeout,
                    tcp_max_connections=server.tcp_max_connections,
                    hand_off=self.handoff.handle_offloaded,
                    tcp_max_connections_per_prefix=server.tcp_max_connections_per_prefix,
                    prefix_lengths=(server.tcp_ipv4_prefix_length,
                                    server.tcp_ipv6_prefix_length),
                    guard=self.defences.guard(engine),
                )
            self._started = True
            # after the listeners: the threads making the miss index and the first
            # versions must not delay the first answer
            self.reloader.started()
            self.health.apply_pools(self.reloader.pools, self.reloader.settings)
            if server.control and self.control is None:
                self.control = await self._start_control(token)
            await self._stop.wait()
        finally:
            await self._close()

    async def _load_history(self, store: Store, accepted: Mapping[dns.name.Name, object]) -> None:
        """IXFR history from the state file's diffs (before the first load adds its own)."""
        for origin in accepted:
            try:
                diffs = await asyncio.to_thread(store.zone_diffs, origin.to_text())
            except (DnsServeError, ValueError) as exc:
                log.error("zone %s: no IXFR history from the state file: %s", origin, exc)
                continue
            self.handoff.history.extend(origin, diffs)

    async def _control_token(self, made: Awaitable[str]) -> str:
        """The control API's token, from its file (``made``: ``ensure_token`` running)."""
        try:
            return await made
        except TokenError as exc:
            # Reads still work; no one can send a mutation without the file.
            log.error("control API: %s; drain, force-up and reload over the API are refused "
                      "until the token file can be made", exc)
            self.ops.token_problem = str(exc)
            return secrets.token_urlsafe(32)

    async def _start_control(self, token: str) -> ControlServer:
        server = self.settings.server
        host, port = parse_hostport(server.control)
        control = await start_control(
            self.ops, host, port, token, allow_remote=server.control_allow_remote
        )
        log.info("control API on http://%s (token in %s)", server.control,
                 token_path(self.settings.state_path))
        return control

    async def _close(self) -> None:
        log.info("stopping")
        self.publisher.close()
        await self.notifier.close()
        await self.secondaries.stop()
        self.health.stop_monitor()
        if self.control is not None:
            self.control.close()
            await self.control.wait_closed()
        if self.listeners is not None:
            self.listeners.close()
            await self.listeners.wait_closed()
        if self.workers is not None:
            self.workers.close()
            await self.workers.wait_closed()
        self.health.close()


def serve(
    settings: Settings,
    *,
    read_settings: Callable[[], Settings] | None = None,
    allow_empty: bool = False,
    force: bool = False,
) -> None:
    """Run the server until SIGTERM or SIGINT."""
    uvloop.run(Server(settings, read_settings=read_settings, allow_empty=allow_empty,
                      force=force).run())

