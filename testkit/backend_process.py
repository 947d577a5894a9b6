"""Small HTTP backends for the health benchmarks, one real process per address.

Owns: a health endpoint (``GET /health`` -> 200 "ok", anything else -> 404)
that logs the arrival time of every request (``time.monotonic()``, which on
Linux is the system-wide CLOCK_MONOTONIC, so times compare across processes),
and a parent-side handle that starts such a process on 127.0.0.x, waits until
it listens, kills it (SIGKILL: "the process stopped") and starts it again on
the same address and port.

Must not: bind anything but a loopback address, send any traffic, or leave a
process behind: every process is stopped by its PID (``Backend.stop``,
``BackendSet.stop``), and a child whose parent died exits by itself (it polls
its parent).

Run as a module it is one backend (what ``Backend.start`` runs):

    python -m testkit.backend_process 127.0.0.11 8080 --log health-11.log

The tests' backends, switchable in the test's own process, are in ``backends``.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import select
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

from testkit import ROOT
from testkit.ports import common_port

READY_SECONDS = 10.0
STOP_SECONDS = 5.0


# -- the backend process ------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server_version = "bench-backend"
    protocol_version = "HTTP/1.0"
    log_sink: IO[str] | None = None
    log_lock = threading.Lock()

    def do_GET(self) -> None:
        arrived = time.monotonic()
        if self.log_sink is not None:
            with self.log_lock:
                self.log_sink.write(f"{arrived:.6f} {self.path}\n")
                self.log_sink.flush()
        body, status = (b"ok\n", 200) if self.path.startswith("/health") else (b"no\n", 404)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would be noise; arrivals go to the log file


def _watch_parent(parent: int, server: ThreadingHTTPServer) -> None:
    """Exit when the parent is gone, so an interrupted benchmark leaves nothing."""
    while os.getppid() == parent:
        time.sleep(0.5)
    server.shutdown()


def _realtime() -> str:
    """SCHED_FIFO at the lowest real-time priority, so the arrival stamp is not delayed
    by this process waiting for a CPU that a saturated server and dnsperf hold. The
    process sleeps in select() between requests, so it cannot hog a CPU."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        return "normal"
    return "fifo"


def serve(address: str, port: int, log: Path | None, realtime: bool = False) -> None:
    if not ipaddress.ip_address(address).is_loopback:
        raise SystemExit(f"refusing to bind a non-loopback address: {address}")
    policy = _realtime() if realtime else "normal"
    sink = log.open("a") if log is not None else None
    _Handler.log_sink = sink
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((address, port), _Handler)
    threading.Thread(target=_watch_parent, args=(os.getppid(), server), daemon=True).start()
    print(f"ready {policy}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if sink is not None:
            sink.close()


# -- the parent's handles -----------------------------------------------------------


class Backend:
    """One backend process on ``address:port``; start, kill and start again."""

    def __init__(self, address: str, port: int, log: Path | None = None,
                 realtime: bool = False) -> None:
        self.address = address
        self.port = port
        self.log = log
        self.realtime = realtime
        self.scheduling = ""  # what the process got: "fifo" or "normal"
        self.proc: subprocess.Popen[str] | None = None

    @property
    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "testkit.backend_process", self.address, str(self.port)]
        cmd += ["--log", str(self.log)] if self.log is not None else []
        return cmd + (["--realtime"] if self.realtime else [])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> float:
        """Start the process; return the monotonic time it began listening."""
        if self.alive():
            raise RuntimeError(f"backend {self.address} already running")
        proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, start_new_session=True, cwd=ROOT)
        self.proc = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                word, _, policy = proc.stdout.readline().strip().partition(" ")
                if word == "ready":
                    self.scheduling = policy
                    return time.monotonic()
                break  # EOF or garbage: the process failed
            if proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"backend {self.address}:{self.port} did not start")

    def kill(self) -> float:
        """SIGKILL the process; return the monotonic time the signal was sent."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"backend {self.address} is not running")
        os.kill(self.proc.pid, signal.SIGKILL)
        sent = time.monotonic()
        self.proc.wait(timeout=STOP_SECONDS)
        self._close()
        return sent

    def stop(self) -> None:
        """Stop by PID if running (TERM, then KILL after a bounded wait)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_SECONDS)
        self._close()

    def _close(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def arrivals(self) -> list[float]:
        """Monotonic arrival times of /health requests, from the log file."""
        if self.log is None or not self.log.exists():
            return []
        times = []
        for line in self.log.read_text().splitlines():
            stamp, _, path = line.partition(" ")
            if path.startswith("/health"):
                times.append(float(stamp))
        return times


class BackendSet:
    """Backends on several addresses, one shared port; a context manager that stops all."""

    def __init__(self, addresses: list[str], log_dir: Path | None = None,
                 port: int | None = None, realtime: bool = False) -> None:
        self.port = port if port is not None else common_port(addresses)
        self.backends = {
            a: Backend(a, self.port, log_dir / f"health-{a}.log" if log_dir else None,
                       realtime)
            for a in addresses
        }

    def __enter__(self) -> BackendSet:
        try:
            for backend in self.backends.values():
                backend.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getitem__(self, address: str) -> Backend:
        return self.backends[address]

    def stop(self) -> None:
        for backend in self.backends.values():
            backend.stop()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="one health-check backend on a loopback address")
    ap.add_argument("address")
    ap.add_argument("port", type=int)
    ap.add_argument("--log", type=Path, default=None, help="append request arrival times here")
    ap.add_argument("--realtime", action="store_true",
                    help="run SCHED_FIFO (lowest priority) when permitted")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args.address, args.port, args.log, args.realtime)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
