"""Zone versions: a zone's canonical content, its hash, diffs, serials.

Pure [C]: owns what one loaded zone *is* when versions are compared (its
records in canonical form), the hash that names a version, the diff between
two versions, the version record the state file keeps, and RFC 1982 serial
arithmetic. It must not read files or the state file (``zones.load`` and
``store`` do), read the clock (a version's time is passed in), log, or
decide whether a reload may happen (``zones.deletions`` does).

Content. A zone's content is its records, each one ``bytes``: the record
in the canonical wire form of RFC 4034 §6.2 (owner and names in rdata
lower-cased and uncompressed; type, class, TTL, rdata length, rdata), in
canonical order: owners by RFC 4034 §6.1, then type ascending, then rdata
as unsigned octets (§6.3). That form and order are the input of ZONEMD's
SIMPLE scheme (RFC 8976 §3.3.1), so ``content_hash`` is "ZONEMD SIMPLE
with SHA-256": stable across runs, platforms and Python versions, the same
for the same records in any file order. Records compare in canonical form:
a change of case alone is no change. A pre-signed zone's RRSIGs are in
its ``ZoneTable`` (one stored RRset per covered type), so in the content.
One ``bytes`` per record, not a tuple: 100k tuples
would sit in the garbage collector's view for the life of the server (and
making them set off a full collection, a third of the time of a 100k-record
zone, measured); ``Record.from_wire`` reads one when its fields are wanted.
A content goes to the state file as its records concatenated
(``to_wire``) and comes back with ``from_wire``; a diff's side likewise
(``b"".join``, ``split_records``).

Storage. A content keeps its records as ``Records``: all of them
concatenated in one ``bytes`` and an array of where each ends, read one
``bytes`` at a time. A million records are then two objects (about 45 MB
and 8 MB) instead of a million (90 MB, and a million objects in the
collector's view), and ``to_wire`` is that ``bytes`` itself, not a copy
(``records_wire`` gives a diff's side the same way).

Diff. A record in ``old`` and not in ``new`` is removed, the reverse added;
a TTL or rdata changed in place is one of each. The SOA is content like any
other record, so a new serial alone is a one-record change and a change
without a new serial shows as equal serials with different hashes
(``serial_problem``).

IXFR (RFC 1995) builds on ``ZoneDiff``: every diff between two serials
removes the old SOA and adds the new one, so one difference sequence is
``old SOA, removed without the SOA, new SOA, added without the SOA``, each
part turned into RRsets by ``to_rrsets``. The store keeps, per accepted
version, its ``ZoneVersion`` and its diff's records (``split_records``);
a request from serial s is answered by the diffs from s to the current
serial in order (``serial_gt`` says which is later; RFC 1995 §5 allows
condensing them), or by AXFR when s's version is no longer kept. The last
accepted version's ``ZoneContent.to_wire`` lets the deletion guard run at
start against it.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import struct
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, overload

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset
import msgspec
from dns.rdataclass import RdataClass
from dns.rdatatype import RdataType

from dnsserve.zones.blobs import wire_labels
from dnsserve.zones.records import Packed
from dnsserve.zones.table import Node, ZoneTable

SERIAL_BITS = 32
_HALF = 1 << (SERIAL_BITS - 1)
_MOD = 1 << SERIAL_BITS
_FIXED = struct.Struct("!HHIH")  # type, class, TTL, rdata length (RFC 1035 §4.1.3)
_HEAD = struct.Struct("!HHI")  # type, class, TTL
_U16 = struct.Struct("!H")  # an rdata length, an MX preference
_TTL_AT, _TTL_SIZE = 4, 4  # after the owner: type, class, then the TTL
_SEARCH_COST = 4096  # a binary search (~17 owners read) costs about a pass over this many
_MAX_LABEL = 63


class Record(NamedTuple):
    """One record of a content, read into its fields."""

    owner: bytes  # canonical wire form of the owner name
    rdtype: RdataType
    rdclass: RdataClass
    ttl: int
    rdata: bytes  # canonical wire form of the rdata

    @classmethod
    def from_wire(cls, rr: bytes) -> Record:
        """Read one record of a content; ``ValueError`` when it is not exactly one."""
        at = _end_of_record(rr, 0)
        if at != len(rr):
            raise ValueError(f"{len(rr) - at} bytes after the record")
        end = _end_of_owner(rr, 0)
        rdtype, rdclass, ttl, _ = _FIXED.unpack_from(rr, end)
        return cls(rr[:end], RdataType(rdtype), RdataClass(rdclass), ttl, rr[end + _FIXED.size :])

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


class Records(Packed):
    """Canonical records, concatenated in one ``bytes``, and where each ends.

    A sequence of the records (each read as a new ``bytes`` slice; a slice of
    the sequence is a tuple). Equal to any sequence of the same records.
    """

    __slots__ = ()

    def __init__(self, data: bytes, ends: array[int]) -> None:
        self._data = data
        self._ends = ends  # ends[i]: the offset just past record i

    @classmethod
    def of(cls, records: Iterable[bytes]) -> Records:
        """The records of an iterable of single records."""
        if isinstance(records, Records):
            return records
        data = bytearray()
        ends = array("Q")
        for rr in records:
            data += rr
            ends.append(len(data))
        return cls(bytes(data), ends)

    @classmethod
    def from_wire(cls, data: bytes) -> Records:
        """The records of concatenated records; ``ValueError`` when malformed."""
        ends = array("Q")
        end, at = len(data), 0
        while at < end:
            at = _end_of_record(data, at)
            ends.append(at)
        return cls(data, ends)

    def to_wire(self) -> bytes:
        """The records concatenated (the stored bytes, not a copy)."""
        return self._data


    def common_ends(self, other: Records) -> tuple[int, int, int]:
        """(h, t, u): ``self[:h] == other[:h]`` and ``self[t:] == other[u:]``, with
        as many records as their bytes allow (h <= t, h <= u)."""
        a, b = self._data, other._data
        a_starts, b_starts = self._starts(), other._starts()
        same = _common_prefix(a, b)
        # the last record boundary within the common bytes that both streams share
        h = bisect.bisect_right(a_starts, same) - 1
        while h > 0 and not _is_start(b_starts, a_starts[h]):
            h -= 1
        h = min(h, len(self), len(other))
        same = _common_suffix(a, b)
        t = bisect.bisect_left(a_starts, len(a) - same)
        while t < len(self):
            u = bisect.bisect_left(b_starts, len(b) - (len(a) - a_starts[t]))
            if u < len(other) and b_starts[u] == len(b) - (len(a) - a_starts[t]):
                break  # a boundary of both at the same distance from the end
            t += 1
        else:
            t, u = len(self), len(other)
        if t < h or u < h:  # the common ends overlap: keep them apart
            t, u = t + (h - min(t, u)), u + (h - min(t, u))
        return h, t, u

    def _starts(self) -> array[int]:
        starts = array("Q", (0,))
        starts.extend(self._ends)
        return starts  # one past the last record too: len(data)

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[bytes, ...]: ...

    def __getitem__(self, index: int | slice) -> bytes | tuple[bytes, ...]:
        if isinstance(index, slice):
            return tuple(self._at(i) for i in range(*index.indices(len(self))))
        return self._at(index)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Records):
            return self._data == other._data  # one stream of records splits one way
        if isinstance(other, Sequence) and not isinstance(other, bytes | str):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._data)

    def __repr__(self) -> str:
        return f"Records({len(self)} records, {len(self._data)} bytes)"

    def __reduce__(self) -> tuple[type[Records], tuple[bytes, array[int]]]:
        return Records, (self._data, self._ends)


_CHUNK = 1 << 16  # bytes compared at a time when looking for the common ends


def _common_prefix(a: bytes, b: bytes) -> int:
    """How many leading bytes ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    at = 0
    while at < n and a[at : at + _CHUNK] == b[at : at + _CHUNK]:
        at += _CHUNK
    end = min(at + _CHUNK, n)
    while at < end and a[at] == b[at]:
        at += 1
    return min(at, n)


def _common_suffix(a: bytes, b: bytes) -> int:
    """How many trailing bytes ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    k = 0
    while k < n and a[len(a) - min(k + _CHUNK, n) : len(a) - k] == b[
        len(b) - min(k + _CHUNK, n) : len(b) - k
    ]:
        k = min(k + _CHUNK, n)
    end = min(k + _CHUNK, n)
    while k < end and a[len(a) - k - 1] == b[len(b) - k - 1]:
        k += 1
    return k


def _is_start(starts: array[int], at: int) -> bool:
    i = bisect.bisect_left(starts, at)
    return i < len(starts) and starts[i] == at


def records_wire(records: Sequence[bytes]) -> bytes:
    """Records concatenated: the stored bytes of ``Records``, else joined."""
    return records.to_wire() if isinstance(records, Records) else b"".join(records)


@dataclass(frozen=True, slots=True)
class ZoneContent:
    """Every record of one zone, canonical, in canonical order (the module docstring).

    ``records``: a ``Records`` when loaded or read back; any sequence of single
    records will do (a test, a small content built by hand).
    """

    origin: dns.name.Name
    records: Sequence[bytes]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def serial(self) -> int:
        """The apex SOA's serial; ``ValueError`` when there is no apex SOA."""
        apex = self.origin.to_digestable()
        for rr in self.records:  # the apex sorts first
            if not rr.startswith(apex):  # a wire name is no other's prefix
                break
            record = Record.from_wire(rr)
            soa = record.to_rdata() if record.rdtype == RdataType.SOA else None
            if isinstance(soa, dns.rdtypes.ANY.SOA.SOA):
                return int(soa.serial)
        raise ValueError(f"no SOA at the apex of {self.origin}")

    def to_wire(self) -> bytes:
        """The records, concatenated: what ``content_hash`` hashes."""
        return records_wire(self.records)

    @classmethod
    def from_wire(cls, origin: dns.name.Name, data: bytes) -> ZoneContent:
        """The inverse of ``to_wire``; ``ValueError`` when ``data`` is not such a stream."""
        return cls(origin, Records.from_wire(data))

    def types_at(self, owners: Collection[bytes]) -> dict[bytes, set[RdataType]]:
        """The types with records at each of ``owners`` (canonical wire forms) that has any.

        A few owners are found by binary search; many, in one pass.
        """
        found: dict[bytes, set[RdataType]] = {}
        records = self.records
        if len(owners) * _SEARCH_COST < len(records):
            for owner in owners:
                at = bisect.bisect_left(records, _owner_order(owner), key=_owner_order)
                for i in range(at, len(records)):
                    rr = records[i]
                    if not rr.startswith(owner):  # a wire name is no other's prefix
                        break
                    found.setdefault(owner, set()).add(RdataType(_rdtype(rr, len(owner))))
            return found
        rdtypes: dict[int, RdataType] = {}  # the enum's own lookup is slow
        for owner, rdtype, _ in record_keys(self.records):
            if owner in owners:
                if rdtype not in rdtypes:
                    rdtypes[rdtype] = RdataType(rdtype)
                found.setdefault(owner, set()).add(rdtypes[rdtype])
        return found


@dataclass(frozen=True, slots=True)
class ZoneDiff:
    """What changed from one content to the next, each side in canonical order."""

    removed: Sequence[bytes]
    added: Sequence[bytes]

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


def zone_content(table: ZoneTable, *, pending: bool = False) -> ZoneContent:
    """The canonical content of a *loaded* table (``LoadedZones.tables``).

    A pool variant of a table (``ZoneTable.with_rrsets``) holds the pools'
    answers in place of the zone file's records: pass the loaded one. Read
    from the table's wire data; rdata of the types in ``_NAMES_AT`` (and
    those without names) is made canonical without dnspython. ``pending``:
    the records are made when first read (``PendingRecords``), not now.
    """
    if isinstance(table, ZoneTable):
        if pending:
            return ZoneContent(table.origin, PendingRecords(table))
        return ZoneContent(table.origin, Records(*_wire_records(table)))
    return _decoded_content(table)


class PendingRecords(Records):
    """The ``Records`` of a loaded table, made when first read, not when made.

    A zone served for the first time (no earlier version in the state file
    to check it against) is answered before its content exists: a third of
    the start of a large zone (``staging``). Whatever reads it first (the
    start's own background step, an AXFR, a reload's diff, pickling for the
    reload's child) makes it; two threads reading it at once may both make
    it, the same bytes.
    """

    __slots__ = ("_table",)

    def __init__(self, table: ZoneTable) -> None:  # the slots of Records: set when read
        self._table = table

    def __getattr__(self, name: str) -> Any:
        # only while a slot is unset: once made, the slots are read directly
        if name not in ("_data", "_ends"):
            raise AttributeError(name)
        data, ends = _wire_records(self._table)
        self._ends = ends
        self._data = data
        return data if name == "_data" else ends


def _wire_records(table: ZoneTable) -> tuple[bytes, array[int]]:
    """The canonical records of ``table`` (concatenated) and where each ends."""
    origin = table.origin
    keys = sorted(table.loaded_keys(), key=wire_order)
    # BytesIO, not a bytearray: its getvalue() hands over its own buffer (no copy
    # of the whole content at the end, which a large zone's peak memory would show)
    data = io.BytesIO()
    write, size = data.write, 0
    ends = array("Q")
    pack_head, pack_len = _HEAD.pack, _U16.pack
    for key in keys:
        stored = table.wire_node(key)
        assert stored is not None
        rrsets = stored[1]
        if len(rrsets) > 1:
            rrsets.sort(key=lambda rrset: rrset[0])
        for rdtype, ttl, rdatas in rrsets:
            canonical = [canonical_rdata(rdtype, rdata, origin) for rdata in rdatas]
            if len(canonical) > 1:
                canonical.sort()
            head = key + pack_head(rdtype, RdataClass.IN, ttl)
            for rdata in canonical:
                size += write(head) + write(pack_len(len(rdata))) + write(rdata)
                ends.append(size)
    return data.getvalue(), ends


# Where the names start in rdata whose names are lower-cased in canonical form
# (RFC 4034 §6.2), for the types whose rdata is a fixed part then one name.
_NAMES_AT = {
    int(t): at for t, at in (
        (RdataType.NS, 0), (RdataType.CNAME, 0), (RdataType.PTR, 0), (RdataType.DNAME, 0),
        (RdataType.MD, 0), (RdataType.MF, 0), (RdataType.MB, 0), (RdataType.MG, 0),
        (RdataType.MR, 0), (RdataType.MX, 2), (RdataType.KX, 2), (RdataType.AFSDB, 2),
        (RdataType.RT, 2), (RdataType.SRV, 6),
    )
}
# Types whose rdata holds no name: canonical as stored.
_NAMELESS = frozenset(int(t) for t in (
    RdataType.A, RdataType.AAAA, RdataType.TXT, RdataType.SPF, RdataType.CAA, RdataType.DS,
    RdataType.DNSKEY, RdataType.SSHFP, RdataType.TLSA, RdataType.HINFO, RdataType.SVCB,
    RdataType.HTTPS, RdataType.NSEC3, RdataType.NSEC3PARAM, RdataType.CDS, RdataType.CDNSKEY,
    # NSEC's next name keeps its case (RFC 6840 §5.1), as dnspython writes it
    RdataType.NSEC,
))
_RRSIG_SIGNER_AT = 18  # the signer's name, after the fixed fields (RFC 4034 §3.1)
_SOA_FIXED = 20  # serial, refresh, retry, expire, minimum after the two names


def canonical_rdata(rdtype: int, rdata: bytes, origin: dns.name.Name) -> bytes:
    """``rdata`` (uncompressed wire) in RFC 4034 §6.2's canonical form (``zones.rrsign``
    signs it too)."""
    if rdtype in _NAMELESS:
        return rdata
    at = _NAMES_AT.get(rdtype)
    if at is not None:
        return rdata[:at] + rdata[at:].lower()
    if rdtype == RdataType.SOA:
        return rdata[:-_SOA_FIXED].lower() + rdata[-_SOA_FIXED:]
    if rdtype == RdataType.RRSIG:
        end = _end_of_owner(rdata, _RRSIG_SIGNER_AT)
        return rdata[:_RRSIG_SIGNER_AT] + rdata[_RRSIG_SIGNER_AT:end].lower() + rdata[end:]
    decoded = dns.rdata.from_wire(RdataClass.IN, RdataType(rdtype), rdata, 0, len(rdata))
    wire: bytes = decoded.to_digestable(origin)
    return wire


def wire_order(key: bytes) -> bytes:
    """Bytes that sort as RFC 4034 §6.1 orders the (lower-cased) wire name ``key``:
    labels from the root down, each ended by 00 00 (a 00 inside one is 00 01)."""
    labels = wire_labels(key)
    labels.reverse()
    joined = b"\x00\x00".join(labels) + b"\x00\x00"
    if b"\x00" in key[:-1] and any(b"\x00" in label for label in labels):
        joined = b"".join(label.replace(b"\x00", b"\x00\x01") + b"\x00\x00" for label in labels)
    return joined


def _decoded_content(table: ZoneTable) -> ZoneContent:
    """``zone_content`` of any object with ``rrset_keys`` and ``node`` (decoded rrsets)."""
    origin = table.origin
    # rrset_keys yields a node's types together, with one Name object: each
    # owner is taken once without hashing its Name (slow in dnspython). An
    # owner seen twice anyway sorts beside itself and is skipped.
    owners: list[dns.name.Name] = []
    for name, _ in table.rrset_keys():
        if not owners or owners[-1] is not name:
            owners.append(name)
    owners.sort(key=canonical_order)
    records: list[bytes] = []
    previous = b""
    for name in owners:
        owner = name.to_digestable()
        if owner != previous:
            records += _owner_records(owner, table.node(name), origin)
            previous = owner
    return ZoneContent(origin, Records.of(records))


def _owner_records(owner: bytes, node: Node, origin: dns.name.Name) -> list[bytes]:
    """The records at one owner, types ascending, rdata in canonical order."""
    out: list[bytes] = []
    for rdtype in sorted(node) if len(node) > 1 else node:
        rrset = node[rdtype]
        rdclass = rrset.rdclass
        encode = _ENCODERS.get(rdtype, _any) if rdclass == RdataClass.IN else _any
        rdatas = [encode(rd, origin) for rd in rrset]
        if len(rdatas) > 1:
            rdatas.sort()
        head = owner + _HEAD.pack(rdtype, rdclass, rrset.ttl)
        out += [head + _U16.pack(len(rdata)) + rdata for rdata in rdatas]
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
    return _U16.pack(rdata.preference) + exchange


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


def content_steps(
    origin: dns.name.Name, data: bytes, step: int = 20_000
) -> Iterator[ZoneContent | None]:
    """``ZoneContent.from_wire`` a slice of ``step`` records at a time: None after
    each slice (the caller may yield to its event loop there), the content last."""
    ends = array("Q")
    end, at = len(data), 0
    while at < end:
        for _ in range(step):
            if at >= end:
                break
            at = _end_of_record(data, at)
            ends.append(at)
        yield None
    yield ZoneContent(origin, Records(data, ends))


def split_records(data: bytes) -> Records:
    """The records of concatenated canonical records, in order; ``ValueError`` if malformed."""
    return Records.from_wire(data)


def _end_of_owner(data: bytes, at: int) -> int:
    start, end = at, len(data)
    while at < end and data[at]:  # uncompressed labels up to the root label
        if data[at] > _MAX_LABEL:
            raise ValueError(f"bad label length {data[at]} at offset {at}")
        at += data[at] + 1
    if at >= end:
        raise ValueError(f"owner name runs past the end at offset {start}")
    return at + 1


def _end_of_record(data: bytes, at: int) -> int:
    start = at
    at = _end_of_owner(data, at)
    if at + _FIXED.size > len(data):
        raise ValueError(f"record cut short at offset {start}")
    at += _FIXED.size + _U16.unpack_from(data, at + _FIXED.size - _U16.size)[0]
    if at > len(data):
        raise ValueError(f"rdata runs past the end at offset {start}")
    return at


def record_keys(records: Iterable[bytes]) -> Iterator[tuple[bytes, int, bytes]]:
    """(owner, type, the record without its TTL) of each record: what the guard compares.

    Reads an owner only where it changes (records of one owner are together).
    """
    unpack = _U16.unpack_from
    owner = b"\xff"  # no wire name starts with 255
    for rr in records:
        if not rr.startswith(owner):  # a wire name is no other's prefix
            owner = rr[: _end_of_owner(rr, 0)]
        at = len(owner)
        yield owner, unpack(rr, at)[0], rr[: at + _TTL_AT] + rr[at + _TTL_AT + _TTL_SIZE :]


def _rdtype(rr: bytes, owner_length: int) -> int:
    rdtype: int = _U16.unpack_from(rr, owner_length)[0]
    return rdtype


def _owner_order(rr: bytes) -> tuple[bytes, ...]:
    """``canonical_order`` of a record's owner, read from its canonical wire form."""
    labels: list[bytes] = [b""]
    at = 0
    while rr[at]:
        labels.append(rr[at + 1 : at + 1 + rr[at]])
        at += rr[at] + 1
    labels[1:] = labels[:0:-1]
    return tuple(labels)


def to_rrsets(records: Iterable[bytes]) -> list[dns.rrset.RRset]:
    """dnspython RRsets of ``records``, one per run of (owner, type, class, TTL,
    and for RRSIGs the type covered: the rdata's first two octets)."""
    out: list[dns.rrset.RRset] = []
    key: tuple[bytes, int, int, int, bytes] | None = None
    for rr in records:
        record = Record.from_wire(rr)
        covers = record.rdata[:2] if record.rdtype == RdataType.RRSIG else b""
        here = (record.owner, record.rdtype, record.rdclass, record.ttl, covers)
        if here != key:
            key = here
            out.append(dns.rrset.RRset(
                record.name(), record.rdclass, record.rdtype,
                RdataType((covers[0] << 8) | covers[1]) if covers else RdataType.NONE,
            ))
        out[-1].add(record.to_rdata(), record.ttl)
    return out


# -- diffs and versions ----------------------------------------------------------


def diff(old: ZoneContent, new: ZoneContent) -> ZoneDiff:
    """Records only in ``old`` (removed) and only in ``new`` (added); a TTL change is both.

    Between two ``Records`` the records both start and end with are found on
    their bytes first (a new serial alone differs in one record): only the
    ones between are read into sets.
    """
    a, b = old.records, new.records
    if a == b:
        return ZoneDiff((), ())
    if isinstance(a, Records) and isinstance(b, Records):
        head, a_tail, b_tail = a.common_ends(b)
        a, b = a[head:a_tail], b[head:b_tail]
    old_set, new_set = set(a), set(b)
    return ZoneDiff(
        tuple(r for r in a if r not in new_set),
        tuple(r for r in b if r not in old_set),
    )


def new_version(
    content: ZoneContent, changes: ZoneDiff | None, *, at: float, hash: str | None = None
) -> ZoneVersion:
    """The version of ``content``, reached by ``changes`` (None: the first, all added);
    ``hash``: its ``content_hash`` when the caller has it already."""
    return ZoneVersion(
        zone=content.origin.to_text(),
        serial=content.serial,
        hash=hash if hash is not None else content_hash(content),
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
