"""Real backends for health tests: HTTP and TCP listeners on 127.0.0.x, switchable at run time.

Owns small servers a test starts next to dnsserve (or next to a probe) so a
check has something real to talk to: ``HttpBackend`` (answers 200 "ok", 503,
a wrong body, 404, or hangs past any check timeout, for every path or per
path; plain HTTP or HTTPS with a given certificate; records each request's
Host header and each TLS client's SNI; ``stop()`` closes the listening
socket, so a connect is refused, and ``start()`` binds the same address and
port again) and ``TcpListener`` (accepts and closes connections;
``close()``/``open()``). Both run in daemon threads of the test process and
bind loopback only.

Must not: send traffic by itself, bind anything but the address it is given,
or outlive the test (every ``start``/``open`` has a ``stop``/``close``; both
are context managers, and ``close_all`` stops a group).

The health benchmarks need backends a test cannot have in its own process
(killed with SIGKILL, logging each request's arrival): ``backend_process``.
"""

from __future__ import annotations

import contextlib
import enum
import selectors
import socket
import ssl
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HANG_LIMIT = 10.0  # seconds a hanging response waits at most before it gives up


class Mode(enum.Enum):
    OK = "ok"                  # 200, body "ok"
    ERROR = "503"              # 503, body "unavailable"
    WRONG_BODY = "wrong-body"  # 200, body "maintenance page" (fails expect_body = "ok")
    NOT_FOUND = "404"          # 404, body "no such page"
    HANG = "hang"              # no response until released (see HttpBackend) or HANG_LIMIT


_RESPONSES = {
    Mode.OK: (200, b"ok"),
    Mode.ERROR: (503, b"unavailable"),
    Mode.WRONG_BODY: (200, b"maintenance page"),
    Mode.NOT_FOUND: (404, b"no such page"),
    Mode.HANG: (200, b"ok"),  # sent only if released: the check has long been cancelled
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def do_GET(self) -> None:
        backend = self.server.backend
        mode, release = backend.mode_of(self.path), backend._release
        backend._seen(self.headers.get("Host", ""))
        if mode is Mode.HANG:
            release.wait(HANG_LIMIT)
        status, body = _RESPONSES[mode]
        with contextlib.suppress(OSError):  # the monitor gave up and closed the connection
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # a check cancelled mid-request
            super().handle()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    backend: HttpBackend


class HttpBackend:
    """An HTTP(S) server on ``host:port`` whose behaviour the test switches.

    ``mode`` answers every path but those in ``routes`` (path -> mode), and
    may change while it runs; leaving ``Mode.HANG`` releases the requests
    still hanging, and so does ``stop()``. Port 0: the first ``start()``
    picks a free port, sets ``port``, and later starts bind it again. With
    ``cert`` (certificate and key files) it speaks HTTPS. ``requests``
    counts the requests seen so far, ``hosts`` lists their Host headers and
    ``sni`` the server names TLS clients sent (None: a client sent none).
    """

    def __init__(self, host: str, port: int, mode: Mode = Mode.OK, *,
                 routes: Mapping[str, Mode] | None = None,
                 cert: tuple[Path, Path] | None = None) -> None:
        self.host, self.port = host, port
        self._mode = mode
        self._routes = dict(routes or {})
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._hosts: list[str] = []
        self._sni: list[str | None] = []
        self._tls: ssl.SSLContext | None = None
        if cert is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*cert)
            self._tls.sni_callback = self._seen_sni
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        leaving = self._mode is Mode.HANG and mode is not Mode.HANG
        if mode is Mode.HANG and self._mode is not Mode.HANG:
            self._release = threading.Event()
        self._mode = mode
        if leaving:
            self._release.set()

    def mode_of(self, path: str) -> Mode:
        """How a request for ``path`` is answered now."""
        return self._routes.get(path, self._mode)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self._hosts)

    @property
    def hosts(self) -> list[str]:
        with self._lock:
            return list(self._hosts)

    @property
    def sni(self) -> list[str | None]:
        with self._lock:
            return list(self._sni)

    def _seen(self, host: str) -> None:
        with self._lock:
            self._hosts.append(host)

    def _seen_sni(self, _conn: object, name: str | None, _ctx: object) -> None:
        with self._lock:
            self._sni.append(name)

    def start(self) -> HttpBackend:
        """Bind and serve (again); a no-op when running."""
        if self._server is not None:
            return self
        if self._release.is_set():
            self._release = threading.Event()  # stop() released the last one
        server = _HTTPServer((self.host, self.port), _Handler)
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        server.backend = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"backend-{self.host}:{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket (connects are refused); hanging requests end."""
        self._release.set()
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> HttpBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TcpListener:
    """A plain TCP listener on ``host:port`` that accepts and closes each connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._accepted = 0

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    @property
    def accepted(self) -> int:
        with self._lock:
            return self._accepted

    def open(self) -> TcpListener:
        """Listen (again); a no-op when open."""
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._stop = threading.Event()
        self._sock = sock
        self._thread = threading.Thread(
            target=self._accept, args=(sock, self._stop),
            name=f"listener-{self.host}:{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def _accept(self, sock: socket.socket, stop: threading.Event) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            while not stop.is_set():
                if not sel.select(timeout=0.05):
                    continue
                with contextlib.suppress(BlockingIOError, ConnectionError):
                    conn, _ = sock.accept()
                    conn.close()
                    with self._lock:
                        self._accepted += 1

    def close(self) -> None:
        """Stop listening: a connect to the port is refused."""
        sock, thread = self._sock, self._thread
        self._sock = self._thread = None
        self._stop.set()
        if thread is not None:
            thread.join(5)
        if sock is not None:
            sock.close()

    def __enter__(self) -> TcpListener:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def close_all(backends: Iterable[HttpBackend | TcpListener]) -> None:
    """Stop every backend at once (in parallel, so they go down together), and wait."""
    threads = [
        threading.Thread(target=b.stop if isinstance(b, HttpBackend) else b.close, daemon=True)
        for b in backends
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
