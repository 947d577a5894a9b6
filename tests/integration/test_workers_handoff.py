"""What workers hand off, answered by the owner: ``[server] workers = 2`` end to end.

One dnsserve with two workers is primary for ``xfr.example.`` (TSIG-signed
transfers from 127.0.0.1 only) and secondary for ``example.org.`` from a real
Knot primary that NOTIFYs it. The owner process answers none of the queries
itself: every AXFR, IXFR, NOTIFY, signed query and EDNS EXPIRE here reaches a
worker, which forwards it to the owner and sends the owner's answer. Each
check is repeated over many new client sockets (new source ports), so the
kernel's SO_REUSEPORT hash gives both workers some (the per-worker counters
in /metrics say so). Every process started is stopped (by PID); every wait
is bounded; nothing is timed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.tsig
import dns.xfr
import dns.zone
import httpx
import pytest
from dns.rdatatype import RdataType

from dnsserve import worker_protocol as wp
from testkit.peers import find_binary
from testkit.ports import free_port
from testkit.primaries import ORIGIN as SECONDARY
from testkit.primaries import Primary, start_knot_primary
from testkit.primaries import zone_text as secondary_text
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

PRIMARY = "xfr.example."
SECRET = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
KEY = dns.tsig.Key("xfr-key", SECRET)
HOSTS = 12_000  # an AXFR of more than one HandOffReply part (wp.REPLY_BYTES)
SPREAD = 24  # requests, each from a new socket: enough that both workers get some


def primary_text(serial: int, mail: str = "192.0.2.25") -> str:
    hosts = "".join(f"h{i} A 192.0.{i // 250 % 256}.{i % 250 + 1}\n" for i in range(HOSTS))
    return (f"$ORIGIN {PRIMARY}\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 86400 300\n"
            f"@ NS ns1\nns1 A 127.0.0.1\nwww A 192.0.2.10\nmail A {mail}\n{hosts}")


@dataclass
class Setup:
    tmp: Path
    server: ServerProc
    knot: Primary

    def worker_queries(self) -> dict[str, int]:
        text = httpx.get(f"http://{self.server.control}/metrics", timeout=5).text
        return {w: int(float(n)) for w, n in re.findall(
            r'^dnsserve_worker_queries_total\{worker="(\d+)"\} (\S+)$', text, re.M)}

    @contextlib.contextmanager
    def both_workers(self) -> Iterator[None]:
        """The block's requests reach both workers (their query counters grow)."""
        before = self.worker_queries()
        yield

        def grew() -> dict[str, int]:
            now = self.worker_queries()
            return {w: now.get(w, 0) - before.get(w, 0) for w in ("0", "1")}

        wait_for("both workers to count the requests", grew,
                 lambda d: all(n > 0 for n in d.values()))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    if find_binary("knotd") is None:
        pytest.skip("knotd not installed")
    tmp = tmp_path_factory.mktemp("handoff")
    (tmp / "zones").mkdir()
    (tmp / "zones" / f"{PRIMARY}zone").write_text(primary_text(1))
    port, control = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        knot = start_knot_primary(tmp / "knot", secondary_text(1, {"www": "192.0.2.1"}),
                                  notify_port=port)
        stack.callback(knot.stop)
        config = tmp / "dnsserve.toml"
        config.write_text(f"""
[server]
listen = ["127.0.0.1:{port}"]
zones = "zones"
state = "state.db"
control = "127.0.0.1:{control}"
workers = 2

[[key]]
name = "xfr-key"
secret = "{SECRET}"

[[zone]]
name = "{PRIMARY}"
allow_transfer = ["127.0.0.1/32"]
transfer_keys = ["xfr-key"]

[[zone]]
name = "{SECONDARY}"
primaries = ["{knot.address}"]
""")
        server = start_server(tmp, "-c", str(config), zones=None, port=port, ready_seconds=60)
        server.control = f"127.0.0.1:{control}"
        stack.callback(server.stop)
        wait_for("two workers", server.children, lambda pids: len(pids) == 2)
        wait_for("the secondary zone", lambda: www(server), lambda got: got == {"192.0.2.1"},
                 seconds=30)
        yield Setup(tmp, server, knot)


def www(server: ServerProc) -> set[str] | None:
    try:
        r = server.udp(dns.message.make_query(f"www.{SECONDARY}", "A"), timeout=1)
    except dns.exception.Timeout:
        return None
    return {rd.to_text() for rrset in r.answer for rd in rrset}


def transfer(server: ServerProc, zone: dns.zone.Zone, key: dns.tsig.Key | None = KEY,
             serial: int | None = None) -> None:
    """An AXFR (or an IXFR from ``serial``) into ``zone`` with dnspython, which checks
    the TSIG chain and applies the diffs."""
    keyring = None if key is None else {key.name: key}
    q, _ = dns.xfr.make_query(zone, serial=serial, keyring=keyring,
                              keyname=None if key is None else key.name)
    dns.query.inbound_xfr(server.host, zone, q, port=server.port, timeout=10, lifetime=60,
                          udp_mode=dns.query.UDPMode.NEVER)


def test_axfr_and_ixfr_through_both_workers(setup: Setup) -> None:
    server = setup.server
    expected = dns.zone.from_text(primary_text(1), PRIMARY, relativize=False)
    wire_size = sum(len(name.to_wire()) + 10 + len(rd.to_digestable())
                    for name, _, rd in expected.iterate_rdatas())
    assert wire_size > wp.REPLY_BYTES  # the owner's answer crosses in several parts
    with setup.both_workers():
        for _ in range(SPREAD // 4):
            zone = dns.zone.Zone(PRIMARY, relativize=False)
            transfer(server, zone)
            assert zone == expected
        for _ in range(SPREAD):  # unsigned: the rule wants the key
            with pytest.raises(dns.xfr.TransferError) as refused:
                transfer(server, dns.zone.Zone(PRIMARY, relativize=False), key=None)
            assert refused.value.rcode == dns.rcode.REFUSED
    # a change: the owner's IXFR history reaches what the workers answer
    (setup.tmp / "zones" / f"{PRIMARY}zone").write_text(primary_text(2, mail="192.0.2.26"))
    os.kill(server.proc.pid, signal.SIGHUP)

    def serial() -> int | None:
        with contextlib.suppress(dns.exception.DNSException, OSError):
            r = server.udp(dns.message.make_query(PRIMARY, "SOA"), timeout=1)
            return int(r.answer[0][0].serial) if r.answer else None
        return None

    wait_for("serial 2", serial, lambda s: s == 2, seconds=60)
    with setup.both_workers():
        for _ in range(SPREAD):  # dnspython checks the TSIG chain
            messages = list(dns.query.xfr(
                server.host, PRIMARY, RdataType.IXFR, port=server.port, timeout=10,
                lifetime=60, keyring={KEY.name: KEY}, keyname=KEY.name, relativize=False,
                serial=1))
            records = [(rr.rdtype, rd.to_text()) for m in messages for rr in m.answer
                       for rd in rr]
            assert [t for t, _ in records] == [RdataType.SOA, RdataType.SOA, RdataType.A,
                                               RdataType.SOA, RdataType.A, RdataType.SOA]
            assert records[2] == (RdataType.A, "192.0.2.25")
            assert records[4] == (RdataType.A, "192.0.2.26")
    assert "IXFR of xfr.example. from 1 to 2" in server.log_text()


def test_signed_queries_are_answered_signed(setup: Setup) -> None:
    with setup.both_workers():
        for i in range(SPREAD):
            q = dns.message.make_query(f"www.{PRIMARY}", "A")
            q.use_tsig({KEY.name: KEY}, KEY.name)
            ask = dns.query.tcp if i % 2 else dns.query.udp
            r = ask(q, setup.server.host, port=setup.server.port, timeout=5)  # verifies the MAC
            assert r.had_tsig and r.rcode() == dns.rcode.NOERROR
            assert {rd.to_text() for rrset in r.answer for rd in rrset} == {"192.0.2.10"}


def notify(setup: Setup, zone: str) -> dns.message.Message:
    q = dns.message.make_query(zone, "SOA")
    q.set_opcode(dns.opcode.NOTIFY)
    q.flags |= dns.flags.AA
    return setup.server.udp(q, timeout=5)


def test_notify_reaches_the_secondary_zone_and_expire_is_answered(setup: Setup) -> None:
    with setup.both_workers():
        for _ in range(SPREAD):
            r = notify(setup, SECONDARY)  # from the primary's address: allowed
            assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
            assert r.opcode() == dns.opcode.NOTIFY
        for _ in range(SPREAD // 4):  # a zone we are primary for: ignored, as BIND does
            assert notify(setup, PRIMARY).rcode() == dns.rcode.NOERROR
        for _ in range(SPREAD // 4):  # a zone we do not serve
            assert notify(setup, "nowhere.example.").rcode() == dns.rcode.NOTAUTH
    # Knot's own NOTIFY after a change makes dnsserve fetch it (refresh is an hour away)
    setup.knot.change(secondary_text(2, {"www": "192.0.2.2"}))
    wait_for("the change after NOTIFY", lambda: www(setup.server),
             lambda got: got == {"192.0.2.2"}, seconds=30)
    # RFC 7314: the seconds the copy has left (expire is an hour), from either worker
    with setup.both_workers():
        for i in range(SPREAD):
            q = dns.message.make_query(SECONDARY, "SOA", use_edns=0, options=[
                dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, b"")])
            r = setup.server.tcp(q, timeout=5) if i % 2 else setup.server.udp(q, timeout=5)
            assert r.rcode() == dns.rcode.NOERROR and r.answer
            (option,) = [o for o in r.options if o.otype == dns.edns.OptionType.EXPIRE]
            assert 0 < int.from_bytes(option.to_wire(), "big") <= 3600
    # a primary zone's answer carries none
    q = dns.message.make_query(PRIMARY, "SOA", use_edns=0, options=[
        dns.edns.GenericOption(dns.edns.OptionType.EXPIRE, b"")])
    r = setup.server.udp(q, timeout=5)
    assert r.rcode() == dns.rcode.NOERROR
    assert not [o for o in r.options if o.otype == dns.edns.OptionType.EXPIRE]


def test_transfers_in_flight_finish_when_a_reload_retires_their_worker(setup: Setup) -> None:
    """A reload forks new workers and retires the old ones: transfers asked for
    meanwhile arrive whole, from the old zone or the new one. (Whether one is in
    flight at the instant of retirement is up to the scheduler; test_net_handoff
    checks the retiring worker's finish itself.)"""
    server = setup.server
    old = set(server.children())
    (setup.tmp / "zones" / f"{PRIMARY}zone").write_text(primary_text(3, mail="192.0.2.27"))
    os.kill(server.proc.pid, signal.SIGHUP)
    serials: set[int] = set()
    for _ in range(60):  # bounded: until the old workers are gone, then a few more
        zone = dns.zone.Zone(PRIMARY, relativize=False)
        transfer(server, zone)  # raises if cut off
        soa = zone.get_rdataset(PRIMARY, "SOA")
        assert soa is not None
        serials.add(soa[0].serial)
        if 3 in serials and not old & set(server.children()):
            break
    assert serials <= {2, 3} and 3 in serials
    assert not old & set(server.children())
