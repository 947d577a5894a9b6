"""NSID (RFC 5001) and edns-tcp-keepalive (RFC 7828) from the real server, one process
and two workers, asked with dnspython, ``dig`` and ``kdig``.

The server runs with ``nsid = "hostname"`` (this host's name, read when the
config is loaded) and no ``identity``, so ``id.server`` and ``hostname.bind``
answer the same name; ``tcp_idle_timeout = 7.5`` is answered as a keepalive
of 75 (units of 100 ms) over TCP, never over UDP.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import dns.edns
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import pytest

from testkit.harness import render_config
from testkit.peers import required_binary
from testkit.server import ServerProc, start_server

IDLE = 7.5
HOST = socket.gethostname()
ASK_NSID = dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")
ASK_KEEPALIVE = dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, b"")


@pytest.fixture(scope="module", params=[1, 2], ids=["workers1", "workers2"])
def srv(tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest) -> Iterator[ServerProc]:
    tmp = tmp_path_factory.mktemp("nsid")
    config = tmp / "dnsserve.toml"
    config.write_text(render_config({"server": {
        "state": str(tmp / "state.db"), "nsid": "hostname", "tcp_idle_timeout": IDLE}}))
    server = start_server(tmp, "-c", str(config), workers=request.param)
    yield server
    server.stop()


def options(r: dns.message.Message) -> dict[int, bytes]:
    return {o.otype: o.to_wire() for o in r.options}


@pytest.mark.parametrize(("qname", "qtype", "opcode", "rcode"), [
    ("www.example.com.", "A", dns.opcode.QUERY, dns.rcode.NOERROR),
    ("nope.example.com.", "A", dns.opcode.QUERY, dns.rcode.NXDOMAIN),
    ("x.sub.example.com.", "A", dns.opcode.QUERY, dns.rcode.NOERROR),  # a referral
    ("example.invalid.", "A", dns.opcode.QUERY, dns.rcode.REFUSED),
    ("example.com.", "SOA", dns.opcode.STATUS, dns.rcode.NOTIMP),
    # answered by the hand-off, not the engine: a NOTIFY for a zone we serve as its
    # primary (ignored), a transfer no [[zone]] rule allows
    ("example.com.", "SOA", dns.opcode.NOTIFY, dns.rcode.NOERROR),
    ("example.com.", "AXFR", dns.opcode.QUERY, dns.rcode.REFUSED),
])
def test_nsid_on_every_kind_keepalive_over_tcp_only(
    srv: ServerProc, qname: str, qtype: str, opcode: dns.opcode.Opcode, rcode: dns.rcode.Rcode,
) -> None:
    q = dns.message.make_query(qname, qtype, use_edns=0, options=[ASK_NSID, ASK_KEEPALIVE])
    q.set_opcode(opcode)
    by_udp, by_tcp = srv.udp(q), srv.tcp(q)
    assert by_udp.rcode() == by_tcp.rcode() == rcode
    nsid = {dns.edns.OptionType.NSID: HOST.encode()}
    assert options(by_udp) == nsid
    assert options(by_tcp) == {**nsid, dns.edns.OptionType.KEEPALIVE: (75).to_bytes(2, "big")}


def test_identity_agrees_with_nsid(srv: ServerProc) -> None:
    for name in ("id.server.", "hostname.bind."):
        r = srv.udp(dns.message.make_query(name, "TXT", rdclass=dns.rdataclass.CH))
        assert [rd.strings for rrset in r.answer for rd in rrset] == [(HOST.encode(),)]


def test_dig_and_kdig_show_the_nsid(srv: ServerProc) -> None:
    hexed = HOST.encode().hex()
    dig = required_binary("dig", "BIND's dig")
    out = subprocess.run(
        [dig, f"@{srv.host}", "-p", str(srv.port), "+nsid", "+tcp", "+keepalive",
         "www.example.com", "A"], capture_output=True, text=True, timeout=20, check=True).stdout
    assert f'NSID: {" ".join(hexed[i:i + 2] for i in range(0, len(hexed), 2))} ("{HOST}")' in out
    assert f"TCP KEEPALIVE: {IDLE} secs" in out
    kdig = required_binary("kdig", "Knot's kdig")
    # kdig has no +keepalive: the option is sent raw, and shown raw (75 = 0x004B)
    out = subprocess.run(
        [kdig, f"@{srv.host}", "-p", str(srv.port), "+nsid", "+tcp", "+ednsopt=11",
         "www.example.com", "A"], capture_output=True, text=True, timeout=20, check=True).stdout
    assert f'NSID: {hexed.upper()} "{HOST}"' in out and "Option (11): 004B" in out
    out = subprocess.run(
        [kdig, f"@{srv.host}", "-p", str(srv.port), "+nsid", "+ednsopt=11",
         "www.example.com", "A"], capture_output=True, text=True, timeout=20, check=True).stdout
    assert f'NSID: {hexed.upper()} "{HOST}"' in out and "Option (11)" not in out  # UDP
