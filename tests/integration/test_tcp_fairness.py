"""TCP fairness of the real server (issue 11 §4), one process and two workers.

A hog from 127.0.0.2 opens more idle connections than the cap; a client from
127.0.0.3 must still be answered over TCP (the longest-idle connection is
closed to make room, as NSD and Knot do). And with a per-prefix limit, one
prefix holds at most that many connections (each worker its share), while
another prefix is answered. Real sockets on loopback, bounded counts, a small
cap and a file descriptor limit (``nofile``) to show the cap holds under it.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import httpx
import pytest

from testkit.harness import render_config
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

CAP = 40
HOG = CAP + 50
PER_PREFIX = 10
NOFILE = 512  # the TCP cap (40) stays below what this limit allows (net.tcp_cap: 128)


def start(tmp: Path, workers: int, **server: object) -> ServerProc:
    config = tmp / "dnsserve.toml"
    config.write_text(render_config({"server": {
        "state": str(tmp / "state.db"), "tcp_max_connections": CAP, "tcp_idle_timeout": 60.0,
        **server}}))
    return start_server(tmp, "-c", str(config), workers=workers, nofile=NOFILE)


def ask_from(srv: ServerProc, source: str) -> dns.message.Message:
    q = dns.message.make_query("www.example.com.", "A")
    return dns.query.tcp(q, srv.host, port=srv.port, timeout=5, source=source)


@contextlib.contextmanager
def hog(srv: ServerProc, count: int, source: str = "127.0.0.2") -> Iterator[list[socket.socket]]:
    """``count`` idle connections from ``source`` (each connected, none sending)."""
    with contextlib.ExitStack() as stack:
        socks = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((source, 0))
            s.settimeout(5)
            s.connect((srv.host, srv.port))
            socks.append(s)
        yield socks


def evicted(srv: ServerProc) -> float:
    """``dnsserve_tcp_closed_total{reason="evicted"}`` (workers' counts arrive every 0.5 s)."""
    text = httpx.get(f"http://{srv.control}/metrics", timeout=5).text
    line = next((x for x in text.splitlines()
                 if x.startswith('dnsserve_tcp_closed_total{reason="evicted"}')), "x 0")
    return float(line.split()[-1])


def closed(socks: list[socket.socket]) -> int:
    """How many of ``socks`` the server closed (EOF or reset readable; it never sends unasked)."""
    readable, _, _ = select.select(socks, [], [], 0)
    n = 0
    for s in readable:
        try:
            n += s.recv(1, socket.MSG_PEEK) == b""
        except ConnectionError:
            n += 1
    return n


@pytest.mark.parametrize("workers", [1, 2])
def test_a_hog_cannot_lock_others_out(tmp_path: Path, workers: int) -> None:
    srv = start(tmp_path, workers)  # per-prefix limit (100) above the cap: the cap decides
    try:
        with hog(srv, HOG) as socks:
            wait_for("the hog's longest-idle connections closed", lambda: closed(socks),
                     lambda n: n >= HOG - CAP)
            for _ in range(3):
                assert ask_from(srv, "127.0.0.3").answer
            assert srv.proc.poll() is None
            wait_for("the evictions in /metrics", lambda: evicted(srv), lambda n: n >= HOG - CAP)
    finally:
        srv.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_per_prefix_limit(tmp_path: Path, workers: int) -> None:
    srv = start(tmp_path, workers, tcp_max_connections_per_prefix=PER_PREFIX,
                tcp_ipv4_prefix_length=32)
    try:
        with hog(srv, 3 * PER_PREFIX) as socks:
            # each worker keeps its share (PER_PREFIX / workers) of the hog's connections
            n = wait_for("the hog held to its limit", lambda: closed(socks),
                         lambda n: n >= 2 * PER_PREFIX)
            assert len(socks) - n <= PER_PREFIX
            assert ask_from(srv, "127.0.0.3").answer  # another prefix: not limited by the hog
            assert ask_from(srv, "127.0.0.2").answer  # the hog's prefix: its oldest makes room
    finally:
        srv.stop()
