"""NOTIFY received (RFC 1996): the hand-off routes it to the secondary zone, which refreshes
at once; a NOTIFY from an address or key the zone does not allow is REFUSED, a bad key
NOTAUTH; a NOTIFY for a zone we do not serve is NOTAUTH (as BIND and Knot answer)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.tsig
import pytest

from testkit.ports import free_port
from testkit.primaries import ORIGIN, TSIG_NAME, TSIG_SECRET, start_knot_primary, zone_text
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

KEY = dns.tsig.Key(TSIG_NAME, TSIG_SECRET)


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as es:
        yield es


def www(srv: ServerProc) -> set[str]:
    try:
        r = srv.udp(dns.message.make_query(f"www.{ORIGIN}", "A"), timeout=0.5)
    except Exception:  # busy: poll again
        return set()
    return {rd.to_text() for rrset in r.answer for rd in rrset}


def notify(srv: ServerProc, zone: str, key: dns.tsig.Key | None,
           source: str = "127.0.0.1") -> dns.message.Message:
    q = dns.message.make_query(zone, "SOA")
    q.flags = dns.flags.AA
    q.set_opcode(dns.opcode.NOTIFY)
    if key is not None:
        q.use_tsig({key.name: key}, key.name)
    return dns.query.udp(q, srv.host, port=srv.port, timeout=2, source=source)


@pytest.mark.parametrize("workers", [1, 2])
def test_notify_from_the_primary_refreshes_at_once(tmp_path: Path, stack: contextlib.ExitStack,
                                                   workers: int) -> None:
    """With one process, and with two workers (which hand NOTIFY to the owner)."""
    dns_port = free_port()
    primary = start_knot_primary(tmp_path / "knot", zone_text(1, {"www": "192.0.2.1"}),
                                 notify_port=dns_port, tsig=True)
    stack.callback(primary.stop)
    (tmp_path / "zones").mkdir()
    (tmp_path / "state").mkdir()
    conf = tmp_path / "dnsserve.toml"
    conf.write_text(
        f'[server]\nlisten = ["127.0.0.1:{dns_port}"]\nzones = "zones"\n'
        f'state = "state/dnsserve.db"\ncontrol = "127.0.0.1:{free_port()}"\n\n'
        f'[[key]]\nname = "{TSIG_NAME}"\nsecret = "{TSIG_SECRET}"\n\n'
        f'[[zone]]\nname = "{ORIGIN}"\nprimaries = ["{primary.address}"]\nkey = "{TSIG_NAME}"\n'
        'allow_notify = ["127.0.0.1/32"]\n'
    )
    srv = start_server(tmp_path, "-c", str(conf), zones=None, port=dns_port, workers=workers)
    stack.callback(srv.stop)
    if workers > 1:
        wait_for("the workers", srv.children, lambda pids: len(pids) == workers)
    wait_for("the first copy", lambda: www(srv), lambda s: s == {"192.0.2.1"}, seconds=30)
    # the zone's refresh is an hour away: only the primary's NOTIFY makes dnsserve look now
    primary.change(zone_text(2, {"www": "192.0.2.2"}))
    wait_for("the NOTIFY'd change", lambda: www(srv), lambda s: s == {"192.0.2.2"}, seconds=30)
    assert f"NOTIFY for {ORIGIN} from 127.0.0.1" in srv.log_text()

    r = notify(srv, ORIGIN, KEY)
    assert r.rcode() == dns.rcode.NOERROR and r.opcode() == dns.opcode.NOTIFY
    assert r.flags & dns.flags.AA and r.had_tsig
    assert notify(srv, ORIGIN, KEY, source="127.0.0.2").rcode() == dns.rcode.REFUSED
    assert notify(srv, ORIGIN, None).rcode() == dns.rcode.REFUSED  # the zone wants its key
    assert notify(srv, "example.com.", KEY).rcode() == dns.rcode.NOTAUTH  # a zone not served
    q = dns.message.make_query(ORIGIN, "SOA")
    q.set_opcode(dns.opcode.NOTIFY)
    unknown = dns.tsig.Key("nope", TSIG_SECRET)
    q.use_tsig({unknown.name: unknown}, unknown.name)
    wire = q.to_wire()  # read the answer unverified: it is NOTAUTH with an unsigned TSIG
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(wire, (srv.host, srv.port))
        r = dns.message.from_wire(sock.recv(4096), keyring=False)
    assert r.rcode() == dns.rcode.NOTAUTH and r.tsig_error == dns.rcode.BADKEY
