"""Malformed queries by name, against the real server over UDP and TCP.

Each packet is built by hand with ``struct``. The expected outcome follows the
error boundary of DESIGN.md ("short header -> drop, parse error -> FORMERR")
and issue 2 ("FORMERR or silence, never a crash; QR set dropped; unknown
opcode NOTIMP"). After every case a normal query must still answer, over UDP
and over TCP. Silence is checked with a short receive timeout: a late answer
can only make such a test pass wrongly, never fail wrongly.

Judgment calls, with the rule applied:

- QDCOUNT != 1: FORMERR (RFC 9619: a QUERY with more than one question is a
  format error; no question leaves nothing to answer).
- A header count with nothing behind it (ANCOUNT/ARCOUNT 1, no record): a
  parse error, FORMERR. ANCOUNT or NSCOUNT > 0 with a well-formed record: FORMERR
  (NSD's rule) or the normal answer (Knot 3.2 ignores the records); RFC 1035
  does not forbid them, so both are accepted.
- OPT with a non-root owner (RFC 6891 §6.1.2 "MUST be 0"): FORMERR, or the
  normal answer (Knot 3.2 accepts it).
- Parse errors after a good header: DESIGN.md maps them to FORMERR, and that is
  asserted (``PARSE_ERROR``). Issue 2 also allows silence, and Knot 3.2 drops
  these packets; widen ``PARSE_ERROR`` if the design changes.
- A compression pointer in the question (there is no earlier name for it to
  point at): FORMERR; REFUSED is accepted when the server resolves the
  pointer into the header and answers the resulting name (not ours).
- Bytes after the last section: FORMERR (Knot's rule, DESIGN's "parse error").
- Unknown class: FORMERR, REFUSED or NOTIMP, or silence (issue 2 lists it under
  bad input; NSD and Knot refuse it).
- More records after the question than a query carries (``wire.MAX_RECORDS``:
  an OPT, a TSIG and a NOTIFY's SOA fit): FORMERR, whatever the records are, so
  no packet costs more to parse than a few records (issue "Survive faults" 7).
- A TSIG record that is not the last record: FORMERR (RFC 8945 §5.1). A TSIG
  with a key we do not have: tests/integration/test_tsig.py.
"""

from __future__ import annotations

import random
import socket
import struct
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset
import pytest

from testkit.server import ServerProc

QID = 0xBEEF
SILENCE = "silence"
FORMERR = "FORMERR"
NOTIMP = "NOTIMP"
REFUSED = "REFUSED"
NOERROR = "NOERROR"  # as an outcome: the normal answer to www.example.com A
NXDOMAIN = "NXDOMAIN"
SILENCE_TIMEOUT = 0.5
PARSE_ERROR = (FORMERR,)

WWW = dns.name.from_text("www.example.com.").to_wire()
QUESTION = WWW + struct.pack("!HH", 1, 1)  # www.example.com. A IN
ZONE_SOA = dns.name.from_text("example.com.").to_wire() + struct.pack("!HH", 6, 1)
ROOT_OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)


def header(
    qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, flags: int = 0x0100, qid: int = QID
) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def opcode_flags(opcode: int) -> int:
    return (opcode & 0xF) << 11


def long_name(total: int) -> bytes:
    """A name of exactly ``total`` wire bytes ending in example.com."""
    tail = dns.name.from_text("example.com.").to_wire()
    rest = total - len(tail)
    labels = b""
    while rest > 0:
        n = min(63, rest - 1)
        labels += bytes([n]) + b"a" * n
        rest -= n + 1
    assert len(labels + tail) == total
    return labels + tail


A_RR = WWW + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1])


def garbage(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def pointer_chains(records: int, hops: int = 64) -> bytes:
    """A query with ``records`` additional records of 12 bytes or less each.

    The first owner is the root; each next owner is a compression pointer to
    the owner before it, so owner k is a chain of k pointers, until ``hops``:
    from there on every owner points at the deepest one (``hops`` pointers
    each). 5,444 of them fill a 65 KB datagram.
    """
    start = len(header()) + len(QUESTION)
    body = bytearray()
    owners: list[int] = []
    for i in range(records):
        owners.append(start + len(body))
        owner = b"\x00" if i == 0 else struct.pack("!H", 0xC000 | owners[min(i, hops) - 1])
        body += owner + struct.pack("!HHIH", 1, 1, 0, 0)
    return header(ar=records) + QUESTION + bytes(body)


def tsig_rr(owner: bytes = b"\x03key\x00") -> bytes:
    """A TSIG record (hmac-sha256., empty MAC) as a signer lays it out; the MAC is not checked
    before the key is known, so its value does not matter here."""
    algorithm = dns.name.from_text("hmac-sha256.").to_wire()
    times = struct.pack("!HIHH", 0, 1_700_000_000, 300, 0)  # time signed, fudge, MAC size 0
    rdata = algorithm + times + struct.pack("!HHH", QID, 0, 0)  # original ID, error, other len
    return owner + struct.pack("!HHIH", 250, 255, 0, len(rdata)) + rdata


@dataclass(frozen=True)
class Bad:
    id: str
    wire: bytes
    outcomes: frozenset[str]
    transports: tuple[str, ...] = ("udp", "tcp")


def bad(id: str, wire: bytes, *outcomes: str, transports: tuple[str, ...] = ("udp", "tcp")) -> Bad:
    return Bad(id, wire, frozenset(outcomes), transports)


BAD: list[Bad] = [
    # Short header: nobody to answer.
    bad("empty-datagram", b"", SILENCE, transports=("udp",)),
    bad("short-header-1", b"\xbe", SILENCE),
    bad("short-header-5", header()[:5], SILENCE),
    bad("short-header-11", header()[:11], SILENCE),
    # Question count.
    bad("qdcount-0", header(qd=0), *PARSE_ERROR),
    bad("qdcount-0-question-follows", header(qd=0) + QUESTION, *PARSE_ERROR),
    bad("qdcount-2", header(qd=2) + QUESTION + QUESTION, *PARSE_ERROR),
    bad("qdcount-2-one-present", header(qd=2) + QUESTION, *PARSE_ERROR),
    # Compression pointers.
    bad("pointer-loop-self", header() + b"\xc0\x0c" + b"\x00\x01\x00\x01", *PARSE_ERROR),
    bad("pointer-loop-two", header() + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01", *PARSE_ERROR),
    bad("pointer-out-of-range", header() + b"\xc0\xff" + b"\x00\x01\x00\x01", *PARSE_ERROR),
    # "www" + pointer to offset 4, whose byte is 0x00: resolves to "www." if followed.
    bad(
        "pointer-in-question",
        header() + b"\x03www\xc0\x04" + b"\x00\x01\x00\x01",
        *PARSE_ERROR,
        REFUSED,
    ),
    # Label types 0x40 (extended) and 0x80 (reserved): not lengths.
    bad("label-type-0x40", header() + b"\x41" + b"a" * 65 + b"\x00\x00\x01\x00\x01", *PARSE_ERROR),
    bad("label-type-0x80", header() + b"\x80" + b"a" * 5 + b"\x00\x00\x01\x00\x01", *PARSE_ERROR),
    bad("label-64", header() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", *PARSE_ERROR),
    # Name length (RFC 1035 §3.1: 255 octets at most, in wire form).
    bad("name-256", header() + long_name(256) + b"\x00\x01\x00\x01", *PARSE_ERROR),
    bad(
        "name-321",
        header() + b"\x3f" + b"a" * 63 + long_name(257) + b"\x00\x01\x00\x01",
        *PARSE_ERROR,
    ),
    # Truncated question.
    bad("unterminated-name", header() + b"\x03www", *PARSE_ERROR),
    bad("question-no-qtype", header() + WWW, *PARSE_ERROR),
    bad("question-half-qtype", header() + WWW + b"\x00", *PARSE_ERROR),
    bad("question-no-qclass", header() + WWW + b"\x00\x01", *PARSE_ERROR),
    # Trailing bytes.
    bad("garbage-after-question", header() + QUESTION + b"\xde\xad\xbe\xef", *PARSE_ERROR),
    bad("garbage-4k-after-header", header() + garbage(4096, 7), *PARSE_ERROR),
    # Sections a query does not have.
    bad("ancount-1-missing", header(an=1) + QUESTION, *PARSE_ERROR),
    bad("ancount-1-present", header(an=1) + QUESTION + A_RR, FORMERR, NOERROR),
    bad("nscount-1-present", header(ns=1) + QUESTION + A_RR, FORMERR, NOERROR),
    bad("arcount-1-missing", header(ar=1) + QUESTION, *PARSE_ERROR),
    # OPT (RFC 6891 §6.1.1: one at most, owner the root).
    bad("two-opt", header(ar=2) + QUESTION + ROOT_OPT + ROOT_OPT, FORMERR),
    bad(
        "opt-non-root-owner",
        header(ar=1) + QUESTION + b"\x01a\x00" + struct.pack("!HHIH", 41, 1232, 0, 0),
        FORMERR,
        NOERROR,
    ),
    bad("opt-truncated", header(ar=1) + QUESTION + ROOT_OPT[:7], *PARSE_ERROR),
    bad("opt-rdlen-too-long", header(ar=1) + QUESTION + ROOT_OPT[:-2] + b"\x00\x08", *PARSE_ERROR),
    # Costly to parse (issue "Survive faults" 7): a 65 KB datagram of 5,444 additional
    # records whose owners are 64-hop pointer chains, once answered NOERROR after
    # following every chain; more records than a query carries; a question of 32,000
    # one-byte labels (walked whole before its length was judged).
    bad("additional-5444-pointer-chains", pointer_chains(5444), *PARSE_ERROR),
    bad("additional-5-records", header(ar=5) + QUESTION + (b"\x00" + A_RR[len(WWW):]) * 5,
        *PARSE_ERROR),
    bad("question-32000-labels", header() + b"\x01a" * 32_000 + b"\x00\x00\x01\x00\x01",
        *PARSE_ERROR),
    # TSIG (RFC 8945 §5.1): it must be the last additional record.
    bad("tsig-not-last", header(ar=2) + QUESTION + tsig_rr() + ROOT_OPT, *PARSE_ERROR),
    bad("two-tsig", header(ar=2) + QUESTION + tsig_rr() + tsig_rr(), *PARSE_ERROR),
    # QR set: a response, never answered (no reflection loops).
    bad("qr-set", header(flags=0x8100) + QUESTION, SILENCE),
    bad("qr-set-formerr-shaped", header(qd=0, flags=0x8001), SILENCE),
    # Opcodes other than QUERY, NOTIFY and UPDATE: NOTIMP.
    bad("opcode-1-iquery", header(flags=opcode_flags(1)) + QUESTION, NOTIMP),
    bad("opcode-2-status", header(flags=opcode_flags(2)) + QUESTION, NOTIMP),
    bad("opcode-3", header(flags=opcode_flags(3)) + QUESTION, NOTIMP),
    # UPDATE with a well-formed zone section (example.com SOA), so the reply parses:
    # REFUSED (we take no updates), as BIND answers (test_opcodes_bind.py).
    bad("opcode-5-update", header(flags=opcode_flags(5)) + ZONE_SOA, REFUSED),
    bad("opcode-15", header(flags=opcode_flags(15)) + QUESTION, NOTIMP),
    # Unknown class.
    bad(
        "unknown-class",
        header() + WWW + struct.pack("!HH", 1, 42),
        FORMERR,
        REFUSED,
        NOTIMP,
        SILENCE,
    ),
    # TCP only: a maximal message of garbage, a sane header with a garbage body,
    # and a zero-length message.
    bad(
        "tcp-65535-garbage",
        garbage(65535, 1),
        FORMERR,
        NOTIMP,
        REFUSED,
        SILENCE,
        transports=("tcp",),
    ),
    bad(
        "tcp-65535-header-then-garbage",
        header() + garbage(65535 - 12, 2),
        *PARSE_ERROR,
        transports=("tcp",),
    ),
    bad("tcp-zero-length", b"", SILENCE, transports=("tcp",)),
]

# Boundary checks that must NOT be treated as malformed.
GOOD_EDGES: list[tuple[str, bytes, str]] = [
    ("name-255", header() + long_name(255) + b"\x00\x01\x00\x01", NXDOMAIN),
    ("label-63", header() + b"\x3f" + b"a" * 63 + WWW + b"\x00\x01\x00\x01", NXDOMAIN),
    ("one-opt", header(ar=1) + QUESTION + ROOT_OPT, NOERROR),
]

CASES = [(b, t) for b in BAD for t in b.transports]


def recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def exchange(server: ServerProc, transport: str, wire: bytes, timeout: float) -> bytes | None:
    """One raw message out; the raw answer back, or None for silence or close."""
    if transport == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(wire, (server.host, server.port))
            try:
                return s.recvfrom(65535)[0]
            except TimeoutError:
                return None
    with socket.create_connection((server.host, server.port), timeout=2.0) as s:
        s.settimeout(timeout)
        try:
            s.sendall(struct.pack("!H", len(wire)) + wire)
            head = recv_exact(s, 2)
            if head is None:
                return None
            s.settimeout(2.0)
            return recv_exact(s, struct.unpack("!H", head)[0])
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            return None


def outcome(data: bytes | None, wire: bytes) -> str:
    if data is None:
        return SILENCE
    resp = dns.message.from_wire(data)
    assert resp.flags & dns.flags.QR, resp.to_text()
    if resp.rcode() == dns.rcode.NOERROR:
        assert [r.to_text() for r in resp.answer] == [www_a().to_text()], resp.to_text()
    else:
        assert not resp.answer, resp.to_text()
    assert not resp.flags & dns.flags.RA, resp.to_text()
    if len(wire) >= 2:
        assert resp.id == struct.unpack("!H", wire[:2])[0], "ID must match the query"
    if len(wire) >= 4:
        assert resp.opcode() == dns.opcode.from_flags(struct.unpack("!H", wire[2:4])[0])
    return dns.rcode.to_text(resp.rcode())


def www_a() -> dns.rrset.RRset:
    return dns.rrset.from_text(
        "www.example.com.", 60, "IN", "A", "127.0.0.11", "127.0.0.12", "127.0.0.13"
    )


def still_answers(server: ServerProc) -> None:
    for ask in (server.udp, server.tcp):
        resp = ask(dns.message.make_query("www.example.com.", "A"))
        assert resp.rcode() == dns.rcode.NOERROR
        assert resp.answer == [www_a()]


@pytest.mark.parametrize(("case", "transport"), CASES, ids=[f"{b.id}-{t}" for b, t in CASES])
def test_malformed(server: ServerProc, case: Bad, transport: str) -> None:
    timeout = SILENCE_TIMEOUT if SILENCE in case.outcomes else 2.0
    data = exchange(server, transport, case.wire, timeout)
    got = outcome(data, case.wire)
    assert got in case.outcomes, (
        f"{case.id} over {transport}: expected {set(case.outcomes)}, got {got}"
    )
    still_answers(server)


@pytest.mark.parametrize(("name", "wire", "rcode"), GOOD_EDGES, ids=[g[0] for g in GOOD_EDGES])
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_edges_not_malformed(
    server: ServerProc, transport: str, name: str, wire: bytes, rcode: str
) -> None:
    data = exchange(server, transport, wire, 2.0)
    assert data is not None, f"{name}: no answer"
    resp = dns.message.from_wire(data)
    assert resp.id == QID
    assert dns.rcode.to_text(resp.rcode()) == rcode, resp.to_text()


def test_tcp_connection_survives_formerr_or_closes_cleanly(server: ServerProc) -> None:
    """After a FORMERR on a TCP connection, the next framed query on the same
    connection is answered, or the connection is closed (never a hang with a
    half-read frame: RFC 7766 §6.2.4)."""
    bad_wire = header(qd=2) + QUESTION + QUESTION
    good = dns.message.make_query("www.example.com.", "A", id=0x0102).to_wire()
    with socket.create_connection((server.host, server.port), timeout=2.0) as s:
        s.sendall(struct.pack("!H", len(bad_wire)) + bad_wire)
        head = recv_exact(s, 2)
        assert head is not None, "no FORMERR"
        first = recv_exact(s, struct.unpack("!H", head)[0])
        assert first is not None
        assert dns.message.from_wire(first).rcode() == dns.rcode.FORMERR
        try:
            s.sendall(struct.pack("!H", len(good)) + good)
            head = recv_exact(s, 2)
        except (ConnectionResetError, BrokenPipeError):
            head = None
        if head is not None:
            body = recv_exact(s, struct.unpack("!H", head)[0])
            assert body is not None
            resp = dns.message.from_wire(body)
            assert resp.id == 0x0102
            assert resp.rcode() == dns.rcode.NOERROR
    still_answers(server)
