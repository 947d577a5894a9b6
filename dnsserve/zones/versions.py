"""Zone versions: a zone's canonical content, its hash, diffs, serials.

Pure [C]: owns what one loaded zone *is* when versions are compared (its
records in canonical form), the hash that names a version, the diff between
two versions, the version record the state file keeps, and RFC 1982 serial
arithmetic. It must not read files or the state file (``zones.load`` and
``store`` do), read the clock (a version's time is passed in), log, or
decide whether a reload may happen (``zones.deletions`` does).

Content. A record is (owner, type, class, TTL, rdata) with owner and rdata
in the canonical wire form of RFC 4034 §6.2 (names lower-cased,
uncompressed). A zone's content is its records in canonical order: owners
by RFC 4034 §6.1, then type ascending, then rdata as unsigned octets
(RFC 4034 §6.3). That form and order are the input of ZONEMD's SIMPLE
scheme (RFC 8976 §3.3.1), so ``content_hash`` is "ZONEMD SIMPLE with
SHA-256": stable across runs, platforms and Python versions, and the same
for the same records in any file order. Records compare in canonical form:
a change of case alone is no change. RRSIGs are not in a ``ZoneTable``, so
not in the content. ``to_wire``/``from_wire`` carry a content (or a diff's
records) to and from the state file as those same bytes.

Diff. A record in ``old`` and not in ``new`` is removed, the reverse added;
a TTL or rdata changed in place is one of each. The SOA is content like any
other record, so a new serial alone is a one-record change and a change
without a new serial shows as equal serials with different hashes
(``serial_problem``).

IXFR (RFC 1995) builds on ``ZoneDiff``: every diff between two serials
removes the old SOA and adds the new one, so one difference sequence is
``old SOA, removed without the SOA, new SOA, added without the SOA``, each
part turned into RRsets by ``to_rrsets``. The store keeps, per accepted
version, its ``ZoneVersion`` and its diff's records (``records_to_wire``);
a request from serial s is answered by the diffs from s to the current
serial in order (``serial_gt`` says which is later; RFC 1995 §5 allows
condensing them), or by AXFR when s's version is no longer kept. The last
accepted version's ``ZoneContent.to_wire`` lets the deletion guard run at
start against it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple

import dns.name
import dns.rdata
import dns.rdtypes.ANY.SOA
import dns.rrset
import msgspec
from dns.rdataclass import RdataClass
from dns.rdatatype import RdataType

from dnsserve.zones.table import ZoneTable

SERIAL_BITS = 32
_HALF = 1 << (SERIAL_BITS - 1)
_MOD = 1 << SERIAL_BITS
_FIXED = struct.Struct("!HHIH")  # type, class, TTL, rdata length (RFC 1035 §4.1.3)
_PREFERENCE = struct.Struct("!H")
_MAX_LABEL = 63


class Record(NamedTuple):
    """One resource record in canonical form (RFC 4034 §6.2)."""

    owner: bytes  # canonical wire form of the owner name
    rdtype: RdataType
    rdclass: RdataClass
    ttl: int
    rdata: bytes  # canonical wire form of the rdata

    def to_wire(self) -> bytes:
        fixed = _FIXED.pack(self.rdtype, self.rdclass, self.ttl, len(self.rdata))
        return self.owner + fixed + self.rdata

    def name(self) -> dns.name.Name:
        """The owner (lower-cased: the canonical form keeps no case)."""
        return dns.name.from_wire(self.owner, 0)[0]

    def to_rdata(self) -> dns.rdata.Rdata:
        return dns.rdata.from_wire(self.rdclass, self.rdtype, self.rdata, 0, len(self.rdata))

    def to_text(self) -> str:
        """``owner TTL CLASS TYPE rdata``, as in a zone file."""
        return (
            f"{self.name()} {self.ttl} {self.rdclass.name} {self.rdtype.name} "
            f"{self.to_rdata().to_text()}"
        )


@dataclass(frozen=True, slots=True)
class ZoneContent:
    """Every record of one zone, in canonical order (see the module docstring)."""

    origin: dns.name.Name
    records: tuple[Record, ...]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def serial(self) -> int:
        """The apex SOA's serial; ``ValueError`` when there is no apex SOA."""
        apex = self.origin.to_digestable()
        for record in self.records:  # the apex sorts first
            if record.owner != apex:
                break
            soa = record.to_rdata() if record.rdtype == RdataType.SOA else None
            if isinstance(soa, dns.rdtypes.ANY.SOA.SOA):
                return int(soa.serial)
        raise ValueError(f"no SOA at the apex of {self.origin}")

    def to_wire(self) -> bytes:
        """The records' canonical wire forms, concatenated: what ``content_hash`` hashes."""
        return records_to_wire(self.records)

    @classmethod
    def from_wire(cls, origin: dns.name.Name, data: bytes) -> ZoneContent:
        """The inverse of ``to_wire``; ``ValueError`` when ``data`` is not such a stream."""
        return cls(origin, records_from_wire(data))


@dataclass(frozen=True, slots=True)
class ZoneDiff:
    """What changed from one content to the next, each side in canonical order."""

    removed: tuple[Record, ...]
    added: tuple[Record, ...]

    def __bool__(self) -> bool:
        return bool(self.removed or self.added)


class ZoneVersion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One accepted version of a zone, as the state file records it."""

    zone: str  # origin, as text
    serial: int
    hash: str  # content_hash
    records: int
    added: int
    removed: int
    at: float  # when it was accepted (seconds since the epoch, passed in)


# -- content ---------------------------------------------------------------------


def zone_content(table: ZoneTable) -> ZoneContent:
    """The canonical content of a *loaded* table (``LoadedZones.tables``).

    A pool variant of a table (``ZoneTable.with_rrsets``) holds the pools'
    answers in place of the zone file's records: pass the loaded one.
    """
    origin = table.origin
    # rrset_keys yields a node's types together, with one Name object: each
    # owner is taken once without hashing its Name (slow in dnspython). An
    # owner seen twice anyway sorts beside itself and is skipped.
    owners: list[dns.name.Name] = []
    for name, _ in table.rrset_keys():
        if not owners or owners[-1] is not name:
            owners.append(name)
    records: list[Record] = []
    previous: tuple[bytes, ...] | None = None
    keyed = sorted(zip(map(canonical_order, owners), owners, strict=True), key=itemgetter(0))
    for key, name in keyed:
        if key != previous:
            records += _owner_records(table, name, origin)
            previous = key
    return ZoneContent(origin, tuple(records))


def _owner_records(table: ZoneTable, name: dns.name.Name, origin: dns.name.Name) -> list[Record]:
    """The records at one owner, types ascending, rdata in canonical order."""
    owner = name.to_digestable()
    node = table.node(name)
    out: list[Record] = []
    for rdtype in sorted(node) if len(node) > 1 else node:
        rrset = node[rdtype]
        rdclass, ttl = rrset.rdclass, rrset.ttl
        encode = _ENCODERS.get(rdtype, _any) if rdclass == RdataClass.IN else _any
        rdatas = [encode(rd, origin) for rd in rrset]
        if len(rdatas) > 1:
            rdatas.sort()
        out += [Record(owner, rdtype, rdclass, ttl, rdata) for rdata in rdatas]
    return out


def canonical_order(name: dns.name.Name) -> tuple[bytes, ...]:
    """RFC 4034 §6.1: labels from the root down, each lower-cased, compared as octets."""
    return tuple(map(bytes.lower, name.labels[::-1]))


# Canonical rdata (RFC 4034 §6.2) of the commonest IN types without
# dnspython's general writer, which builds a Name per label of every embedded
# name (an MX costs ten times its exchange's to_digestable). Each equals
# ``rdata.to_digestable()``; tests/test_zone_versions.py holds them to it.


def _any(rdata: Any, origin: dns.name.Name) -> bytes:
    wire: bytes = rdata.to_digestable(origin)
    return wire


def _a(rdata: Any, origin: dns.name.Name) -> bytes:
    return bytes(map(int, rdata.address.split(".")))  # dnspython keeps it canonical


def _target(rdata: Any, origin: dns.name.Name) -> bytes:
    wire: bytes = rdata.target.to_digestable(origin)
    return wire


def _mx(rdata: Any, origin: dns.name.Name) -> bytes:
    exchange: bytes = rdata.exchange.to_digestable(origin)
    return _PREFERENCE.pack(rdata.preference) + exchange


_ENCODERS: dict[RdataType, Callable[[Any, dns.name.Name], bytes]] = {
    RdataType.A: _a,
    RdataType.NS: _target,
    RdataType.CNAME: _target,
    RdataType.PTR: _target,
    RdataType.DNAME: _target,
    RdataType.MX: _mx,
}


def content_hash(content: ZoneContent) -> str:
    """SHA-256, hex, of ``content.to_wire()`` (ZONEMD SIMPLE's input, RFC 8976)."""
    return hashlib.sha256(content.to_wire()).hexdigest()


def records_to_wire(records: Iterable[Record]) -> bytes:
    pack = _FIXED.pack
    return b"".join(
        r.owner + pack(r.rdtype, r.rdclass, r.ttl, len(r.rdata)) + r.rdata for r in records
    )


def records_from_wire(data: bytes) -> tuple[Record, ...]:
    """Records from ``records_to_wire`` bytes, in their order; ``ValueError`` when malformed."""
    records: list[Record] = []
    types: dict[int, RdataType] = {}  # the enum's own lookup is slow; few values repeat
    classes: dict[int, RdataClass] = {}
    end, at = len(data), 0
    while at < end:
        start = at
        while data[at]:  # uncompressed labels up to the root label
            if data[at] > _MAX_LABEL:
                raise ValueError(f"bad label length {data[at]} at offset {at}")
            at += data[at] + 1
            if at >= end:
                raise ValueError(f"owner name runs past the end at offset {start}")
        at += 1
        owner = data[start:at]
        if at + _FIXED.size > end:
            raise ValueError(f"record cut short at offset {start}")
        rdtype, rdclass, ttl, size = _FIXED.unpack_from(data, at)
        at += _FIXED.size + size
        if at > end:
            raise ValueError(f"rdata runs past the end at offset {start}")
        if rdtype not in types:
            types[rdtype] = RdataType(rdtype)
        if rdclass not in classes:
            classes[rdclass] = RdataClass(rdclass)
        records.append(Record(owner, types[rdtype], classes[rdclass], ttl, data[at - size : at]))
    return tuple(records)


def to_rrsets(records: Iterable[Record]) -> list[dns.rrset.RRset]:
    """dnspython RRsets of ``records``, one per run of (owner, type, class, TTL)."""
    out: list[dns.rrset.RRset] = []
    key: tuple[bytes, int, int, int] | None = None
    for record in records:
        here = (record.owner, record.rdtype, record.rdclass, record.ttl)
        if here != key:
            key = here
            out.append(dns.rrset.RRset(record.name(), record.rdclass, record.rdtype))
        out[-1].add(record.to_rdata(), record.ttl)
    return out


# -- diffs and versions ----------------------------------------------------------


def diff(old: ZoneContent, new: ZoneContent) -> ZoneDiff:
    """Records only in ``old`` (removed) and only in ``new`` (added); a TTL change is both."""
    if old.records == new.records:
        return ZoneDiff((), ())
    old_set, new_set = set(old.records), set(new.records)
    return ZoneDiff(
        tuple(r for r in old.records if r not in new_set),
        tuple(r for r in new.records if r not in old_set),
    )


def new_version(content: ZoneContent, changes: ZoneDiff | None, *, at: float) -> ZoneVersion:
    """The version of ``content``, reached by ``changes`` (None: the first, all added)."""
    return ZoneVersion(
        zone=content.origin.to_text(),
        serial=content.serial,
        hash=content_hash(content),
        records=len(content),
        added=len(changes.added) if changes is not None else len(content),
        removed=len(changes.removed) if changes is not None else 0,
        at=at,
    )


# -- serials -------------------------------------------------------------------


def serial_problem(old: ZoneVersion, new: ZoneVersion) -> str | None:
    """A warning when the content changed but the serial did not move forward.

    Secondaries compare serials (RFC 1982) and transfer only a later one:
    they would keep the old content.
    """
    if old.hash == new.hash:
        return None
    if new.serial == old.serial:
        return (
            f"{new.zone}: the content changed but the serial stayed {new.serial}:"
            " secondaries will not pick the change up"
        )
    if not serial_gt(new.serial, old.serial):
        return (
            f"{new.zone}: the content changed but the serial went from {old.serial} to"
            f" {new.serial}, which is not later (RFC 1982): secondaries will not pick"
            " the change up"
        )
    return None


def serial_gt(a: int, b: int) -> bool:
    """``a`` is later than ``b`` (RFC 1982 §3.2); false when they are 2**31 apart."""
    _check_serial(a)
    _check_serial(b)
    return (a < b and b - a > _HALF) or (a > b and a - b < _HALF)


def serial_next(serial: int) -> int:
    """The serial after ``serial`` (RFC 1982 §3.1: add 1, wrapping at 2**32)."""
    _check_serial(serial)
    return (serial + 1) % _MOD


def _check_serial(serial: int) -> None:
    if not 0 <= serial < _MOD:
        raise ValueError(f"a serial is a 32-bit unsigned number, got {serial}")
