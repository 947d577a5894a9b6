"""xfr.request: a handed-off request read, its TSIG verified (RFC 8945 §5.2 errors)."""

from __future__ import annotations

import time

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset
import dns.tsig
import pytest
from dns.rdatatype import RdataType

from dnsserve.errors import FormError
from dnsserve.xfr.request import BADSIG, BADTIME, Rejected, read_request

KEY = dns.tsig.Key("xfr", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=")
OTHER = dns.tsig.Key("xfr", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTM=")
KEYRING = {KEY.name: KEY}


def now() -> int:
    """The time now: dnspython signs and checks with its own clock (a constant read
    at import goes stale when the rest of the suite runs first)."""
    return int(time.time())



def ixfr(serial: int, key: dns.tsig.Key | None = None) -> dns.message.Message:
    q = dns.message.make_query("example.com.", RdataType.IXFR)
    q.authority.append(dns.rrset.from_text("example.com.", 0, "IN", "SOA",
                                           f". . {serial} 0 0 0 0"))
    if key is not None:
        q.use_tsig({key.name: key}, key.name)
    return q


def test_ixfr_serial_and_verified_key() -> None:
    q = ixfr(41, KEY)
    request = read_request(q.to_wire(), KEYRING, now())
    assert request.serial == 41
    assert request.qtype == RdataType.IXFR
    assert request.key_name == KEY.name
    assert request.signer is not None and request.signer.request_mac == q.mac
    # the unsigned form is the same request without its TSIG
    unsigned = dns.message.from_wire(request.unsigned)
    assert unsigned.tsig is None and unsigned.authority == q.authority


def test_unsigned_request() -> None:
    request = read_request(ixfr(1).to_wire(), KEYRING, now())
    assert request.key_name is None and request.signer is None


def test_notify_soa_serial() -> None:
    q = dns.message.make_query("example.com.", RdataType.SOA)
    q.set_opcode(dns.opcode.NOTIFY)
    q.answer.append(dns.rrset.from_text("example.com.", 0, "IN", "SOA", ". . 9 0 0 0 0"))
    request = read_request(q.to_wire(), KEYRING, now())
    assert request.serial == 9 and request.opcode == dns.opcode.NOTIFY << 11


def answer_of(exc: pytest.ExceptionInfo[Rejected]) -> dns.message.Message:
    return dns.message.from_wire(exc.value.answer, keyring=False)


@pytest.mark.parametrize(("keyring", "error"), [
    ({}, dns.rcode.BADKEY),
    ({OTHER.name: OTHER}, BADSIG),
    ({KEY.name: dns.tsig.Key("xfr", KEY.secret, dns.tsig.HMAC_SHA512)}, dns.rcode.BADKEY),
])
def test_tsig_errors(keyring: dict[dns.name.Name, dns.tsig.Key], error: int) -> None:
    with pytest.raises(Rejected) as exc:
        read_request(ixfr(1, KEY).to_wire(), keyring, now())
    assert exc.value.error == error
    answer = answer_of(exc)
    assert answer.rcode() == dns.rcode.NOTAUTH
    assert answer.tsig_error == error
    assert answer.tsig is not None and answer.tsig[0].mac == b""  # unsigned


def test_badtime_is_signed_with_our_time() -> None:
    q = ixfr(1, KEY)
    wire = q.to_wire()
    later = now() + 3600
    with pytest.raises(Rejected) as exc:
        read_request(wire, KEYRING, later)
    assert exc.value.error == BADTIME
    answer = answer_of(exc)
    assert answer.rcode() == dns.rcode.NOTAUTH
    tsig = answer.tsig[0]
    assert tsig.error == BADTIME and tsig.mac
    assert int.from_bytes(tsig.other, "big") == later
    # the MAC verifies against the request's (dnspython's validate stops at the error
    # first, so the digest is checked with the error cleared in a copy of the rdata)
    record = len(KEY.name.to_wire() or b"") + 10 + len(tsig.to_wire() or b"")
    start = len(exc.value.answer) - record
    whole = exc.value.answer
    arcount = int.from_bytes(whole[10:12], "big")
    signed_part = whole[:10] + (arcount - 1).to_bytes(2, "big") + whole[12:start]
    template = tsig.replace(mac=b"")
    redo, _ = dns.tsig.sign(signed_part, KEY, template, tsig.time_signed, q.mac)
    assert redo.mac == tsig.mac


def test_malformed_is_formerr() -> None:
    with pytest.raises(FormError):
        read_request(b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03abc", KEYRING, now())
