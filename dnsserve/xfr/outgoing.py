"""AXFR and IXFR answers as message streams (RFC 5936, RFC 1995), TSIG-chained.

Owns the order of records in a transfer and their split into messages:

- AXFR: the apex SOA, every other record in canonical order, the SOA again.
- IXFR from serial s (``ixfr_chain``: the recorded diffs leading from s to
  the current serial, each removing the old SOA and adding the new one):
  the current SOA, then per diff ``old SOA, removed, new SOA, added``, then
  the current SOA. A client already at the current serial (or later) gets
  the current SOA alone; a serial with no chain of diffs gets an AXFR-style
  answer (RFC 1995 §4), which the caller decides.
- Messages: records in wire form (owner names compressed, rdata as it
  is), as many as fit in
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
    return [soa, *(rr for rr in content.records if rr is not soa), soa]


def diff_serials(changes: ZoneDiff) -> tuple[int, int] | None:
    """(old serial, new serial) of a diff, from the SOAs it removes and adds."""
    old = [rr for rr in changes.removed if _is_soa(rr)]
    new = [rr for rr in changes.added if _is_soa(rr)]
    if len(old) != 1 or len(new) != 1:
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

    Owner names are compressed against the names before them in the same
    message (the question's too); rdata is left as it is.
    """
    flags = wire.QR | wire.AA | (query_flags & (wire.OPCODE_MASK | wire.RD))
    room = max_size - (TSIG_RESERVE if signer is not None else 0)
    first = True
    at, n = 0, len(records)
    while at < n or first:
        q = question if first else b""
        names: dict[bytes, int] = {}
        if q:
            _remember(names, q.lower(), _skip_name(q, 0), 12, None)
        parts = [q]
        size = 12 + len(q)
        start = at
        while at < n:
            rr = records[at]
            out, new = _compress(rr, names)
            if at > start and size + len(out) > room:
                break
            _remember(names, rr, _skip_name(rr, 0), size, new)
            parts.append(out)
            size += len(out)
            at += 1
        head = wire.HEADER.pack(query_id, flags, 1 if first else 0, at - start, 0, 0)
        message = head + b"".join(parts)
        if signer is not None:
            message = signer.sign(message, now, multi=True)
        first = False
        yield message


def _compress(rr: bytes, names: dict[bytes, int]) -> tuple[bytes, tuple[int, ...]]:
    """``rr`` with its owner's longest known suffix replaced by a pointer, and the
    label offsets (in ``rr``) of the suffixes that were not known."""
    end = _skip_name(rr, 0)
    new: list[int] = []
    pos = 0
    while rr[pos]:
        target = names.get(rr[pos:end])
        if target is not None:
            return rr[:pos] + _POINTER.pack(0xC000 | target) + rr[end:], tuple(new)
        new.append(pos)
        pos += rr[pos] + 1
    return rr, tuple(new)


def _remember(
    names: dict[bytes, int], data: bytes, end: int, offset: int, new: tuple[int, ...] | None
) -> None:
    """Note the suffixes of the name ending at ``end`` in ``data`` (written at ``offset``
    of the message): those at ``new``, or, when ``new`` is None, every one."""
    positions = _label_starts(data, end) if new is None else new
    for pos in positions:
        if offset + pos < _MAX_POINTER:
            names.setdefault(data[pos:end], offset + pos)


def _label_starts(data: bytes, end: int) -> tuple[int, ...]:
    out = []
    pos = 0
    while pos < end and data[pos]:
        out.append(pos)
        pos += data[pos] + 1
    return tuple(out)


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
