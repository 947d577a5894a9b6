"""net's hand-offs that answer later (a worker's future), and the worker's Forwarder.

No sockets: the protocols are driven with a fake transport on an event loop,
and each future is resolved by hand. What is checked: over TCP a later query
is answered before a hand-off still waiting (RFC 7766 §7), a connection with
``TCP_HAND_OFFS`` waiting stops reading and goes on when one resolves, the
close after the client's EOF waits for them, a failed hand-off sends nothing;
the Forwarder bounds what waits, joins reply parts and gives up on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from types import SimpleNamespace
from typing import Any

import dns.message
import dns.rcode
import pytest

from dnsserve import net, wire, worker
from dnsserve import worker_protocol as wp
from dnsserve.framing import Deframer, frame


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.sent: list[tuple[bytes, Any]] = []
        self.reading = True
        self.closed = False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sent.append((data, addr))

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 4000) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def answers(self) -> list[bytes]:
        return Deframer().feed(b"".join(self.written))


def respond(data: bytes, *, tcp: bool) -> bytes | None:
    """Queries starting with H are handed off; others answered with A + the query."""
    return wire.HAND_OFF if data.startswith(b"H") else b"A" + data


class LaterHandOff:
    """A hand-off that answers with a future per request, resolved by the test."""

    def __init__(self) -> None:
        self.waiting: list[tuple[bytes, asyncio.Future[tuple[bytes, ...]]]] = []

    def __call__(self, data: bytes, peer: tuple[str, int], tcp: bool) -> net.HandOffResult:
        future: asyncio.Future[tuple[bytes, ...]] = asyncio.get_running_loop().create_future()
        self.waiting.append((data, future))
        return future

    async def resolve(self, index: int) -> None:
        data, future = self.waiting[index]
        future.set_result((b"R1" + data, b"R2" + data))
        await asyncio.sleep(0)  # done callbacks run on the loop's next turn


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def tcp_conn(hand_off: net.HandOff) -> tuple[net._Tcp, FakeTransport, net.NetStats]:
    stats = net.NetStats()
    shared = net._Shared(respond, stats, idle=60.0, cap=10, hand_off=hand_off)
    conn = net._Tcp(shared)
    transport = FakeTransport()
    conn.connection_made(transport)
    return conn, transport, stats


def test_tcp_answers_a_later_query_before_a_hand_off_that_waits() -> None:
    async def test() -> None:
        later = LaterHandOff()
        conn, transport, _ = tcp_conn(later)
        conn.data_received(frame(b"Hxfr") + frame(b"q2"))
        assert transport.answers() == [b"Aq2"]
        assert conn.busy  # a stopping worker waits for it
        await later.resolve(0)
        assert transport.answers() == [b"Aq2", b"R1Hxfr", b"R2Hxfr"]
        assert not conn.busy
        conn.connection_lost(None)

    run(test)


def test_tcp_stops_reading_with_too_many_hand_offs_waiting_and_goes_on() -> None:
    async def test() -> None:
        later = LaterHandOff()
        conn, transport, _ = tcp_conn(later)
        queries = [frame(b"H%d" % i) for i in range(net.TCP_HAND_OFFS)] + [frame(b"q")]
        conn.data_received(b"".join(queries))
        assert len(later.waiting) == net.TCP_HAND_OFFS
        assert not transport.reading and transport.answers() == []  # b"q" waits its turn
        await later.resolve(2)
        assert transport.reading
        assert transport.answers() == [b"R1H2", b"R2H2", b"Aq"]
        conn.connection_lost(None)

    run(test)


def test_tcp_eof_closes_only_after_the_hand_offs_are_answered() -> None:
    async def test() -> None:
        later = LaterHandOff()
        conn, transport, _ = tcp_conn(later)
        conn.data_received(frame(b"Ha") + frame(b"Hb"))
        conn.eof_received()
        assert not transport.closed
        await later.resolve(1)
        assert not transport.closed
        await later.resolve(0)
        assert transport.closed
        assert transport.answers() == [b"R1Hb", b"R2Hb", b"R1Ha", b"R2Ha"]
        conn.connection_lost(None)

    run(test)


def test_a_failed_or_cancelled_hand_off_sends_nothing_and_counts_a_drop() -> None:
    async def test() -> None:
        later = LaterHandOff()
        conn, transport, stats = tcp_conn(later)
        conn.data_received(frame(b"Ha") + frame(b"Hb"))
        later.waiting[0][1].cancel()
        later.waiting[1][1].set_exception(RuntimeError("owner gone"))
        await asyncio.sleep(0)  # cancellation callbacks run on the next turn
        assert transport.answers() == [] and stats.dropped == 2
        conn.connection_lost(None)

    run(test)


def test_udp_sends_a_hand_off_when_it_resolves() -> None:
    async def test() -> None:
        later = LaterHandOff()
        stats = net.NetStats()
        udp = net._Udp(net._Shared(respond, stats, idle=1.0, cap=1, hand_off=later))
        transport = FakeTransport()
        udp.connection_made(transport)
        udp.datagram_received(b"Hq", ("127.0.0.1", 5000))
        udp.datagram_received(b"q", ("127.0.0.1", 5001))
        assert transport.sent == [(b"Aq", ("127.0.0.1", 5001))]
        await later.resolve(0)
        assert transport.sent[1:] == [(b"R1Hq", ("127.0.0.1", 5000)),
                                      (b"R2Hq", ("127.0.0.1", 5000))]

    run(test)


def query(qid: int) -> bytes:
    q = dns.message.make_query("xfr.example.", "AXFR")
    q.id = qid
    return q.to_wire()


def test_forwarder_sends_requests_and_joins_the_reply_parts() -> None:
    async def test() -> None:
        frames: list[bytes] = []
        forwarder = worker.Forwarder(frames.append)
        future = forwarder(query(1), ("127.0.0.1", 4000), True)
        assert isinstance(future, asyncio.Future)
        [request] = [wp.from_payload(f[wp.HEADER.size:]) for f in frames]
        assert isinstance(request, wp.HandOffRequest) and request.tcp
        assert request.peer == ("127.0.0.1", 4000) and request.data == query(1)
        for part in wp.reply_parts(request.id, [b"a" * 600, b"b" * 600], limit=1000):
            assert not future.done()
            forwarder.receive(part)
        assert future.result() == (b"a" * 600, b"b" * 600)
        forwarder.close()

    run(test)


def test_forwarder_beyond_its_bound_drops_udp_and_refuses_tcp() -> None:
    async def test() -> None:
        forwarder = worker.Forwarder(lambda frame: None)
        for i in range(worker.MAX_IN_FLIGHT):
            assert isinstance(forwarder(query(i), ("127.0.0.1", 1), False), asyncio.Future)
        assert forwarder(query(99), ("127.0.0.1", 1), False) == []
        [refused] = forwarder(query(99), ("127.0.0.1", 1), True)  # type: ignore[misc]
        r = dns.message.from_wire(refused)
        assert r.id == 99 and r.rcode() == dns.rcode.REFUSED
        assert forwarder.shed == 2
        forwarder.close()

    run(test)


def test_forwarder_gives_up_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "HAND_OFF_TIMEOUT", 0.0)

    async def test() -> None:
        forwarder = worker.Forwarder(lambda frame: None)
        future = forwarder(query(1), ("127.0.0.1", 1), True)
        assert isinstance(future, asyncio.Future)
        for _ in range(10):  # bounded: the timer fires within a turn or two
            if future.done():
                break
            await asyncio.sleep(0)
        assert future.cancelled() and forwarder.timed_out == 1
        forwarder.receive(wp.HandOffReply(1, (b"late",)))  # a late reply finds no one

    run(test)


class FakeListeners:
    def __init__(self, forwarder: worker.Forwarder) -> None:
        self.forwarder = forwarder
        self.accepting = True

    def stop_accepting(self) -> None:
        self.accepting = False

    @property
    def busy(self) -> bool:  # a TCP connection waits while a hand-off does
        return self.forwarder.waiting > 0


def finishing(forwarder: worker.Forwarder) -> tuple[Any, FakeListeners]:
    listeners = FakeListeners(forwarder)
    return SimpleNamespace(listeners=listeners), listeners


def test_a_stopping_worker_takes_no_new_query_and_waits_for_the_owners_reply() -> None:
    async def test() -> None:
        forwarder = worker.Forwarder(lambda frame: None)
        future = forwarder(query(1), ("127.0.0.1", 1), True)
        assert isinstance(future, asyncio.Future)
        reader = asyncio.StreamReader()
        reading = asyncio.ensure_future(worker._read(reader))
        stub, listeners = finishing(forwarder)
        finish = asyncio.ensure_future(worker._finish(stub, forwarder, reading, reader))
        await asyncio.sleep(0)
        assert not listeners.accepting and not finish.done()
        reply = wp.to_frame(wp.HandOffReply(1, (b"axfr",)))
        reader.feed_data(reply[:3])  # a frame half read when SIGTERM came is read whole
        await asyncio.sleep(0)
        reader.feed_data(reply[3:])
        left = await asyncio.wait_for(finish, 5)
        assert future.result() == (b"axfr",)
        assert left is not None and not left.done()  # the next read, for the caller to cancel
        left.cancel()

    run(test)


def test_a_stopping_worker_waits_no_longer_than_finish_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker, "FINISH_WAIT", 0.01)

    async def test() -> None:
        forwarder = worker.Forwarder(lambda frame: None)
        forwarder(query(1), ("127.0.0.1", 1), True)
        reader = asyncio.StreamReader()
        reading = asyncio.ensure_future(worker._read(reader))
        stub, _ = finishing(forwarder)
        left = await asyncio.wait_for(worker._finish(stub, forwarder, reading, reader), 5)
        assert left is reading and not reading.done()
        reading.cancel()
        forwarder.close()

    run(test)
