"""UDP and TCP listeners on asyncio (uvloop): the only code that sends.

Owns: binding sockets, handing each query synchronously to the answer engine
(``engine.respond(data, tcp=...)``), sending what it returns, TCP framing,
pipelining, idle timeout, connection cap and backpressure, and the counters
in ``NetStats``. Must not: parse or build DNS messages, read config, log per
packet, or create a task, a queue entry or an ``await`` per UDP packet.

Rules:
- The engine never raises by contract. If it does, that query goes unanswered,
  ``engine_errors`` counts it, the traceback is logged the first and every
  ``LOG_EVERY``-th time, and the protocol keeps serving.
- ``respond`` returning ``HAND_OFF`` (empty bytes) means the request goes to
  the injected ``hand_off(data, peer, tcp)`` (zone transfers, NOTIFY, signed
  queries), which returns the messages to send: over TCP each is framed and
  written in order (an AXFR is several), over UDP each is a datagram. It may
  instead return a future of them (a worker asks its owner): they are sent
  when it resolves (nothing when it fails or is cancelled: ``dropped``). Over
  TCP the connection meanwhile answers its later queries, so its answers may
  leave out of order (RFC 7766 §7); a connection with ``TCP_HAND_OFFS``
  unresolved stops reading until one resolves, a hand-off in flight keeps it
  from the idle timeout, and after the client's EOF the close waits for them.
- ``respond`` returning None means drop. Over TCP the query is skipped: later
  pipelined queries are still answered in order and the connection stays open
  (closing would discard its neighbours' answers too; the idle timeout still
  ends a connection that sends nothing whole).
- With a ``guard`` (``answer.guard.Guard``: rate limiting and DNS Cookies,
  which need the client's address and the time), each query goes to
  ``guard.respond_from(data, client_address, time.time(), tcp)`` instead;
  the clock is read here, once per query.
- UDP: while the send buffer is over its high-water mark, queries are shed
  unanswered (``udp_shed``), as the kernel drops them when it is full.
- TCP backpressure: while a connection's write buffer is over its high-water
  mark, reading stops and received queries wait, so a client that never reads
  costs at most one read chunk of queries and one buffer of answers.
- The TCP idle timeout runs from the last complete query (or the accept); on
  expiry the connection is closed, aborted if answers are still unsent.
- TCP fairness: a new connection is always taken while one can be made room
  for. When its client's prefix (``/24`` IPv4, ``/56`` IPv6 by default:
  ``prefix_lengths``) already holds ``per_prefix`` connections, that prefix's
  longest-idle connection is closed to make room; else, at the cap of open
  connections (all addresses together), the longest-idle connection of all
  (as NSD and Knot do), so one client holding idle connections cannot lock
  the others out. "Longest idle": the oldest last complete query (or
  accept); a connection waiting for a hand-off or with answers unsent is
  not idle and is passed over (``EVICT_SCAN`` looked at, at most); when no
  connection can be closed, the new one is (``tcp_refused``). The cap is
  ``tcp_max_connections``, lowered when the
  process's file descriptor limit (soft RLIMIT_NOFILE) leaves less than
  ``FD_RESERVE`` descriptors beside it (``tcp_cap``; logged at start): running
  out of descriptors would fail the health checks (a member taken out of
  answers while its backend is fine), the state file and the control API.
  A client's EOF gets every pending answer, then the close.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ipaddress
import logging
import resource
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from dnsserve.config_values import parse_hostport
from dnsserve.framing import Deframer, frame

log = logging.getLogger(__name__)

# The hand-off (``wire.HAND_OFF``): (request, peer (address, port), tcp) -> the messages
# to send, or a future of them
HandOffResult = Iterable[bytes] | asyncio.Future[tuple[bytes, ...]]
HandOff = Callable[[bytes, tuple[str, int], bool], HandOffResult]

LOG_EVERY = 1000
UDP_RCVBUF = 4 * 1024 * 1024
TCP_WRITE_HIGH_WATER = 64 * 1024
TCP_BACKLOG = 1024
TCP_HAND_OFFS = 4  # unresolved hand-offs per TCP connection before it stops reading
EVICT_SCAN = 16  # connections looked at (longest idle first) for one to close
DEFAULT_PREFIX_LENGTHS = (24, 56)  # IPv4, IPv6: what "one client" is for TCP fairness
_BIND_TRIES = 20
# File descriptors kept free of DNS TCP connections, for everything else the
# process opens: health checks in flight (up to 64 at once; an exec check holds
# 3 or 4 while it runs, an HTTP check a connection plus those kept alive), the
# control API (up to 64 connections), the state file (the database, its WAL and
# shared-memory files), zone files read on reload, the listening sockets, the
# event loops and the interpreter's own. Under a small limit the reserve is
# three quarters of it instead, so a quarter still goes to TCP (``tcp_cap``).
FD_RESERVE = 384


class Responder(Protocol):
    """The answer engine as net sees it: query bytes in, response bytes or None out."""

    def respond(self, data: bytes, *, tcp: bool) -> bytes | None: ...


class Guarded(Protocol):
    """The engine behind RRL and cookies (``answer.guard.Guard``): it takes the
    client's address and the time too, and counts what it limited."""

    def respond_from(self, data: bytes, client: str, now: float, tcp: bool) -> bytes | None: ...

    def counts(self) -> dict[str, int]: ...


@dataclass(slots=True)
class NetStats:
    """Counters for /metrics, plain attributes updated on the loop thread."""

    udp_queries: int = 0
    tcp_queries: int = 0
    dropped: int = 0  # respond() returned None
    udp_shed: int = 0  # not answered: UDP send buffer full
    engine_errors: int = 0  # respond() raised
    tcp_open: int = 0
    tcp_refused: int = 0  # closed at once: at the cap with no idle connection to close
    tcp_evicted: int = 0  # longest-idle connections closed to make room for a new one
    tcp_idle_closed: int = 0
    tcp_paused: int = 0  # times reading stopped for backpressure
    # the guard's (``Guarded.counts``), copied in when read (``Listeners.stats``)
    rrl_limited: int = 0  # UDP answers over their rate-limit bucket's rate
    rrl_slipped: int = 0  # of those, sent truncated
    rrl_dropped: int = 0  # of those, not sent
    cookies_made: int = 0  # server cookies made
    cookies_accepted: int = 0  # queries with a valid server cookie of ours

    def engine_failed(self) -> None:
        self.engine_errors += 1
        n = self.engine_errors
        if n == 1 or n % LOG_EVERY == 0:
            log.exception("engine.respond raised (%d times so far); query not answered", n)


def fd_limit() -> int | None:
    """The process's soft limit on open file descriptors; None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def tcp_cap(configured: int, limit: int | None) -> int:
    """The TCP connection cap under a file descriptor ``limit`` (None: no limit).

    ``configured`` (``tcp_max_connections``), at most ``limit - FD_RESERVE``;
    when that is less than a quarter of the limit, a quarter of it.
    """
    if limit is None:
        return configured
    return min(configured, max(limit - FD_RESERVE, limit // 4))


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:5300"`` or ``"[::1]:5300"`` -> (host, port); port 0 binds a free port.

    ``config_validate.parse_hostport`` is the rule; this only names the value.
    """
    try:
        return parse_hostport(text, any_port=True)
    except ValueError as exc:
        raise ValueError(f"bad listen address {text!r}: {exc}") from None


def prefix_of(
    host: str, prefix_lengths: tuple[int, int] = DEFAULT_PREFIX_LENGTHS
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The client prefix ``host`` belongs to, for the per-prefix TCP limit."""
    address = ipaddress.ip_address(host.partition("%")[0])
    bits = prefix_lengths[0] if address.version == 4 else prefix_lengths[1]
    return ipaddress.ip_network((address, bits), strict=False)


Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True)
class _Shared:
    """What every protocol instance of one ``serve`` call shares.

    ``conns`` and each ``prefixes`` entry hold the open connections longest
    idle first (a dict keeps its order: a query moves its connection to the end).
    """

    respond: Callable[..., bytes | None]
    stats: NetStats
    idle: float
    cap: int
    conns: dict[_Tcp, None] = field(default_factory=dict)
    hand_off: HandOff | None = None
    per_prefix: int | None = None  # None: no per-prefix limit
    prefix_lengths: tuple[int, int] = DEFAULT_PREFIX_LENGTHS
    prefixes: dict[Prefix, dict[_Tcp, None]] = field(default_factory=dict)
    guard: Guarded | None = None

    def make_room(self, prefix: Prefix) -> bool:
        """Close a connection so one more from ``prefix`` fits; False when none can go."""
        group = self.prefixes.get(prefix)
        if self.per_prefix is not None and group is not None and len(group) >= self.per_prefix:
            return self._evict(group)
        return self.stats.tcp_open < self.cap or self._evict(self.conns)

    def _evict(self, order: dict[_Tcp, None]) -> bool:
        for conn, _ in zip(order, range(EVICT_SCAN), strict=False):
            if not conn.busy:
                conn.forget()
                conn.shut()
                self.stats.tcp_evicted += 1
                return True
        return False


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, shared: _Shared) -> None:
        self._shared = shared
        self._respond = shared.respond
        self._guard = shared.guard.respond_from if shared.guard is not None else None
        self._stats = shared.stats
        self._paused = False
        self.transport: asyncio.DatagramTransport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        stats = self._stats
        stats.udp_queries += 1
        if self._paused:
            stats.udp_shed += 1
            return
        try:
            if self._guard is None:
                out = self._respond(data, tcp=False)
            else:
                out = self._guard(data, str(addr[0]), time.time(), False)
        except Exception:
            stats.engine_failed()
            return
        if out:
            self.transport.sendto(out, addr)  # type: ignore[union-attr]
        elif out is None:
            stats.dropped += 1
        else:
            self._hand_off(data, addr)

    def _hand_off(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        hand_off = self._shared.hand_off
        try:
            result = [] if hand_off is None else hand_off(data, _peer(addr), False)
            if isinstance(result, asyncio.Future):
                result.add_done_callback(functools.partial(self._handed_back, addr))
                return
            outs = list(result)
        except Exception:
            self._stats.engine_failed()
            return
        for out in outs:
            self.transport.sendto(out, addr)  # type: ignore[union-attr]

    def _handed_back(
        self, addr: tuple[str | int, ...], future: asyncio.Future[tuple[bytes, ...]]
    ) -> None:
        transport = self.transport
        if future.cancelled() or future.exception() is not None:
            self._stats.dropped += 1
        elif transport is not None and not transport.is_closing():
            for out in future.result():
                transport.sendto(out, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors and failed sends to one client concern only that client

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


_NO_PREFIX = ipaddress.ip_network("0.0.0.0/32")


class _Tcp(asyncio.Protocol):
    def __init__(self, shared: _Shared) -> None:
        self._shared = shared
        self._respond = shared.respond
        self._guard = shared.guard.respond_from if shared.guard is not None else None
        self._client = ""  # the peer's address (for the guard)
        self._loop = asyncio.get_running_loop()
        self._deframer = Deframer()
        self._queries: collections.deque[bytes] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last = 0.0
        self._writing_paused = False
        self._reading_paused = False
        self._handing = 0  # hand-offs whose future has not resolved
        self._eof = False
        self._counted = False
        self._prefix: Prefix = _NO_PREFIX

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        shared = self._shared
        peer = transport.get_extra_info("peername")
        try:
            self._prefix = prefix_of(str(peer[0]), shared.prefix_lengths)
        except (TypeError, IndexError, ValueError):  # no peer address: one group of its own
            self._prefix = _NO_PREFIX
        if not shared.make_room(self._prefix):
            shared.stats.tcp_refused += 1
            transport.close()
            return
        shared.stats.tcp_open += 1
        shared.conns[self] = None
        shared.prefixes.setdefault(self._prefix, {})[self] = None
        self._client = str((peer or ("",))[0])
        self._counted = True
        transport.set_write_buffer_limits(high=TCP_WRITE_HIGH_WATER)
        self._last = self._loop.time()
        self._timer = self._loop.call_at(self._last + shared.idle, self._idle_check)

    def data_received(self, data: bytes) -> None:
        if not self._counted:
            return
        msgs = self._deframer.feed(data)
        if msgs:
            self._touch()
            self._queries.extend(msgs)
            self._answer()

    def _touch(self) -> None:
        """A complete query (or an answer handed back): this connection is the least idle."""
        self._last = self._loop.time()
        if self._counted:
            conns = self._shared.conns
            del conns[self]
            conns[self] = None
            group = self._shared.prefixes[self._prefix]
            del group[self]
            group[self] = None

    def forget(self) -> None:
        """No longer count this connection (it is being closed): its room is free now."""
        if not self._counted:
            return
        self._counted = False
        shared = self._shared
        shared.stats.tcp_open -= 1
        shared.conns.pop(self, None)
        group = shared.prefixes.get(self._prefix)
        if group is not None:
            group.pop(self, None)
            if not group:
                del shared.prefixes[self._prefix]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _answer(self) -> None:
        """Answer queued queries in order until none are left or writing is paused."""
        queries, stats, transport = self._queries, self._shared.stats, self._transport
        assert transport is not None
        while queries and not self._writing_paused and self._handing < TCP_HAND_OFFS:
            stats.tcp_queries += 1
            try:
                query = queries.popleft()
                if self._guard is None:
                    out = self._respond(query, tcp=True)
                else:
                    out = self._guard(query, self._client, time.time(), True)
                if out == b"":  # wire.HAND_OFF: several messages may follow
                    self._hand_off(query, transport)
                    continue
                framed = None if out is None else frame(out)  # >65535 bytes: engine bug
            except Exception:
                stats.engine_failed()
                continue
            if framed is None:
                stats.dropped += 1
            else:
                transport.write(framed)
        if self._eof and not queries and not self._handing:
            transport.close()  # flushes the answers already written

    def _hand_off(self, query: bytes, transport: asyncio.Transport) -> None:
        hand_off = self._shared.hand_off
        if hand_off is None:
            return
        peer = _peer(transport.get_extra_info("peername") or ("", 0))
        result = hand_off(query, peer, True)
        if isinstance(result, asyncio.Future):
            self._handing += 1
            result.add_done_callback(self._handed_back)
            self._flow()
            return
        transport.writelines([frame(out) for out in result])

    def _handed_back(self, future: asyncio.Future[tuple[bytes, ...]]) -> None:
        """A hand-off resolved: write its messages, then carry on with what waited."""
        self._handing -= 1
        transport = self._transport
        if transport is None or transport.is_closing():
            return  # the connection is gone: nowhere to send
        try:
            if future.cancelled() or future.exception() is not None:
                self._shared.stats.dropped += 1
            else:
                transport.writelines([frame(out) for out in future.result()])
                self._touch()
        except Exception:  # a message over 65535 bytes: the hand-off's bug
            self._shared.stats.engine_failed()
        self._answer()
        self._flow()

    def _flow(self) -> None:
        """Read while neither the write buffer nor the hand-offs in flight are over their bound."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        blocked = self._writing_paused or self._handing >= TCP_HAND_OFFS
        if blocked != self._reading_paused:
            self._reading_paused = blocked
            if blocked:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def eof_received(self) -> bool:
        self._eof = True
        if not self._queries and not self._handing and self._transport is not None:
            self._transport.close()
        return True  # keep the write side open until the pending queries are answered

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._shared.stats.tcp_paused += 1
        self._flow()

    def resume_writing(self) -> None:
        self._writing_paused = False
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._answer()
        self._flow()

    def _idle_check(self) -> None:
        due = self._last + self._shared.idle
        if self._handing:  # an answer is on its way: not idle
            due = max(due, self._loop.time() + self._shared.idle)
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._idle_check)
            return
        self._timer = None
        self._shared.stats.tcp_idle_closed += 1
        self.shut()

    @property
    def busy(self) -> bool:
        """A hand-off is still to be answered, or answers are still unsent."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        return bool(self._handing or transport.get_write_buffer_size())

    def shut(self) -> None:
        """Close now; abort if answers are still unsent (the peer is not reading)."""
        if self._transport is None:
            return
        if self._transport.get_write_buffer_size():
            self._transport.abort()
        else:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.forget()
        self._queries.clear()


class Listeners:
    """Everything ``serve`` bound: close() stops listening and ends connections."""

    def __init__(self, shared: _Shared) -> None:
        self._shared = shared
        self.addresses: list[tuple[str, int]] = []
        """The bound (host, port) per listen address; UDP and TCP share the port."""
        self._udp: list[_Udp] = []
        self._tcp: list[asyncio.Server] = []

    @property
    def stats(self) -> NetStats:
        """The counters, the guard's copied in."""
        stats = self._shared.stats
        if self._shared.guard is not None:
            for name, n in self._shared.guard.counts().items():
                setattr(stats, name, n)
        return stats

    @property
    def tcp_cap(self) -> int:
        """The most TCP connections open at once (``tcp_max_connections`` under the fd limit)."""
        return self._shared.cap

    async def _listen(self, text: str, reuse_port: bool) -> None:
        loop = asyncio.get_running_loop()
        tcp_sock, udp_sock = _bind_pair(text, reuse_port)
        host, port = tcp_sock.getsockname()[:2]
        owned = [tcp_sock, udp_sock]  # closed here until a transport owns them
        try:
            _, udp = await loop.create_datagram_endpoint(
                lambda: _Udp(self._shared), sock=udp_sock
            )
            owned.remove(udp_sock)
            self._udp.append(udp)
            tcp = await loop.create_server(
                lambda: _Tcp(self._shared), sock=tcp_sock, backlog=TCP_BACKLOG
            )
            owned.clear()
            self._tcp.append(tcp)
        finally:
            for sock in owned:
                sock.close()
        self.addresses.append((host, port))
        log.info("listening on udp+tcp %s", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    @property
    def serving(self) -> bool:
        """Every listener is bound and open (what /healthz reports)."""
        udp_open = all(u.transport is not None and not u.transport.is_closing()
                       for u in self._udp)
        return bool(self._udp) and udp_open and all(t.is_serving() for t in self._tcp)

    def stop_accepting(self) -> None:
        """Take no new query: close the UDP sockets and stop listening on TCP. Open
        TCP connections carry on (``busy`` says whether they have more to send)
        until ``close``."""
        for udp in self._udp:
            if udp.transport is not None:
                udp.transport.close()
        for tcp in self._tcp:
            tcp.close()

    @property
    def busy(self) -> bool:
        """Some TCP connection awaits a hand-off or has answers unsent."""
        return any(conn.busy for conn in self._shared.conns)

    def close(self) -> None:
        self.stop_accepting()
        for conn in list(self._shared.conns):
            conn.shut()

    async def wait_closed(self) -> None:
        for udp in self._udp:
            await udp.lost
        for tcp in self._tcp:
            await tcp.wait_closed()


def _peer(addr: tuple[str | int, ...]) -> tuple[str, int]:
    return str(addr[0]), int(addr[1]) if len(addr) > 1 else 0


def _bind(
    host: str, port: int, kind: socket.SocketKind, reuse_port: bool = False
) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
    try:
        if ":" in host:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse_port:  # every worker binds the same address; the kernel spreads the load
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        else:  # the kernel caps this at rmem_max; less only means more loss in bursts
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_pair(text: str, reuse_port: bool = False) -> tuple[socket.socket, socket.socket]:
    """Bind TCP, then UDP on the same port; with port 0, retry until both get one."""
    host, port = parse_listen(text)
    for attempt in range(_BIND_TRIES):
        try:
            tcp = _bind(host, port, socket.SOCK_STREAM, reuse_port)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot bind tcp {text}: {exc.strerror}") from exc
        try:
            return tcp, _bind(host, tcp.getsockname()[1], socket.SOCK_DGRAM, reuse_port)
        except OSError as exc:
            tcp.close()
            if port != 0 or attempt + 1 == _BIND_TRIES:
                raise OSError(exc.errno, f"cannot bind udp {text}: {exc.strerror}") from exc
    raise AssertionError("unreachable")


async def serve(
    engine: Responder,
    listen: Sequence[str],
    *,
    tcp_idle_timeout: float,
    tcp_max_connections: int,
    hand_off: HandOff | None = None,
    reuse_port: bool = False,
    tcp_max_connections_per_prefix: int | None = None,
    prefix_lengths: tuple[int, int] = DEFAULT_PREFIX_LENGTHS,
    guard: Guarded | None = None,
) -> Listeners:
    """Listen on UDP and TCP at every address in ``listen`` and answer with ``engine``.

    Raises ValueError for a malformed address and OSError naming the address
    when it cannot be bound; nothing stays bound after a failure. The TCP cap
    is ``tcp_max_connections`` under the file descriptor limit (``tcp_cap``).
    With ``reuse_port`` every socket is bound with SO_REUSEPORT, beside the
    other workers' sockets on the same addresses (``reserve``). At most
    ``tcp_max_connections_per_prefix`` TCP connections per client prefix
    (``prefix_lengths``: IPv4, IPv6 bits; None: no such limit). With a
    ``guard``, queries go to it (RRL and cookies) rather than to ``engine``.
    """
    limit = fd_limit()
    cap = tcp_cap(tcp_max_connections, limit)
    if cap < tcp_max_connections:
        log.warning(
            "tcp_max_connections lowered from %d to %d: the file descriptor limit"
            " (RLIMIT_NOFILE) is %s and %d descriptors are kept for health checks, the state"
            " file and the control API; raise the limit (LimitNOFILE=) to allow more",
            tcp_max_connections, cap, limit, (limit or 0) - cap,
        )
    shared = _Shared(engine.respond, NetStats(), tcp_idle_timeout, cap, hand_off=hand_off,
                     per_prefix=tcp_max_connections_per_prefix, prefix_lengths=prefix_lengths,
                     guard=guard)
    listeners = Listeners(shared)
    try:
        for text in listen:
            await listeners._listen(text, reuse_port)
    except BaseException:
        listeners.close()
        await listeners.wait_closed()
        raise
    return listeners


class Reservation:
    """The listen addresses held for the workers (``reserve``), port 0 resolved.

    Holds a TCP socket bound (never listening, so the kernel gives it no
    connection) with SO_REUSEPORT on each address: the port stays ours while
    workers come and go, and each worker binds it again beside the others.
    """

    def __init__(self, addresses: list[str], held: list[socket.socket]) -> None:
        self.addresses = addresses
        """Each listen address as ``host:port`` (``[host]:port`` for IPv6), port resolved."""
        self._held = held

    def close(self) -> None:
        for sock in self._held:
            sock.close()
        self._held.clear()


def reserve(listen: Sequence[str]) -> Reservation:
    """Bind every address of ``listen`` with SO_REUSEPORT and keep its TCP port.

    The UDP socket is closed at once: a bound UDP socket in the group would
    be given a share of the queries. Each address is first bound without
    SO_REUSEPORT and let go: another server's SO_REUSEPORT sockets on it (a
    second dnsserve with workers) would otherwise take our sockets into their
    group and silently share the queries; this way the start fails as with one
    process ("address already in use"). Raises like ``serve``.
    """
    held: list[socket.socket] = []
    addresses: list[str] = []
    try:
        for text in listen:
            if parse_listen(text)[1] != 0:  # port 0: a fresh port is no one's
                for sock in _bind_pair(text):
                    sock.close()
            tcp, udp = _bind_pair(text, reuse_port=True)
            udp.close()
            held.append(tcp)
            host, port = tcp.getsockname()[:2]
            addresses.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return Reservation(addresses, held)


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of stream sockets: the owner's end and a worker's end.

    The worker's end is inheritable: pass its ``fileno()`` to the worker
    process (``pass_fds``), then close it in the owner.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.set_inheritable(True)
    return ours, theirs


async def open_channel(
    sock: socket.socket | int,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams over one end of ``channel_pair`` (a worker passes the inherited fd)."""
    if isinstance(sock, int):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=sock)
    return await asyncio.open_unix_connection(sock=sock, limit=2**16)
