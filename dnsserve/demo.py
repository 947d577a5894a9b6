"""Demo backends: three small HTTP servers to watch a failover happen.

Owns only the demo: HTTP backends on 127.0.0.11-13 that answer
``GET /health`` with 200 "ok", and the little console that stops and starts
them. It is not used by the server; ``dnsserve demo`` runs it next to a
server with the shipped ``dnsserve.toml``.
"""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

DEMO_ADDRESSES = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
DEMO_PORT = 8080

HELP = """\
Commands (type and press Enter):
  stop N     stop backend N (1-3): its address leaves the answer after `fall` checks
  start N    start it again: it comes back after `rise` checks
  fail N     keep it running but answer 503
  heal N     answer 200 again
  quit       stop everything
In another terminal: dig @127.0.0.1 -p 5300 www.example.com A +short"""


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Backend

    def do_GET(self) -> None:
        status, body = (503, b"failing\n") if self.server.failing else (200, b"ok\n")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # one line per check would drown the server's log


class _Backend(http.server.ThreadingHTTPServer):
    failing = False


class Backends:
    """The demo backends, each stoppable and restartable by number (1-based)."""

    def __init__(self, addresses: tuple[str, ...] = DEMO_ADDRESSES, port: int = DEMO_PORT):
        self.addresses = addresses
        self.port = port
        self._servers: dict[int, tuple[_Backend, threading.Thread]] = {}

    def start(self, n: int) -> str:
        if n in self._servers:
            return f"backend {n} is already running"
        server = _Backend((self.addresses[n - 1], self.port), _Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self._servers[n] = (server, thread)
        return f"backend {n} ({self.addresses[n - 1]}:{self.port}) started"

    def stop(self, n: int) -> str:
        entry = self._servers.pop(n, None)
        if entry is None:
            return f"backend {n} is not running"
        server, thread = entry
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        return f"backend {n} stopped"

    def fail(self, n: int, failing: bool) -> str:
        entry = self._servers.get(n)
        if entry is None:
            return f"backend {n} is not running"
        entry[0].failing = failing
        return f"backend {n} answers {'503' if failing else '200'}"

    def start_all(self) -> None:
        for n in range(1, len(self.addresses) + 1):
            log.info("%s", self.start(n))

    def stop_all(self) -> None:
        for n in list(self._servers):
            self.stop(n)

    def command(self, line: str) -> str | None:
        """Run one console command; None means quit."""
        words = line.split()
        if not words:
            return ""
        if words[0] in ("quit", "exit"):
            return None
        actions: dict[str, Callable[[int], str]] = {
            "stop": self.stop,
            "start": self.start,
            "fail": lambda n: self.fail(n, True),
            "heal": lambda n: self.fail(n, False),
        }
        action = actions.get(words[0])
        if action is None or len(words) != 2 or not words[1].isdigit():
            return HELP
        n = int(words[1])
        if not 1 <= n <= len(self.addresses):
            return f"backends are numbered 1-{len(self.addresses)}"
        return action(n)
