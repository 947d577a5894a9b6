"""One HTTP/1.1 GET over the monitor's own trio socket: the mechanics of an http(s) check.

Owns the connection (a TCP socket to the member's address, TLS over it with
the context it is handed and the name it is told to send as SNI and to
verify), the request (``GET path``, ``Host``, ``User-Agent``, ``Connection:
close``: one request per connection, as gdnsd's ``http_status`` sends; its
bytes written by h11 once per path and host), and reading the response: up
to the end of the final response's head, whose status line is matched here
(``parse_head``: what a verdict needs, as gdnsd reads it), and, when asked,
the first ``body_limit`` bytes of its body: read here when the head gives
its length or none (``body_length``: until the server closes), else
(chunked) read with h11 from the response's first byte; no content coding
is asked for, so none is undone. The socket is closed before ``get`` returns or raises.

Must not: name an outcome or decide pass/fail (``health.probes`` does), apply
a timeout (the monitor cancels a check at its timeout), build TLS contexts
(``health.tls`` does), follow redirects, or pool connections. It raises what
the network, TLS or h11 raise (``OSError``; ``trio.BrokenResourceError`` with
the ``OSError`` or ``ssl.SSLError`` as its cause; ``h11.ProtocolError``, also
for a response head that is not HTTP/1.x);
cancellation propagates.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import socket
import ssl
from collections.abc import Container
from dataclasses import dataclass
from typing import Protocol

import h11
import trio

USER_AGENT = "dnsserve-monitor"
RECEIVE_SIZE = 16 * 1024  # bytes asked of the socket per read
# Reads and events per response at most: a response in more pieces than this
# is a protocol error (the monitor's timeout bounds the time too).
MAX_STEPS = 4096
HEAD_LIMIT = 16 * 1024  # bytes of a response head at most (h11's own limit)


@dataclass(frozen=True, slots=True)
class Response:
    """What a check reads of a response: the status and a prefix of the body."""

    status: int
    body: bytes = b""  # at most body_limit bytes; b"" when the body was not read


def host_header(address: str, port: int, default_port: int) -> str:
    """The ``Host`` a browser would send for the member's address (the port if not default)."""
    host = f"[{address}]" if ":" in address else address
    return host if port == default_port else f"{host}:{port}"


@functools.lru_cache(maxsize=4096)
def _request(path: str, host: str) -> h11.Request:
    """The request event of a check (built once: h11 validates the target and headers)."""
    headers = [("Host", host), ("User-Agent", USER_AGENT), ("Accept", "*/*"),
               ("Connection", "close")]
    return h11.Request(method="GET", target=path, headers=headers)


_END = h11.EndOfMessage()


@functools.lru_cache(maxsize=4096)
def request_bytes(path: str, host: str) -> bytes:
    """The bytes of a check's request, written by h11 once per (path, host).

    Raises ``h11.LocalProtocolError`` for a path or host h11 refuses to send
    (not cached: every check of such a member fails the same way).
    """
    conn = h11.Connection(h11.CLIENT)
    head, end = conn.send(_request(path, host)), conn.send(_END)
    assert head is not None and end is not None  # None only for ConnectionClosed
    return head + end


async def get(
    address: str,
    port: int,
    *,
    path: str,
    host: str,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    body_limit: int = 0,
    body_of: Container[int] = (),
) -> Response:
    """GET ``path`` from ``address:port`` with ``Host: host``; read the status (and body).

    With ``tls``, the handshake sends ``server_hostname`` as SNI and verifies
    the certificate against it (as the context says). The body is read (its
    first ``body_limit`` bytes) only for a status in ``body_of``. Raises
    ``h11.LocalProtocolError`` for a path or host h11 refuses to send.
    """
    request = request_bytes(path, host)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        stream: _Stream
        if tls is None:
            stream = _PlainStream(sock)
            await stream.connect_and_send((address, port), request)
        else:
            await _connect(sock, (address, port))
            ssl_stream = trio.SSLStream(
                trio.SocketStream(trio.socket.from_stdlib_socket(sock)), tls,
                server_hostname=server_hostname, https_compatible=True,
            )
            await ssl_stream.do_handshake()
            await ssl_stream.send_all(request)
            stream = ssl_stream
        return await _read_response(stream, (path, host), body_limit, body_of)
    finally:
        trio.lowlevel.notify_closing(sock)  # trio forgets the descriptor before it is reused
        sock.close()  # no close_notify: the check is over either way


async def _connect(sock: socket.socket, address: tuple[str, int]) -> None:
    """Connect a non-blocking socket; raise the connect's OSError (refused, unreachable)."""
    try:
        sock.connect(address)
    except BlockingIOError:
        await trio.lowlevel.wait_writable(sock)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code), address) from None
    else:
        await trio.lowlevel.checkpoint()  # a trio function always checkpoints


class _Stream(Protocol):
    async def receive_some(self, max_bytes: int) -> bytes | bytearray: ...


class _PlainStream:
    """The two calls a check makes of a plain socket, straight on trio's I/O waits.

    trio's SocketStream would do the same with a checkpoint and a conflict
    check per call; a check is one send and a read or two, so this is much
    of its cost.
    """

    __slots__ = ("_replied", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._replied = False  # the first read waits: no reply is there right after a send

    async def connect_and_send(self, address: tuple[str, int], data: bytes) -> None:
        """Connect, then send ``data``, waiting for the handshake only if it is not over.

        On loopback (and often on a LAN) it is over when ``connect`` returns,
        so the request goes at once; a send before the handshake ends raises
        BlockingIOError, and one after it failed raises the connect's error.
        """
        code = self._sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, os.strerror(code), address)
        try:
            sent = self._sock.send(data)
        except BlockingIOError:  # still connecting
            await _connect(self._sock, address)
            sent = 0
        await self.send_all(data[sent:])

    async def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        for _ in range(MAX_STEPS):
            if not view:
                return
            try:
                view = view[self._sock.send(view) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._sock)
        raise h11.LocalProtocolError(f"request not sent in {MAX_STEPS} writes")

    async def receive_some(self, max_bytes: int) -> bytes:
        if not self._replied:
            self._replied = True
            await trio.lowlevel.wait_readable(self._sock)
        for _ in range(MAX_STEPS):  # a wake-up with nothing to read: wait again
            try:
                return self._sock.recv(max_bytes)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._sock)
        raise h11.RemoteProtocolError(f"nothing to read after {MAX_STEPS} wake-ups")


async def _read_response(
    stream: _Stream, request: tuple[str, str], body_limit: int, body_of: Container[int],
) -> Response:
    """Read until the final response's head is complete; its status (and body prefix).

    The status needs no more than the head: the status line is matched here,
    and the header lines are only found, not parsed. Only for a body to read
    (``body_limit`` and a status in ``body_of``) does h11 read the response
    from its first byte (its framing: length, chunks or close).
    """
    received = b""
    start = 0  # where the response head being looked for begins (after any 1xx)
    for _ in range(MAX_STEPS):
        chunk = await stream.receive_some(RECEIVE_SIZE)
        if not chunk:
            raise h11.RemoteProtocolError("connection closed before a complete response head")
        received += chunk
        while True:
            begins = start
            head = parse_head(received, start)
            if head is None:
                break
            status, start = head
            if status >= 200:
                if not body_limit or status not in body_of:
                    return Response(status)
                length = body_length(received[begins:start], status)
                if length is None:  # chunked, or framing h11 should judge
                    return await _read_body(stream, request, received, body_limit)
                body = await _read_plain(stream, received[start:], length, body_limit)
                return Response(status, body)
    raise h11.RemoteProtocolError(f"no complete response head in {MAX_STEPS} reads")


# The status line h11 accepts (h11/_abnf.py: the reason is optional), up to its end.
_STATUS_LINE = re.compile(rb"HTTP/[0-9]\.[0-9] ([0-9]{3})(?: [\t\x20-\x7e\x80-\xff]*)?\r?\n")
_HEAD_END = re.compile(rb"\n\r?\n")  # the blank line after the header lines (h11's rule)
_PREFIX = b"HTTP/"


def parse_head(data: bytes, start: int = 0) -> tuple[int, int] | None:
    """(status, offset after the head) of the response head at ``data[start:]``.

    None while the head is incomplete; ``h11.RemoteProtocolError`` as soon
    as the bytes cannot be an HTTP/1.x response head, or the head grows past
    ``HEAD_LIMIT``.
    """
    if data[start : start + len(_PREFIX)] != _PREFIX[: len(data) - start]:
        raise h11.RemoteProtocolError("not an HTTP/1.x response")
    found = _HEAD_END.search(data, start)
    if found is None:
        if len(data) - start > HEAD_LIMIT:
            raise h11.RemoteProtocolError(f"response head over {HEAD_LIMIT} bytes")
        return None
    line = _STATUS_LINE.match(data, start, found.end())
    if line is None or line[1][:1] == b"0":
        raise h11.RemoteProtocolError("not an HTTP/1.x status line")
    return int(line[1]), found.end()


# The header lines that say how a body is framed (h11's reading of them, for the plain cases).
_FRAMING = re.compile(
    rb"^(content-length|transfer-encoding)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$", re.I | re.M
)
UNTIL_CLOSE = -1  # a body that ends when the server closes (no length, not chunked)


def body_length(head: bytes, status: int) -> int | None:
    """How long the body after ``head`` is: its Content-Length, ``UNTIL_CLOSE``, or None.

    None (chunked, two lengths that differ, a length that is no number) leaves
    the framing to h11. A 204 or 304 response has no body.
    """
    if status in (204, 304):
        return 0
    lengths = set()
    for name, value in _FRAMING.findall(head):
        if name.lower() == b"transfer-encoding":
            return None
        lengths.add(value)
    if not lengths:
        return UNTIL_CLOSE
    value = lengths.pop()
    return int(value) if not lengths and value.isdigit() and len(value) < 19 else None


async def _read_plain(stream: _Stream, body: bytes, length: int, body_limit: int) -> bytes:
    """The first ``body_limit`` bytes of a body of ``length`` (or ``UNTIL_CLOSE``).

    Raises ``h11.RemoteProtocolError`` when the server closes before the
    length it announced (as h11 does).
    """
    want = body_limit if length == UNTIL_CLOSE else min(length, body_limit)
    for _ in range(MAX_STEPS):
        if len(body) >= want:
            return body[:want]
        chunk = await stream.receive_some(RECEIVE_SIZE)
        if not chunk:
            if length == UNTIL_CLOSE:
                return body
            raise h11.RemoteProtocolError("connection closed before the end of the body")
        body += chunk
    raise h11.RemoteProtocolError(f"no complete body in {MAX_STEPS} reads")


async def _read_body(
    stream: _Stream, request: tuple[str, str], received: bytes, body_limit: int,
) -> Response:
    """Feed h11 the response from its first byte; the status and the body's first bytes.

    For the framings ``body_length`` leaves to h11 (chunked, odd lengths).
    """
    conn = h11.Connection(h11.CLIENT)
    conn.send(_request(*request))
    conn.send(_END)
    conn.receive_data(received)
    status = 0
    body = bytearray()
    for _ in range(MAX_STEPS):
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(RECEIVE_SIZE)))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) >= body_limit:
                return Response(status, bytes(body[:body_limit]))
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return Response(status, bytes(body))
        # h11.InformationalResponse (1xx): the final response follows.
    raise h11.RemoteProtocolError(f"no complete response in {MAX_STEPS} reads")
