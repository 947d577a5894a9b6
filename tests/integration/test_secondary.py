"""dnsserve as a secondary of Knot DNS and BIND, end to end on loopback.

Each test starts a real primary (``testkit.primaries``: knotd or named with a
loopback-only config, NOTIFY only to this test's dnsserve) and the real
dnsserve with a ``[[zone]]`` whose ``primaries`` is that peer, then changes
the zone on the primary and watches what dnsserve answers (bounded polls),
what its copy on disk holds and what its status says. Every process a test
starts is stopped by it (``ExitStack``, by PID). No timing is asserted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest

from testkit.ports import free_port
from testkit.primaries import (
    ORIGIN,
    TSIG_NAME,
    TSIG_SECRET,
    Primary,
    start_bind_primary,
    start_knot_primary,
    zone_text,
)
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

WWW = f"www.{ORIGIN}"


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as es:
        yield es


def ask(srv: ServerProc, qname: str, qtype: str = "A") -> dns.message.Message:
    q = dns.message.make_query(qname, qtype)
    q.flags &= ~dns.flags.RD
    return srv.udp(q)


def rcode_and_addresses(srv: ServerProc, qname: str = WWW) -> tuple[int, set[str]]:
    try:
        r = ask(srv, qname)
    except Exception:  # a timeout while the server is busy: poll again
        return -1, set()
    return r.rcode(), {rd.to_text() for rrset in r.answer for rd in rrset}


def wait_answer(srv: ServerProc, expected: set[str], qname: str = WWW,
                seconds: float = 30.0) -> None:
    wait_for(f"{qname} to answer {expected}", lambda: rcode_and_addresses(srv, qname),
             lambda got: got == (dns.rcode.NOERROR, expected), seconds=seconds)


def wait_rcode(srv: ServerProc, rcode: int, seconds: float = 30.0) -> None:
    wait_for(f"{WWW} to answer {dns.rcode.to_text(rcode)}", lambda: rcode_and_addresses(srv),
             lambda got: got[0] == rcode, seconds=seconds)


def write_config(tmp: Path, primary: Primary | str, *, dns_port: int, tsig: bool = False,
                 guard: bool = True, extra: str = "") -> Path:
    address = primary if isinstance(primary, str) else primary.address
    control = free_port()
    key = (f'[[key]]\nname = "{TSIG_NAME}"\nalgorithm = "hmac-sha256"\n'
           f'secret = "{TSIG_SECRET}"\n\n') if tsig else ""
    zones = tmp / "zones"
    zones.mkdir(exist_ok=True)
    conf = tmp / "dnsserve.toml"
    conf.write_text(
        f'[server]\nlisten = ["127.0.0.1:{dns_port}"]\nzones = "zones"\n'
        f'state = "state/dnsserve.db"\ncontrol = "127.0.0.1:{control}"\n\n'
        f'{key}[[zone]]\nname = "{ORIGIN}"\nprimaries = ["{address}"]\n'
        + (f'key = "{TSIG_NAME}"\n' if tsig else "")
        + ("guard = false\n" if not guard else "")
        + extra
    )
    (tmp / "state").mkdir(exist_ok=True)
    return conf


def serve(tmp: Path, conf: Path, stack: contextlib.ExitStack,
          host: str = "127.0.0.1", workers: int = 1) -> ServerProc:
    srv = start_server(tmp, "-c", str(conf), zones=None, port=_port_of(conf), host=host,
                       workers=workers)
    stack.callback(srv.stop)
    return srv


def _port_of(conf: Path) -> int:
    return int(tomllib.loads(conf.read_text())["server"]["listen"][0].rsplit(":", 1)[1])


def wait_transfers(srv: ServerProc, conf: Path, axfr: int, ixfr: int) -> dict[str, Any]:
    """The status once the transfers are counted (the answer may change a moment before
    the refresh that served it has finished)."""
    return wait_for(f"{axfr} AXFR and {ixfr} IXFR in the status", lambda: status(srv, conf),
                    lambda doc: doc["transfers"] == {"axfr": axfr, "ixfr": ixfr}, seconds=30)


def refresh(srv: ServerProc, conf: Path, zone: str = ORIGIN) -> None:
    """``dnsserve refresh ZONE`` through the CLI (it reads the token beside the state file)."""
    out = subprocess.run([sys.executable, "-m", "dnsserve", "refresh", zone, "-c", str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def _control(conf: Path) -> str:
    return str(tomllib.loads(conf.read_text())["server"]["control"])


def status(srv: ServerProc, conf: Path) -> dict[str, Any]:
    control = _control(conf)
    reply = httpx.get(f"http://{control}/api/v1/status", timeout=5)
    reply.raise_for_status()
    doc = reply.json()
    zones = {z["zone"]: z for z in doc.get("secondary", [])}
    return zones[ORIGIN]


# -- AXFR at start, IXFR after a change -------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_knot_primary_axfr_at_start_then_ixfr_on_refresh(tmp_path: Path,
                                                         stack: contextlib.ExitStack,
                                                         workers: int) -> None:
    """With one process, and with two workers (EXPIRE is the owner's to answer)."""
    dns_port = free_port()
    primary = start_knot_primary(tmp_path / "knot", zone_text(1, {"www": "192.0.2.1"}))
    stack.callback(primary.stop)
    conf = write_config(tmp_path, primary, dns_port=dns_port)
    srv = serve(tmp_path, conf, stack, workers=workers)
    wait_answer(srv, {"192.0.2.1"})
    copy = tmp_path / "state" / "secondary" / "example.org.zone"
    assert copy.is_file() and "192.0.2.1" in copy.read_text()

    primary.change(zone_text(2, {"www": "192.0.2.2", "new": "192.0.2.9"}))
    # refresh is an hour away: the operator's refresh makes dnsserve look now
    refresh(srv, conf)
    wait_answer(srv, {"192.0.2.2"})
    assert rcode_and_addresses(srv, f"new.{ORIGIN}") == (dns.rcode.NOERROR, {"192.0.2.9"})
    doc = wait_transfers(srv, conf, 1, 1)
    assert doc["serial"] == 2 and doc["expired"] is False and doc["last_error"] == ""
    assert "192.0.2.2" in copy.read_text()
    assert "IXFR, outgoing" in primary.peer.log_text()
    out = subprocess.run([sys.executable, "-m", "dnsserve", "status", "-c", str(conf)],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "secondary zones" in out.stdout and "axfr 1, ixfr 1" in out.stdout

    # RFC 7314: the EXPIRE option is answered with the seconds left (expire is an hour)
    q = dns.message.make_query(ORIGIN, "SOA", use_edns=0, options=[
        dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, b"")])
    r = srv.tcp(q)
    (option,) = [o for o in r.options if o.otype == dns.edns.OptionType.EXPIRE]
    assert 0 < int.from_bytes(option.to_wire(), "big") <= 3600


def test_knot_notify_makes_dnsserve_refresh_at_once(tmp_path: Path,
                                                  stack: contextlib.ExitStack) -> None:
    dns_port = free_port()
    primary = start_knot_primary(tmp_path / "knot", zone_text(1, {"www": "192.0.2.1"}),
                                 notify_port=dns_port)
    stack.callback(primary.stop)
    conf = write_config(tmp_path, primary, dns_port=dns_port)
    srv = serve(tmp_path, conf, stack)
    wait_answer(srv, {"192.0.2.1"})
    primary.change(zone_text(2, {"www": "192.0.2.2"}))
    # refresh is an hour away: only Knot's NOTIFY makes dnsserve look now
    wait_answer(srv, {"192.0.2.2"})
    wait_transfers(srv, conf, 1, 1)
    assert "NOTIFY for example.org. from 127.0.0.1: refreshing now" in srv.log_text()


def test_over_ipv6_loopback(tmp_path: Path, stack: contextlib.ExitStack) -> None:
    dns_port = free_port("::1")
    primary = start_knot_primary(tmp_path / "knot", zone_text(1, {"www": "192.0.2.1"}),
                                 notify_port=dns_port, host="::1")
    stack.callback(primary.stop)
    conf = write_config(tmp_path, primary, dns_port=dns_port)  # primaries = ["[::1]:PORT"]
    srv = serve(tmp_path, conf, stack, host="::1")
    wait_answer(srv, {"192.0.2.1"})
    primary.change(zone_text(2, {"www": "192.0.2.2"}))
    wait_answer(srv, {"192.0.2.2"})  # NOTIFY from ::1, a primary's address
    wait_transfers(srv, conf, 1, 1)
    assert rcode_and_addresses(srv) == (dns.rcode.NOERROR, {"192.0.2.2"})


def test_notify_from_elsewhere_is_refused(tmp_path: Path, stack: contextlib.ExitStack) -> None:
    primary = start_knot_primary(tmp_path / "knot", zone_text(1, {"www": "192.0.2.1"}))
    stack.callback(primary.stop)
    conf = write_config(tmp_path, primary, dns_port=free_port(),
                        extra='allow_notify = ["127.0.0.9/32"]\n')
    srv = serve(tmp_path, conf, stack)
    wait_answer(srv, {"192.0.2.1"})
    notify = dns.message.make_query(ORIGIN, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags = dns.opcode.to_flags(dns.opcode.NOTIFY) | dns.flags.AA
    r = srv.udp(notify)
    assert r.rcode() == dns.rcode.REFUSED


# -- TSIG ------------------------------------------------------------------------------


def test_tsig_required_by_the_primary(tmp_path: Path, stack: contextlib.ExitStack) -> None:
    primary = start_knot_primary(tmp_path / "knot", zone_text(1, {"www": "192.0.2.1"}),
                                 tsig=True)
    stack.callback(primary.stop)
    # without the key: Knot refuses the transfer; no copy, so SERVFAIL, and status says why
    unsigned = tmp_path / "unsigned"
    unsigned.mkdir()
    conf = write_config(unsigned, primary, dns_port=free_port())
    srv = serve(unsigned, conf, stack)
    wait_for("a failed refresh", lambda: status(srv, conf),
             lambda doc: doc["failures"] >= 1, seconds=30)
    doc = status(srv, conf)
    assert doc["serial"] is None and doc["expired"] is True and doc["last_error"]
    assert rcode_and_addresses(srv)[0] == dns.rcode.SERVFAIL
    srv.stop()
    # with it: transferred and served
    signed = tmp_path / "signed"
    signed.mkdir()
    conf = write_config(signed, primary, dns_port=free_port(), tsig=True)
    srv = serve(signed, conf, stack)
    wait_answer(srv, {"192.0.2.1"})
    wait_transfers(srv, conf, 1, 0)


def test_tsig_signed_notify_and_transfer(tmp_path: Path, stack: contextlib.ExitStack) -> None:
    dns_port = free_port()
    primary = start_knot_primary(tmp_path / "knot", zone_text(1, {"www": "192.0.2.1"}),
                                 tsig=True, notify_port=dns_port)
    stack.callback(primary.stop)
    conf = write_config(tmp_path, primary, dns_port=dns_port, tsig=True)
    srv = serve(tmp_path, conf, stack)
    wait_answer(srv, {"192.0.2.1"})
    primary.change(zone_text(2, {"www": "192.0.2.2"}))
    wait_answer(srv, {"192.0.2.2"})  # the signed NOTIFY was accepted (key required)
    wait_transfers(srv, conf, 1, 1)
    assert rcode_and_addresses(srv) == (dns.rcode.NOERROR, {"192.0.2.2"})


# -- restart, expire, recovery ----------------------------------------------------------


def test_restart_serves_the_copy_with_the_primary_down(tmp_path: Path,
                                                       stack: contextlib.ExitStack) -> None:
    primary = start_knot_primary(tmp_path / "knot", zone_text(1, {"www": "192.0.2.1"}))
    stack.callback(primary.stop)
    conf = write_config(tmp_path, primary, dns_port=free_port())
    srv = serve(tmp_path, conf, stack)
    wait_answer(srv, {"192.0.2.1"})
    srv.stop()
    primary.stop()
    srv = serve(tmp_path, conf, stack)  # start_server waits until it answers: the copy
    assert rcode_and_addresses(srv) == (dns.rcode.NOERROR, {"192.0.2.1"})
    wait_for("the refresh to fail", lambda: status(srv, conf),
             lambda doc: doc["failures"] >= 1, seconds=30)
    doc = status(srv, conf)
    assert doc["serial"] == 1 and doc["expired"] is False and doc["last_error"]
    assert rcode_and_addresses(srv) == (dns.rcode.NOERROR, {"192.0.2.1"})


def test_expire_servfails_then_a_refresh_recovers(tmp_path: Path,
                                                  stack: contextlib.ExitStack) -> None:
    text = zone_text(1, {"www": "192.0.2.1"}, refresh=1, retry=1, expire=4)
    primary = start_knot_primary(tmp_path / "knot", text)
    stack.callback(primary.stop)
    port = primary.peer.port
    conf = write_config(tmp_path, primary, dns_port=free_port())
    srv = serve(tmp_path, conf, stack)
    wait_answer(srv, {"192.0.2.1"})
    primary.stop()
    wait_rcode(srv, dns.rcode.SERVFAIL)
    doc = status(srv, conf)
    assert doc["expired"] is True and doc["serial"] == 1 and doc["last_error"]
    control = _control(conf)
    health = httpx.get(f"http://{control}/healthz", timeout=5)
    assert health.status_code == 503
    assert health.json()["secondary_expired"] == [ORIGIN]
    metrics = httpx.get(f"http://{control}/metrics", timeout=5).text
    assert 'dnsserve_secondary_expired{zone="example.org."} 1' in metrics

    again = start_knot_primary(tmp_path / "knot-again", text, port=port)
    stack.callback(again.stop)
    wait_answer(srv, {"192.0.2.1"})
    assert status(srv, conf)["expired"] is False
    assert httpx.get(f"http://{control}/healthz", timeout=5).status_code == 200


# -- the deletion guard ------------------------------------------------------------------

MANY = {f"h{i}": f"192.0.2.{100 + i}" for i in range(20)} | {"www": "192.0.2.1"}
FEWER = {k: v for k, v in MANY.items() if k not in {f"h{i}" for i in range(10)}}


def test_guard_holds_back_a_deleting_transfer_unless_off(tmp_path: Path,
                                                         stack: contextlib.ExitStack) -> None:
    primary = start_knot_primary(tmp_path / "knot", zone_text(1, MANY))
    stack.callback(primary.stop)
    dns_port = free_port()
    conf = write_config(tmp_path, primary, dns_port=dns_port)
    srv = serve(tmp_path, conf, stack)
    wait_answer(srv, {"192.0.2.100"}, qname=f"h0.{ORIGIN}")
    primary.change(zone_text(2, FEWER))
    refresh(srv, conf)
    wait_for("the guard to hold the transfer back", lambda: status(srv, conf),
             lambda doc: doc["held"] >= 1, seconds=30)
    doc = status(srv, conf)
    assert doc["serial"] == 1 and "deletion guard" in str(doc["last_error"])
    assert rcode_and_addresses(srv, f"h0.{ORIGIN}") == (dns.rcode.NOERROR, {"192.0.2.100"})

    # the operator turns the guard off for this zone: a reload takes the setting
    control = _control(conf)
    conf = write_config(tmp_path, primary, dns_port=dns_port, guard=False)
    conf.write_text(conf.read_text().replace(_control(conf), control))
    out = subprocess.run([sys.executable, "-m", "dnsserve", "reload", "-c", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    refresh(srv, conf)
    wait_for("h0 to be gone", lambda: rcode_and_addresses(srv, f"h0.{ORIGIN}"),
             lambda got: got[0] == dns.rcode.NXDOMAIN, seconds=30)
    wait_for("serial 2 in the status", lambda: status(srv, conf),
             lambda doc: doc["serial"] == 2, seconds=30)


# -- pools on a secondary zone ----------------------------------------------------------


def test_pool_on_a_secondary_zone_answers_by_health(tmp_path: Path,
                                                    stack: contextlib.ExitStack) -> None:
    primary = start_knot_primary(tmp_path / "knot", zone_text(1, {"www": "192.0.2.1"}))
    stack.callback(primary.stop)
    up, down = "127.0.7.1", "127.0.7.2"
    port = free_port(up)
    listener = socket.create_server((up, port))
    stack.callback(listener.close)
    pool = (
        f'\n[[monitor]]\nname = "web"\nkind = "tcp"\nport = {port}\ninterval = 0.2\n'
        'timeout = 0.15\nrise = 1\nfall = 1\n\n'
        f'[[pool]]\nowner = "{WWW}"\ntype = "A"\nmonitor = "web"\n'
        f'members = [{{ address = "{up}" }}, {{ address = "{down}" }}]\n'
    )
    conf = write_config(tmp_path, primary, dns_port=free_port(), extra=pool)
    # dnsserve check places the pool in the secondary zone, copy or not
    out = subprocess.run([sys.executable, "-m", "dnsserve", "check", "-c", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    srv = serve(tmp_path, conf, stack)
    wait_answer(srv, {up})
    # a change on the primary elsewhere in the zone leaves the pool answering by health
    primary.change(zone_text(2, {"www": "192.0.2.1", "new": "192.0.2.9"}))
    refresh(srv, conf)
    wait_answer(srv, {"192.0.2.9"}, qname=f"new.{ORIGIN}")
    assert rcode_and_addresses(srv) == (dns.rcode.NOERROR, {up})


# -- BIND as the primary -----------------------------------------------------------------


def test_bind_primary_axfr_then_notify_and_ixfr(tmp_path: Path,
                                                stack: contextlib.ExitStack) -> None:
    dns_port = free_port()
    primary = start_bind_primary(tmp_path / "bind", zone_text(1, {"www": "192.0.2.1"}),
                                 notify_port=dns_port)
    stack.callback(primary.stop)
    conf = write_config(tmp_path, primary, dns_port=dns_port)
    srv = serve(tmp_path, conf, stack)
    wait_answer(srv, {"192.0.2.1"})
    primary.change(zone_text(2, {"www": "192.0.2.2"}))
    wait_answer(srv, {"192.0.2.2"})  # BIND's NOTIFY (also-notify: this server only)
    assert wait_transfers(srv, conf, 1, 1)["serial"] == 2


def test_a_serial_that_went_backwards_is_not_taken(tmp_path: Path,
                                                   stack: contextlib.ExitStack) -> None:
    primary = start_knot_primary(tmp_path / "knot", zone_text(5, {"www": "192.0.2.5"}))
    stack.callback(primary.stop)
    port = primary.peer.port
    conf = write_config(tmp_path, primary, dns_port=free_port())
    srv = serve(tmp_path, conf, stack)
    wait_answer(srv, {"192.0.2.5"})
    primary.stop()
    older = start_knot_primary(tmp_path / "knot-older", zone_text(3, {"www": "192.0.2.3"}),
                               port=port)
    stack.callback(older.stop)
    refresh(srv, conf)
    wait_for("the refresh to say the serial went backwards", lambda: status(srv, conf),
             lambda doc: "older than ours" in doc["last_error"], seconds=30)
    assert status(srv, conf)["serial"] == 5
    assert rcode_and_addresses(srv) == (dns.rcode.NOERROR, {"192.0.2.5"})


# -- what a transfer carries is what the copy serves ----------------------------------------

RICH = """$ORIGIN example.org.
$TTL 300
@ SOA ns1 hostmaster 7 3600 600 86400 60
@ NS ns1
@ MX 10 mail
@ TXT "v=spf1 -all" "a second \\"quoted\\" string"
@ CAA 0 issue "letsencrypt.org"
ns1 A 192.0.2.53
mail A 192.0.2.25
mail AAAA 2001:db8::25
_sip._tcp SRV 10 60 5060 sip
sip A 192.0.2.60
*.wild A 192.0.2.99
alias CNAME mail
sub NS ns.sub
ns.sub A 192.0.2.54
weird TYPE65534 \\# 3 010203
"""


def test_a_rich_zone_answers_as_the_primary_does(tmp_path: Path,
                                                 stack: contextlib.ExitStack) -> None:
    primary = start_knot_primary(tmp_path / "knot", RICH)
    stack.callback(primary.stop)
    conf = write_config(tmp_path, primary, dns_port=free_port())
    srv = serve(tmp_path, conf, stack)
    wait_for("the zone to be served", lambda: rcode_and_addresses(srv, f"mail.{ORIGIN}"),
             lambda got: got == (dns.rcode.NOERROR, {"192.0.2.25"}), seconds=30)
    for qname, qtype in [(ORIGIN, "MX"), (ORIGIN, "TXT"), (ORIGIN, "CAA"), (ORIGIN, "NS"),
                         (f"mail.{ORIGIN}", "AAAA"), (f"_sip._tcp.{ORIGIN}", "SRV"),
                         (f"x.wild.{ORIGIN}", "A"), (f"alias.{ORIGIN}", "A"),
                         (f"weird.{ORIGIN}", "TYPE65534"), (f"www.sub.{ORIGIN}", "A")]:
        q = dns.message.make_query(qname, qtype)
        q.flags &= ~dns.flags.RD
        ours = srv.udp(q)
        theirs = dns.query.udp(q, primary.peer.host, port=primary.peer.port, timeout=2)
        assert ours.rcode() == theirs.rcode(), (qname, qtype)
        assert sorted(r.to_text() for r in ours.answer) == sorted(
            r.to_text() for r in theirs.answer), (qname, qtype)
        assert {r.to_text() for r in ours.authority} == {r.to_text() for r in theirs.authority}, (
            qname, qtype)
