"""Reading a request the engine handed off: a transfer, a NOTIFY, or a signed query.

Owns what such a request *is* (``Request``: ID, flags, opcode, question,
the IXFR authority SOA's or NOTIFY answer SOA's serial, the TSIG key that
signed it) and the verification of its TSIG (RFC 8945 §5.2) against a
keyring, at a given time:

    key name or algorithm not in the keyring  -> NOTAUTH, unsigned TSIG, BADKEY
    MAC does not verify                        -> NOTAUTH, unsigned TSIG, BADSIG
    MAC verifies, time outside the fudge       -> NOTAUTH, signed TSIG, BADTIME
                                                  (Other Data = our time)
    verifies                                   -> a Request whose ``signer``
                                                  signs the answers

A rejection is ``Rejected``, carrying its answer. A malformed request raises
``FormError`` (the caller answers FORMERR).

Pure: bytes and the time (``now``) in. Must not: decide access
(``xfr.access``), build answers beyond the TSIG errors, or read the clock.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TSIG
import dns.tsig

from dnsserve import wire
from dnsserve.answer import tsig as tsig_answers
from dnsserve.errors import FormError, Signed
from dnsserve.xfr.sign import Signer

Keyring = Mapping[dns.name.Name, dns.tsig.Key]
BADSIG = 16
BADTIME = 18
_FIXED = struct.Struct("!HHIH")


class Rejected(Exception):
    """A request whose TSIG fails: ``answer`` is the NOTAUTH to send, ``error`` the TSIG error."""

    def __init__(self, answer: bytes, error: int) -> None:
        super().__init__(f"TSIG error {error}")
        self.answer = answer
        self.error = error


@dataclass(frozen=True, slots=True)
class Request:
    """A handed-off request, its TSIG (if any) verified."""

    data: bytes  # as received
    id: int
    flags: int
    qname: dns.name.Name
    qtype: int
    qclass: int
    qend: int  # offset just past the question
    serial: int | None  # IXFR: the client's serial (authority SOA); NOTIFY: the SOA's, if sent
    key_name: dns.name.Name | None  # the verified key that signed it
    signer: Signer | None  # signs the answers when the request was signed
    unsigned: bytes  # the request without its TSIG record (what the engine can answer)
    payload: int  # the client's EDNS payload, or wire.NO_EDNS
    do: bool

    @property
    def opcode(self) -> int:
        return self.flags & wire.OPCODE_MASK

    @property
    def question(self) -> bytes:
        return self.data[12 : self.qend]


def read_request(data: bytes, keyring: Keyring, now: int) -> Request:
    """The request in ``data``; ``Rejected`` for a bad TSIG, ``FormError`` when malformed."""
    try:
        flags, qend, _, payload, do, _ = wire.parse_query(data)
        signed: Signed | None = None
    except Signed as exc:
        signed = exc
        flags, qend, payload, do = exc.flags, exc.qend, exc.payload, exc.do
    key_name: dns.name.Name | None = None
    signer: Signer | None = None
    unsigned = data
    if signed is not None:
        signer = _verify(data, signed, keyring, now)
        key_name = signer.key.name
        (arcount,) = struct.unpack_from("!H", data, 10)
        unsigned = data[:10] + struct.pack("!H", arcount - 1) + data[12 : signed.tsig]
    try:
        message = dns.message.from_wire(unsigned, question_only=False)
    except dns.exception.DNSException as exc:
        raise FormError(f"malformed request: {exc}") from None
    if len(message.question) != 1:
        raise FormError("QDCOUNT is not 1")
    question = message.question[0]
    return Request(
        data=data, id=message.id, flags=flags, qname=question.name, qtype=question.rdtype,
        qclass=question.rdclass, qend=qend, serial=_soa_serial(message), key_name=key_name,
        signer=signer, unsigned=unsigned, payload=payload, do=do,
    )


def _soa_serial(message: dns.message.Message) -> int | None:
    section = message.answer if message.opcode() else message.authority
    for rrset in section:
        if rrset.rdtype == dns.rdatatype.SOA:
            for rdata in rrset:
                if isinstance(rdata, dns.rdtypes.ANY.SOA.SOA):
                    return int(rdata.serial)
    return None


def _verify(data: bytes, signed: Signed, keyring: Keyring, now: int) -> Signer:
    record = tsig_answers.read_tsig(data, signed.tsig)
    if tsig_answers.key_error(keyring, record.name, record.algorithm):
        answer = tsig_answers.error_response(data, signed, record, wire.BADKEY)
        raise Rejected(answer, wire.BADKEY)
    key = keyring[record.name]
    rdata = _tsig_rdata(data, signed.tsig)
    try:
        dns.tsig.validate(data, key, record.name, rdata, now, None, signed.tsig)
    except dns.tsig.BadTime:
        signer = Signer(key, rdata.mac, rdata.original_id)
        question = data[12 : signed.qend]
        head = wire.header_only(data, signed.flags, wire.NOTAUTH, question)
        other = struct.pack("!Q", now)[2:]  # our time, 48 bits (RFC 8945 §5.2.3)
        answer = signer.sign_error(head, rdata.time_signed, BADTIME, other)
        raise Rejected(answer, BADTIME) from None
    except (dns.tsig.BadSignature, dns.exception.DNSException):
        answer = tsig_answers.error_response(data, signed, record, BADSIG)
        raise Rejected(answer, BADSIG) from None
    return Signer(key, rdata.mac, rdata.original_id)


def _tsig_rdata(data: bytes, offset: int) -> dns.rdtypes.ANY.TSIG.TSIG:
    try:
        _, used = dns.name.from_wire(data, offset)
        pos = offset + used
        _, _, _, rdlen = _FIXED.unpack_from(data, pos)
        pos += _FIXED.size
        rdata = dns.rdata.from_wire(dns.rdataclass.ANY, dns.rdatatype.TSIG, data, pos, rdlen)
    except (dns.exception.DNSException, struct.error):
        raise FormError("a malformed TSIG record") from None
    assert isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG)
    return rdata
