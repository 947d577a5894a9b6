"""One answering worker process: its listeners, its engine, the owner's changes applied.

Owns the life of a worker after ``workers.WorkerSet`` forks it from the
owner: forget the owner's loop, signal handlers and file descriptors (all
but the channel and stdio), freeze the inherited objects out of the garbage
collector (so they stay shared with the owner, copy-on-write), serve the
snapshot it was forked with from an engine of its own on listeners bound
with SO_REUSEPORT beside the other workers', tell the owner it is ``Ready``,
then apply every ``Select`` in order (``worker_protocol``) and send its
counters every ``STATS_EVERY`` seconds.

It exits when the channel closes (the owner stopped or died: a worker never
outlives it) or on SIGTERM; SIGINT (a Ctrl-C in the owner's terminal) and
SIGHUP (a reload) are the owner's.

Must not: run checks, open the state file, serve the control API, or decide
anything: what it serves is the owner's snapshot and the owner's changes.
It never returns into the owner's code it was forked from: ``child_main``
ends the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import time
from dataclasses import dataclass

import uvloop

from dnsserve import net
from dnsserve import worker_protocol as wp
from dnsserve.answer.engine import Engine
from dnsserve.answer.snapshot import Snapshot
from dnsserve.answer.tsig import NO_KEYS

log = logging.getLogger("dnsserve.worker")


async def _read(reader: asyncio.StreamReader) -> wp.Message | None:
    """The next message, or None when the owner closed the channel."""
    try:
        header = await reader.readexactly(wp.HEADER.size)
        return wp.from_payload(await reader.readexactly(wp.frame_length(header)))
    except asyncio.IncompleteReadError:
        return None


@dataclass(frozen=True, slots=True)
class WorkerStart:
    """What one worker is told when it is forked."""

    index: int  # which worker slot (0..N-1): labels its metrics
    addresses: tuple[str, ...]  # where to listen, port resolved (``net.reserve``)
    tcp_idle_timeout: float
    tcp_max_connections: int  # this worker's share of the cap


class Worker:
    """What one worker process holds: its engine, listeners and counters.

    Its engine answers ``snapshot`` with the owner's engine settings (TSIG
    keyring, hand-off, the EXPIRE option's source); what it hands off goes to
    the owner over the channel and is answered when the owner replies.
    """

    def __init__(self, start: WorkerStart, snapshot: Snapshot, owner: Engine | None) -> None:
        self.start = start
        self.engine = Engine(snapshot, keyring=owner.keyring if owner else NO_KEYS)
        if owner is not None:
            self.engine.hand_off = owner.hand_off
            self.engine.expire = owner.expire
        self.listeners: net.Listeners | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.select_delay = 0.0
        self.select_delay_max = 0.0
        self._asked: dict[int, asyncio.Future[tuple[bytes, ...]]] = {}
        self._next = 0

    def hand_off(
        self, data: bytes, peer: tuple[str, int], tcp: bool
    ) -> asyncio.Future[tuple[bytes, ...]]:
        """Ask the owner to answer a request the engine handed off (net sends the reply)."""
        future: asyncio.Future[tuple[bytes, ...]] = asyncio.get_running_loop().create_future()
        self._next += 1
        self._asked[self._next] = future
        assert self.writer is not None
        self.writer.write(wp.to_frame(wp.HandOffRequest(self._next, data, peer, tcp)))
        return future

    def forget(self) -> None:
        """The owner is gone: nothing handed off will be answered."""
        for future in self._asked.values():
            future.cancel()
        self._asked.clear()

    def apply(self, message: wp.Message) -> None:
        if isinstance(message, wp.HandOffReply):
            future = self._asked.pop(message.id, None)
            if future is not None and not future.done():
                future.set_result(message.messages)
        elif isinstance(message, wp.Select):
            self.engine.swap(wp.apply(self.engine.snapshot, message))
            self.select_delay = max(0.0, time.time() - message.sent_at)
            self.select_delay_max = max(self.select_delay_max, self.select_delay)
        else:
            raise wp.ProtocolError(f"a worker got {type(message).__name__}")

    def stats(self) -> wp.Stats:
        engine = self.engine
        net_stats = self.listeners.stats if self.listeners is not None else net.NetStats()
        return wp.Stats(
            index=self.start.index, answered=dict(engine.answered),
            truncated=engine.truncated, formerr=engine.formerr, servfails=engine.servfails,
            net=dataclasses.asdict(net_stats),
            generation=engine.snapshot.generation, select_delay=self.select_delay,
            select_delay_max=self.select_delay_max,
        )


async def _send_stats(worker: Worker, writer: asyncio.StreamWriter) -> None:
    while True:
        await asyncio.sleep(wp.STATS_EVERY)
        writer.write(wp.to_frame(worker.stats()))


async def run(start: WorkerStart, snapshot: Snapshot, owner: Engine | None, fd: int) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader, writer = await net.open_channel(fd)
    worker = Worker(start, snapshot, owner)
    worker.writer = writer
    try:
        worker.listeners = await net.serve(
            worker.engine, start.addresses, tcp_idle_timeout=start.tcp_idle_timeout,
            tcp_max_connections=start.tcp_max_connections, reuse_port=True,
            hand_off=worker.hand_off,
        )
    except OSError as exc:
        log.error("worker %d: %s", start.index, exc)
        return 1
    writer.write(wp.to_frame(wp.Ready(start.index, os.getpid())))
    stats = asyncio.ensure_future(_send_stats(worker, writer))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            reading = asyncio.ensure_future(_read(reader))
            await asyncio.wait([reading, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():
                reading.cancel()
                break
            message = reading.result()
            if message is None:
                break  # the owner is gone
            worker.apply(message)
    finally:
        worker.forget()
        stats.cancel()
        stopping.cancel()
        worker.listeners.close()
        await worker.listeners.wait_closed()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return 0


def _close_inherited(keep: set[int]) -> None:
    """Close every file descriptor but ``keep``: the owner's sockets, its
    state file and its other workers' channels are not this process's (a
    worker holding another's channel would keep it from seeing the owner go)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            with contextlib.suppress(OSError):  # the directory's own fd is gone already
                os.close(fd)


def child_main(start: WorkerStart, snapshot: Snapshot, owner: Engine | None, fd: int) -> int:
    """Run the worker in a process just forked from the owner; its exit status.

    The caller passes the result to ``os._exit``: the owner's frames below
    this call, its loop and its threads' objects are never used, finalised or
    collected here (``gc.freeze``), so no inherited object can close a file
    descriptor this worker reuses.
    """
    gc.freeze()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the owner stops its workers
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads are the owner's
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _close_inherited({0, 1, 2, fd})
    # The fork happened inside the owner's running loop; this process runs its own.
    asyncio._set_running_loop(None)
    code: int = uvloop.run(run(start, snapshot, owner, fd))
    return code
