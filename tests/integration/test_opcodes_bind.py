"""Differential test of the protocol edges: every opcode, with and without a question,
under each header flag, answered by dnsserve's engine as BIND (``named``) answers.

Owns issue 11 §2. Each message is sent to ``named`` and to ``knotd`` over UDP
on loopback and given to our engine directly (bytes in, bytes out; no sockets
on our side). BIND is the reference: ``header()`` (rcode, opcode, every header
flag, whether the question is echoed, whether an OPT comes back) must be equal.
Knot is compared on the rcode only, except where BIND and Knot differ; there
we follow BIND, and ``KNOT_DIFFERS`` says where and how.

What BIND does (named 9.18), and so we do:
- QUERY without a question: FORMERR, RD and CD copied.
- NOTIFY or UPDATE without a question: FORMERR (each needs one: RFC 1996 §3.7,
  RFC 2136 §3.1.1), RD and CD cleared.
- Any other opcode (IQUERY, STATUS, unassigned, DSO): NOTIMP, with or without
  a question; the question is not echoed; RD and CD cleared.
- UPDATE with a zone section of type SOA: REFUSED (we take no updates; BIND
  refuses as no update is allowed), NOTAUTH for a zone not served, the
  question echoed; another type: FORMERR.
- TC, AD and Z in a query are never copied. An OPT in the query: ours comes
  back, on every error above too.

Where Knot differs (we follow BIND): Knot echoes the question and copies RD on
NOTIMP and on the other errors, never copies CD, and answers an UPDATE of its
own zone with NOTAUTH. NOTIFY with a question goes past the engine to the
server's hand-off (``handoff``: its secondary zones decide): compared by
``test_refused_notify_as_bind`` through a ``HandOff`` that takes no NOTIFY,
as BIND answers one for a zone it does not serve: NOTAUTH, RD and CD cleared,
the question echoed, our OPT.

NSID and keepalive against BIND (``server-id`` set): NSID is answered on
every kind of response, NOTIMP and FORMERR with an OPT included, with the same
rcode; a keepalive option over UDP is ignored (RFC 7828 §3.3.1), no FORMERR.

Must not: talk to anything but loopback, leave named or knotd running.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode
import dns.update
import pytest

from dnsserve.answer.engine import Engine
from dnsserve.handoff import HandOff
from testkit import SHIPPED_ZONES
from testkit.answers import build_engine
from testkit.peers import Peer, canonical_zone_file, start_knot, start_named

QR, AA, TC, RD, RA, Z, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0040, 0x0020, 0x0010
FLAG_SETS = {
    "none": 0, "rd": RD, "cd": CD, "ad": AD, "tc": TC, "z": Z, "all": RD | CD | AD | TC | Z,
}
QUESTION = dns.message.make_query("www.example.com.", "A").to_wire()[12:]
OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"  # EDNS 0, payload 1232, no options
NOTIFY = 4
UPDATE = 5
NSID = b"node-a"


def message(opcode: int, flags: int, *, question: bool, edns: bool) -> bytes:
    head = struct.pack("!HHHHHH", 0x1234, (opcode << 11) | flags, int(question), 0, 0, int(edns))
    return head + (QUESTION if question else b"") + (OPT if edns else b"")


Header = tuple[int, int, tuple[str, ...], int, bool]


def header(data: bytes | None) -> Header | None:
    """rcode, opcode, the flags set, QDCOUNT, and whether the last record is an OPT."""
    if data is None:
        return None
    flags = (data[2] << 8) | data[3]
    names = tuple(n for n, bit in (("qr", QR), ("aa", AA), ("tc", TC), ("rd", RD), ("ra", RA),
                                   ("z", Z), ("ad", AD), ("cd", CD)) if flags & bit)
    qdcount, arcount = struct.unpack_from("!H", data, 4)[0], struct.unpack_from("!H", data, 10)[0]
    # read as a QUERY (dnspython parses an UPDATE's zone section by UPDATE's rules)
    as_query = data[:2] + (flags & ~0x7800).to_bytes(2, "big") + data[4:]
    opt = arcount > 0 and dns.message.from_wire(as_query).edns >= 0
    return flags & 0xF, (flags >> 11) & 0xF, names, qdcount, opt


def udp(peer: Peer, data: bytes) -> bytes | None:
    """One exchange; None when nothing comes back within the timeout (one try)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.sendto(data, (peer.host, peer.port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return canonical_zone_file("example.com.", SHIPPED_ZONES / "example.com.zone",
                               tmp_path_factory.mktemp("opcode-zone"))


@pytest.fixture(scope="module")
def named(zone: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    peer = start_named({"example.com.": zone}, tmp_path_factory.mktemp("named"),
                       extra_options=f'minimal-responses yes; server-id "{NSID.decode()}";')
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="module")
def knot(zone: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    peer = start_knot({"example.com.": zone}, tmp_path_factory.mktemp("knot"))
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="module")
def engine() -> Engine:
    engine = build_engine(SHIPPED_ZONES, nsid=NSID)
    engine.tcp_keepalive = 100
    return engine


CASES = [
    (opcode, flags, question, edns)
    for opcode in range(16)
    for flags in FLAG_SETS
    for question in (False, True)
    for edns in (False, True)
    if not (opcode == NOTIFY and question)  # handed off by the server: see the docstring
]


def knot_differs(opcode: int, question: bool) -> bool:
    """Where Knot's rcode is not BIND's: an UPDATE of its zone (NOTAUTH, BIND REFUSED)."""
    return opcode == UPDATE and question


@pytest.mark.parametrize(("opcode", "flags", "question", "edns"), CASES)
def test_opcode_as_bind_answers(
    engine: Engine, named: Peer, knot: Peer, opcode: int, flags: str, question: bool,
    edns: bool,
) -> None:
    data = message(opcode, FLAG_SETS[flags], question=question, edns=edns)
    ours = header(engine.respond(data, tcp=False))
    assert ours == header(udp(named, data))
    theirs = header(udp(knot, data))
    assert ours is not None and theirs is not None
    if not knot_differs(opcode, question):
        assert ours[0] == theirs[0]  # the rcode; flags and question: see the docstring


@pytest.mark.parametrize("origin", ["example.com.", "example.net."])
def test_update_as_bind_answers(engine: Engine, named: Peer, origin: str) -> None:
    """An UPDATE with its SOA zone section, of our zone and of a zone we do not serve."""
    update = dns.update.UpdateMessage(origin)
    update.add(f"new.{origin}", 300, "A", "192.0.2.1")
    data = update.to_wire()
    ours = header(engine.respond(data, tcp=False))
    assert ours is not None and ours[0] in (5, 9)  # REFUSED or NOTAUTH, as BIND says
    assert ours == header(udp(named, data))


@pytest.mark.parametrize("flags", FLAG_SETS)
@pytest.mark.parametrize("edns", [False, True])
def test_refused_notify_as_bind(engine: Engine, named: Peer, flags: str, edns: bool) -> None:
    """A NOTIFY for a zone we do not serve has BIND's whole header: NOTAUTH, RD and
    CD cleared, no AA."""
    q = dns.message.make_query("example.net.", "SOA").to_wire()[12:]
    data = struct.pack("!HHHHHH", 0x1234, (NOTIFY << 11) | FLAG_SETS[flags], 1, 0, 0,
                       int(edns)) + q + (OPT if edns else b"")
    handoff = HandOff(engine.respond, dict)
    handoff.on_notify = lambda zone, address, key: None  # not a secondary zone
    handoff.error_opt = lambda query, tcp: OPT
    [answer] = handoff.handle(data, ("127.0.0.1", 53000), False)
    ours, bind = header(answer), header(udp(named, data))
    assert ours is not None and bind is not None
    assert ours[0] == dns.rcode.NOTAUTH
    assert ours == bind  # rcode, opcode, flags (RD and CD cleared), question, OPT


def test_header_tells_notimp_from_formerr(engine: Engine) -> None:
    """header() must see the rcode and the question, or the comparison cannot fail."""
    notimp = header(engine.respond(message(9, RD, question=True, edns=False), tcp=False))
    formerr = header(engine.respond(message(0, RD, question=False, edns=False), tcp=False))
    assert notimp is not None and formerr is not None
    assert notimp[0] == 4 and formerr[0] == 1
    assert notimp[2] == ("qr",) and formerr[2] == ("qr", "rd")


def ednsopt(data: bytes | None) -> tuple[int, dict[int, bytes]]:
    """rcode and the options of the OPT (read as a QUERY, as ``header`` does)."""
    assert data is not None
    flags = (data[2] << 8) | data[3]
    m = dns.message.from_wire(data[:2] + (flags & ~0x7800).to_bytes(2, "big") + data[4:])
    return m.rcode(), {o.otype: o.to_wire() for o in m.options}


NSID_OPT = b"\x00\x03\x00\x00"
KEEPALIVE_OPT = b"\x00\x0b\x00\x00"


def with_options(data: bytes, options: bytes) -> bytes:
    """``data`` (ending with ``OPT``) with ``options`` in its OPT's RDATA."""
    assert data.endswith(OPT)
    return data[:-2] + len(options).to_bytes(2, "big") + options


@pytest.mark.parametrize(("qname", "opcode", "question"), [
    ("www.example.com.", 0, True),  # an answer
    ("nope.example.com.", 0, True),  # NXDOMAIN
    ("x.sub.example.com.", 0, True),  # a referral
    ("example.net.", 0, True),  # REFUSED: not ours
    ("www.example.com.", 9, True),  # NOTIMP
    ("www.example.com.", 0, False),  # FORMERR, with an OPT
])
def test_nsid_on_every_kind_as_bind(
    engine: Engine, named: Peer, qname: str, opcode: int, question: bool
) -> None:
    """BIND with ``server-id`` answers NSID on each kind of response; so do we."""
    asked = dns.message.make_query(qname, "A").to_wire()[12:] if question else b""
    head = struct.pack("!HHHHHH", 0x1234, opcode << 11, int(question), 0, 0, 1)
    data = with_options(head + asked + OPT, NSID_OPT)
    ours = ednsopt(engine.respond(data, tcp=False))
    assert ours == ednsopt(udp(named, data))
    assert ours[1] == {dns.edns.OptionType.NSID: NSID}


def test_keepalive_over_udp_is_ignored_as_bind_does(engine: Engine, named: Peer) -> None:
    """RFC 7828 §3.3.1: over UDP the option is ignored (no FORMERR, no option back)."""
    data = with_options(message(0, 0, question=True, edns=True), KEEPALIVE_OPT)
    ours = ednsopt(engine.respond(data, tcp=False))
    assert ours == ednsopt(udp(named, data)) == (dns.rcode.NOERROR, {})


def tcp(peer: Peer, data: bytes) -> bytes:
    """One exchange over TCP (two-byte length framing)."""
    with socket.create_connection((peer.host, peer.port), timeout=5) as sock:
        sock.sendall(len(data).to_bytes(2, "big") + data)
        buf = b""
        for _ in range(64):  # bounded: a response is a few reads at most
            if len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                break
            chunk = sock.recv(65535)
            if not chunk:
                break
            buf += chunk
        return buf[2:2 + int.from_bytes(buf[:2], "big")]


def test_keepalive_over_tcp_as_bind(engine: Engine, named: Peer) -> None:
    """Over TCP both answer the option with their idle timeout (the values are each one's)."""
    data = with_options(message(0, 0, question=True, edns=True), KEEPALIVE_OPT)
    ours, bind = ednsopt(engine.respond(data, tcp=True)), ednsopt(tcp(named, data))
    assert ours[0] == bind[0] == dns.rcode.NOERROR
    assert set(ours[1]) == set(bind[1]) == {dns.edns.OptionType.KEEPALIVE}
    assert ours[1][dns.edns.OptionType.KEEPALIVE] == (100).to_bytes(2, "big")
