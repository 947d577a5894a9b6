"""Semantic validation of a parsed zone, and compiling it into a ``ZoneTable``.

Owns the rules a zone must meet before it is served, and the operator
warnings beside them. It takes a dnspython zone (loaded with
``relativize=False``) and where its records came from; it must not read
files (``zones.load`` does), look anything up per query (``zones.table``
does) or read the clock.

Rules, each an error that keeps the zone from being served:

1. Exactly one SOA record, at the apex; an SOA anywhere else is an error.
2. NS records at the apex.
3. No CNAME at the apex; no CNAME beside other data (RRSIG, NSEC and the
   other types dnspython calls "neutral" may sit beside it); at most one
   SOA, CNAME or DNAME record per owner.
4. No names below a DNAME (RFC 6672 §2.3).
5. At and below a delegation (NS below the apex), only NS and DS at the cut
   and glue: A/AAAA of names that are NS targets of that delegation (or of
   the apex).
6. Every owner inside the origin.
7. Every RRset fits in a DNS message: its wire form (the owner written out
   once, then compressed), after a header and the longest possible question
   (a 255-octet name), within 65,535 octets. No answer could carry a larger
   one; NSD, Knot and BIND refuse such a zone at load too. The limit, the
   measuring and the message are ``zones.limits``'s (``RRSET_MAX``).

Warnings, served anyway:

- an in-zone NS, MX or SRV target without A/AAAA records, or that is a CNAME
  (RFC 2181 §10.3);
- glue missing for an NS target below its own delegation;
- sibling glue: addresses below one delegation kept for another's NS;
- DS at the apex (it belongs in the parent) or away from a delegation;
- an RRset whose smallest answer (header, its owner as the question, the
  RRset, our OPT) is over 1,232 octets: over UDP it is truncated (TC) and
  clients must retry over TCP (``zones.limits`` too).

dnspython's nodes cannot hold a CNAME beside other data, nor its rdatasets two
SOA, CNAME or DNAME records (the last one added wins), and its transactions
refuse an SOA below the apex; so ``zones.load`` reports those while reading,
with the line. SOA placement and CNAME beside other data are checked here as
well, for zones built some other way (a transfer, a test).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import dns.name
import dns.node
import dns.rdata
import dns.rdataset
import dns.zone
from dns.rdatatype import RdataType

from dnsserve.errors import ZoneError
from dnsserve.zones.limits import Severity, size_problem
from dnsserve.zones.sources import Source, SourceMap
from dnsserve.zones.table import ZoneTable

_ADDRESS_TYPES = frozenset({RdataType.A, RdataType.AAAA})
# Types that may stand at a zone cut in the parent (RFC 4035 §2.4, RFC 3845).
_CUT_TYPES = frozenset({RdataType.NS, RdataType.DS, RdataType.NSEC, RdataType.RRSIG})


@dataclass(frozen=True, slots=True)
class ZoneProblem:
    """One finding about one zone; ``line`` 0 means the zone as a whole."""

    file: str
    line: int
    severity: Severity
    message: str
    zone: str

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
        }


@dataclass(frozen=True, slots=True)
class Compiled:
    """What compiling one zone gave: a table when there is no error, and every problem."""

    table: ZoneTable | None
    problems: tuple[ZoneProblem, ...]


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
    problems = tuple(check_zone(zone, file=file, lines=lines))
    if any(p.severity == "error" for p in problems):
        return Compiled(None, problems)
    return Compiled(ZoneTable.build(zone), problems)


def check_zone(
    zone: dns.zone.Zone, *, file: str, lines: Mapping[dns.name.Name, int]
) -> list[ZoneProblem]:
    """Every error and warning about ``zone``, ordered by file and line."""
    return sorted(_Checker(zone, file, lines).run(), key=lambda p: (p.file != file, p.file, p.line))


# A name as lower-cased labels, root label last: dnspython's Name compares
# and walks up slowly, and the checker does both for every owner.
_Key = tuple[bytes, ...]


def _key(name: dns.name.Name) -> _Key:
    return tuple(label.lower() for label in name.labels)


class _Checker:
    """One pass of the rules in the module docstring over one zone."""

    def __init__(self, zone: dns.zone.Zone, file: str, lines: Mapping[dns.name.Name, int]) -> None:
        if zone.origin is None:
            raise ValueError("zone has no origin")
        self.origin: dns.name.Name = zone.origin
        self.apex = _key(self.origin)
        self.file = file
        self.lines = lines
        self.zone_text = self.origin.to_text()
        self.names: dict[_Key, dns.name.Name] = {}
        self.nodes: dict[_Key, dns.node.Node] = {}
        for name, node in zone.nodes.items():
            if node.rdatasets:
                owner = name if name.is_absolute() else name.derelativize(self.origin)
                self.names[_key(owner)] = owner
                self.nodes[_key(owner)] = node
        self.cuts = {k for k, n in self.nodes.items() if k != self.apex and _get(n, RdataType.NS)}
        self.dnames = {k for k, n in self.nodes.items() if _get(n, RdataType.DNAME)}
        self.ns_targets = {k: self._ns_targets(k) for k in (self.apex, *self.cuts)}
        # every owner and every empty non-terminal: what "exists" in RFC 4592
        self.existing: set[_Key] = set()
        for k in self.nodes:
            self.existing.update(self._chain(k))

    # -- reporting ---------------------------------------------------------

    def _where(self, name: dns.name.Name, rdata: dns.rdata.Rdata | None = None) -> Source:
        if isinstance(self.lines, SourceMap):
            found = self.lines.record(name, rdata) if rdata is not None else None
            found = found or self.lines.owner(name)
            if found is not None:
                return found
        return Source(self.file, self.lines.get(name, 0))

    def _problem(
        self,
        severity: Severity,
        message: str,
        name: dns.name.Name | None = None,
        rdata: dns.rdata.Rdata | None = None,
    ) -> ZoneProblem:
        where = self._where(name, rdata) if name is not None else Source(self.file, 0)
        return ZoneProblem(where.file, where.line, severity, message, self.zone_text)

    def _rrset_problem(
        self, severity: Severity, message: str, name: dns.name.Name, rrset: dns.rdataset.Rdataset
    ) -> ZoneProblem:
        """A problem with the RRset ``rrset`` at ``name``: at its first record's line."""
        return self._problem(severity, message, name, next(iter(rrset), None))

    def _line_text(self, name: dns.name.Name) -> str:
        where = self._where(name)
        if not where.line:
            return ""
        if where.file == self.file:
            return f" (line {where.line})"
        return f" ({where.file}:{where.line})"

    # -- the rules ---------------------------------------------------------

    def run(self) -> Iterator[ZoneProblem]:
        yield from self._apex()
        for k, node in self.nodes.items():
            name = self.names[k]
            if not self._inside(k):
                yield self._problem("error", f"{name} is outside the zone {self.origin}", name)
                continue
            yield from self._soa_placement(k, node)
            yield from self._sizes(k, node)
            yield from self._cname(k, node)
            yield from self._placement(k, node)
            yield from self._targets(k, node)

    def _apex(self) -> Iterator[ZoneProblem]:
        apex = self.nodes.get(self.apex)
        if apex is None or not _get(apex, RdataType.SOA):
            yield self._problem("error", f"no SOA record at the zone apex {self.origin}")
        if apex is None or not _get(apex, RdataType.NS):
            name = self.origin if apex is not None else None
            yield self._problem("error", f"no NS records at the zone apex {self.origin}", name)
        ds = _get(apex, RdataType.DS) if apex is not None else None
        if ds is not None:
            message = f"DS at the zone apex {self.origin} belongs in the parent zone"
            yield self._rrset_problem("warning", message, self.origin, ds)

    def _soa_placement(self, k: _Key, node: dns.node.Node) -> Iterator[ZoneProblem]:
        soa = _get(node, RdataType.SOA)
        if soa is not None and k != self.apex:
            name = self.names[k]
            message = f"SOA record at {name}, not at the zone apex {self.origin}"
            yield self._rrset_problem("error", message, name, soa)

    def _sizes(self, k: _Key, node: dns.node.Node) -> Iterator[ZoneProblem]:
        """Rule 7, and the UDP warning (``zones.limits``): each RRset measured."""
        name = self.names[k]
        for rdataset in node.rdatasets:
            found = size_problem(name, rdataset)
            if found is not None:
                yield self._rrset_problem(*found, name, rdataset)

    def _cname(self, k: _Key, node: dns.node.Node) -> Iterator[ZoneProblem]:
        cname = _get(node, RdataType.CNAME)
        if cname is None:
            return
        name = self.names[k]
        if k == self.apex:
            yield self._rrset_problem("error", f"CNAME at the zone apex {name}", name, cname)
            return
        others = sorted(
            RdataType(rds.rdtype).name
            for rds in node.rdatasets
            if dns.node.NodeKind.classify_rdataset(rds) == dns.node.NodeKind.REGULAR
        )
        if others:
            message = f"CNAME at {name} beside other data ({', '.join(others)})"
            yield self._rrset_problem("error", message, name, cname)

    def _placement(self, k: _Key, node: dns.node.Node) -> Iterator[ZoneProblem]:
        """Rules 4 and 5: names below a DNAME, data at and below a zone cut."""
        name = self.names[k]
        dname = next((a for a in self._chain(k)[1:] if a in self.dnames), None)
        if dname is not None:
            owner = self.names[dname]
            message = (
                f"{name} is below the DNAME at {owner}{self._line_text(owner)};"
                " a DNAME owner can have no names below it"
            )
            yield self._rrset_problem("error", message, name, node.rdatasets[0])
            return
        cut = self._top_cut(k)
        if cut is not None:
            yield from self._occluded(k, node, cut)
            return
        ds = _get(node, RdataType.DS)
        if ds is not None and k != self.apex:
            message = f"DS at {name}, which is not a delegation"
            yield self._rrset_problem("warning", message, name, ds)

    def _occluded(self, k: _Key, node: dns.node.Node, cut: _Key) -> Iterator[ZoneProblem]:
        name, cut_name = self.names[k], self.names[cut]
        # the zone's own NS targets may live below a cut (the root zone does this)
        is_glue = k in self.ns_targets[cut] or k in self.ns_targets[self.apex]
        for rdataset in node.rdatasets:
            rdtype = RdataType(rdataset.rdtype)
            if k == cut and rdtype in _CUT_TYPES:
                continue
            if rdtype in _ADDRESS_TYPES and is_glue:
                continue
            if rdtype in _ADDRESS_TYPES and any(k in t for t in self.ns_targets.values()):
                message = (
                    f"{rdtype.name} at {name} is below the delegation {cut_name} but not one of"
                    " its NS targets: served only as glue for another delegation"
                )
                yield self._rrset_problem("warning", message, name, rdataset)
                continue
            where = "at" if k == cut else "below"
            message = (
                f"{rdtype.name} at {name} is {where} the delegation {cut_name}"
                f"{self._line_text(cut_name)}; only NS, DS and glue may be there"
            )
            yield self._rrset_problem("error", message, name, rdataset)

    def _targets(self, k: _Key, node: dns.node.Node) -> Iterator[ZoneProblem]:
        """Warnings about in-zone NS, MX and SRV targets."""
        if any(a in self.cuts for a in self._chain(k)[1:]):
            return  # occluded: not our data
        name = self.names[k]
        for rdataset in node.rdatasets:
            if rdataset.rdtype not in (RdataType.NS, RdataType.MX, RdataType.SRV):
                continue
            kind = RdataType(rdataset.rdtype).name
            for rdata in rdataset:
                target = _target(rdata)
                if target is None or target == dns.name.root:
                    continue  # "." is "no service" (RFC 7505, RFC 2782)
                message = self._target_problem(k, _key(target), rdataset.rdtype == RdataType.NS)
                if message:
                    yield self._problem(
                        "warning", f"{kind} target {target} of {name} {message}", name, rdata
                    )

    def _target_problem(self, owner: _Key, target: _Key, is_ns: bool) -> str:
        if not self._inside(target):
            return ""
        cut = self._top_cut(target)
        if cut is not None:
            if not is_ns or self._has_address(self.nodes.get(target)):
                return ""  # another zone's name, or glue that is there
            cut_name = self.names[cut]
            if cut == owner:
                return f"is below the delegation {cut_name} and has no glue (A/AAAA) records"
            return f"is below the delegation {cut_name} and has no A/AAAA records here"
        if any(a in self.dnames for a in self._chain(target)[1:]):
            return ""  # rewritten by a DNAME
        node = self._resolve(target)
        if node is not None and _get(node, RdataType.CNAME):
            return "is a CNAME (RFC 2181 §10.3)"
        if not self._has_address(node):
            return "has no A or AAAA records in the zone"
        return ""

    # -- names -------------------------------------------------------------

    def _inside(self, k: _Key) -> bool:
        return k[len(k) - len(self.apex) :] == self.apex

    def _chain(self, k: _Key) -> list[_Key]:
        """``k`` and its ancestors inside the zone, nearest first, the apex last."""
        return [k[i:] for i in range(len(k) - len(self.apex) + 1)]

    def _top_cut(self, k: _Key) -> _Key | None:
        """The zone cut nearest the apex at or above ``k``: all below it is occluded."""
        return next((a for a in reversed(self._chain(k)) if a in self.cuts), None)

    def _resolve(self, k: _Key) -> dns.node.Node | None:
        """The node that answers for ``k``: itself, or the wildcard at its closest encloser."""
        if k in self.existing:
            return self.nodes.get(k)
        encloser = next((a for a in self._chain(k) if a in self.existing), None)
        return self.nodes.get((b"*", *encloser)) if encloser is not None else None

    @staticmethod
    def _has_address(node: dns.node.Node | None) -> bool:
        return node is not None and any(_get(node, t) for t in _ADDRESS_TYPES)

    def _ns_targets(self, k: _Key) -> frozenset[_Key]:
        ns = _get(self.nodes[k], RdataType.NS) if k in self.nodes else None
        return frozenset(_key(rdata.target) for rdata in ns) if ns is not None else frozenset()


def _get(node: dns.node.Node, rdtype: RdataType) -> dns.rdataset.Rdataset | None:
    rdataset: dns.rdataset.Rdataset
    for rdataset in node.rdatasets:
        if rdataset.rdtype == rdtype and rdataset.covers == RdataType.NONE:
            return rdataset
    return None


def _target(rdata: dns.rdata.Rdata) -> dns.name.Name | None:
    if rdata.rdtype == RdataType.MX:
        return rdata.exchange  # type: ignore[attr-defined, no-any-return]
    return getattr(rdata, "target", None)
