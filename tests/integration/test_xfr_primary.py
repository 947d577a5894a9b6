"""dnsserve as a primary: Knot and NSD as its secondaries over AXFR/IXFR with TSIG, NOTIFY
after a reload, and the refusals (no rule, wrong address, no key, wrong key, UDP)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.xfr
import dns.zone
import httpx
import pytest
from dns.rdatatype import RdataType

from dnsserve.xfr.keys import from_text
from testkit.peers import Peer, find_binary, missing
from testkit.ports import free_port
from testkit.secondaries import (
    Primary,
    knot_primary,
    knot_secondary,
    nsd_secondary,
    wait_serving,
)
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

ORIGIN = "xfr.example."
SECRET = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
KEY = dns.tsig.Key("xfr-key", SECRET)
WRONG = dns.tsig.Key("xfr-key", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTM=")
UNKNOWN = dns.tsig.Key("who", SECRET)


def zone_text(serial: int, www: str = "192.0.2.10", names: int = 800) -> str:
    hosts = "".join(f"h{i} A 192.0.2.{i % 250 + 1}\n" for i in range(names))  # several messages
    return (f"$ORIGIN {ORIGIN}\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 86400 300\n"
            f"@ NS ns1\nns1 A 127.0.0.1\nwww A {www}\nmail MX 10 ns1\n{hosts}")


@dataclass
class Setup:
    tmp: Path
    server: ServerProc
    knot: Peer
    nsd: Peer

    def zone_file(self) -> Path:
        return self.tmp / "zones" / f"{ORIGIN}zone"

    def reload(self) -> None:
        os.kill(self.server.proc.pid, signal.SIGHUP)


def write_config(tmp: Path, knot_port: int, nsd_port: int) -> Path:
    config = tmp / "dnsserve.toml"
    config.write_text(f"""
[server]
zones = "zones"
state = "state.db"

[[key]]
name = "xfr-key"
secret = "{SECRET}"

[[zone]]
name = "{ORIGIN}"
allow_transfer = ["127.0.0.1/32"]
transfer_keys = ["xfr-key"]
notify = ["127.0.0.1:{knot_port}", "127.0.0.1:{nsd_port}"]
""")
    return config


@pytest.fixture(params=[1, 2], ids=["workers1", "workers2"])
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Setup]:
    """With one process and with two workers (whose transfers the owner answers)."""
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / f"{ORIGIN}zone").write_text(zone_text(1))
    knot_port, nsd_port = free_port(), free_port()
    config = write_config(tmp_path, knot_port, nsd_port)
    started: list[Peer] = []
    server = start_server(tmp_path, "-c", str(config), zones=None, workers=request.param)
    try:
        primary = Primary("127.0.0.1", server.port, "xfr-key", "hmac-sha256", SECRET)
        if find_binary("knotd"):
            started.append(knot_secondary(tmp_path / "knot", [ORIGIN], primary, port=knot_port))
        if find_binary("nsd"):
            started.append(nsd_secondary(tmp_path / "nsd", [ORIGIN], primary, port=nsd_port))
        if len(started) < 2:
            missing("knotd or nsd not installed")
        knot, nsd = started
        for peer in started:
            wait_serving(peer, [ORIGIN])
        yield Setup(tmp_path, server, knot, nsd)
    finally:
        for peer in started:
            peer.stop()
        server.stop()


def soa_serial(host: str, port: int) -> int | None:
    q = dns.message.make_query(ORIGIN, "SOA")
    try:
        r = dns.query.udp(q, host, port=port, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return None
    return r.answer[0][0].serial if r.answer else None


def a_records(peer: Peer, name: str) -> set[str]:
    r = dns.query.udp(dns.message.make_query(name, "A"), peer.host, port=peer.port, timeout=1)
    return {rd.to_text() for rrset in r.answer for rd in rrset}


def request(rdtype: RdataType, key: dns.tsig.Key | None = KEY,
            serial: int | None = None) -> dns.message.Message:
    q = dns.message.make_query(ORIGIN, rdtype)
    if serial is not None:
        q.authority.append(dns.rrset.from_text(ORIGIN, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
    if key is not None:
        q.use_tsig({key.name: key}, key.name)
    return q


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def transfer(server: ServerProc, q: dns.message.Message, zone: dns.zone.Zone,
             serial: int | None = None, source: str | None = None) -> list[dns.message.Message]:
    """The response messages to ``q`` over TCP, applied to ``zone`` by dnspython's Inbound
    (which verifies the TSIG chain); stops at the first error rcode."""
    messages = []
    address = (source, 0) if source else None
    with socket.create_connection((server.host, server.port), timeout=5,
                                  source_address=address) as sock:
        wire = q.to_wire()
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        ctx = None
        with dns.xfr.Inbound(zone, q.question[0].rdtype, serial) as inbound:
            for _ in range(10_000):
                data = _recv(sock, int.from_bytes(_recv(sock, 2), "big"))
                r = dns.message.from_wire(data, keyring=q.keyring, request_mac=q.mac, xfr=True,
                                          tsig_ctx=ctx, multi=True, one_rr_per_rrset=True)
                ctx = r.tsig_ctx
                messages.append(r)
                if r.rcode() != dns.rcode.NOERROR or inbound.process_message(r):
                    return messages
    raise AssertionError("a transfer of more than 10,000 messages")


def empty_zone() -> dns.zone.Zone:
    return dns.zone.Zone(ORIGIN, relativize=False)


def zone_at(serial: int) -> dns.zone.Zone:
    return dns.zone.from_text(zone_text(serial), ORIGIN, relativize=False)


def test_secondaries_take_the_zone_over_tsig_and_follow_a_change(setup: Setup) -> None:
    # AXFR with TSIG at start: both serve serial 1 and its records
    for peer in (setup.knot, setup.nsd):
        assert soa_serial(peer.host, peer.port) == 1
        assert a_records(peer, f"www.{ORIGIN}") == {"192.0.2.10"}
        assert a_records(peer, f"h799.{ORIGIN}") == {"192.0.2.50"}
    # one record changes: reload -> NOTIFY -> both serve serial 2 (no refresh timer: 3600 s)
    setup.zone_file().write_text(zone_text(2, www="192.0.2.20"))
    setup.reload()
    for peer in (setup.knot, setup.nsd):
        wait_for(f"{peer.name} to serve serial 2",
                 lambda peer=peer: soa_serial(peer.host, peer.port), lambda s: s == 2,
                 seconds=30)
        assert a_records(peer, f"www.{ORIGIN}") == {"192.0.2.20"}
    # they took an IXFR (Knot and NSD say so in their logs)
    wait_for("knot to log the IXFR", setup.knot.log_text, lambda t: "IXFR" in t, seconds=5)
    assert "IXFR" in setup.knot.log_text(), setup.knot.log_text()
    server_log = setup.server.log_text()
    assert "IXFR of xfr.example. from 1 to 2" in server_log, server_log
    # and dnspython's IXFR from serial 1 carries just the diff, in one message
    zone = zone_at(1)
    [message] = transfer(setup.server, request(RdataType.IXFR, serial=1), zone, serial=1)
    assert [rr.rdtype for rr in message.answer] == [RdataType.SOA, RdataType.SOA, RdataType.A,
                                                    RdataType.SOA, RdataType.A, RdataType.SOA]
    assert zone == dns.zone.from_text(zone_text(2, www="192.0.2.20"), ORIGIN, relativize=False)
    # and /metrics counts them
    metrics = httpx.get(f"http://{setup.server.control}/metrics", timeout=5).text
    counts = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
              if line.startswith(("dnsserve_transfers_out_total", "dnsserve_notify_out_total"))}
    assert counts['dnsserve_transfers_out_total{result="axfr"}'] >= 2
    assert counts['dnsserve_transfers_out_total{result="ixfr"}'] >= 3
    assert counts['dnsserve_notify_out_total{result="acknowledged"}'] >= 2


def test_axfr_is_several_signed_messages(setup: Setup) -> None:
    zone = empty_zone()
    messages = transfer(setup.server, request(RdataType.AXFR), zone)
    assert len(messages) > 1 and all(m.had_tsig for m in messages)
    assert messages[0].answer[0].rdtype == RdataType.SOA
    assert messages[-1].answer[-1].rdtype == RdataType.SOA
    assert zone == zone_at(1)


@pytest.mark.parametrize(("key", "source", "rcode", "error"), [
    (None, None, dns.rcode.REFUSED, 0),  # no key, and the rule wants one
    (KEY, "127.0.0.2", dns.rcode.REFUSED, 0),  # the key, from a denied address
    (UNKNOWN, None, dns.rcode.NOTAUTH, dns.rcode.BADKEY),
    (WRONG, None, dns.rcode.NOTAUTH, 16),  # BADSIG
])
def test_refusals(setup: Setup, key: dns.tsig.Key | None, source: str | None, rcode: int,
                  error: int) -> None:
    q = request(RdataType.AXFR, key=key)
    if error:  # the error answer is unsigned: read it without verifying
        with socket.create_connection((setup.server.host, setup.server.port), timeout=5) as s:
            wire = q.to_wire()
            s.sendall(len(wire).to_bytes(2, "big") + wire)
            r = dns.message.from_wire(_recv(s, int.from_bytes(_recv(s, 2), "big")),
                                      keyring=False)
        assert r.tsig_error == error
    else:
        [r] = transfer(setup.server, q, empty_zone(), source=source)
    assert r.rcode() == rcode


def test_dig_and_kdig_see_the_refusals(setup: Setup) -> None:
    dig = find_binary("dig")
    kdig = find_binary("kdig")
    if dig is None or kdig is None:
        pytest.skip("dig or kdig not installed")
    port = str(setup.server.port)
    out = subprocess.run([dig, "@127.0.0.1", "-p", port, ORIGIN, "AXFR"], capture_output=True,
                         text=True, timeout=20).stdout
    assert "Transfer failed" in out
    out = subprocess.run([kdig, "@127.0.0.1", "-p", port, "-y", f"hmac-sha256:nope:{SECRET}",
                          ORIGIN, "AXFR"], capture_output=True, text=True, timeout=20)
    assert "NOTAUTH" in out.stdout + out.stderr or "BADKEY" in out.stdout + out.stderr
    out = subprocess.run([kdig, "@127.0.0.1", "-p", port, "-y", f"hmac-sha256:xfr-key:{SECRET}",
                          ORIGIN, "AXFR"], capture_output=True, text=True, timeout=20).stdout
    assert f"h799.{ORIGIN}" in out


def test_ixfr_over_udp_is_the_soa_alone(setup: Setup) -> None:
    q = request(RdataType.IXFR, serial=0)
    r = dns.query.udp(q, setup.server.host, port=setup.server.port, timeout=2)
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and r.had_tsig
    assert [rr.rdtype for rr in r.answer] == [RdataType.SOA]
    assert r.answer[0][0].serial == 1


def test_tsig_keygen_prints_a_key_bind_accepts(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "dnsserve", "tsig-keygen", "xfr.example",
                          "--algorithm", "hmac-sha384"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    [key] = from_text(out)
    assert (key.name, key.algorithm) == ("xfr.example", "hmac-sha384")
    checkconf = find_binary("named-checkconf")
    if checkconf is not None:
        path = tmp_path / "xfr.key"
        path.write_text(out)
        subprocess.run([checkconf, str(path)], check=True, timeout=30)


def test_ixfr_history_survives_a_restart(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    zone_file = tmp_path / "zones" / f"{ORIGIN}zone"
    zone_file.write_text(zone_text(1))
    config = write_config(tmp_path, free_port(), free_port())
    server = start_server(tmp_path, "-c", str(config), zones=None)
    try:
        zone_file.write_text(zone_text(2, www="192.0.2.20"))
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for("serial 2", lambda: soa_serial(server.host, server.port), lambda s: s == 2)
        wait_for("the version recorded", server.log_text, lambda t: "generation 2" in t)
    finally:
        server.stop()
    server = start_server(tmp_path, "-c", str(config), zones=None)
    try:
        zone = zone_at(1)
        [message] = transfer(server, request(RdataType.IXFR, serial=1), zone, serial=1)
        assert len(message.answer) == 6  # the diff from the state file, not the whole zone
        assert zone == dns.zone.from_text(zone_text(2, www="192.0.2.20"), ORIGIN,
                                          relativize=False)
    finally:
        server.stop()


def test_a_missing_key_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / f"{ORIGIN}zone").write_text(zone_text(1))
    config = tmp_path / "dnsserve.toml"
    config.write_text(f'[server]\nzones = "zones"\nstate = "state.db"\ncontrol = ""\n'
                      f'listen = ["127.0.0.1:{free_port()}"]\n\n'
                      f'[[key]]\nname = "xfr-key"\nkey_file = "missing.key"\n')
    out = subprocess.run([sys.executable, "-m", "dnsserve", "serve", "-c", str(config)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 1
    assert "missing.key" in out.stderr


def ixfr_records(host: str, port: int, serial: int) -> list[tuple[str, str, str]]:
    """The IXFR answer from ``serial``, unsigned, as (owner, type, rdata) in order."""
    q = request(RdataType.IXFR, key=None, serial=serial)
    wire = q.to_wire()
    out: list[tuple[str, str, str]] = []
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        for _ in range(100):
            r = dns.message.from_wire(_recv(sock, int.from_bytes(_recv(sock, 2), "big")),
                                      xfr=True, one_rr_per_rrset=True)
            for rrset in r.answer:
                out += [(rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype),
                         rd.to_text().lower()) for rd in rrset]
            soa_count = sum(1 for rec in out if rec[1] == "SOA")
            if len(out) > 1 and out[-1] == out[0] and soa_count >= 3:
                return out
    raise AssertionError("an IXFR that never ended")


def test_ixfr_after_one_change_equals_knots(tmp_path: Path) -> None:
    if find_binary("knotd") is None or find_binary("knotc") is None:
        missing("knotd not installed")
    (tmp_path / "zones").mkdir()
    ours = tmp_path / "zones" / f"{ORIGIN}zone"
    ours.write_text(zone_text(1))
    (tmp_path / "dnsserve.toml").write_text(
        f'[server]\nzones = "zones"\nstate = "state.db"\n\n'
        f'[[zone]]\nname = "{ORIGIN}"\nallow_transfer = ["127.0.0.1/32"]\n')
    theirs = tmp_path / "knot-zone"
    theirs.write_text(zone_text(1))
    server = start_server(tmp_path, "-c", str(tmp_path / "dnsserve.toml"), zones=None)
    knot = knot_primary(tmp_path / "knot", {ORIGIN: theirs})
    try:
        wait_serving(knot, [ORIGIN])
        for path in (ours, theirs):
            path.write_text(zone_text(2, www="192.0.2.20"))
        os.kill(server.proc.pid, signal.SIGHUP)
        subprocess.run([find_binary("knotc") or "knotc", "-c", str(knot.config), "zone-reload",
                        ORIGIN], capture_output=True, timeout=60, check=True)
        for host, port in ((server.host, server.port), (knot.host, knot.port)):
            wait_for("serial 2", lambda h=host, p=port: soa_serial(h, p), lambda s: s == 2,
                     seconds=30)
        assert ixfr_records(server.host, server.port, 1) == ixfr_records(knot.host, knot.port, 1)
    finally:
        knot.stop()
        server.stop()


def test_a_big_axfr_built_off_the_loop_reads_back_whole(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / f"{ORIGIN}zone").write_text(zone_text(1, names=8000))
    config = write_config(tmp_path, free_port(), free_port())
    server = start_server(tmp_path, "-c", str(config), zones=None, ready_seconds=120)
    try:
        zone = empty_zone()
        messages = transfer(server, request(RdataType.AXFR), zone)
        assert len(messages) > 2 and all(m.had_tsig for m in messages)
        want = dns.zone.from_text(zone_text(1, names=8000), ORIGIN, relativize=False)
        assert zone == want
        # and the server answered other queries meanwhile and after
        assert soa_serial(server.host, server.port) == 1
    finally:
        server.stop()
