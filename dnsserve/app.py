"""The composition root: builds the running server's parts and wires them together.

Owns construction, wiring and the lifecycle only: read the settings, build
the parts, bind the listeners, handle signals (SIGTERM/SIGINT stop, SIGHUP
reloads the zones and overrides), and stop everything in order. What each
part does lives in its own module:

    settings    the config file with flags applied
    reload      the engine, snapshots, reloads and pool re-selection
    healthsync  the monitor thread, the loop's health view and the state file
    net         the UDP/TCP listeners

Siblings never import each other; this module connects them with callbacks:

    monitor thread --HealthSync.on_result--> writer thread (state file)
                   --call_soon_threadsafe--> main loop: HealthSync.view
                   --on_change--> Reloader.reselect --> Engine.swap
    SIGHUP --> Reloader.reload (worker thread) --> commit --> overrides re-read
"""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop

from dnsserve import net
from dnsserve.healthsync import HealthSync
from dnsserve.reload import Reloader
from dnsserve.settings import Settings

log = logging.getLogger("dnsserve")


class Server:
    """One running server: the reloader's engine behind the listeners, and health.

    Threads: the main loop owns the health view, the engine and every swap;
    the monitor thread and the state-file writer are ``HealthSync``'s.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.health = HealthSync(settings, on_change=self._health_changed)
        self.reloader = Reloader(
            settings, view=lambda: self.health.view, after_reload=self.health.poll_overrides
        )
        self.listeners: net.Listeners | None = None
        self._stop = asyncio.Event()

    def _health_changed(self, reason: str) -> None:
        self.reloader.reselect(reason)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        server = self.settings.server
        if self.settings.config.pool:
            self.health.open(loop)
        engine = self.reloader.load()
        try:
            self.listeners = await net.serve(
                engine,
                server.listen,
                tcp_idle_timeout=server.tcp_idle_timeout,
                tcp_max_connections=server.tcp_max_connections,
            )
            if self.reloader.pools:
                self.health.start_monitor(self.reloader.pools)
            loop.add_signal_handler(signal.SIGTERM, self._stop.set)
            loop.add_signal_handler(signal.SIGINT, self._stop.set)
            loop.add_signal_handler(signal.SIGHUP, self.reloader.reload)
            await self._stop.wait()
        finally:
            await self._close()

    async def _close(self) -> None:
        log.info("stopping")
        self.health.stop_monitor()
        if self.listeners is not None:
            self.listeners.close()
            await self.listeners.wait_closed()
        self.health.close()


def serve(settings: Settings) -> None:
    """Run the server until SIGTERM or SIGINT."""
    uvloop.run(Server(settings).run())
