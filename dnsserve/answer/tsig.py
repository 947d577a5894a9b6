"""TSIG on the query path (RFC 8945): a signed query's key, judged, and the error answer.

Owns what the engine does with a query whose last record is a TSIG
(``errors.Signed`` from ``wire.parse_query``): read the record, look its key
up in a keyring, and for a key we do not have answer as RFC 8945 §5.2 says:
NOTAUTH, with an unsigned TSIG record (§5.3.2) of the same key name and
algorithm, an empty MAC and error BADKEY. The query's Time Signed, Fudge and
Original ID are echoed (NSD does the same), so no clock is needed.

Verifying a MAC and signing answers come with zone transfers (the first use
of keys); until then no key is configured (``NO_KEYS``), so every key is
unknown, and a key found in a keyring raises ``NotImplementedError``.

Must not: run on the fast path (only signed queries come here), read the
clock, or log. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import dns.exception
import dns.name
import dns.tsig

from dnsserve import wire
from dnsserve.errors import FormError, Signed

Keyring = Mapping[dns.name.Name, dns.tsig.Key]
NO_KEYS: Keyring = MappingProxyType({})

_FIXED = struct.Struct("!HHIH")  # type, class, TTL, RDLENGTH
_TIMES = 8  # Time Signed (48 bits) and Fudge
_U16 = struct.Struct("!H")


@dataclass(frozen=True, slots=True)
class TsigRecord:
    """A query's TSIG record, as much of it as an error answer needs."""

    name: dns.name.Name  # the key name
    algorithm: dns.name.Name
    times: bytes  # Time Signed and Fudge, as sent
    original_id: bytes  # as sent


def read_tsig(data: bytes, offset: int) -> TsigRecord:
    """The TSIG record whose owner name starts at ``offset``; FormError if it is malformed.

    ``wire.parse_query`` has checked that the record ends inside the message;
    its CLASS must be ANY and its TTL 0 (RFC 8945 §4.2; NSD answers FORMERR too).
    """
    try:
        name, used = dns.name.from_wire(data, offset)
        pos = offset + used
        _, rclass, ttl, rdlen = _FIXED.unpack_from(data, pos)
        pos += _FIXED.size
        end = pos + rdlen
        if rclass != wire.CLASS_ANY or ttl != 0:
            raise FormError("a TSIG record's class is ANY and its TTL 0")
        algorithm, used = dns.name.from_wire(data[:end], pos)
        pos += used
        times = data[pos : pos + _TIMES]
        (mac_size,) = _U16.unpack_from(data, pos + _TIMES)
        pos += _TIMES + 2 + mac_size
        original_id = data[pos : pos + 2]
        (other_len,) = _U16.unpack_from(data, pos + 4)
        pos += 6 + other_len
    except (dns.exception.DNSException, struct.error, IndexError):
        raise FormError("a malformed TSIG record") from None
    if pos != end or len(original_id) != 2 or len(times) != _TIMES:
        raise FormError("a TSIG record's fields do not add up to its length")
    return TsigRecord(name, algorithm, times, original_id)


def key_error(keyring: Keyring, name: dns.name.Name, algorithm: dns.name.Name) -> int:
    """BADKEY unless ``keyring`` holds key ``name`` with ``algorithm``; 0 when it does."""
    key = keyring.get(name)
    if key is None or key.algorithm != algorithm:
        return wire.BADKEY
    return 0


def answer(data: bytes, signed: Signed, keyring: Keyring) -> bytes:
    """The answer to the signed QUERY ``data``: NOTAUTH with BADKEY for a key we do not have.

    Raises FormError when the TSIG record cannot be read (RFC 8945 §5.2:
    FORMERR), and NotImplementedError for a key in ``keyring``.
    """
    record = read_tsig(data, signed.tsig)
    error = key_error(keyring, record.name, record.algorithm)
    if not error:
        raise NotImplementedError("verifying a TSIG MAC comes with zone transfers")
    return error_response(data, signed, record, error)


def error_response(data: bytes, signed: Signed, record: TsigRecord, error: int) -> bytes:
    """NOTAUTH with an unsigned TSIG (empty MAC) carrying ``error`` (RFC 8945 §5.3.2).

    The question is echoed, and our OPT when the query had one (RFC 6891
    §6.1.1), before the TSIG, which stays last.
    """
    flags = wire.QR | (signed.flags & (wire.OPCODE_MASK | wire.RD | wire.CD)) | wire.NOTAUTH
    opt = b"" if signed.payload < 0 else (wire.OPT_DO if signed.do else wire.OPT_PLAIN)
    owner = record.name.to_wire()
    algorithm = record.algorithm.to_wire()
    assert owner is not None and algorithm is not None  # None only when writing to a file
    # Algorithm, Time Signed and Fudge, MAC Size 0 (no MAC), Original ID, Error, Other Len 0
    rdata = algorithm + record.times + b"\x00\x00" + record.original_id + _U16.pack(error)
    rdata += b"\x00\x00"
    tsig = owner + _FIXED.pack(wire.TYPE_TSIG, wire.CLASS_ANY, 0, len(rdata)) + rdata
    head = wire.HEADER.pack(0, flags, 1, 0, 0, 2 if opt else 1)[2:]
    return data[:2] + head + data[12 : signed.qend] + opt + tsig
