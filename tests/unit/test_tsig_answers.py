"""TSIG-signed queries through the engine (RFC 8945), and ``answer.tsig`` on its own.

No key is configured (``tsig.NO_KEYS``), so every signed QUERY is answered
NOTAUTH with an unsigned TSIG carrying BADKEY; a TSIG that cannot be read is
FORMERR; other opcodes are judged first (NOTIMP), as NSD does. dnspython signs
the queries and reads our bytes (``keyring=False``: parse the TSIG, do not
validate it). The same answers against the real server and NSD are in
tests/integration/test_tsig.py.
"""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdtypes.ANY.TSIG
import dns.tsig
import pytest

from dnsserve import wire
from dnsserve.answer import tsig
from dnsserve.answer.engine import Engine
from dnsserve.errors import FormError, Signed
from testkit.answers import EDGE_MAIN, build_engine, exchange

KEYNAME = dns.name.from_text("xfr.rv.example.")
KEYRING = {KEYNAME: dns.tsig.Key(KEYNAME, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")}  # hmac-sha256


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(EDGE_MAIN)


def signed(qname: str = "ns1.rv.example.", **kw: object) -> dns.message.Message:
    q = dns.message.make_query(qname, "A", **kw)  # type: ignore[arg-type]
    q.use_tsig(KEYRING, KEYNAME)
    return q


def answer(engine: Engine, wire_: bytes) -> dns.message.Message:
    return dns.message.from_wire(exchange(engine, wire_), keyring=False)


def tsig_rdata(msg: dns.message.Message) -> dns.rdtypes.ANY.TSIG.TSIG:
    assert msg.tsig is not None, msg.to_text()
    rdata = msg.tsig[0]
    assert isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG)
    return rdata


def test_unknown_key_is_notauth_with_badkey(engine: Engine) -> None:
    q = signed(use_edns=0, want_dnssec=True)
    r = answer(engine, q.to_wire())
    assert r.rcode() == dns.rcode.NOTAUTH and not r.answer
    assert r.question == q.question and r.edns == 0 and r.ednsflags & dns.flags.DO
    mine, theirs = tsig_rdata(r), tsig_rdata(q)
    assert r.tsig is not None and r.tsig.name == KEYNAME
    assert (mine.algorithm, mine.mac, mine.error) == (theirs.algorithm, b"", dns.rcode.BADKEY)
    assert (mine.time_signed, mine.fudge, mine.original_id) == (
        theirs.time_signed, theirs.fudge, theirs.original_id,
    )


def test_the_key_name_is_read_through_compression(engine: Engine) -> None:
    """dnspython compresses a key name that shares a suffix with the qname: the pointer is
    followed on the slow path, and our answer writes the name out whole."""
    q = signed("xfr.rv.example.")  # the key name is the qname: its owner is one pointer
    data = q.to_wire()
    assert b"\x03xfr\x02rv\x07example\x00" in data[12:] and data.count(b"\x03xfr") == 1
    r = answer(engine, data)
    assert r.rcode() == dns.rcode.NOTAUTH and r.tsig is not None and r.tsig.name == KEYNAME


def test_other_opcodes_are_judged_before_the_key(engine: Engine) -> None:
    q = signed()
    q.set_opcode(dns.opcode.STATUS)
    r = answer(engine, q.to_wire())
    assert r.rcode() == dns.rcode.NOTIMP and r.tsig is None


def tsig_record(*, rclass: int = 255, ttl: int = 0, extra: bytes = b"") -> bytes:
    algorithm = dns.tsig.HMAC_SHA256.to_wire()
    assert algorithm is not None
    rdata = algorithm + struct.pack("!HIHH", 0, 1_700_000_000, 300, 0) + b"\x12\x34\x00\x00\x00\x00"
    rdata += extra
    return b"\x03key\x00" + struct.pack("!HHIH", 250, rclass, ttl, len(rdata)) + rdata


def query_with(record: bytes) -> bytes:
    q = dns.message.make_query("ns1.rv.example.", "A")
    head = bytearray(q.to_wire())
    head[10:12] = b"\x00\x01"
    return bytes(head) + record


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (tsig_record(rclass=1), "class IN"),
        (tsig_record(ttl=5), "TTL 5"),
        (tsig_record(extra=b"\x00"), "a byte past its fields"),
    ],
)
def test_a_tsig_that_cannot_be_read_is_formerr(engine: Engine, record: bytes, why: str) -> None:
    r = dns.message.from_wire(exchange(engine, query_with(record)))
    assert r.rcode() == dns.rcode.FORMERR, why


def test_a_handmade_tsig_is_echoed(engine: Engine) -> None:
    r = answer(engine, query_with(tsig_record()))
    rdata = tsig_rdata(r)
    assert r.rcode() == dns.rcode.NOTAUTH and r.edns < 0
    assert (rdata.time_signed, rdata.fudge, rdata.original_id) == (1_700_000_000, 300, 0x1234)


def test_a_known_key_is_not_verified_yet() -> None:
    """Verifying MACs comes with zone transfers: a key in the keyring is not answered as if
    it were checked (the engine, holding no keys today, never gets here)."""
    data = signed().to_wire()
    with pytest.raises(Signed) as caught:
        wire.parse_query(data)
    assert tsig.key_error(tsig.NO_KEYS, KEYNAME, dns.tsig.HMAC_SHA256) == dns.rcode.BADKEY
    assert tsig.key_error(KEYRING, KEYNAME, dns.tsig.HMAC_SHA512) == dns.rcode.BADKEY
    assert tsig.key_error(KEYRING, KEYNAME, dns.tsig.HMAC_SHA256) == 0
    with pytest.raises(NotImplementedError):
        tsig.answer(data, caught.value, KEYRING)


def test_read_tsig_rejects_a_cut_record() -> None:
    data = query_with(tsig_record())
    offset = data.index(b"\x03key")
    with pytest.raises(FormError):
        tsig.read_tsig(data[:-3], offset)
