"""One answering worker process: its listeners, its engine, the owner's changes applied.

Owns the life of a worker after ``workers.WorkerSet`` forks it from the
owner: forget the owner's loop, signal handlers and file descriptors (all
but the channel and stdio), freeze the inherited objects out of the garbage
collector (so they stay shared with the owner, copy-on-write), serve the
snapshot it was forked with from an engine of its own on listeners bound
with SO_REUSEPORT beside the other workers', tell the owner it is ``Ready``,
then apply every ``Select`` in order (``worker_protocol``) and send its
counters every ``STATS_EVERY`` seconds.

What its engine hands off (AXFR/IXFR, NOTIFY, TSIG-signed queries, and with
secondary zones queries that carry EDNS EXPIRE) the ``Forwarder`` sends to
the owner, which holds the keyring, the IXFR history, the secondary zones and
their timers; net sends the owner's answer when it comes back. At most
``MAX_IN_FLIGHT`` are in flight (beyond: dropped over UDP, REFUSED over TCP);
one unanswered after ``HAND_OFF_TIMEOUT`` seconds is given up (not answered).

It exits when the channel closes (the owner stopped or died: a worker never
outlives it) or on SIGTERM; SIGINT (a Ctrl-C in the owner's terminal) and
SIGHUP (a reload) are the owner's. On SIGTERM (retired after a reload, or
the owner stopping) it first takes no new query and gives the transfers and
other hand-offs it started up to ``FINISH_WAIT`` seconds to be answered and
sent: a secondary that comes for an IXFR just after a reload's NOTIFY is not
cut off by the worker's retirement.

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
import itertools
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import uvloop

from dnsserve import net, wire
from dnsserve import worker_protocol as wp
from dnsserve.answer.edns import keepalive_units
from dnsserve.answer.engine import Engine, expire_elsewhere
from dnsserve.answer.guard import Defences
from dnsserve.answer.snapshot import Snapshot

log = logging.getLogger("dnsserve.worker")

MAX_IN_FLIGHT = 64  # hand-offs waiting for the owner, at most
HAND_OFF_TIMEOUT = 30.0  # seconds: the owner's answer to a big AXFR included
FINISH_WAIT = 3.0  # seconds a stopping worker gives its hand-offs (< workers.STOP_WAIT)


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
    tcp_max_connections_per_prefix: int | None = None  # its share of the per-prefix limit
    tcp_prefix_lengths: tuple[int, int] = net.DEFAULT_PREFIX_LENGTHS
    defences: Defences | None = None  # RRL (this worker's share of the rate) and cookies


class Worker:
    """What one worker process holds: its engine, listeners and counters.

    Its engine answers ``snapshot``; what it hands off (``Forwarder``) goes to
    the owner over the channel and is answered when the owner replies: every
    signed query (the owner holds the keys) and, when the owner's engine
    answers EDNS EXPIRE (it has secondary zones), every query that asks for it.
    """

    def __init__(self, start: WorkerStart, snapshot: Snapshot, owner: Engine | None) -> None:
        self.start = start
        self.engine = Engine(snapshot)
        self.engine.hand_off = True
        self.engine.tcp_keepalive = keepalive_units(start.tcp_idle_timeout)  # RFC 7828
        if owner is not None and owner.expire is not None:
            self.engine.expire = expire_elsewhere  # the owner's refreshes count it down
        self.listeners: net.Listeners | None = None
        self.select_delay = 0.0
        self.select_delay_max = 0.0
        self.send: Callable[[bytes], None] | None = None  # writes one frame to the owner
        self._tasks: set[asyncio.Future[None]] = set()

    def send_hot(self, request_id: int) -> None:
        """Send the engine's hot keys to the owner, a part at a time between answers."""
        if self.send is None:
            return
        task = asyncio.ensure_future(_send_hot(self.send, self.engine.hot_keys(), request_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def apply(self, message: wp.Message) -> None:
        if isinstance(message, wp.Answers):
            self.engine.swap(wp.with_answers(self.engine.snapshot, message.entries))
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


class Forwarder:
    """The worker's ``net.HandOff``: each request goes to the owner (``HandOffRequest``);
    the future net holds resolves with the messages of its ``HandOffReply`` parts."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send  # writes one frame to the owner
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[asyncio.Future[tuple[bytes, ...]], asyncio.TimerHandle]] = {}
        self._joiner = wp.Joiner()
        self.forwarded = 0
        self.shed = 0  # beyond MAX_IN_FLIGHT
        self.timed_out = 0

    def __call__(self, data: bytes, peer: tuple[str, int], tcp: bool) -> net.HandOffResult:
        if len(self._waiting) >= MAX_IN_FLIGHT:
            self.shed += 1
            if not tcp:
                return []  # as a full socket buffer would: the client asks again
            return [wire.header_only(data, (data[2] << 8) | data[3], wire.REFUSED)]
        request_id = next(self._ids)
        future: asyncio.Future[tuple[bytes, ...]] = self._loop.create_future()
        timer = self._loop.call_later(HAND_OFF_TIMEOUT, self._give_up, request_id)
        self._waiting[request_id] = (future, timer)
        self.forwarded += 1
        self._send(wp.to_frame(wp.HandOffRequest(request_id, data, peer, tcp)))
        return future

    @property
    def waiting(self) -> int:
        """Requests sent to the owner and not yet answered."""
        return len(self._waiting)

    def receive(self, part: wp.HandOffReply) -> None:
        messages = self._joiner.add(part)
        if messages is None:
            return
        waiting = self._waiting.pop(part.id, None)
        if waiting is None:
            return  # given up on already
        future, timer = waiting
        timer.cancel()
        if not future.done():
            future.set_result(tuple(messages))

    def _give_up(self, request_id: int) -> None:
        waiting = self._waiting.pop(request_id, None)
        if waiting is not None:
            self.timed_out += 1
            self._joiner.drop(request_id)
            waiting[0].cancel()

    def close(self) -> None:
        for future, timer in self._waiting.values():
            timer.cancel()
            future.cancel()
        self._waiting.clear()


async def _send_hot(send: Callable[[bytes], None], keys: list[bytes], request_id: int) -> None:
    for part in wp.hot_parts(request_id, keys):
        send(wp.to_frame(part))
        await asyncio.sleep(0)  # the queries that came meanwhile first


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
    worker.send = writer.write
    forwarder = Forwarder(writer.write)
    try:
        worker.listeners = await net.serve(
            worker.engine, start.addresses, tcp_idle_timeout=start.tcp_idle_timeout,
            tcp_max_connections=start.tcp_max_connections, reuse_port=True,
            hand_off=forwarder, tcp_max_connections_per_prefix=start.tcp_max_connections_per_prefix,
            prefix_lengths=start.tcp_prefix_lengths,
            guard=start.defences.guard(worker.engine) if start.defences is not None else None,
        )
    except OSError as exc:
        log.error("worker %d: %s", start.index, exc)
        return 1
    writer.write(wp.to_frame(wp.Ready(start.index, os.getpid())))
    stats = asyncio.ensure_future(_send_stats(worker, writer))
    stopping = asyncio.ensure_future(stop.wait())
    reading: asyncio.Future[wp.Message | None] | None = None
    try:
        while True:
            reading = asyncio.ensure_future(_read(reader))
            await asyncio.wait([reading, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():
                break  # SIGTERM; the read goes on (a frame may be half read)
            message, reading = reading.result(), None
            if message is None:
                break  # the owner is gone
            _dispatch(worker, forwarder, message)
        if reading is not None:
            reading = await _finish(worker, forwarder, reading, reader)
    finally:
        if reading is not None:
            reading.cancel()
        stats.cancel()
        forwarder.close()
        stopping.cancel()
        worker.listeners.close()
        await worker.listeners.wait_closed()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return 0


def _dispatch(worker: Worker, forwarder: Forwarder, message: wp.Message) -> None:
    if isinstance(message, wp.HandOffReply):
        forwarder.receive(message)
    elif isinstance(message, wp.HotRequest):
        worker.send_hot(message.id)
    else:
        worker.apply(message)


async def _finish(
    worker: Worker, forwarder: Forwarder, reading: asyncio.Future[wp.Message | None],
    reader: asyncio.StreamReader,
) -> asyncio.Future[wp.Message | None] | None:
    """Take no new query; until ``FINISH_WAIT`` passes, read the owner's replies while
    a TCP connection waits for one or has answers unsent. Returns the read in
    progress (None when the owner is gone)."""
    listeners = worker.listeners
    assert listeners is not None
    listeners.stop_accepting()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FINISH_WAIT
    while listeners.busy and (left := deadline - loop.time()) > 0:
        if not forwarder.waiting:
            await asyncio.sleep(min(left, 0.05))  # answers being written to slow readers
            continue
        await asyncio.wait([reading], timeout=left)
        if not reading.done():
            break
        message = reading.result()
        if message is None:
            return None
        _dispatch(worker, forwarder, message)
        reading = asyncio.ensure_future(_read(reader))
    return reading


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
