"""AXFR and IXFR answers as message streams (RFC 5936, RFC 1995), TSIG-chained.

Owns the order of records in a transfer and their split into messages:

- AXFR: the apex SOA, every other record in canonical order, the SOA again.
- IXFR from serial s (``ixfr_chain``: the recorded diffs leading from s to
  the current serial, each removing the old SOA and adding the new one):
  the current SOA, then per diff ``old SOA, removed, new SOA, added``, then
  the current SOA. A client already at the current serial (or later) gets
  the current SOA alone; a serial with no chain of diffs gets an AXFR-style
  answer (RFC 1995 §4), which the caller decides.
- Messages: records in wire form (owner names compressed, and the names in
  the rdata of NS, CNAME, PTR, SOA and MX: RFC 3597 §4), as many as fit in
  ``MESSAGE_SIZE`` octets, header flags QR and AA (RD copied), the question
  in the first message only (RFC 5936 §2.2), each message signed by the
  request's ``Signer`` when there is one (every message, chained: §5.3.1
  of RFC 8945).

Records are the canonical ones of ``zones.versions`` (one ``bytes`` each).

Pure: the signing time is passed in (``now``). Must not: decide access
(``xfr.access``), read the state file or keep history (``transfers``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

from dns.rdatatype import RdataType

from dnsserve import wire
from dnsserve.xfr.sign import Signer
from dnsserve.zones.versions import Record, ZoneContent, ZoneDiff, serial_gt

MESSAGE_SIZE = 16_384
TSIG_RESERVE = 300  # a TSIG record: key name and algorithm (255 each at worst, rarely), MAC
_SERIAL = struct.Struct("!I")
_POINTER = struct.Struct("!H")
_MAX_POINTER = 0x4000  # a compression pointer's 14 bits


def soa_record(content: ZoneContent) -> bytes:
    """The apex SOA record of ``content``; ValueError when there is none."""
    apex = content.origin.to_digestable()
    for rr in content.records:  # the apex sorts first
        if not rr.startswith(apex):
            break
        if _rdtype(rr, len(apex)) == RdataType.SOA:
            return rr
    raise ValueError(f"no SOA at the apex of {content.origin}")


def soa_serial(rr: bytes) -> int:
    """The serial of SOA record ``rr`` (the first field after the two names)."""
    record = Record.from_wire(rr)
    rdata = record.rdata
    at = _skip_name(rdata, _skip_name(rdata, 0))
    return int(_SERIAL.unpack_from(rdata, at)[0])


def axfr_records(content: ZoneContent) -> list[bytes]:
    """The records of an AXFR of ``content``: SOA, the rest, SOA."""
    soa = soa_record(content)
    return [soa, *(rr for rr in content.records if rr != soa), soa]  # records are distinct


def diff_serials(changes: ZoneDiff) -> tuple[int, int] | None:
    """(old serial, new serial) of a diff, from the SOAs it removes and adds."""
    old = [rr for rr in changes.removed if _is_soa(rr)]
    if len(old) != 1:  # a first version removes nothing: its records are not read
        return None
    new = [rr for rr in changes.added if _is_soa(rr)]
    if len(new) != 1:
        return None
    return soa_serial(old[0]), soa_serial(new[0])


def ixfr_chain(diffs: Sequence[ZoneDiff], since: int, current: int) -> list[ZoneDiff] | None:
    """The diffs leading from serial ``since`` to ``current``, oldest first; None if broken.

    ``diffs`` are recorded ones in the order they were accepted (oldest first).
    """
    chain: list[ZoneDiff] = []
    at = since
    for changes in diffs:
        serials = diff_serials(changes)
        if serials is None:
            chain, at = [], since  # a diff we cannot place: start again after it
            continue
        old, new = serials
        if old == at and serial_gt(new, old):
            chain.append(changes)
            at = new
        elif chain:
            return None  # the chain forks or a version was not recorded
    return chain if at == current and chain else None


def ixfr_records(current_soa: bytes, chain: Sequence[ZoneDiff]) -> list[bytes]:
    """The records of an incremental IXFR answer (RFC 1995 §4)."""
    out = [current_soa]
    for changes in chain:
        old = [rr for rr in changes.removed if _is_soa(rr)]
        new = [rr for rr in changes.added if _is_soa(rr)]
        out += old + [rr for rr in changes.removed if not _is_soa(rr)]
        out += new + [rr for rr in changes.added if not _is_soa(rr)]
    out.append(current_soa)
    return out


def messages(
    query_id: int,
    query_flags: int,
    question: bytes,
    records: Sequence[bytes],
    *,
    signer: Signer | None = None,
    now: int = 0,
    max_size: int = MESSAGE_SIZE,
) -> Iterator[bytes]:
    """``records`` split into response messages, each signed when ``signer`` is given.

    Names are compressed against the names before them in the same message
    (the question's too): owners, and names in NS, CNAME, PTR, SOA and MX rdata.
    """
    flags = wire.QR | wire.AA | (query_flags & (wire.OPCODE_MASK | wire.RD))
    room = max_size - (TSIG_RESERVE if signer is not None else 0)
    first = True
    at, n = 0, len(records)
    while at < n or first:
        q = question if first else b""
        names: dict[bytes, int] = {}
        if q:
            names.update(_suffixes(q.lower(), 0, _skip_name(q, 0), 12))
        parts = [q]
        size = 12 + len(q)
        start = at
        while at < n:
            out, new = _compress(records[at], names, size)
            if at > start and size + len(out) > room:
                break
            names.update(new)
            parts.append(out)
            size += len(out)
            at += 1
        head = wire.HEADER.pack(query_id, flags, 1 if first else 0, at - start, 0, 0)
        message = head + b"".join(parts)
        if signer is not None:
            message = signer.sign(message, now, multi=True)
        first = False
        yield message


# Where names sit in the rdata of the types whose rdata names may be compressed
# (RFC 1035's; RFC 3597 §4): (octets before the first name, how many names in a row).
_RDATA_NAMES: dict[int, tuple[int, int]] = {
    RdataType.NS: (0, 1), RdataType.CNAME: (0, 1), RdataType.PTR: (0, 1),
    RdataType.SOA: (0, 2), RdataType.MX: (2, 1),
}


def _compress(rr: bytes, names: dict[bytes, int], at: int) -> tuple[bytes, dict[bytes, int]]:
    """Canonical record ``rr`` written at offset ``at`` of a message whose earlier names
    are ``names``: the record with its names compressed, and the names it adds."""
    new: dict[bytes, int] = {}
    end = _skip_name(rr, 0)
    owner = _name(rr, 0, end, names, new, at)
    rdtype = (rr[end] << 8) | rr[end + 1]
    layout = _RDATA_NAMES.get(rdtype)
    if layout is None:
        return owner + rr[end:], new
    rdata = rr[end + 10 :]
    base = at + len(owner) + 10  # where the rdata starts in the message
    skip, count = layout
    out = rdata[:skip]
    pos = skip
    for _ in range(count):
        stop = _skip_name(rdata, pos)
        out += _name(rdata, pos, stop, names, new, base + len(out))
        pos = stop
    out += rdata[pos:]
    return owner + rr[end : end + 8] + _POINTER.pack(len(out)) + out, new


def _name(
    data: bytes, start: int, end: int, names: dict[bytes, int], new: dict[bytes, int], at: int
) -> bytes:
    """The name ``data[start:end]`` written at offset ``at``, its longest known suffix
    replaced by a pointer; its unknown suffixes are added to ``new``."""
    pos = start
    while data[pos]:
        suffix = data[pos:end]
        target = names.get(suffix)
        if target is None:
            target = new.get(suffix)
        if target is not None:
            return data[start:pos] + _POINTER.pack(0xC000 | target)
        if at + pos - start < _MAX_POINTER:
            new[suffix] = at + pos - start
        pos += data[pos] + 1
    return data[start:end]


def _suffixes(data: bytes, start: int, end: int, at: int) -> dict[bytes, int]:
    """Every suffix of the name ``data[start:end]`` written at offset ``at``."""
    out = {}
    pos = start
    while data[pos] and at + pos - start < _MAX_POINTER:
        out[data[pos:end]] = at + pos - start
        pos += data[pos] + 1
    return out


def single(
    query_id: int, query_flags: int, question: bytes, records: Sequence[bytes], rcode: int = 0
) -> bytes:
    """One unsigned response message holding ``records`` (an SOA-only IXFR answer)."""
    flags = wire.QR | wire.AA | (query_flags & (wire.OPCODE_MASK | wire.RD)) | rcode
    head = wire.HEADER.pack(query_id, flags, 1, len(records), 0, 0)
    return head + question + b"".join(records)


def _is_soa(rr: bytes) -> bool:
    return _rdtype(rr, _skip_name(rr, 0)) == RdataType.SOA


def _rdtype(rr: bytes, owner_length: int) -> int:
    return (rr[owner_length] << 8) | rr[owner_length + 1]


def _skip_name(data: bytes, at: int) -> int:
    """Past an uncompressed name (canonical records have no pointers)."""
    while data[at]:
        at += data[at] + 1
    return at + 1
