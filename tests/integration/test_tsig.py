"""TSIG-signed queries against the real server (RFC 8945), and the same queries against NSD.

No TSIG key is configured in dnsserve yet (zone transfers bring them), so
every key is one we do not have: RFC 8945 §5.2 says the answer is NOTAUTH
with a TSIG record of the same key name and algorithm, an empty MAC and
error BADKEY (§5.3.2: unsigned). dnspython signs the queries and, as a
client, must see ``PeerBadKey``; the raw answer is read with
``keyring=False`` (parse the TSIG, do not validate it).

Differential: NSD, serving the same zone, gets the same queries; rcode, TSIG
error, key name (case aside: NSD lower-cases it), algorithm, MAC and the
echoed Time Signed and Original ID are compared. NSD leaves the question out
of this answer and we keep it (RFC 1035 §4.1.2 echoes it), so the question is
not compared.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdtypes.ANY.TSIG
import dns.tsig
import dns.tsigkeyring
import pytest

from testkit import SHIPPED_ZONES
from testkit.peers import Peer, canonical_zone_file, start_nsd
from testkit.server import ServerProc

KEYNAME = "Transfer-Key.example."
KEYRING = dns.tsigkeyring.from_text({KEYNAME: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"})
ALGORITHMS = [dns.tsig.HMAC_SHA256, dns.tsig.HMAC_SHA512]


def signed(edns: bool, algorithm: dns.name.Name = dns.tsig.HMAC_SHA256) -> dns.message.Message:
    q = dns.message.make_query("www.example.com.", "A", use_edns=0 if edns else False)
    q.use_tsig(KEYRING, KEYNAME, algorithm=algorithm)
    return q


def exchange(host: str, port: int, wire: bytes, transport: str) -> bytes:
    if transport == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2.0)
            s.sendto(wire, (host, port))
            return s.recvfrom(65535)[0]
    with socket.create_connection((host, port), timeout=2.0) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = s.recv(65535)
            assert chunk, "connection closed before the answer"
            data += chunk
        return data[2:]


def tsig_of(msg: dns.message.Message) -> dns.rdtypes.ANY.TSIG.TSIG:
    assert msg.tsig is not None, msg.to_text()
    rdata = msg.tsig[0]
    assert isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG)
    return rdata


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("edns", [True, False], ids=["edns", "no-edns"])
@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=lambda a: a.to_text())
def test_unknown_key_is_notauth_badkey(
    server: ServerProc, transport: str, edns: bool, algorithm: dns.name.Name
) -> None:
    q = signed(edns, algorithm)
    wire = q.to_wire()
    r = dns.message.from_wire(exchange(server.host, server.port, wire, transport), keyring=False)
    assert r.id == q.id
    assert r.rcode() == dns.rcode.NOTAUTH, r.to_text()
    assert not r.answer and not r.authority
    assert r.question == q.question
    assert (r.edns >= 0) == edns  # our OPT when the query had one (RFC 6891 §6.1.1)
    ours, theirs = tsig_of(r), tsig_of(q)
    assert r.tsig is not None and r.tsig.name == dns.name.from_text(KEYNAME)
    assert ours.algorithm == algorithm
    assert ours.error == dns.rcode.BADKEY
    assert ours.mac == b""  # unsigned (RFC 8945 §5.3.2)
    assert (ours.time_signed, ours.fudge) == (theirs.time_signed, theirs.fudge)
    assert ours.original_id == theirs.original_id == q.id


def test_a_client_sees_bad_key(server: ServerProc) -> None:
    """dnspython, validating the answer with the key it signed with, reports BADKEY."""
    with pytest.raises(dns.tsig.PeerBadKey):
        server.udp(signed(edns=True))
    with pytest.raises(dns.tsig.PeerBadKey):
        server.tcp(signed(edns=False))


def test_unsigned_queries_still_answer(server: ServerProc) -> None:
    r = server.udp(dns.message.make_query("www.example.com.", "A"))
    assert r.rcode() == dns.rcode.NOERROR and r.answer and r.tsig is None


# -- the same against NSD ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    tmp = tmp_path_factory.mktemp("nsd-tsig")
    zone = canonical_zone_file("example.com.", SHIPPED_ZONES / "example.com.zone", tmp / "z")
    peer = start_nsd({"example.com.": Path(zone)}, tmp / "nsd")
    yield peer
    peer.stop()


def normalized(data: bytes) -> tuple[object, ...]:
    r = dns.message.from_wire(data, keyring=False)
    t = tsig_of(r)
    assert r.tsig is not None
    return (
        dns.rcode.to_text(r.rcode()), r.tsig.name.to_text().lower(), t.algorithm, t.mac,
        dns.rcode.to_text(t.error), t.time_signed, t.fudge, t.original_id, len(r.answer),
    )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("edns", [True, False], ids=["edns", "no-edns"])
def test_same_as_nsd(server: ServerProc, nsd: Peer, transport: str, edns: bool) -> None:
    wire = signed(edns).to_wire()
    ours = normalized(exchange(server.host, server.port, wire, transport))
    theirs = normalized(exchange(nsd.host, nsd.port, wire, transport))
    assert ours == theirs
    assert ours[0] == "NOTAUTH" and ours[4] == "BADKEY"
