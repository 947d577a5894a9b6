"""Semantic validation of a parsed zone, and compiling it into a ``ZoneTable``.

Owns the rules a zone must meet before it is served, and the operator
warnings beside them, and building the table from the records that pass. It
works on wire data: ``compile_records`` takes a ``ParsedRecords`` (the flat
columns a parser gives, duplicates and each record's TTL kept, every record
with its file and line), groups each owner's records into the table's one
blob per owner (duplicates dropped, an RRset's TTL the smallest of its
records'), checks the rules below on those blobs, and builds the
``ZoneTable`` over them. ``compile_zone`` / ``check_zone`` take a dnspython
zone (a test, the state file's last version) and go the same way. It must
not read files (``zones.load`` does), look anything up per query
(``zones.table`` does) or read the clock.

Rules, each an error that keeps the zone from being served:

1. Exactly one SOA record, at the apex; an SOA anywhere else is an error.
2. NS records at the apex.
3. No CNAME at the apex; no CNAME beside other data (RRSIG, NSEC and the
   other types dnspython calls "neutral" may sit beside it); at most one
   SOA, CNAME or DNAME record per owner.
4. and 5. (names below a DNAME, data below a delegation) are warnings now:
   occluded data, below.
6. Every owner inside the origin (a zone file's reader leaves a record
   outside it out, with a warning, as BIND and Knot do: ``zones.records``).
7. Every RRset fits in a DNS message: its wire form (the owner written out
   once, then compressed), after a header and the longest possible question
   (a 255-octet name), within 65,535 octets. No answer could carry a larger
   one; NSD, Knot and BIND refuse such a zone at load too. The limit, the
   measuring and the message are ``zones.limits``'s (``RRSET_MAX``).

Warnings, served anyway:

- occluded data (NSD, Knot and BIND load it, and so do we): at and below a
  delegation (NS below the apex) anything but NS and DS at the cut and glue
  (A/AAAA of names that are NS targets of that delegation or of the apex),
  and any name below a DNAME (RFC 6672 §2.3; Knot and NSD refuse such a
  zone, BIND loads it). It stays in the table (a transfer carries it, as
  the peers' do) but the lookup never reaches it: a query there gets the
  referral, or the DNAME's synthesis;

- an in-zone NS, MX or SRV target without A/AAAA records, or that is a CNAME
  (RFC 2181 §10.3);
- glue missing for an NS target below its own delegation;
- sibling glue: addresses below one delegation kept for another's NS;
- DS at the apex (it belongs in the parent) or away from a delegation;
- records of one RRset with different TTLs (the RRset is served with the
  smallest, RFC 2181 §5.2; the peers keep another, so the zone is dubious);
- an RRset whose smallest answer (header, its owner as the question, the
  RRset, our OPT) is over 1,232 octets: over UDP it is truncated (TC) and
  clients must retry over TCP (``zones.limits`` too).

Records read from a file are also held to what a master-file reader
refuses (as dnspython's did while reading): an owner outside the origin, an
SOA below the apex, two different SOA, CNAME or DNAME records at one owner, a
CNAME beside other data. Each is an error at the record's line, and only the
first one in file order is reported (the zone stops there, as a reader
would). SOA placement and CNAME beside other data are checked as rules too,
for zones built some other way (a transfer, a test).

Memory: while grouping, a zone costs its ``ParsedRecords`` plus one int per
record (a chain of each owner's records) and the blobs; nothing per record
survives the build. A large zone's records are compacted first
(``COMPACT_RECORDS``, ``zones.records``). Lines of problems are looked up
only when there is a problem.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone
from dns.rdatatype import RdataType

from dnsserve.errors import ZoneError
from dnsserve.zones.blobs import (
    blob_owner,
    blob_rrsets,
    blob_types,
    encode_node,
    encode_one,
    is_below,
    key_offsets,
    name_from_wire,
    name_key,
)
from dnsserve.zones.limits import Severity, size_problem, wire_sizes_fit
from dnsserve.zones.records import ParsedRecords
from dnsserve.zones.sources import Source, SourceMap
from dnsserve.zones.table import ZoneTable, empty_non_terminals

__all__ = [
    "Compiled", "SourceMap", "ZoneProblem", "check_records", "check_zone", "compile_records",
    "compile_with_problems", "compile_zone", "records_from_zone",
]

_A, _AAAA, _NS, _MX, _SRV = (int(t) for t in (RdataType.A, RdataType.AAAA, RdataType.NS,
                                               RdataType.MX, RdataType.SRV))
_SOA, _CNAME, _DNAME, _DS, _RRSIG = (int(t) for t in (RdataType.SOA, RdataType.CNAME,
                                                      RdataType.DNAME, RdataType.DS,
                                                      RdataType.RRSIG))
_ADDRESS_TYPES = frozenset({_A, _AAAA})
_TARGET_TYPES = frozenset({_NS, _MX, _SRV})
# Types that may stand at a zone cut in the parent (RFC 4035 §2.4, RFC 3845).
_CUT_TYPES = frozenset(int(t) for t in (RdataType.NS, RdataType.DS, RdataType.NSEC,
                                        RdataType.RRSIG))
# Where the target name starts in the rdata of NS, MX and SRV.
_TARGET_AT = {_NS: 0, _MX: 2, _SRV: 6}
# Rdata that is a name (after a fixed part): duplicates compare without case.
_NAME_AT = {int(RdataType.NS): 0, _CNAME: 0, _DNAME: 0, int(RdataType.PTR): 0, _MX: 2}
_SINGLETONS = frozenset(int(t) for t in RdataType if dns.rdatatype.is_singleton(t))
# Records the reader rules can refuse, beside an owner's other records (an SOA,
# a second CNAME, a CNAME or RRSIG(CNAME) beside data, data beside one).
_READER_TYPES = _SINGLETONS | {_CNAME, _RRSIG}
_DEDUPE_SET_AT = 16  # an RRset this large dedupes through a set
# Records from which compile_records compacts them first: a smaller zone's
# scattered memory is a few MB, and reading columns costs about a tenth more.
COMPACT_RECORDS = 250_000
# An RRset of one record with rdata this short fits any message and UDP answer.
_SMALL_RDATA = 512


@dataclass(frozen=True, slots=True)
class ZoneProblem:
    """One finding about one zone; ``line`` 0 means the zone as a whole."""

    file: str
    line: int
    severity: Severity
    message: str
    zone: str
    rule: str = ""  # the posture rule id (``posture.findings``) when the problem is one

    def to_text(self) -> str:
        """``file:line: severity: message`` (``file: severity: message`` for line 0)."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"

    def to_dict(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "severity": self.severity,
            "message": self.message,
            "zone": self.zone,
            **({"rule": self.rule} if self.rule else {}),
        }


@dataclass(frozen=True, slots=True)
class Compiled:
    """What compiling one zone gave: a table when there is no error, and every problem."""

    table: ZoneTable | None
    problems: tuple[ZoneProblem, ...]


# -- entry points --------------------------------------------------------------------


def compile_records(parsed: ParsedRecords, *, origin: dns.name.Name | None = None) -> Compiled:
    """Validate records read from a file, keep every problem, build the table if no error.

    A zone of ``COMPACT_RECORDS`` records or more is compacted first
    (``ParsedRecords.compact``: ``parsed`` keeps its records, two objects
    fewer each), so the table is not built among its dead records.
    """
    if len(parsed) >= COMPACT_RECORDS:
        parsed.compact()
    return _Build(parsed, origin, from_file=True).run()


def check_records(parsed: ParsedRecords) -> list[ZoneProblem]:
    """Every error and warning about records read from a file."""
    return list(compile_records(parsed).problems)


def compile_zone(
    zone: dns.zone.Zone, *, file: str, lines: Mapping[dns.name.Name, int]
) -> ZoneTable:
    """Validate ``zone`` and build its table; raise ``ZoneError`` on the first error."""
    compiled = compile_with_problems(zone, file=file, lines=lines)
    if compiled.table is None:
        first = next(p for p in compiled.problems if p.severity == "error")
        raise ZoneError(first.message, file=first.file, line=first.line)
    return compiled.table


def compile_with_problems(
    zone: dns.zone.Zone, *, file: str, lines: Mapping[dns.name.Name, int]
) -> Compiled:
    """Validate ``zone`` once, keep every problem, and build the table if none is an error."""
    parsed = records_from_zone(zone, file=file, lines=lines)
    assert zone.origin is not None
    return _Build(parsed, zone.origin, from_file=False).run()


def check_zone(
    zone: dns.zone.Zone, *, file: str, lines: Mapping[dns.name.Name, int]
) -> list[ZoneProblem]:
    """Every error and warning about ``zone``, ordered by file and line."""
    return list(compile_with_problems(zone, file=file, lines=lines).problems)


def records_from_zone(
    zone: dns.zone.Zone, *, file: str, lines: Mapping[dns.name.Name, int]
) -> ParsedRecords:
    """A dnspython zone's records as ``ParsedRecords``, each placed by ``lines``
    (a ``SourceMap`` knows each record's file and line; a plain mapping, each
    owner's line in ``file``)."""
    if zone.origin is None:
        raise ValueError("zone has no origin")
    origin = zone.origin
    wire = origin.to_wire()
    assert wire is not None
    parsed = ParsedRecords(wire.lower())
    parsed.file_index(file)
    sources = lines if isinstance(lines, SourceMap) else None
    for name, node in zone.nodes.items():
        owner = name if name.is_absolute() else name.derelativize(origin)
        owner_wire = owner.to_wire()
        assert owner_wire is not None
        for rdataset in node.rdatasets:
            for rdata in rdataset:
                where = _source(sources, lines, owner, rdata, file)
                parsed.add(owner_wire, rdataset.rdtype, rdataset.ttl, rdata.to_wire(),
                           parsed.file_index(where.file), where.line)
    return parsed


def _source(
    sources: SourceMap | None,
    lines: Mapping[dns.name.Name, int],
    name: dns.name.Name,
    rdata: dns.rdata.Rdata,
    file: str,
) -> Source:
    if sources is not None:
        found = sources.record(name, rdata) or sources.owner(name)
        if found is not None:
            return found
    return Source(file, lines.get(name, 0))


# -- building ------------------------------------------------------------------------


def _dedupe_form(rdtype: int, rdata: bytes) -> bytes:
    at = _NAME_AT.get(rdtype)
    return rdata if at is None else rdata[:at] + rdata[at:].lower()


# dnspython's node kinds (``dns.node.NodeKind``), as ints: what may share an owner.
_NEUTRAL, _CNAME_KIND, _REGULAR = 0, 1, 2
_NEUTRAL_TYPES = frozenset(int(t) for t in (RdataType.NSEC, RdataType.NSEC3, RdataType.KEY))


def _kind(rdtype: int, rdata: bytes) -> int:
    """``dns.node.NodeKind.classify`` of a record: an RRSIG is of the kind it covers."""
    if rdtype == _RRSIG:
        rdtype = int.from_bytes(rdata[:2], "big") if len(rdata) >= 2 else 0
        if rdtype not in (_CNAME, *_NEUTRAL_TYPES):
            return _REGULAR
    if rdtype == _CNAME:
        return _CNAME_KIND
    return _NEUTRAL if rdtype in _NEUTRAL_TYPES else _REGULAR


class _Build:
    """One zone's records grouped into blobs, checked, and built into a table."""

    def __init__(
        self, parsed: ParsedRecords, origin: dns.name.Name | None, *, from_file: bool
    ) -> None:
        self.parsed = parsed
        self.origin = origin if origin is not None else dns.name.from_wire(parsed.origin, 0)[0]
        self.apex = name_key(self.origin)
        self.file = parsed.file_names[0] if parsed.file_names else ""
        self.from_file = from_file
        self.zone_text = self.origin.to_text()
        self.blobs: dict[bytes, bytes] = {}
        self.cuts: set[bytes] = set()
        self.dnames: set[bytes] = set()
        # owners checked one by one whatever the zone: (ordinal, key)
        self.attention: list[tuple[int, bytes]] = []
        self.found: list[tuple[tuple[int, int], ZoneProblem]] = []  # (order, problem)
        # the first reader error: (record, message, rule)
        self.stop: tuple[int, str, str] | None = None
        # each owner's last record, and each record's previous one of its owner (-1)
        self.head: dict[bytes, int] = {}
        self.chain = array("i")
        self._targets_of: dict[bytes, frozenset[bytes]] = {}
        self._glue: set[bytes] | None = None  # every NS target of every cut
        self.ents: frozenset[bytes] = frozenset()

    # -- reporting -----------------------------------------------------------

    def _at(self, index: int) -> Source:
        file, line = self.parsed.where(index)
        return Source(file, line)

    def _first_index(
        self, key: bytes, rdtype: int | None = None, rdata: bytes | None = None
    ) -> int | None:
        """The first record of the owner ``key`` (of ``rdtype``, with ``rdata``): its
        records are chained from the last one, so this walks only that owner's."""
        i = self.head.get(key, -1)
        found = None
        p = self.parsed
        while i >= 0:
            if (rdtype is None or p.types[i] == rdtype) and (rdata is None or p.rdatas[i] == rdata):
                found = i
            i = self.chain[i]
        return found

    def _where(self, key: bytes, rdtype: int | None = None, rdata: bytes | None = None) -> Source:
        index = self._first_index(key, rdtype, rdata) if rdata is not None else None
        if index is None:
            index = self._first_index(key, rdtype)
        if index is None:
            index = self._first_index(key)
        return self._at(index) if index is not None else Source(self.file, 0)

    def _problem(
        self,
        order: tuple[int, int],
        severity: Severity,
        message: str,
        where: Source | None = None,
        rule: str = "",
    ) -> None:
        where = where or Source(self.file, 0)
        self.found.append(
            (order, ZoneProblem(where.file, where.line, severity, message, self.zone_text, rule))
        )

    def _line_text(self, key: bytes) -> str:
        where = self._where(key)
        if not where.line:
            return ""
        if where.file == self.file:
            return f" (line {where.line})"
        return f" ({where.file}:{where.line})"

    def _name(self, key: bytes) -> dns.name.Name:
        blob = self.blobs.get(key)
        return name_from_wire(blob_owner(key, blob) if blob else key)

    # -- the run ---------------------------------------------------------------

    def run(self) -> Compiled:
        self._group()
        if self.stop is not None:
            index, message, rule = self.stop
            where = self._at(index)
            problem = ZoneProblem(where.file, where.line, "error", message, self.zone_text, rule)
            return Compiled(None, (problem,))
        self.ents = empty_non_terminals(self.blobs, self.apex)
        for file, line, message, rule in self.parsed.warnings:  # what the reader left out
            where = Source(self.parsed.file_names[file], line)
            self._problem((-2, line), "warning", message, where, rule)
        self._apex_rules()
        if self.cuts or self.dnames:  # placement rules may reach any owner
            flagged = {key for _, key in self.attention}
            for ordinal, key in enumerate(self.blobs):
                if key in flagged or self._below_cut_or_dname(key):
                    self._owner_rules(ordinal, key)
        else:
            for ordinal, key in self.attention:
                self._owner_rules(ordinal, key)
        self.found.sort(key=lambda item: item[0])
        problems = sorted(
            (p for _, p in self.found), key=lambda p: (p.file != self.file, p.file, p.line)
        )
        if any(p.severity == "error" for p in problems):
            return Compiled(None, tuple(problems))
        table = ZoneTable.from_parts(self.origin, self.blobs, self.ents, self.cuts, self.dnames)
        return Compiled(table, tuple(problems))

    def _group(self) -> None:
        """Each owner's records into its blob, in file order; per-owner rules on the way."""
        p = self.parsed
        types, ttls, rdatas = p.types, p.ttls, p.rdatas
        head = self.head
        chain = self.chain = array("i", bytes(4 * len(p)))
        for i, owner in enumerate(p.owners):
            key = owner.lower()
            chain[i] = head.get(key, -1)
            head[key] = i
        blobs = self.blobs
        apex, owners, from_file = self.apex, p.owners, self.from_file
        for ordinal, (key, last) in enumerate(head.items()):
            if chain[last] < 0 and is_below(key, apex):  # one record: the common case, inline
                rdtype, rdata, owner = types[last], rdatas[last], owners[last]
                if rdtype == _SOA and key != apex and from_file:
                    self._reader_rules(key, last, rdtype, rdata, {}, last)
                if len(rdata) > _SMALL_RDATA:
                    self._sizes(ordinal, key, owner, {rdtype: ([ttls[last]], [rdata], [last])})
                if rdtype == _RRSIG:
                    continue
                blobs[key] = encode_one(owner, key, rdtype, ttls[last], rdata)
                if rdtype == _NS and key != apex:
                    self.cuts.add(key)
                elif rdtype == _DNAME:
                    self.dnames.add(key)
                if rdtype in _ATTENTION or key == apex:
                    self.attention.append((ordinal, key))
                continue
            if chain[last] < 0:
                indices = [last]
            else:
                indices = []
                i = last
                while i >= 0:
                    indices.append(i)
                    i = chain[i]
                indices.reverse()
            first = indices[0]
            if not is_below(key, self.apex):
                self._outside(ordinal, key, first)
                continue
            rrsets: dict[int, tuple[list[int], list[bytes], list[int]]] = {}
            mixed: dict[int, int] = {}  # type -> a record whose TTL differs from its RRset's
            # an owner of one record can break only the SOA rule
            reader_rules = self.from_file and (len(indices) > 1 or types[first] == _SOA)
            for i in indices:
                rdtype, rdata = types[i], rdatas[i]
                if reader_rules and (
                    rdtype in _READER_TYPES or _CNAME in rrsets or _RRSIG in rrsets
                ):
                    self._reader_rules(key, i, rdtype, rdata, rrsets, first)
                rrset = rrsets.get(rdtype)
                if rrset is None:
                    rrsets[rdtype] = ([ttls[i]], [rdata], [i])
                    continue
                ttl, kept, _ = rrset
                if ttls[i] != ttl[0] and rdtype not in mixed:
                    mixed[rdtype] = i
                form = _dedupe_form(rdtype, rdata)
                if len(kept) < _DEDUPE_SET_AT:
                    if any(_dedupe_form(rdtype, r) == form for r in kept):
                        ttl[0] = min(ttl[0], ttls[i])
                        continue
                elif form in {_dedupe_form(rdtype, r) for r in kept}:
                    ttl[0] = min(ttl[0], ttls[i])
                    continue
                ttl[0] = min(ttl[0], ttls[i])
                kept.append(rdata)
            self._sizes(ordinal, key, p.owners[first], rrsets)
            for rdtype, i in mixed.items():
                self._mixed_ttls(ordinal, rdtype, i, rrsets[rdtype][0][0])
            served = [(t, ttl[0], kept) for t, (ttl, kept, _) in rrsets.items() if t != _RRSIG]
            if _RRSIG in rrsets and served:
                served += _signatures(indices, types, ttls, rdatas)
            if not served:
                continue
            blobs[key] = encode_node(p.owners[first], key, served)
            if _NS in rrsets and key != self.apex:
                self.cuts.add(key)
            if _DNAME in rrsets:
                self.dnames.add(key)
            if key == self.apex or not rrsets.keys().isdisjoint(_ATTENTION):
                self.attention.append((ordinal, key))

    def _mixed_ttls(self, ordinal: int, rdtype: int, index: int, ttl: int) -> None:
        if rdtype == _RRSIG:
            return  # signatures of different types may differ
        name = dns.name.from_wire(self.parsed.owners[index], 0)[0]
        message = (
            f"the {RdataType(rdtype).name} RRset at {name} has records with different TTLs:"
            f" served with the smallest, {ttl} (RFC 2181 §5.2; BIND, NSD and Knot keep one of"
            " the others)"
        )
        self._problem((ordinal, 1), "warning", message, self._at(index), "ttl-mixed")

    def _outside(self, ordinal: int, key: bytes, first: int) -> None:
        name = dns.name.from_wire(self.parsed.owners[first], 0)[0]
        if self.from_file:
            self._stop(first, f"owner {name} is outside the zone {self.origin}")
        else:
            self._problem((ordinal, 0), "error", f"{name} is outside the zone {self.origin}",
                          self._at(first))

    def _stop(self, index: int, message: str, rule: str = "") -> None:
        if self.stop is None or index < self.stop[0]:
            self.stop = (index, message, rule)

    def _reader_rules(
        self,
        key: bytes,
        i: int,
        rdtype: int,
        rdata: bytes,
        rrsets: Mapping[int, tuple[list[int], list[bytes], list[int]]],
        first: int,
    ) -> None:
        """What a master-file reader refuses, record by record (module docstring)."""
        if self.stop is not None and self.stop[0] < i:
            return  # an earlier record stopped the zone already
        owner = self.parsed.owners[i]
        if rdtype == _SOA and key != self.apex:
            name = dns.name.from_wire(owner, 0)[0]
            self._stop(i, f"SOA record at {name}, not at the zone apex {self.origin}")
            return
        same = rrsets.get(rdtype)
        if same is not None and rdtype in _SINGLETONS:
            form = _dedupe_form(rdtype, rdata)
            if any(_dedupe_form(rdtype, r) != form for r in same[1]):
                name = dns.name.from_wire(owner, 0)[0]
                self._stop(i, f"more than one {RdataType(rdtype).name} record at {name}"
                              f"{_first_at(self._at(same[2][0]), self._at(i))}")
                return
        kind = _kind(rdtype, rdata)
        if kind == _NEUTRAL or not rrsets:
            return
        other = _REGULAR if kind == _CNAME_KIND else _CNAME_KIND
        if any(_kind(t, r[1][0]) == other for t, r in rrsets.items()):
            name = dns.name.from_wire(owner, 0)[0]
            if key == self.apex:
                self._stop(i, f"CNAME at the zone apex {name}", "cname-apex")
            else:
                self._stop(i, f"CNAME beside other data at {name}"
                              f"{_first_at(self._at(first), self._at(i))}", "cname-beside-data")

    # -- the rules ---------------------------------------------------------------

    def _apex_rules(self) -> None:
        blob = self.blobs.get(self.apex)
        types = blob_types(blob) if blob is not None else []
        if _SOA not in types:
            self._problem((-1, 0), "error", f"no SOA record at the zone apex {self.origin}")
        if _NS not in types:
            where = self._where(self.apex) if blob is not None else None
            self._problem((-1, 1), "error", f"no NS records at the zone apex {self.origin}",
                          where)
        if _DS in types:
            message = f"DS at the zone apex {self.origin} belongs in the parent zone"
            self._problem((-1, 2), "warning", message, self._where(self.apex, _DS),
                          "ds-misplaced")

    def _sizes(
        self,
        ordinal: int,
        key: bytes,
        owner: bytes,
        rrsets: Mapping[int, tuple[list[int], list[bytes], list[int]]],
    ) -> None:
        """Rule 7, and the UDP warning (``zones.limits``): each RRset measured (an
        owner's RRSIGs, one RRset per covered type: several keys' signatures over
        several types do not make one RRset)."""
        for rdtype, (ttl, kept, indices) in rrsets.items():
            if wire_sizes_fit(len(owner), kept):
                continue
            if rdtype == _RRSIG:
                by_covered: dict[bytes, list[bytes]] = {}
                for rdata in kept:
                    by_covered.setdefault(rdata[:2], []).append(rdata)
                if all(wire_sizes_fit(len(owner), sigs) for sigs in by_covered.values()):
                    continue
                kept = max(by_covered.values(), key=lambda sigs: sum(map(len, sigs)))
            name = dns.name.from_wire(owner, 0)[0]
            rdt = RdataType(rdtype)
            rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, rdt)
            for rdata in kept:
                rdataset.add(dns.rdata.from_wire(dns.rdataclass.IN, rdt, rdata, 0, len(rdata)),
                             ttl[0])
            found = size_problem(name, rdataset)
            if found is not None:
                self._problem((ordinal, 1), *found, self._at(indices[0]))

    def _owner_rules(self, ordinal: int, key: bytes) -> None:
        blob = self.blobs[key]
        types = blob_types(blob)
        if _SOA in types and key != self.apex:
            message = f"SOA record at {self._name(key)}, not at the zone apex {self.origin}"
            self._problem((ordinal, 0), "error", message, self._where(key, _SOA))
        self._cname(ordinal, key, types)
        self._placement(ordinal, key, types)
        if not _TARGET_TYPES.isdisjoint(types):
            self._targets(ordinal, key, blob)

    def _cname(self, ordinal: int, key: bytes, types: list[int]) -> None:
        if _CNAME not in types:
            return
        name = self._name(key)
        where = self._where(key, _CNAME)
        if key == self.apex:
            self._problem((ordinal, 2), "error", f"CNAME at the zone apex {name}", where,
                          "cname-apex")
            return
        others = sorted(
            RdataType(t).name for t in types
            if t != _RRSIG  # signatures are kept beside what they sign (the reader checks them)
            and dns.node.NodeKind.classify(RdataType(t), RdataType.NONE)
            == dns.node.NodeKind.REGULAR
        )
        if others:
            message = f"CNAME at {name} beside other data ({', '.join(others)})"
            self._problem((ordinal, 2), "error", message, where, "cname-beside-data")

    def _placement(self, ordinal: int, key: bytes, types: list[int]) -> None:
        """Occluded data (warnings 4 and 5): names below a DNAME, data at and below a cut."""
        chain = self._chain(key)
        dname = next((a for a in chain[1:] if a in self.dnames), None)
        if dname is not None:
            owner = self._name(dname)
            message = (
                f"{self._name(key)} is below the DNAME at {owner}{self._line_text(dname)}:"
                " occluded, not served (queries get the DNAME's synthesis; RFC 6672 §2.3"
                " allows no names there)"
            )
            self._problem((ordinal, 3), "warning", message, self._where(key, types[0]),
                          "occluded-data")
            return
        cut = self._top_cut(chain)
        if cut is not None:
            self._occluded(ordinal, key, types, cut)
            return
        if _DS in types and key != self.apex:
            message = f"DS at {self._name(key)}, which is not a delegation"
            self._problem((ordinal, 3), "warning", message, self._where(key, _DS),
                          "ds-misplaced")

    def _occluded(self, ordinal: int, key: bytes, types: list[int], cut: bytes) -> None:
        # the zone's own NS targets may live below a cut (the root zone does this)
        is_glue = key in self._ns_targets(cut) or key in self._ns_targets(self.apex)
        for rdtype in types:
            if key == cut and rdtype in _CUT_TYPES:
                continue
            if rdtype in _ADDRESS_TYPES and is_glue:
                continue
            rdt = RdataType(rdtype)
            where = self._where(key, rdtype)
            name, cut_name = self._name(key), self._name(cut)
            if rdtype in _ADDRESS_TYPES and key in self._all_glue():
                message = (
                    f"{rdt.name} at {name} is below the delegation {cut_name} but not one of"
                    " its NS targets: served only as glue for another delegation"
                )
                self._problem((ordinal, 3), "warning", message, where, "glue-out-of-bailiwick")
                continue
            at = "at" if key == cut else "below"
            message = (
                f"{rdt.name} at {name} is {at} the delegation {cut_name}"
                f"{self._line_text(cut)}: occluded, not served (queries get the referral;"
                " only NS, DS and glue belong there)"
            )
            self._problem((ordinal, 3), "warning", message, where, "occluded-data")

    def _targets(self, ordinal: int, key: bytes, blob: bytes) -> None:
        """Warnings about in-zone NS, MX and SRV targets."""
        if self.cuts and any(a in self.cuts for a in self._chain(key)[1:]):
            return  # occluded: not our data
        for rdtype, _, kept in blob_rrsets(blob):
            at = _TARGET_AT.get(rdtype)
            if at is None:
                continue
            kind = RdataType(rdtype).name
            for rdata in kept:
                target = rdata[at:]
                if target == b"\x00":
                    continue  # "." is "no service" (RFC 7505, RFC 2782)
                message, rule = self._target_problem(key, target.lower(), rdtype == _NS)
                if message:
                    text = dns.name.from_wire(target, 0)[0]
                    self._problem((ordinal, 4), "warning",
                                  f"{kind} target {text} of {self._name(key)} {message}",
                                  self._where(key, rdtype, rdata), rule)

    def _target_problem(self, owner: bytes, target: bytes, is_ns: bool) -> tuple[str, str]:
        """What is wrong with an in-zone target, and the posture rule id it is."""
        if not is_below(target, self.apex):
            return "", ""
        chain = self._chain(target)
        cut = self._top_cut(chain)
        if cut is not None:
            if not is_ns or self._has_address(target):
                return "", ""  # another zone's name, or glue that is there
            cut_name = self._name(cut)
            if cut == owner:
                return (f"is below the delegation {cut_name} and has no glue (A/AAAA) records",
                        "ns-no-glue")
            return (f"is below the delegation {cut_name} and has no A/AAAA records here",
                    "ns-no-glue")
        if any(a in self.dnames for a in chain[1:]):
            return "", ""  # rewritten by a DNAME
        node = self._resolve(target, chain)
        if node is not None and _CNAME in blob_types(self.blobs[node]):
            return "is a CNAME (RFC 2181 §10.3)", "target-is-cname"
        if node is None or not self._has_address(node):
            return "has no A or AAAA records in the zone", "target-no-address"
        return "", ""

    # -- names -------------------------------------------------------------

    def _below_cut_or_dname(self, key: bytes) -> bool:
        """Whether a zone cut or a DNAME is above ``key`` (inside the zone)."""
        cuts, dnames = self.cuts, self.dnames
        stop = len(self.apex)
        at = key[0] + 1
        while len(key) - at > stop:
            above = key[at:]
            if above in cuts or above in dnames:
                return True
            at += key[at] + 1
        return False

    def _exists(self, key: bytes) -> bool:
        return key in self.blobs or key in self.ents

    def _chain(self, key: bytes) -> list[bytes]:
        """``key`` and its ancestors inside the zone, nearest first, the apex last."""
        out = []
        for at in key_offsets(key):
            out.append(key[at:])
            if len(key) - at <= len(self.apex):
                break
        return out

    def _top_cut(self, chain: list[bytes]) -> bytes | None:
        """The zone cut nearest the apex at or above: all below it is occluded."""
        if not self.cuts:
            return None
        return next((a for a in reversed(chain) if a in self.cuts), None)

    def _resolve(self, key: bytes, chain: list[bytes]) -> bytes | None:
        """The owner that answers for ``key``: itself, or the wildcard at its closest encloser."""
        if self._exists(key):
            return key if key in self.blobs else None
        encloser = next((a for a in chain if self._exists(a)), None)
        if encloser is None:
            return None
        wild = b"\x01*" + encloser
        return wild if wild in self.blobs else None

    def _has_address(self, key: bytes) -> bool:
        blob = self.blobs.get(key)
        return blob is not None and not _ADDRESS_TYPES.isdisjoint(blob_types(blob))

    def _ns_targets(self, key: bytes) -> frozenset[bytes]:
        found = self._targets_of.get(key)
        if found is not None:
            return found
        found = frozenset()
        blob = self.blobs.get(key)
        for rdtype, _, kept in blob_rrsets(blob) if blob is not None else ():
            if rdtype == _NS:
                found = frozenset(r.lower() for r in kept)
        self._targets_of[key] = found
        return found

    def _all_glue(self) -> set[bytes]:
        if self._glue is None:
            self._glue = set(self._ns_targets(self.apex))
            for cut in self.cuts:
                self._glue.update(self._ns_targets(cut))
        return self._glue


# Owners with these types are checked one by one even in a zone without cuts or DNAMEs.
_ATTENTION = frozenset({_SOA, _CNAME, _DS, _NS, _MX, _SRV})


def _first_at(first: Source | None, here: Source) -> str:
    if first is None or first == here:
        return ""
    where = f"line {first.line}" if first.file == here.file else f"{first.file}:{first.line}"
    return f" (the first at {where})"



def _signatures(
    indices: list[int], types: array[int] | list[int], ttls: array[int] | list[int],
    rdatas: Sequence[bytes],
) -> list[tuple[int, int, list[bytes]]]:
    """An owner's RRSIGs as one stored RRset per covered type (its first two rdata
    octets), each with its own TTL, duplicates dropped: a pre-signed zone's
    signatures, kept beside the data they sign (``answer.dnssec`` serves them)."""
    by_covered: dict[bytes, tuple[list[int], list[bytes]]] = {}
    for i in indices:
        if types[i] != _RRSIG:
            continue
        rdata = rdatas[i]
        ttl, kept = by_covered.setdefault(rdata[:2], ([ttls[i]], []))
        ttl[0] = min(ttl[0], ttls[i])
        if rdata not in kept:
            kept.append(rdata)
    return [(_RRSIG, ttl[0], kept) for ttl, kept in by_covered.values()]
