"""Many HTTP health endpoints in one process, for the check-cost benchmark.

Owns a backend process that listens on one port on each of many loopback
addresses (hundreds of 127.x.y.z: one per monitored member) and answers
every request with ``200 ok`` and closes (HTTP/1.0, as gdnsd's
``http_status`` asks), on uvloop, so that hundreds of checks a second cost
it little; it counts the requests it answered and writes the count to a
file every ``STATS_PERIOD`` seconds. And the parent-side handle
(``Farm``) that starts it pinned to a CPU, waits until it listens, reads
the count and stops it by PID.

Must not: bind anything but loopback addresses, send any traffic, or
outlive its parent (it polls its parent and exits when it is gone).

Run as a module it is the farm (what ``Farm.start`` runs):

    python -m testkit.backend_farm --port 8080 --stats farm.count 127.3.0.1 127.3.0.2 ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

from testkit import ROOT
from testkit.cpu import pinned

READY_SECONDS = 30.0
STOP_SECONDS = 5.0
STATS_PERIOD = 0.1  # seconds between two writes of the request count
HEAD_LIMIT = 8192  # bytes of a request head read at most
RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


def addresses(n: int, prefix: str = "127.3") -> list[str]:
    """``n`` distinct loopback addresses under ``prefix`` (127.3.0.1, 127.3.0.2, ...)."""
    if n > 250 * 250:
        raise ValueError(f"too many addresses: {n}")
    return [f"{prefix}.{i // 250}.{i % 250 + 1}" for i in range(n)]


# -- the farm process ----------------------------------------------------------------


class _Health(asyncio.Protocol):
    """One connection: read the request head, answer 200 ok, close."""

    count = 0  # requests answered, every connection of the process

    def __init__(self) -> None:
        self.head = b""
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport does not register with asyncio's ABCs: no isinstance.
        self.transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.head += data
        if b"\r\n\r\n" in self.head or len(self.head) > HEAD_LIMIT:
            _Health.count += 1
            self.transport.write(RESPONSE)
            self.transport.close()


async def _serve(hosts: list[str], port: int, stats: Path) -> None:
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(_Health, host, port, reuse_address=True, backlog=256)
        for host in hosts
    ]
    parent = os.getppid()
    print("ready", flush=True)
    tmp = stats.with_suffix(".tmp")
    while os.getppid() == parent:  # ends when the parent is gone (or by SIGTERM)
        tmp.write_text(f"{_Health.count}\n")
        tmp.replace(stats)
        await asyncio.sleep(STATS_PERIOD)
    for server in servers:
        server.close()


def serve(hosts: list[str], port: int, stats: Path) -> None:
    for host in hosts:
        if not ipaddress.ip_address(host).is_loopback:
            raise SystemExit(f"refusing to bind a non-loopback address: {host}")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * len(hosts) + 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(hosts, port, stats))
    else:
        uvloop.run(_serve(hosts, port, stats))


# -- the parent's handle -------------------------------------------------------------


class Farm:
    """The farm process on ``hosts``:``port``; a context manager that stops it by PID."""

    def __init__(self, hosts: list[str], port: int, work: Path, cpu: int | None = None) -> None:
        self.hosts, self.port, self.cpu = hosts, port, cpu
        self.stats = work / f"farm-{port}.count"
        self.log = work / f"farm-{port}.log"
        self.proc: subprocess.Popen[str] | None = None

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "testkit.backend_farm", "--port", str(self.port),
                "--stats", str(self.stats), *self.hosts]

    def start(self) -> Farm:
        with pinned(self.cpu), self.log.open("w") as log:
            proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=log, text=True,
                                    start_new_session=True, cwd=ROOT)
        self.proc = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + READY_SECONDS
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline and proc.poll() is None:
                if sel.select(timeout=0.2) and proc.stdout.readline().strip() == "ready":
                    return self
        self.stop()
        err = self.log.read_text()[-500:] if self.log.exists() else ""
        raise RuntimeError(f"backend farm on port {self.port} did not start: {err}")

    def requests(self) -> int:
        """Requests answered so far (as of the last write, at most STATS_PERIOD ago)."""
        for _ in range(20):  # the file is replaced whole; retry a read that races it
            with contextlib.suppress(OSError, ValueError):
                return int(self.stats.read_text())
            time.sleep(0.01)
        raise RuntimeError(f"cannot read {self.stats}")

    def stop(self) -> None:
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
        if proc.stdout is not None:
            proc.stdout.close()
        self.proc = None

    def __enter__(self) -> Farm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="HTTP health endpoints on many loopback addresses")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--stats", type=Path, required=True, help="file the request count goes to")
    ap.add_argument("hosts", nargs="+")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args.hosts, args.port, args.stats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
