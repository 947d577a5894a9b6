"""RRL and DNS Cookies on the real server (workers 1 and 2), asked by dnspython, dig and kdig.

RRL is measured by counting outcomes of a bounded burst with a low rate
(rate = 5): the burst is sent without waiting for answers, far faster than
the buckets refill, and the bounds allow it to span many seconds of a
loaded machine. Cookies: dig and kdig see our server cookie, a second
query with it is accepted (the server's own counter says so), in every
worker and at a second server that shares the secret.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import httpx
import pytest

from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

pytestmark = pytest.mark.integration

SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
BURST = 100
RATE = 5
COOKIE = dns.edns.OptionType.COOKIE


def _config(tmp_path: Path, rrl: str) -> Path:
    path = tmp_path / "dnsserve.toml"
    path.write_text(f'[rrl]\n{rrl}\n\n[cookies]\nsecret = "{SECRET}"\n')
    return path


@pytest.fixture(params=[1, 2], ids=["workers1", "workers2"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProc]:
    cfg = _config(tmp_path, f"enabled = true\nrate = {RATE}\nslip = 2")
    srv = start_server(tmp_path, "-c", str(cfg), workers=request.param)
    try:
        yield srv
    finally:
        srv.stop()


def _metric(srv: ServerProc, name: str, label: str) -> int:
    text = httpx.get(f"http://{srv.control}/metrics", timeout=5.0).text
    match = re.search(rf'^{name}\{{{label}\}} (\d+)', text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _burst(srv: ServerProc, query: dns.message.Message, count: int) -> tuple[int, int, int]:
    """Send ``count`` copies of ``query`` from one socket at once; (full, truncated, dropped)."""
    full = truncated = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        wire = query.to_wire()
        for _ in range(count):
            sock.sendto(wire, (srv.host, srv.port))
        for _ in range(count):  # bounded: at most one answer per query
            try:
                data = sock.recv(4096)
            except TimeoutError:
                break
            r = dns.message.from_wire(data)
            assert r.id == query.id and r.rcode() == dns.rcode.NOERROR
            if r.flags & dns.flags.TC:
                assert not r.answer and r.question == query.question
                truncated += 1
            else:
                assert r.answer
                full += 1
    return full, truncated, count - full - truncated


def test_a_burst_is_limited_with_every_second_limited_answer_truncated(
    server: ServerProc,
) -> None:
    full, truncated, dropped = _burst(server, dns.message.make_query("www.example.com.", "A"),
                                      BURST)
    # at most RATE per second (per worker's share): a burst spanning up to 10 s passes
    assert 1 <= full <= BURST // 2
    # slip = 2: about half of the limited answers are truncated, the rest dropped
    assert truncated >= 10 and dropped >= 10
    assert abs(truncated - dropped) <= BURST // 5
    limited = wait_for("the limited answers in /metrics", lambda: _metric(
        server, "dnsserve_rrl_responses_total", 'action="limited"'), lambda n: n >= 20)
    assert limited >= truncated + dropped - 5  # a lost datagram counts as dropped here


def test_tcp_is_never_limited(server: ServerProc) -> None:
    q = dns.message.make_query("www.example.com.", "A")
    _burst(server, q, 30)  # the bucket is spent
    answers = [dns.query.tcp(q, server.host, port=server.port, timeout=5.0) for _ in range(15)]
    assert all(r.answer and not r.flags & dns.flags.TC for r in answers)


def _dig(tool: str, srv: ServerProc, *args: str) -> str:
    out = subprocess.run(
        [tool, f"@{srv.host}", "-p", str(srv.port), "www.example.com", "A", *args],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    assert "NOERROR" in out
    return out


def _cookie_from(out: str) -> str:
    match = re.search(r"COOKIE: ([0-9a-fA-F]+)", out)
    assert match, out
    return match.group(1).lower()


def test_dig_and_kdig_get_a_server_cookie_and_it_is_accepted(server: ServerProc) -> None:
    first = _dig("dig", server, "+cookie")
    cookie = _cookie_from(first)
    assert len(cookie) == 48 and cookie[16:24] == "01000000" and "(good)" in first
    before = _metric(server, "dnsserve_cookies_total", 'result="accepted"')
    for _ in range(6):  # separate processes, separate ports: with workers, several of them
        again = _dig("dig", server, f"+cookie={cookie}")
        assert "(good)" in again and _cookie_from(again)[:16] == cookie[:16]
    wait_for("six accepted cookies in /metrics", lambda: _metric(
        server, "dnsserve_cookies_total", 'result="accepted"'), lambda n: n >= before + 6)
    kdig = _cookie_from(_dig("kdig", server, "+cookie"))
    assert len(kdig) == 48 and kdig[16:24] == "01000000"


def test_a_valid_cookie_bypasses_rrl_and_a_bad_length_is_formerr(server: ServerProc) -> None:
    hello = dns.message.make_query("www.example.com.", "A", use_edns=0, options=[
        dns.edns.GenericOption(COOKIE, b"\x42" * 8)])
    r = dns.query.udp(hello, server.host, port=server.port, timeout=5.0)
    (mine,) = (o.to_wire() for o in r.options if o.otype == COOKIE)
    assert len(mine) == 24 and mine[:8] == b"\x42" * 8
    with_cookie = dns.message.make_query("www.example.com.", "A", use_edns=0, options=[
        dns.edns.GenericOption(COOKIE, mine)])
    assert _burst(server, with_cookie, 40) == (40, 0, 0)
    bad = dns.message.make_query("www.example.com.", "A", use_edns=0, options=[
        dns.edns.GenericOption(COOKIE, b"\x42" * 9)])
    assert dns.query.tcp(bad, server.host, port=server.port, timeout=5.0).rcode() \
        == dns.rcode.FORMERR


def test_a_cookie_from_one_node_is_accepted_at_another_sharing_the_secret(
    tmp_path: Path,
) -> None:
    nodes = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            cfg = _config(tmp_path / name, "enabled = false")
            nodes.append(start_server(tmp_path / name, "-c", str(cfg)))
        cookie = _cookie_from(_dig("dig", nodes[0], "+cookie"))
        assert "(good)" in _dig("dig", nodes[1], f"+cookie={cookie}")
        accepted = wait_for("the accepted cookie at the other node", lambda: _metric(
            nodes[1], "dnsserve_cookies_total", 'result="accepted"'), lambda n: n >= 1)
        assert accepted == 1
    finally:
        for node in nodes:
            node.stop()


def test_rrl_is_off_on_loopback_unless_enabled_and_the_start_says_so(tmp_path: Path) -> None:
    cfg = _config(tmp_path, f"rate = {RATE}")  # no `enabled`: every listener is loopback
    srv = start_server(tmp_path, "-c", str(cfg))
    try:
        q = dns.message.make_query("www.example.com.", "A")
        assert _burst(srv, q, 20) == (20, 0, 0)
        assert "RRL off: every listen address is loopback" in srv.log_text()
    finally:
        srv.stop()
