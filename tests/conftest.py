"""Shared fixtures: the real server on loopback, started and stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_ZONES = ROOT / "zones"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` (bounded tries)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
            with socket.socket(family, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port found")


@dataclass
class ServerProc:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def udp(self, q: dns.message.Message, timeout: float = 2.0) -> dns.message.Message:
        return dns.query.udp(q, self.host, port=self.port, timeout=timeout)

    def tcp(self, q: dns.message.Message, timeout: float = 2.0) -> dns.message.Message:
        return dns.query.tcp(q, self.host, port=self.port, timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def wait_ready(host: str, port: int, proc: subprocess.Popen[bytes], seconds: float = 15.0) -> None:
    """Poll with a query until the server answers anything (bounded in time)."""
    deadline = time.monotonic() + seconds
    q = dns.message.make_query("version.invalid.", "SOA")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        with contextlib.suppress(OSError, dns.exception.Timeout):
            dns.query.udp(q, host, port=port, timeout=0.2)
            return
        time.sleep(0.05)
    raise RuntimeError("server did not become ready")


def start_server(
    tmp_path: Path,
    *args: str,
    zones: Path | None = SHIPPED_ZONES,
    host: str = "127.0.0.1",
    cwd: Path | None = None,
) -> ServerProc:
    """Start ``python -m dnsserve serve`` on a random loopback port."""
    port = free_port(host)
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cmd = [sys.executable, "-m", "dnsserve", "serve", "--listen", listen]
    if zones is not None:
        cmd += ["--zones", str(zones)]
    cmd += list(args)
    log = tmp_path / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd or tmp_path)
    srv = ServerProc(proc, host, port, log)
    try:
        wait_ready(host, port, proc)
    except Exception:
        srv.stop()
        raise RuntimeError(f"server failed to start:\n{log.read_text(errors='replace')}") from None
    return srv


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """One server on the shipped zones for the whole session."""
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()
