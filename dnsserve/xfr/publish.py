"""Publish mode: pool answers written into the zone content a primary transfers.

Owns three rules:

- **Content.** The published content is the zone file's content with each
  published pool's (owner, type) record set replaced by the pool's current
  answer set (TTL = the pool's), and the SOA serial set to the published
  serial. Records stay canonical and in canonical order (``zones.versions``).
- **Never empty.** A selection with no answer (only ``when_all_down =
  "nodata"`` gives one: ``answer_values``) publishes nothing new: the set
  published before stays (at first, the zone file's set). A CNAME pool
  publishes one target (a CNAME RRset holds one record).
- **Serial.** Every published change takes serial ``max(old + 1, now)`` in
  RFC 1982 arithmetic (``next_serial``): unix time, or one more when
  changes come faster than once a second or the old serial is ahead.
- **Coalescing.** At most one publication per ``min_interval`` (default
  5 s) per zone (``publish_delay``): changes inside it are published
  together when it ends, as the state then is (a flap that came back is no
  change at all).

The engine serves the published SOA at the apex (``soa_answer``): NOTIFY
makes secondaries check it, signed or not.

Pure: the time is passed in. Must not: schedule (``publishing`` does, on
the loop), select answers (``answer.policies`` does) or send NOTIFY.
"""

from __future__ import annotations

import bisect
import ipaddress
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dns.name
from dns.rcode import Rcode
from dns.rdataclass import RdataClass
from dns.rdatatype import RdataType

from dnsserve.answer.lookup import answer_key
from dnsserve.answer.policies import Selection
from dnsserve.answer.prebuilt import Prebuilt, render
from dnsserve.zones.table import Result, ResultKind
from dnsserve.zones.versions import Record, ZoneContent, serial_gt, serial_next, to_rrsets

DEFAULT_MIN_INTERVAL = 5.0
PoolKey = tuple[dns.name.Name, RdataType]
_SERIAL = struct.Struct("!I")
_MOD = 1 << 32


@dataclass(frozen=True, slots=True)
class PublishZone:
    """A zone whose published pools' answers go into what it transfers."""

    origin: dns.name.Name
    pools: frozenset[PoolKey]  # the published pools inside it
    min_interval: float = DEFAULT_MIN_INTERVAL


def next_serial(old: int, now: float) -> int:
    """``max(old + 1, now)`` in serial arithmetic (RFC 1982)."""
    clock = int(now) % _MOD
    return clock if serial_gt(clock, old) else serial_next(old)


def publish_delay(last: float | None, now: float, min_interval: float) -> float:
    """Seconds to wait before publishing: 0 unless the last publication is too recent."""
    if last is None:
        return 0.0
    return max(0.0, last + min_interval - now)


def answer_values(rdtype: RdataType, selection: Selection) -> tuple[str, ...]:
    """The values to publish for a selection (empty: publish nothing new)."""
    if selection.empty:
        return ()
    if rdtype == RdataType.CNAME:
        first = selection.values_variants[0]
        return first[:1]
    return tuple(sorted(selection.values()))


def rdata_wire(rdtype: RdataType, value: str) -> bytes:
    """The canonical rdata of one pool answer (A, AAAA or CNAME)."""
    if rdtype == RdataType.A:
        return ipaddress.IPv4Address(value).packed
    if rdtype == RdataType.AAAA:
        return ipaddress.IPv6Address(value).packed
    return dns.name.from_text(value).to_digestable()


def published_content(
    base: ZoneContent,
    sets: Mapping[PoolKey, tuple[int, Sequence[str]]],
    serial: int,
) -> ZoneContent:
    """``base`` with each (owner, type) in ``sets`` replaced by (TTL, values), at ``serial``.

    An empty value list keeps ``base``'s records of that owner and type.
    """
    replace = {
        (owner.to_digestable(), int(rdtype)): (ttl, values)
        for (owner, rdtype), (ttl, values) in sets.items() if values
    }
    apex = base.origin.to_digestable()
    records: list[bytes] = []
    for rr in base.records:
        record = Record.from_wire(rr)
        if (record.owner, int(record.rdtype)) in replace:
            continue
        if record.rdtype == RdataType.SOA and record.owner == apex:
            rr = _with_serial(record, serial)
        records.append(rr)
    for (owner, rdtype), (ttl, values) in replace.items():
        for rdata in sorted({rdata_wire(RdataType(rdtype), v) for v in values}):
            rr = Record(owner, RdataType(rdtype), RdataClass.IN, ttl, rdata).to_wire()
            bisect.insort(records, rr, key=_order)
    return ZoneContent(base.origin, tuple(records))


def soa_answer(content: ZoneContent) -> tuple[bytes, Prebuilt]:
    """The engine's answer key and prebuilt answer for the apex SOA of ``content``.

    Served in place of the zone file's SOA answer, so a secondary's serial
    check (signed or not) sees the published serial.
    """
    [rrset] = to_rrsets([_soa(content)])
    result = Result(ResultKind.ANSWER, Rcode.NOERROR, True, answer=(rrset,))
    origin = content.origin
    return (answer_key(origin, RdataType.SOA, RdataClass.IN),
            render(origin, RdataType.SOA, RdataClass.IN, result))


def _soa(content: ZoneContent) -> bytes:
    apex = content.origin.to_digestable()
    for rr in content.records:
        if rr.startswith(apex) and Record.from_wire(rr).rdtype == RdataType.SOA:
            return rr
    raise ValueError(f"no SOA at the apex of {content.origin}")


def same_records(a: ZoneContent, b: ZoneContent) -> bool:
    """The same records but for the SOA serial."""
    return [r for r in a.records if not _is_soa(r)] == [r for r in b.records if not _is_soa(r)]


def _is_soa(rr: bytes) -> bool:
    return Record.from_wire(rr).rdtype == RdataType.SOA


def _with_serial(record: Record, serial: int) -> bytes:
    rdata = record.rdata
    at = _skip(rdata, _skip(rdata, 0))
    rdata = rdata[:at] + _SERIAL.pack(serial) + rdata[at + 4 :]
    return record._replace(rdata=rdata).to_wire()


def _skip(data: bytes, at: int) -> int:
    while data[at]:
        at += data[at] + 1
    return at + 1


def _order(rr: bytes) -> tuple[tuple[bytes, ...], int, bytes]:
    """Canonical order (RFC 4034 §6.1, §6.3) of a canonical record."""
    labels: list[bytes] = []
    at = 0
    while rr[at]:
        labels.append(rr[at + 1 : at + 1 + rr[at]])
        at += rr[at] + 1
    at += 1
    rdtype = (rr[at] << 8) | rr[at + 1]
    return tuple(labels[::-1]), rdtype, rr[at + 10 :]
