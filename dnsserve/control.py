"""The control endpoint's server: HTTP/1.1 with h11 on asyncio (uvloop) at ``[server] control``.

Owns: the listening socket, each connection's h11 state, the limits below,
keep-alive, and turning bytes into a ``control_routes.Request`` and a
``Reply`` back into bytes. What a request means is ``control_routes``'
business (``Router.handle``); who may use it is ``control_access``'. Must not:
know dnsserve's internals (the app passes an ``Api``), import app, store,
net or the monitor, or log per request.

For the app, this module also names what it needs from the other two:
``Api``, ``ControlError``, ``ensure_token``, ``token_path`` and
``check_control_address``.

Rules:
1. Limits: the request head (line and headers) ``max_header`` bytes (431);
   the body ``max_body`` bytes (413, judged from Content-Length before any
   body is read, or as a chunked body grows); ``idle_timeout`` seconds from
   the end of one response until the next request is whole (408 if one had
   begun, else a quiet close); at most ``max_connections`` at once (a new
   one gets 503 and is closed).
2. Keep-alive as HTTP/1.1 says: h11 decides whether the connection may
   carry another request; pipelined requests are answered in order.
3. A malformed request gets h11's status hint (400, or 431) and the close.
   Whenever the server closes after an error, it shuts its write side first
   and reads what the client still sends for up to ``_LINGER`` seconds, so
   the client reads the response instead of a reset.
4. No exception leaves a connection's task: ``Router.handle`` answers every
   request; a failure of the connection itself (a reset) only ends it, and
   anything unexpected is logged with its traceback.
5. ``close`` stops listening and ends every open connection; a reload in
   progress is cancelled with its connection (the Api must cope).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import h11

from dnsserve.control_access import (
    TokenError,
    check_control_address,
    client_token,
    ensure_token,
    read_token,
    token_path,
)
from dnsserve.control_routes import (
    JSON,
    Api,
    ControlError,
    Reply,
    Request,
    Router,
    error_reply,
)

__all__ = [
    "Api",
    "ControlError",
    "ControlServer",
    "ControlStats",
    "TokenError",
    "check_control_address",
    "client_token",
    "ensure_token",
    "read_token",
    "start_control",
    "token_path",
]

log = logging.getLogger(__name__)

MAX_HEADER = 8 * 1024
MAX_BODY = 64 * 1024
IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 64
_RECV = 65536
_LINGER = 1.0
_ALWAYS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]


@dataclass(frozen=True, slots=True)
class Limits:
    max_header: int = MAX_HEADER
    max_body: int = MAX_BODY
    idle_timeout: float = IDLE_TIMEOUT
    max_connections: int = MAX_CONNECTIONS


@dataclass(slots=True)
class ControlStats:
    """Counters for /metrics, plain attributes updated on the loop thread."""

    connections: int = 0  # open now
    refused: int = 0  # closed at once: max_connections reached
    requests: int = 0
    errors: int = 0  # answered 5xx


class _TooLarge(Exception):
    """The body is over the limit: answer 413 and close."""


class _Connection:
    """One client connection: h11 in, ``Router.handle``, h11 out (rules 1 to 4)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        router: Router,
        limits: Limits,
        stats: ControlStats,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.router, self.limits, self.stats = router, limits, stats
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header)
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    async def serve(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.limits.idle_timeout):
                    req = await self._read_request()
            except TimeoutError:
                if self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
                    return  # idle between requests: a quiet close
                await self._fail(error_reply(408, "request not complete in time"))
                return
            except h11.RemoteProtocolError as exc:
                await self._fail(error_reply(exc.error_status_hint, f"bad request: {exc}"))
                return
            except _TooLarge:
                await self._fail(error_reply(413, f"body over {self.limits.max_body} bytes"))
                return
            if req is None:
                return
            reply = await self.router.handle(req)
            await self._send(reply, head=req.method == "HEAD")
            if self.conn.our_state is h11.MUST_CLOSE:
                return
            self.conn.start_next_cycle()

    async def _read_request(self) -> Request | None:
        """The next whole request; None when the client closed between requests."""
        target: h11.Request | None = None
        body = bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                if self.conn.they_are_waiting_for_100_continue:
                    go_on = h11.InformationalResponse(status_code=100, headers=[])
                    await self._write(self.conn.send(go_on))
                self.conn.receive_data(await self.reader.read(_RECV))
            elif isinstance(event, h11.Request):
                target = event
                if _head_size(event) > self.limits.max_header:
                    # h11 enforces its limit only on a head still incomplete
                    raise h11.RemoteProtocolError("request head too long", error_status_hint=431)
                length = _content_length(event.headers)
                if length is not None and length > self.limits.max_body:
                    raise _TooLarge
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.limits.max_body:
                    raise _TooLarge
            elif isinstance(event, h11.EndOfMessage):
                assert target is not None
                return self._request(target, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None
            else:  # PAUSED cannot come before the request's end; nothing else is a client's
                raise h11.RemoteProtocolError(f"unexpected {event!r}")

    def _request(self, event: h11.Request, body: bytes) -> Request:
        path, _, query = event.target.decode("ascii", "replace").partition("?")
        return Request(
            method=event.method.decode("ascii", "replace"),
            path=path,
            query=query,
            headers=dict(event.headers),
            body=body,
            peer=self.peer,
        )

    async def _send(self, reply: Reply, *, head: bool = False, close: bool = False) -> None:
        self.stats.requests += 1
        if reply.status >= 500:
            self.stats.errors += 1
        headers = [
            (b"content-type", reply.content_type.encode()),
            (b"content-length", str(len(reply.body)).encode()),
            *_ALWAYS,
            *((k.encode(), v.encode()) for k, v in reply.headers),
        ]
        if close:
            headers.append((b"connection", b"close"))
        data = self.conn.send(
            h11.Response(status_code=reply.status, headers=headers, reason=_reason(reply.status))
        )
        if not head:
            data += self.conn.send(h11.Data(data=reply.body))
        data += self.conn.send(h11.EndOfMessage())
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        self.writer.write(data)
        async with asyncio.timeout(self.limits.idle_timeout):
            await self.writer.drain()

    async def _fail(self, reply: Reply) -> None:
        """Rule 3: answer ``reply`` if a response may still go out, then close gently."""
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with contextlib.suppress(h11.LocalProtocolError):
                await self._send(reply, close=True)
        if self.writer.can_write_eof():
            with contextlib.suppress(OSError):
                self.writer.write_eof()
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(_LINGER):
                while await self.reader.read(_RECV):
                    pass


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _head_size(event: h11.Request) -> int:
    """About the bytes of the request head: line and headers, as sent."""
    line = len(event.method) + len(event.target) + 11
    return line + sum(len(name) + len(value) + 4 for name, value in event.headers)


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # h11 has checked that it is a number
    return None


class ControlServer:
    """The listening control endpoint: ``close()`` and ``await wait_closed()`` stop it."""

    def __init__(self, router: Router, limits: Limits) -> None:
        self._router = router
        self._limits = limits
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = ControlStats()
        self.address: tuple[str, int] = ("", 0)
        """The bound (host, port)."""

    async def _listen(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._client, host, port)
        self.address = self._server.sockets[0].getsockname()[:2]
        shown = f"[{self.address[0]}]" if ":" in self.address[0] else self.address[0]
        log.info("control API on http://%s:%d/", shown, self.address[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        stats = self.stats
        if stats.connections >= self._limits.max_connections:
            stats.refused += 1
            await self._refuse(writer)
            return
        stats.connections += 1
        self._tasks.add(task)
        try:
            conn = _Connection(reader, writer, self._router, self._limits, stats)
            await conn.serve()
        except asyncio.CancelledError:
            pass  # close(): ending here keeps asyncio's done-callback from logging it
        except (OSError, TimeoutError):
            pass  # the client went away, or stopped reading: only this connection ends
        except Exception:
            log.exception("control connection failed")
        finally:
            stats.connections -= 1
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(_LINGER):
                    await writer.wait_closed()

    async def _refuse(self, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        reply = error_reply(503, "too many control connections; try again")
        headers = [(b"content-type", JSON.encode()),
                   (b"content-length", str(len(reply.body)).encode()), (b"connection", b"close")]
        data = conn.send(h11.Response(status_code=503, headers=headers, reason=_reason(503)))
        data += conn.send(h11.Data(data=reply.body)) + conn.send(h11.EndOfMessage())
        writer.write(data)
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(_LINGER):
                await writer.wait_closed()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def start_control(
    api: Api,
    host: str,
    port: int,
    token: str,
    *,
    allow_remote: bool = False,
    max_connections: int = MAX_CONNECTIONS,
    idle_timeout: float = IDLE_TIMEOUT,
    max_body: int = MAX_BODY,
    max_header: int = MAX_HEADER,
) -> ControlServer:
    """Listen on (host, port) and answer with ``api``; POSTs need ``token``.

    Raises ValueError when ``host`` is refused (``check_control_address``)
    and OSError when it cannot be bound.
    """
    if problem := check_control_address(host, allow_remote):
        raise ValueError(f"control API: {problem}")
    limits = Limits(max_header, max_body, idle_timeout, max_connections)
    server = ControlServer(Router(api, token, allow_remote), limits)
    await server._listen(host, port)
    return server

