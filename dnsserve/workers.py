"""The owner's side of the answering workers: fork, keep current, restart, count.

Owns the worker processes of ``[server] workers = N`` (N >= 2): the listen
addresses reserved once (``net.reserve``: port 0 resolved, the port kept while
workers come and go), one worker per slot forked from this process with the
snapshot it serves now, every change of that snapshot passed on
(``worker_protocol.changes``), a worker that dies restarted, and the workers'
counters summed for /metrics.

Why fork: a worker must serve the owner's snapshot, and a large zone's
snapshot takes tens of seconds to build and about as long to pickle and
unpickle (100k names: ~10 s each way, measured), so it must not be rebuilt
or sent; a forked worker has it at once, and shares its pages with the owner
copy-on-write until it touches them (``worker.child_main`` freezes the
inherited objects out of the garbage collector, whose passes would touch them
all). The fork happens on the main loop's thread; the child uses nothing of
the owner but the snapshot and stdio, and never returns into the owner's code.

Rules:
- A Select (a flip, a drain, an expiry) is written to every worker of the
  current zones at once, in order, without waiting: no failover waits on a
  worker. A worker whose channel holds more than ``STALL_BYTES`` unread is
  stuck: it is killed and restarted.
- A reload (``Whole``) forks a new worker per slot from the new snapshot; the
  slot's older worker gets SIGTERM when the new one is ready, so every address
  answers throughout (the kernel spreads new queries over the bound sockets).
- A worker that exits is restarted after ``backoff`` (0.1 s, doubling up to
  ``MAX_BACKOFF`` while workers keep dying young) with the current snapshot,
  overrides and health included: it serves what the others serve.
- Counters are monotonic: a worker's last ``Stats`` is kept when it goes.
- What must follow every worker serving the new zones (a NOTIFY: the
  secondary asks some worker for the SOA next) waits in ``after_settled``
  until the new workers are ready and the old ones gone (``SETTLE_WAIT`` at
  most).
- Before a reload is served, ``hot_keys`` asks each worker for the keys it
  answered lately (``HotRequest``/``HotKeys``, at most ``HOT_WAIT`` seconds):
  the reloader warms the new snapshot with them before the new workers are
  forked from it, so they do not all start from a cold miss index.
- A worker's ``HandOffRequest`` (a transfer, NOTIFY, a signed query, EDNS
  EXPIRE with secondary zones) is answered by the injected ``hand_off`` (the
  app's ``HandOff.handle_offloaded``, as the single process answers it: a big
  transfer is built in a thread, the rest on this loop), and its messages go
  back in ``HandOffReply`` parts; a reply of several parts waits for the
  channel to drain between parts, so a big AXFR never fills the channel (and
  never looks like a stuck worker).

Must not: answer queries, decide what to serve (the reloader and health
sync do), or block the owner's loop on a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

from dnsserve import net
from dnsserve import worker_protocol as wp
from dnsserve.answer.engine import Engine
from dnsserve.answer.guard import Defences
from dnsserve.answer.snapshot import Entry, Snapshot
from dnsserve.config_schema import ServerConfig, share
from dnsserve.worker import WorkerStart, child_main

log = logging.getLogger("dnsserve.workers")

MIN_BACKOFF = 0.1
MAX_BACKOFF = 10.0
STABLE_AFTER = 30.0  # a worker that lived this long resets the backoff
STALL_BYTES = 16 * 1024 * 1024  # unread by a worker: it is stuck
STOP_WAIT = 5.0  # seconds a worker gets to exit on SIGTERM before SIGKILL
SETTLE_WAIT = 30.0  # seconds after_settled waits for the workers at most
HOT_WAIT = 2.0  # seconds hot_keys waits for the workers' keys at most

# The owner's answer to a worker's hand-off: (request, peer, tcp) -> messages, or a
# future of them (a big transfer built in a thread)
HandOff = Callable[[bytes, tuple[str, int], bool], net.HandOffResult]


@dataclass(eq=False)
class _Proc:
    """One worker process and its channel."""

    pid: int
    epoch: int  # which whole snapshot it was forked with
    started: float
    done: asyncio.Future[None]
    writer: asyncio.StreamWriter | None = None  # None until the channel is open
    pending: list[bytes] = field(default_factory=list)  # changes sent before it was
    ready: bool = False
    stats: wp.Stats | None = None

    def send(self, frame: bytes) -> bool:
        """Write ``frame`` without waiting; False when the worker is stuck."""
        if self.writer is None:
            self.pending.append(frame)
            return True
        if self.writer.is_closing():
            return True  # it is going: its restart gets the current snapshot
        self.writer.write(frame)
        return self.writer.transport.get_write_buffer_size() <= STALL_BYTES


@dataclass(eq=False)
class _Slot:
    index: int
    current: _Proc | None = None
    retiring: list[_Proc] = field(default_factory=list)
    restarts: int = 0
    backoff: float = MIN_BACKOFF


@dataclass
class _Totals:
    """Counters of workers gone, kept so that the sums never go down."""

    answered: dict[int, int] = field(default_factory=dict)
    truncated: int = 0
    formerr: int = 0
    servfails: int = 0
    net: dict[str, int] = field(default_factory=dict)
    queries: dict[int, int] = field(default_factory=dict)  # per slot

    def add(self, index: int, stats: wp.Stats) -> None:
        for key, n in stats.answered.items():
            self.answered[key] = self.answered.get(key, 0) + n
        self.truncated += stats.truncated
        self.formerr += stats.formerr
        self.servfails += stats.servfails
        for name, n in stats.net.items():
            if name != "tcp_open":  # a gauge: a gone worker holds no connection
                self.net[name] = self.net.get(name, 0) + n
        self.queries[index] = self.queries.get(index, 0) + _queries(stats)


def _queries(stats: wp.Stats) -> int:
    return stats.net.get("udp_queries", 0) + stats.net.get("tcp_queries", 0)


class WorkerSet:
    """N answering workers forked from this process, kept serving what it serves.

    ``engine`` gives the owner's engine (the reloader's): its snapshot, and the
    settings a worker's engine copies; ``hand_off`` answers what a worker's
    engine hands off (``handoff.HandOff.handle``), here in the owner.
    """

    def __init__(
        self,
        count: int,
        server: ServerConfig,
        engine: Callable[[], Engine | None],
        hand_off: HandOff | None = None,
        defences: Defences | None = None,
    ) -> None:
        self.count = count
        self._defences = defences  # RRL and cookies, each worker's own (answer.guard)
        self._server = server
        self._engine = engine
        self._hand_off = hand_off
        self._slots = [_Slot(i) for i in range(count)]
        self._sent: Snapshot | None = None
        self._epoch = 0
        self._gone = _Totals()
        self._reservation: net.Reservation | None = None
        self._closing = False
        self._tasks: set[asyncio.Future[None]] = set()
        self._ready_changed = asyncio.Event()
        self._when_settled: list[Callable[[], None]] = []
        self._hot_ids = itertools.count(1)
        self._hot_waiting: dict[int, tuple[list[bytes], asyncio.Future[list[bytes]]]] = {}

    @property
    def addresses(self) -> list[str]:
        return self._reservation.addresses if self._reservation is not None else []

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, ready_within: float = 120.0) -> None:
        """Reserve the addresses, fork every worker, and wait until each answers.

        Raises OSError naming an address that cannot be bound; RuntimeError
        when the workers are not ready in time (they keep starting).
        """
        self._reservation = net.reserve(self._server.listen)
        engine = self._engine()
        self._sent = engine.snapshot if engine is not None else None
        for slot in self._slots:
            self._fork(slot)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_within
        while not all(s.current is not None and s.current.ready for s in self._slots):
            left = deadline - loop.time()
            if left <= 0:
                raise RuntimeError(f"the workers were not ready within {ready_within:g} s")
            self._ready_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready_changed.wait(), min(left, 1.0))
        log.info("%d workers answering on %s", self.count, ", ".join(self.addresses))

    def close(self) -> None:
        """SIGTERM every worker; ``wait_closed`` waits for them (SIGKILL after a while)."""
        self._closing = True
        for proc in self._procs():
            _signal(proc.pid, signal.SIGTERM)

    async def wait_closed(self) -> None:
        waits = [p.done for p in self._procs()]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=STOP_WAIT)
            if pending:
                for proc in self._procs():
                    _signal(proc.pid, signal.SIGKILL)
                await asyncio.wait(pending, timeout=STOP_WAIT)
        for task in list(self._tasks):
            task.cancel()
        if self._reservation is not None:
            self._reservation.close()

    def _procs(self) -> list[_Proc]:
        out = []
        for slot in self._slots:
            if slot.current is not None:
                out.append(slot.current)
            out.extend(slot.retiring)
        return out

    # -- what the workers serve ---------------------------------------------------------

    def serve(self, snapshot: Snapshot) -> None:
        """The owner serves ``snapshot`` now: pass it on to every worker."""
        if self._reservation is None:
            return  # not started: the workers are forked from what is served then
        change = wp.changes(self._sent, snapshot, time.time())
        self._sent = snapshot
        if change is None:
            return
        if isinstance(change, wp.Whole):
            self._epoch += 1
            for slot in self._slots:
                if slot.current is not None:
                    slot.retiring.append(slot.current)
                    slot.current = None
            # Fork once this swap's caller is done (a reload applies its keys and
            # transfer rules after the swap): the new workers copy all of it.
            asyncio.get_running_loop().call_soon(self._fork_missing)
            return
        self._send_current(wp.to_frame(change))

    async def hot_keys(self, within: float = HOT_WAIT) -> list[bytes]:
        """The keys the current workers answered lately from their miss index
        (``Engine.hot_keys``), merged, most recent first: what arrives within
        ``within`` seconds (a slow worker's keys are left out, never waited for)."""
        loop = asyncio.get_running_loop()
        asked: list[asyncio.Future[list[bytes]]] = []
        for slot in self._slots:
            proc = slot.current
            if proc is None or not proc.ready or proc.epoch != self._epoch:
                continue
            request_id = next(self._hot_ids)
            future: asyncio.Future[list[bytes]] = loop.create_future()
            self._hot_waiting[request_id] = ([], future)
            asked.append(future)
            proc.send(wp.to_frame(wp.HotRequest(request_id)))
        if not asked:
            return []
        try:
            await asyncio.wait(asked, timeout=within)
        finally:
            for request_id, (_, future) in list(self._hot_waiting.items()):
                if future in asked:
                    del self._hot_waiting[request_id]
        lists = [f.result() for f in asked if f.done() and not f.cancelled()]
        merged = itertools.chain.from_iterable(itertools.zip_longest(*lists))
        return [k for k in dict.fromkeys(merged) if k is not None]

    def _got_hot(self, part: wp.HotKeys) -> None:
        waiting = self._hot_waiting.get(part.id)
        if waiting is None:
            return  # given up on already
        keys, future = waiting
        keys.extend(part.keys)
        if part.last:
            del self._hot_waiting[part.id]
            if not future.done():
                future.set_result(keys)

    def answers(self, entries: Mapping[bytes, Entry]) -> None:
        """The owner answers ``entries`` in place of its snapshot's (publish mode's apex
        SOA): so do the workers, and those forked from now on."""
        if self._reservation is None or self._sent is None:
            return  # not started: the workers are forked from the owner's engine then
        self._sent = wp.with_answers(self._sent, entries)
        self._send_current(wp.to_frame(wp.Answers(entries)))

    def _send_current(self, frame: bytes) -> None:
        """Write ``frame`` to every worker of the current zones, in order."""
        for slot in self._slots:
            proc = slot.current
            if proc is None or proc.epoch != self._epoch:
                continue
            if not proc.send(frame):
                log.error("worker %d (pid %d) reads none of its changes; killing it",
                          slot.index, proc.pid)
                _signal(proc.pid, signal.SIGKILL)

    def _fork(self, slot: _Slot) -> None:
        """Fork a worker for ``slot`` with the snapshot served now."""
        snapshot = self._sent
        assert snapshot is not None and self._reservation is not None
        start = WorkerStart(
            index=slot.index, addresses=tuple(self._reservation.addresses),
            tcp_idle_timeout=self._server.tcp_idle_timeout,
            tcp_max_connections=share(self._server.tcp_max_connections, self.count),
            tcp_max_connections_per_prefix=share(
                self._server.tcp_max_connections_per_prefix, self.count),
            tcp_prefix_lengths=(self._server.tcp_ipv4_prefix_length,
                                self._server.tcp_ipv6_prefix_length),
            defences=self._defences,
        )
        if snapshot.misses is not None:
            snapshot.misses.complete()  # built once here, shared by every fork
        ours, theirs = net.channel_pair()
        gc.freeze()  # the child's collector must not touch what it shares with us
        try:
            pid = os.fork()
        except OSError:
            gc.unfreeze()
            ours.close()
            theirs.close()
            raise
        if pid == 0:  # the worker: never returns into the owner's code
            code = 1
            try:
                code = child_main(start, snapshot, self._engine(), theirs.fileno())
            except BaseException:
                log.exception("worker %d failed", slot.index)
            finally:
                os._exit(code)
        gc.unfreeze()
        theirs.close()
        loop = asyncio.get_running_loop()
        proc = _Proc(pid, self._epoch, loop.time(), loop.create_future())
        slot.current = proc  # from now on every change is sent to it, in order
        task = asyncio.ensure_future(self._watch(slot, proc, ours))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, slot: _Slot, proc: _Proc, sock: socket.socket) -> None:
        """Read one worker's messages until it goes; then reap it and maybe fork again."""
        reader, writer = await net.open_channel(sock)
        for frame in proc.pending:
            writer.write(frame)
        proc.pending.clear()
        proc.writer = writer
        pid = proc.pid
        try:
            while True:
                try:
                    header = await reader.readexactly(wp.HEADER.size)
                    message = wp.from_payload(
                        await reader.readexactly(wp.frame_length(header)))
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                if isinstance(message, wp.Ready):
                    proc.ready = True
                    self._became_ready(slot, proc)
                elif isinstance(message, wp.Stats):
                    proc.stats = message
                elif isinstance(message, wp.HandOffRequest):
                    self._answer_hand_off(proc, writer, message)
                elif isinstance(message, wp.HotKeys):
                    self._got_hot(message)
        finally:
            writer.close()
            status = await asyncio.to_thread(_reap, pid)
            self._gone_proc(slot, proc, status)

    def _answer_hand_off(
        self, proc: _Proc, writer: asyncio.StreamWriter, request: wp.HandOffRequest
    ) -> None:
        result: net.HandOffResult = []
        if self._hand_off is not None:
            try:
                result = self._hand_off(request.data, request.peer, request.tcp)
            except Exception:
                log.exception("answering worker pid %d's hand-off failed", proc.pid)
        if isinstance(result, asyncio.Future):  # built in a thread: reply when done
            result.add_done_callback(functools.partial(self._reply_later, writer, request.id))
            return
        self._reply(writer, request.id, list(result))

    def _reply_later(
        self, writer: asyncio.StreamWriter, request_id: int,
        done: asyncio.Future[tuple[bytes, ...]],
    ) -> None:
        if done.cancelled() or done.exception() is not None:
            log.error("a worker's hand-off failed: %r",
                      None if done.cancelled() else done.exception())
            self._reply(writer, request_id, [])
        else:
            self._reply(writer, request_id, list(done.result()))

    def _reply(self, writer: asyncio.StreamWriter, request_id: int, messages: list[bytes]) -> None:
        """Send ``messages`` to the worker that asked, in parts (``_send_parts``)."""
        parts = wp.reply_parts(request_id, messages)
        if len(parts) == 1:
            if not writer.is_closing():
                writer.write(wp.to_frame(parts[0]))
            return
        task = asyncio.ensure_future(_send_parts(writer, parts))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _became_ready(self, slot: _Slot, proc: _Proc) -> None:
        self._ready_changed.set()
        if proc is slot.current:
            for old in slot.retiring:
                _signal(old.pid, signal.SIGTERM)
        self._check_settled()

    def after_settled(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once every worker serves the zones served now: at once, or
        when the workers forked from them are ready and the older ones are gone
        (a NOTIFY must not bring a secondary to a worker with the old serial)."""
        self._when_settled.append(fn)
        self._check_settled()
        if self._when_settled:  # a worker that cannot start must not hold it forever
            asyncio.get_running_loop().call_later(SETTLE_WAIT, self._check_settled, True)

    def _check_settled(self, anyway: bool = False) -> None:
        if not self._when_settled:
            return
        if not anyway and self._reservation is not None and not all(
            s.current is not None and s.current.ready and s.current.epoch == self._epoch
            and not s.retiring for s in self._slots
        ):
            return
        waiting, self._when_settled = self._when_settled, []
        for fn in waiting:
            try:
                fn()
            except Exception:
                log.exception("a call after the workers settled failed")

    def _gone_proc(self, slot: _Slot, proc: _Proc, status: int) -> None:
        if proc.stats is not None:
            self._gone.add(slot.index, proc.stats)
        proc.done.set_result(None)
        if proc in slot.retiring:
            slot.retiring.remove(proc)
            self._check_settled()
            return
        if proc is not slot.current:
            return
        slot.current = None
        if self._closing:
            return
        loop = asyncio.get_running_loop()
        lived = loop.time() - proc.started
        slot.backoff = MIN_BACKOFF if lived >= STABLE_AFTER else slot.backoff
        slot.restarts += 1
        log.error("worker %d (pid %d) %s after %.1f s; starting another in %.1f s",
                  slot.index, proc.pid, _status_text(status), lived, slot.backoff)
        delay, slot.backoff = slot.backoff, min(slot.backoff * 2, MAX_BACKOFF)
        loop.call_later(delay, self._restart, slot)

    def _restart(self, slot: _Slot) -> None:
        if self._closing or slot.current is not None:
            return
        try:
            self._fork(slot)
        except OSError as exc:  # no fork now (EAGAIN, ENOMEM): try again later
            log.error("worker %d cannot be started: %s; trying again in %.1f s",
                      slot.index, exc, slot.backoff)
            asyncio.get_running_loop().call_later(slot.backoff, self._restart, slot)
            slot.backoff = min(slot.backoff * 2, MAX_BACKOFF)

    def _fork_missing(self) -> None:
        for slot in self._slots:
            self._restart(slot)

    # -- what /metrics and /healthz read --------------------------------------------------

    @property
    def serving(self) -> bool:
        """Some worker answers on every address (a restart in progress does not fail it)."""
        return any(p.ready for p in self._procs())

    @property
    def stats(self) -> net.NetStats:
        """The workers' network counters, summed (those of workers gone included)."""
        out = net.NetStats()
        for f in fields(out):
            setattr(out, f.name, self._gone.net.get(f.name, 0))
        for proc in self._procs():
            if proc.stats is not None:
                for name, n in proc.stats.net.items():
                    setattr(out, name, getattr(out, name, 0) + n)
        return out

    def engine_counts(self) -> tuple[dict[int, int], int, int]:
        """(answers by ``Engine.answered`` key, truncated, FORMERR) over every worker."""
        answered = dict(self._gone.answered)
        truncated, formerr = self._gone.truncated, self._gone.formerr
        for proc in self._procs():
            if proc.stats is not None:
                for key, n in proc.stats.answered.items():
                    answered[key] = answered.get(key, 0) + n
                truncated += proc.stats.truncated
                formerr += proc.stats.formerr
        return answered, truncated, formerr

    def per_worker(self) -> list[tuple[int, int, int, float]]:
        """Per slot: (index, queries received, restarts, the last Select's delay in s)."""
        out = []
        for slot in self._slots:
            queries = self._gone.queries.get(slot.index, 0)
            delay = 0.0
            for proc in ([slot.current] if slot.current else []) + slot.retiring:
                if proc.stats is not None:
                    queries += _queries(proc.stats)
                    if proc is slot.current:
                        delay = proc.stats.select_delay
            out.append((slot.index, queries, slot.restarts, delay))
        return out

    def pids(self) -> list[int]:
        """The pid of each slot's current worker (0 while it is being started again)."""
        return [s.current.pid if s.current is not None else 0 for s in self._slots]


async def _send_parts(writer: asyncio.StreamWriter, parts: list[wp.HandOffReply]) -> None:
    """Write a reply's parts, each once the channel has drained the one before."""
    for part in parts:
        if writer.is_closing():
            return  # the worker is gone: so is whoever waited
        writer.write(wp.to_frame(part))
        try:
            await writer.drain()
        except ConnectionError:
            return


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pid: int) -> int:
    """Wait for the worker ``pid`` to exit (its channel closed: it is exiting); its status."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
