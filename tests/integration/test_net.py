"""net.serve on loopback, on a uvloop loop in a background thread, with a real
responder made with dnspython (the collaborator net calls, not a mock); and the
real server's TCP listener under idle, stalled and excess connections.

Listen-address parsing (pure) is tested in tests/unit/test_net_listen.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.rrset
import pytest
import uvloop

from dnsserve import net
from dnsserve.framing import frame
from testkit.harness import query as udp_query
from testkit.harness import render_config
from testkit.server import start_server
from testkit.wait import wait_for

T = TypeVar("T")

DROP = dns.name.from_text("drop.test.")
BOOM = dns.name.from_text("boom.test.")
BIG = dns.name.from_text("big.test.")
BIG_TXT = [f'"{i:03d}{"x" * 250}"' for i in range(230)]  # about 59 KB on the wire


class Responder:
    """A for every name; None for drop.test.; raises for boom.test.; ~59 KB TXT for big.test."""

    def __init__(self) -> None:
        big = dns.message.make_response(query(BIG, 0, "TXT"))
        big.answer.append(dns.rrset.from_text(BIG, 60, "IN", "TXT", *BIG_TXT))
        self.big = big.to_wire()

    def respond(self, data: bytes, *, tcp: bool) -> bytes | None:
        query = dns.message.from_wire(data)
        qname = query.question[0].name
        if qname == DROP:
            return None
        if qname == BOOM:
            raise RuntimeError("engine bug")
        if qname == BIG:  # prebuilt, ID patched: keeps the backpressure test cheap
            return data[:2] + self.big[2:]
        response = dns.message.make_response(query)
        response.answer.append(dns.rrset.from_text(qname, 60, "IN", "A", "192.0.2.1"))
        return response.to_wire()


class LoopThread:
    """A uvloop event loop running in a daemon thread; stopped by stop()."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def read(self, fn: Callable[[], T]) -> T:
        async def on_loop() -> T:
            return fn()

        return self.run(on_loop())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


Start = Callable[..., net.Listeners]


@pytest.fixture
def start(loop_thread: LoopThread) -> Iterator[Start]:
    started: list[net.Listeners] = []

    def _start(
        listen: tuple[str, ...] = ("127.0.0.1:0",), idle: float = 10.0, cap: int = 1000
    ) -> net.Listeners:
        coro = net.serve(
            Responder(), list(listen), tcp_idle_timeout=idle, tcp_max_connections=cap
        )
        servers = loop_thread.run(coro)
        started.append(servers)
        return servers

    yield _start

    async def close(servers: net.Listeners) -> None:
        servers.close()
        await servers.wait_closed()

    for servers in started:
        loop_thread.run(close(servers))


def query(name: str | dns.name.Name, qid: int, rdtype: str = "A") -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    q.id = qid
    return q


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_exchange(addr: tuple[str, int], *packets: bytes) -> dns.message.Message:
    """Send the packets from one socket; return the first datagram that comes back."""
    with socket.socket(family(addr[0]), socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for p in packets:
            s.sendto(p, addr)
        return dns.message.from_wire(s.recv(65535))


def tcp_connect(addr: tuple[str, int], rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket(family(addr[0]), socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(10)
    s.connect(addr)
    return s


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_frames(s: socket.socket, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        (size,) = struct.unpack("!H", recv_exact(s, 2))
        out.append(recv_exact(s, size))
    return out


def read_answers(s: socket.socket, count: int) -> list[dns.message.Message]:
    return [dns.message.from_wire(wire) for wire in read_frames(s, count)]


def closed_by_peer(s: socket.socket) -> bool:
    """True when the next read sees EOF or a reset (bounded by the socket timeout)."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


# --- UDP ------------------------------------------------------------------


def test_udp_answer(start: Start, loop_thread: LoopThread) -> None:
    servers = start()
    [addr] = servers.addresses
    assert addr[0] == "127.0.0.1" and addr[1] != 0
    r = udp_exchange(addr, query("www.example.", 7).to_wire())
    assert r.id == 7
    assert r.answer[0].to_text() == "www.example. 60 IN A 192.0.2.1"
    assert loop_thread.read(lambda: servers.stats.udp_queries) == 1


def test_udp_none_sends_nothing(start: Start, loop_thread: LoopThread) -> None:
    servers = start()
    [addr] = servers.addresses
    # On one socket, the first datagram back must answer the second query.
    r = udp_exchange(addr, query(DROP, 1).to_wire(), query("www.example.", 2).to_wire())
    assert r.id == 2
    assert loop_thread.read(lambda: servers.stats.dropped) == 1


def test_engine_exception_is_counted_logged_and_survived(
    start: Start, loop_thread: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    servers = start()
    [addr] = servers.addresses
    with caplog.at_level(logging.ERROR, logger="dnsserve.net"):
        r = udp_exchange(addr, query(BOOM, 1).to_wire(), query("www.example.", 2).to_wire())
        assert r.id == 2
        with tcp_connect(addr) as s:
            s.sendall(frame(query(BOOM, 3).to_wire()) + frame(query("a.example.", 4).to_wire()))
            assert [m.id for m in read_answers(s, 1)] == [4]
    assert loop_thread.read(lambda: servers.stats.engine_errors) == 2
    # Logged with the traceback the first time only (then once per LOG_EVERY).
    logged = [rec for rec in caplog.records if "engine.respond raised" in rec.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


# --- TCP ------------------------------------------------------------------


def test_tcp_answer_on_the_udp_port(start: Start) -> None:
    [addr] = start().addresses
    with tcp_connect(addr) as s:
        s.sendall(frame(query("www.example.", 9).to_wire()))
        [r] = read_answers(s, 1)
    assert r.id == 9
    assert r.answer[0].to_text() == "www.example. 60 IN A 192.0.2.1"


def test_tcp_pipelining_answers_in_order(start: Start, loop_thread: LoopThread) -> None:
    servers = start()
    [addr] = servers.addresses
    ids = [100 + i for i in range(10)]
    with tcp_connect(addr) as s:
        s.sendall(b"".join(frame(query(f"n{i}.example.", i).to_wire()) for i in ids))
        answers = read_answers(s, 10)
    assert [a.id for a in answers] == ids
    assert [a.question[0].name.to_text() for a in answers] == [f"n{i}.example." for i in ids]
    assert loop_thread.read(lambda: servers.stats.tcp_queries) == 10


def test_tcp_query_split_byte_by_byte(start: Start) -> None:
    [addr] = start().addresses
    stream = frame(query("split.example.", 5).to_wire()) + frame(query("two.example.", 6).to_wire())
    with tcp_connect(addr) as s:
        for i in range(len(stream)):
            s.sendall(stream[i : i + 1])
        answers = read_answers(s, 2)
    assert [a.id for a in answers] == [5, 6]


def test_tcp_dropped_query_is_skipped_and_connection_stays(
    start: Start, loop_thread: LoopThread
) -> None:
    servers = start()
    [addr] = servers.addresses
    with tcp_connect(addr) as s:
        s.sendall(b"".join(frame(query(n, i).to_wire()) for i, n in
                           [(1, "a.example."), (2, DROP), (3, "b.example.")]))
        assert [a.id for a in read_answers(s, 2)] == [1, 3]
        s.sendall(frame(query("c.example.", 4).to_wire()))
        assert [a.id for a in read_answers(s, 1)] == [4]
    assert loop_thread.read(lambda: servers.stats.dropped) == 1


def test_tcp_half_close_gets_pending_answers_then_eof(start: Start) -> None:
    [addr] = start().addresses
    with tcp_connect(addr) as s:
        s.sendall(b"".join(frame(query(f"h{i}.example.", i).to_wire()) for i in range(3)))
        s.shutdown(socket.SHUT_WR)
        assert [a.id for a in read_answers(s, 3)] == [0, 1, 2]
        assert closed_by_peer(s)


def test_tcp_idle_timeout_closes(start: Start, loop_thread: LoopThread) -> None:
    servers = start(idle=0.3)
    [addr] = servers.addresses
    with tcp_connect(addr) as s:
        s.sendall(frame(query("www.example.", 1).to_wire()))
        assert [a.id for a in read_answers(s, 1)] == [1]
        s.sendall(frame(query("www.example.", 2).to_wire())[:5])  # incomplete: no reset
        assert closed_by_peer(s)
    assert loop_thread.read(lambda: servers.stats.tcp_idle_closed) == 1
    wait_for("no TCP connection open", lambda: loop_thread.read(lambda: servers.stats.tcp_open),
             lambda n: n == 0)


def test_tcp_connection_cap_closes_the_longest_idle(start: Start, loop_thread: LoopThread) -> None:
    """At the cap a new connection is taken and the longest-idle one closed (NSD, Knot)."""
    servers = start(cap=2)
    [addr] = servers.addresses
    with contextlib.ExitStack() as stack:
        first, second = (stack.enter_context(tcp_connect(addr)) for _ in range(2))
        for i, s in enumerate((second, first)):  # first asked last: second is the longest idle
            s.sendall(frame(query("www.example.", i).to_wire()))
            assert [a.id for a in read_answers(s, 1)] == [i]
        third = stack.enter_context(tcp_connect(addr))
        third.sendall(frame(query("www.example.", 3).to_wire()))
        assert [a.id for a in read_answers(third, 1)] == [3]
        assert closed_by_peer(second)
        stats = servers.stats
        assert loop_thread.read(lambda: (stats.tcp_open, stats.tcp_evicted)) == (2, 1)
        first.sendall(frame(query("www.example.", 4).to_wire()))
        assert [a.id for a in read_answers(first, 1)] == [4]


def test_tcp_per_prefix_limit_ipv6(loop_thread: LoopThread) -> None:
    """::1 is one /56: its third connection closes its longest-idle one."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback (::1) on this machine")
    coro = net.serve(Responder(), ["[::1]:0"], tcp_idle_timeout=30.0, tcp_max_connections=100,
                     tcp_max_connections_per_prefix=2)
    servers = loop_thread.run(coro)
    [addr] = servers.addresses
    try:
        with contextlib.ExitStack() as stack:
            socks = []
            for i in range(3):
                socks.append(stack.enter_context(tcp_connect(addr)))
                socks[-1].sendall(frame(query("www.example.", i).to_wire()))
                assert [a.id for a in read_answers(socks[-1], 1)] == [i]
            assert closed_by_peer(socks[0])
            assert loop_thread.read(lambda: servers.stats.tcp_evicted) == 1
    finally:
        async def close() -> None:
            servers.close()
            await servers.wait_closed()

        loop_thread.run(close())


def test_tcp_per_prefix_limit(loop_thread: LoopThread) -> None:
    """A prefix at its limit gives up its own longest-idle connection; others keep theirs."""
    coro = net.serve(Responder(), ["127.0.0.1:0"], tcp_idle_timeout=30.0,
                     tcp_max_connections=100, tcp_max_connections_per_prefix=3,
                     prefix_lengths=(32, 128))
    servers = loop_thread.run(coro)
    [addr] = servers.addresses
    try:
        with contextlib.ExitStack() as stack:
            def connect(source: str) -> socket.socket:
                s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                s.settimeout(10)
                s.bind((source, 0))
                s.connect(addr)
                return s

            other = connect("127.0.0.3")
            hog = []
            for i in range(5):  # one at a time: each is accepted before the next connects
                hog.append(connect("127.0.0.2"))
                hog[-1].sendall(frame(query("www.example.", i).to_wire()))
                assert [a.id for a in read_answers(hog[-1], 1)] == [i]
            assert closed_by_peer(hog[0]) and closed_by_peer(hog[1])
            other.sendall(frame(query("www.example.", 9).to_wire()))
            assert [a.id for a in read_answers(other, 1)] == [9]
            stats = servers.stats
            assert loop_thread.read(lambda: (stats.tcp_open, stats.tcp_evicted)) == (4, 2)
    finally:
        async def close() -> None:
            servers.close()
            await servers.wait_closed()

        loop_thread.run(close())


def test_tcp_backpressure_pauses_a_client_that_does_not_read(
    start: Start, loop_thread: LoopThread
) -> None:
    servers = start()
    [addr] = servers.addresses
    count = 200  # ~12 MB of answers, more than the kernel buffers hold
    with tcp_connect(addr, rcvbuf=4096) as s:
        s.sendall(b"".join(frame(query(BIG, i, "TXT").to_wire()) for i in range(count)))
        wait_for("a paused TCP client", lambda: loop_thread.read(lambda: servers.stats.tcp_paused),
                 lambda n: n >= 1)
        # Paused: the queries past what the buffers hold wait unanswered.
        assert loop_thread.read(lambda: servers.stats.tcp_queries) < count
        answers = read_frames(s, count)
    assert [struct.unpack("!H", a[:2])[0] for a in answers] == list(range(count))
    assert len(dns.message.from_wire(answers[-1]).answer[0]) == len(BIG_TXT)


# --- addresses ------------------------------------------------------------


def test_several_listen_addresses(start: Start) -> None:
    servers = start(listen=("127.0.0.1:0", "127.0.0.2:0"))
    assert [h for h, _ in servers.addresses] == ["127.0.0.1", "127.0.0.2"]
    for qid, addr in enumerate(servers.addresses):
        assert udp_exchange(addr, query("www.example.", qid).to_wire()).id == qid
        with tcp_connect(addr) as s:
            s.sendall(frame(query("www.example.", qid).to_wire()))
            assert read_answers(s, 1)[0].id == qid


def test_ipv6_loopback(start: Start) -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback (::1) on this machine")
    [addr] = start(listen=("[::1]:0",)).addresses
    assert addr[0] == "::1"
    assert udp_exchange(addr, query("www.example.", 61).to_wire()).id == 61
    with tcp_connect(addr) as s:
        s.sendall(frame(query("www.example.", 62).to_wire()))
        assert read_answers(s, 1)[0].id == 62


def test_tcp_bind_error_names_the_address(start: Start) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        text = f"127.0.0.1:{holder.getsockname()[1]}"
        with pytest.raises(OSError, match=f"cannot bind tcp {text}: "):
            start(listen=("127.0.0.1:0", text))


def test_udp_bind_error_names_the_address(start: Start) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        # A port the kernel just found free for TCP, so the UDP bind is what fails.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            holder.bind(probe.getsockname())
        text = f"127.0.0.1:{holder.getsockname()[1]}"
        with pytest.raises(OSError, match=f"cannot bind udp {text}: "):
            start(listen=("127.0.0.1:0", text))


def test_close_ends_open_connections(start: Start, loop_thread: LoopThread) -> None:
    servers = start()
    [addr] = servers.addresses
    with tcp_connect(addr) as idle, tcp_connect(addr, rcvbuf=4096) as stuck:
        idle.sendall(frame(query("www.example.", 1).to_wire()))
        assert [a.id for a in read_answers(idle, 1)] == [1]
        stuck.sendall(b"".join(frame(query(BIG, i, "TXT").to_wire()) for i in range(200)))
        wait_for("a paused TCP client", lambda: loop_thread.read(lambda: servers.stats.tcp_paused),
                 lambda n: n >= 1)

        async def close() -> None:
            servers.close()
            await servers.wait_closed()

        loop_thread.run(close())  # bounded: raises TimeoutError if a connection held it
        assert closed_by_peer(idle)
        assert loop_thread.read(lambda: servers.stats.tcp_open) == 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(addr)  # the UDP port is released too


# --- the server's TCP listener under idle, stalled and excess connections ---


def test_idle_stalled_and_excess_tcp_connections_leave_udp_answering(tmp_path: Path) -> None:
    cap, idle = 20, 2.0
    config = tmp_path / "c.toml"
    config.write_text(render_config({"server": {
        "state": str(tmp_path / "state.db"), "tcp_max_connections": cap,
        "tcp_idle_timeout": idle}}))
    srv = start_server(tmp_path, "-c", str(config))
    held: list[socket.socket] = []
    try:
        query_wire = dns.message.make_query("www.example.com.", "A").to_wire()
        for i in range(cap):
            sock = socket.create_connection((srv.host, srv.port), timeout=5)
            held.append(sock)
            if i % 3 == 1:
                sock.sendall(b"\x00")  # half a length prefix, then nothing
            elif i % 3 == 2:
                sock.sendall(struct.pack("!H", len(query_wire)) + query_wire[:5])  # stalls
        wait_for("UDP answers while the cap is reached",
                 lambda: [udp_query(srv, "www.example.com.") is not None for _ in range(20)],
                 lambda got: all(got))
        # over the cap: the new one is answered, the longest-idle one closed
        assert dns.query.tcp(dns.message.make_query("www.example.com.", "A"), srv.host,
                             port=srv.port, timeout=5).answer
        held[0].settimeout(10)
        assert held[0].recv(512) == b""
        # A client trickling bytes of its one query does not reset the idle timer.
        trickle = held[2]
        for byte in query_wire[5:8]:
            trickle.sendall(bytes([byte]))
            time.sleep(idle / 4)
        ended = []
        for sock in held:
            sock.settimeout(idle + 10)
            try:
                ended.append(sock.recv(512) == b"")
            except ConnectionError:
                ended.append(True)
        assert ended == [True] * cap  # every idle or stalled connection was closed
        msg = dns.query.tcp(dns.message.make_query("www.example.com.", "A"), srv.host,
                            port=srv.port, timeout=5)
        assert msg.answer
        assert srv.proc.poll() is None
    finally:
        for sock in held:
            sock.close()
        srv.stop()
