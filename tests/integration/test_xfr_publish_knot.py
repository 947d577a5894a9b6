"""Publish mode end to end: a member goes down, dnsserve publishes the pool's new answer set
into the zone, NOTIFYs, and a plain Knot secondary serves the new set (after an IXFR)."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest

from testkit.backends import TcpListener
from testkit.ports import common_port, free_port
from testkit.secondaries import Primary, knot_secondary, wait_serving
from testkit.server import start_server
from testkit.wait import wait_for

ORIGIN = "pub.example."
SECRET = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
MEMBERS = ("127.0.0.21", "127.0.0.22")


def a_set(host: str, port: int) -> set[str]:
    q = dns.message.make_query(f"www.{ORIGIN}", "A")
    r = dns.query.udp(q, host, port=port, timeout=1)
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}


def serial(port: int) -> int:
    r = dns.query.udp(dns.message.make_query(ORIGIN, "SOA"), "127.0.0.1", port=port, timeout=1)
    return int(r.answer[0][0].serial)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_member_down_reaches_the_knot_secondary(tmp_path: Path, workers: int) -> None:
    """With one process, and with two workers (the owner answers their transfers; they
    answer the published serial)."""
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / f"{ORIGIN}zone").write_text(
        f"$ORIGIN {ORIGIN}\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\n"
        f"ns1 A 127.0.0.1\nwww A {MEMBERS[0]}\nwww A {MEMBERS[1]}\n"
    )
    check_port = common_port(MEMBERS)
    knot_port = free_port()
    config = tmp_path / "dnsserve.toml"
    config.write_text(f"""
[server]
zones = "zones"
state = "state.db"

[[monitor]]
name = "tcp"
kind = "tcp"
port = {check_port}
interval = 0.25
timeout = 0.2
rise = 1
fall = 1

[[pool]]
owner = "www.{ORIGIN}"
type = "A"
monitor = "tcp"
publish = true
members = [{{ address = "{MEMBERS[0]}" }}, {{ address = "{MEMBERS[1]}" }}]

[[key]]
name = "xfr-key"
secret = "{SECRET}"

[[zone]]
name = "{ORIGIN}"
transfer_keys = ["xfr-key"]
notify = ["127.0.0.1:{knot_port}"]
publish_min_interval = 0.5
""")
    listeners = [TcpListener(m, check_port).open() for m in MEMBERS]
    server = start_server(tmp_path, "-c", str(config), zones=None, workers=workers)
    knot = None
    try:
        primary = Primary("127.0.0.1", server.port, "xfr-key", "hmac-sha256", SECRET)
        knot = knot_secondary(tmp_path / "knot", [ORIGIN], primary, port=knot_port)
        wait_serving(knot, [ORIGIN])
        wait_for("knot to serve both members", lambda: a_set(knot.host, knot.port),
                 lambda s: s == set(MEMBERS), seconds=20)
        listeners[1].close()  # member 2 goes down
        wait_for("knot to serve member 1 alone", lambda: a_set(knot.host, knot.port),
                 lambda s: s == {MEMBERS[0]}, seconds=30)
        assert "published zone pub.example." in server.log_text()
        # an unsigned serial check of dnsserve sees the published serial, as Knot serves it
        wait_for("the same serial on both", lambda: (serial(server.port), serial(knot.port)),
                 lambda s: s[0] == s[1] and s[0] > 1, seconds=10)
        listeners[1].open()  # and comes back
        wait_for("knot to serve both again", lambda: a_set(knot.host, knot.port),
                 lambda s: s == set(MEMBERS), seconds=30)
        assert "IXFR" in knot.log_text()
    finally:
        if knot is not None:
            knot.stop()
        server.stop()
        for listener in listeners:
            listener.close()
