"""The immutable lookup table of one zone, and the lookup sequence over it.

Owns the authoritative answer rules of RFC 1034 §4.3.2 for a single zone:
referrals at zone cuts, DNAME synthesis (RFC 6672), exact matches, CNAME
chains followed inside the zone, wildcards (RFC 4592), NODATA at existing
names and empty non-terminals, NXDOMAIN, and the additional A/AAAA of NS, MX
and SRV targets; and which of several zones holds a name (``closest_origin``,
for the snapshot and the config's pools alike). A lookup returns a
``Result`` of dnspython RRsets; turning it into wire bytes is
``answer.prebuilt``'s job.

It must not parse zone files (``zones.load``), validate them
(``zones.compile``), read the clock or run per query: results are computed
once per (qname, qtype) and kept as prebuilt wire answers.

The lookup sequence, top to bottom (as CoreDNS ``plugin/file/lookup.go``):

1. Walk from the apex down to the qname. The first zone cut (NS below the
   apex) on the way is a referral, except a DS query at the cut itself, which
   the parent answers. The first DNAME above the qname rewrites it.
2. The qname exists: answer the rrset of the qtype; or follow a CNAME; or
   NODATA (an empty non-terminal is NODATA too).
3. The qname does not exist: the wildcard at the closest encloser answers
   with the qname as owner; without one, NXDOMAIN.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Container, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import cast

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rrset
import dns.zone
from dns.rcode import Rcode
from dns.rdatatype import RdataType

MAX_CHAIN = 12  # CNAME/DNAME steps followed in one answer

_ADDRESS_TYPES = (RdataType.A, RdataType.AAAA)
_TARGET_TYPES = (RdataType.NS, RdataType.MX, RdataType.SRV)
_WILD = b"*"


class ResultKind(enum.Enum):
    """What a lookup found; compared by identity, never written out: no spelling."""

    ANSWER = enum.auto()
    NODATA = enum.auto()
    NXDOMAIN = enum.auto()
    REFERRAL = enum.auto()


@dataclass(frozen=True, slots=True)
class Result:
    """One authoritative answer, as dnspython RRsets in section order."""

    kind: ResultKind
    rcode: Rcode
    aa: bool
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    additional: tuple[dns.rrset.RRset, ...] = ()
    # Dynamic (pool) rrsets this result used, as (owner, rdtype): a pool
    # change must rebuild every prebuilt answer that names one of them.
    uses: frozenset[tuple[dns.name.Name, RdataType]] = frozenset()


def closest_origin(
    name: dns.name.Name, origins: Container[dns.name.Name]
) -> dns.name.Name | None:
    """The deepest of ``origins`` that is ``name`` or one of its ancestors (the
    zone that holds ``name``), or None: one membership test per label."""
    while True:
        if name in origins:
            return name
        if name == dns.name.root:
            return None
        name = name.parent()


Node = Mapping[RdataType, dns.rrset.RRset]
_EMPTY: Node = MappingProxyType({})


class ZoneTable:
    """An immutable, validated zone ready for lookups.

    Build it with ``ZoneTable.build(zone)`` from a dnspython zone loaded with
    ``relativize=False``; ``with_rrsets`` returns a copy where some rrsets are
    replaced (pool answers) without touching this one.
    """

    __slots__ = (
        "_cuts", "_dnames", "_dynamic", "_loaded", "_nodes", "_overlay", "_soa", "names", "origin"
    )


    def __init__(
        self,
        origin: dns.name.Name,
        nodes: Mapping[dns.name.Name, Node],
        names: frozenset[dns.name.Name],
        dynamic: frozenset[tuple[dns.name.Name, RdataType]] = frozenset(),
        base: ZoneTable | None = None,
        overlay: Mapping[dns.name.Name, Node] | None = None,
    ) -> None:
        self.origin = origin
        self._nodes = nodes
        # An overlay table is ``overlay`` over the loaded table's nodes, never
        # an overlay of an overlay: lookups stay one ChainMap deep.
        self._overlay: Mapping[dns.name.Name, Node] = overlay or {}
        self._loaded: Mapping[dns.name.Name, Node] = base._loaded if base is not None else nodes
        self.names = names  # every owner and every empty non-terminal
        if base is None:
            self._cuts = frozenset(
                n for n, node in nodes.items() if n != origin and RdataType.NS in node
            )
            self._dnames = frozenset(n for n, node in nodes.items() if RdataType.DNAME in node)
            self._soa = nodes[origin][RdataType.SOA]
        else:  # replacements are address and CNAME rrsets: cuts, DNAMEs, SOA stay
            self._cuts, self._dnames, self._soa = base._cuts, base._dnames, base._soa
        self._dynamic = dynamic

    @classmethod
    def build(cls, zone: dns.zone.Zone) -> ZoneTable:
        origin = zone.origin
        assert origin is not None
        nodes: dict[dns.name.Name, Node] = {}
        names: set[dns.name.Name] = set()
        for name, node in zone.nodes.items():
            owner = name if name.is_absolute() else name.derelativize(origin)
            rrsets: dict[RdataType, dns.rrset.RRset] = {}
            for rdataset in node.rdatasets:
                if rdataset.covers != RdataType.NONE:
                    continue  # RRSIGs are not served without DNSSEC support
                rrset = dns.rrset.RRset(owner, rdataset.rdclass, rdataset.rdtype)
                rrset.update(rdataset)
                rrsets[RdataType(rdataset.rdtype)] = rrset
            if not rrsets:
                continue
            nodes[owner] = MappingProxyType(rrsets)
            while True:
                names.add(owner)
                if owner == origin or owner == dns.name.root:
                    break
                owner = owner.parent()
        return cls(origin, MappingProxyType(nodes), frozenset(names))

    # -- reading -----------------------------------------------------------

    @property
    def soa(self) -> dns.rrset.RRset:
        return self._soa

    def node(self, name: dns.name.Name) -> Node:
        return self._nodes.get(name, _EMPTY)

    def rrset(self, name: dns.name.Name, rdtype: RdataType) -> dns.rrset.RRset | None:
        return self._nodes.get(name, _EMPTY).get(rdtype)

    def rrset_keys(self) -> Iterator[tuple[dns.name.Name, RdataType]]:
        """Every (owner, type) with data, for prebuilding answers."""
        for name, node in self._nodes.items():
            for rdtype in node:
                yield name, rdtype

    def with_rrsets(
        self, replacements: Mapping[tuple[dns.name.Name, RdataType], dns.rrset.RRset | None]
    ) -> ZoneTable:
        """A new table where the given rrsets are replaced (None = removed).

        The replaced rrsets are marked dynamic: a ``Result`` that uses one
        lists it in ``uses``. A replaced owner exists (as a name) even when
        its rrset is removed: a pool's name is never NXDOMAIN. The new table
        shares this one's nodes (an overlay), so building one per pool
        variant costs only the replaced nodes.
        """
        overlay = dict(self._overlay)  # a dict copy: the names are not hashed again
        added: set[dns.name.Name] = set()
        for (name, rdtype), rrset in replacements.items():
            node = dict(overlay.get(name, self._loaded.get(name, _EMPTY)))
            if rrset is None:
                node.pop(rdtype, None)
            else:
                node[rdtype] = rrset
            overlay[name] = MappingProxyType(node)
            while name not in self.names and name not in added and name != self.origin:
                added.add(name)
                name = name.parent()
        names = self.names | added if added else self.names
        keys = frozenset(replacements)
        dynamic = self._dynamic if keys <= self._dynamic else self._dynamic | keys
        # ChainMap writes only to its first map (typeshed asks MutableMapping of every one)
        loaded = cast(MutableMapping[dns.name.Name, Node], self._loaded)
        nodes = MappingProxyType(collections.ChainMap(overlay, loaded))
        return ZoneTable(self.origin, nodes, names, dynamic, base=self, overlay=overlay)

    # -- the lookup sequence -------------------------------------------------

    def lookup(self, qname: dns.name.Name, qtype: RdataType) -> Result:
        """Answer ``qname``/``qtype`` from this zone (qname must be inside it)."""
        answer: list[dns.rrset.RRset] = []
        uses: set[tuple[dns.name.Name, RdataType]] = set()
        seen: set[dns.name.Name] = set()
        name = qname
        for _ in range(MAX_CHAIN):
            seen.add(name)
            step = self._step(name, qtype, answer, uses)
            if isinstance(step, Result):
                return step
            if step is None or step in seen or not step.is_subdomain(self.origin):
                break  # answered, a loop, or the chain leaves the zone
            name = step
        return self._finish(ResultKind.ANSWER, Rcode.NOERROR, answer, (), uses)

    def _step(
        self,
        name: dns.name.Name,
        qtype: RdataType,
        answer: list[dns.rrset.RRset],
        uses: set[tuple[dns.name.Name, RdataType]],
    ) -> Result | dns.name.Name | None:
        """One name of a chain: a final Result, the next name to follow, or None (done)."""
        # 1. Zone cuts and DNAMEs between the apex and the name.
        labels = name.labels
        for k in range(len(self.origin), len(labels) + 1):
            above = dns.name.Name(labels[-k:])
            if (
                k > len(self.origin)
                and above in self._cuts
                and not (above == name and qtype == RdataType.DS)
            ):
                return self._referral(above, answer, uses)
            if above != name and above in self._dnames:
                step = self._dname(name, above, answer, uses)
                # the synthesized CNAME is itself the answer to a CNAME query
                return None if qtype == RdataType.CNAME and not isinstance(step, Result) else step
        # 2. The name exists (with data, or as an empty non-terminal).
        if name in self.names:
            return self._at_node(name, name, self.node(name), qtype, answer, uses)
        # 3. Wildcard at the closest encloser, or NXDOMAIN.
        encloser = name.parent()
        while encloser not in self.names:
            encloser = encloser.parent()
        source = wild_owner(encloser)
        if source in self._cuts:
            return self._referral(source, answer, uses)
        if source in self.names:  # a wildcard that is an empty non-terminal is NODATA
            return self._at_node(name, source, self.node(source), qtype, answer, uses)
        return self._negative(ResultKind.NXDOMAIN, Rcode.NXDOMAIN, answer, uses)

    def _at_node(
        self,
        name: dns.name.Name,
        source: dns.name.Name,
        node: Node,
        qtype: RdataType,
        answer: list[dns.rrset.RRset],
        uses: set[tuple[dns.name.Name, RdataType]],
    ) -> Result | dns.name.Name | None:
        """Answer at an existing node; ``source`` differs from ``name`` for wildcards."""
        for key in ((source, qtype), (source, RdataType.CNAME)):
            if key in self._dynamic:
                uses.add(key)
        if qtype == RdataType.ANY and node:
            answer.append(self._use(name, source, minimal_any(node), uses))
            return None
        rrset = node.get(qtype)
        if rrset is not None:
            answer.append(self._use(name, source, rrset, uses))
            return None
        cname = node.get(RdataType.CNAME)
        if cname is not None:
            answer.append(self._use(name, source, cname, uses))
            return cname[0].target  # type: ignore[no-any-return]
        return self._negative(ResultKind.NODATA, Rcode.NOERROR, answer, uses)

    def _use(
        self,
        name: dns.name.Name,
        source: dns.name.Name,
        rrset: dns.rrset.RRset,
        uses: set[tuple[dns.name.Name, RdataType]],
    ) -> dns.rrset.RRset:
        key = (source, RdataType(rrset.rdtype))
        if key in self._dynamic:
            uses.add(key)
        if name == rrset.name:
            return rrset
        synthesized = dns.rrset.RRset(name, rrset.rdclass, rrset.rdtype)
        synthesized.update(rrset)
        return synthesized

    def _dname(
        self,
        name: dns.name.Name,
        owner: dns.name.Name,
        answer: list[dns.rrset.RRset],
        uses: set[tuple[dns.name.Name, RdataType]],
    ) -> Result | dns.name.Name:
        dname = self._nodes[owner][RdataType.DNAME]
        answer.append(dname)
        try:
            target = name.relativize(owner).concatenate(dname[0].target)
        except dns.name.NameTooLong:
            return self._finish(ResultKind.ANSWER, Rcode.YXDOMAIN, answer, (), uses)
        cname = dns.rrset.RRset(name, dname.rdclass, RdataType.CNAME)
        cname.add(
            dns.rdtypes.ANY.CNAME.CNAME(dname.rdclass, RdataType.CNAME, target), dname.ttl
        )
        answer.append(cname)
        return target

    def _referral(
        self,
        cut: dns.name.Name,
        answer: list[dns.rrset.RRset],
        uses: set[tuple[dns.name.Name, RdataType]],
    ) -> Result:
        ns = self._nodes[cut][RdataType.NS]
        glue = self._addresses((ns,), below=cut, uses=uses)
        # A referral after a CNAME is still part of an authoritative answer.
        return Result(
            ResultKind.REFERRAL,
            Rcode.NOERROR,
            bool(answer),
            tuple(answer),
            (ns,),
            glue,
            frozenset(uses),
        )

    def _negative(
        self,
        kind: ResultKind,
        rcode: Rcode,
        answer: list[dns.rrset.RRset],
        uses: set[tuple[dns.name.Name, RdataType]],
    ) -> Result:
        # RFC 2308 §5: the negative TTL is min(SOA TTL, SOA MINIMUM).
        soa = self._soa
        negative = dns.rrset.RRset(soa.name, soa.rdclass, soa.rdtype)
        negative.update(soa)
        negative.ttl = min(soa.ttl, soa[0].minimum)
        return self._finish(kind, rcode, answer, (negative,), uses)

    def _finish(
        self,
        kind: ResultKind,
        rcode: Rcode,
        answer: list[dns.rrset.RRset],
        authority: tuple[dns.rrset.RRset, ...],
        uses: set[tuple[dns.name.Name, RdataType]],
    ) -> Result:
        additional = (
            self._addresses(answer, below=None, uses=uses) if kind is ResultKind.ANSWER else ()
        )
        return Result(kind, rcode, True, tuple(answer), authority, additional, frozenset(uses))

    def _addresses(
        self,
        rrsets: tuple[dns.rrset.RRset, ...] | list[dns.rrset.RRset],
        *,
        below: dns.name.Name | None,
        uses: set[tuple[dns.name.Name, RdataType]],
    ) -> tuple[dns.rrset.RRset, ...]:
        """A/AAAA for NS/MX/SRV targets: authoritative data, or glue under ``below``."""
        out: list[dns.rrset.RRset] = []
        seen: set[tuple[dns.name.Name, RdataType]] = set()
        in_answer = {(r.name, r.rdtype) for r in rrsets}
        for rrset in rrsets:
            if rrset.rdtype not in _TARGET_TYPES:
                continue
            for rdata in rrset:
                target = rdata.target if rrset.rdtype != RdataType.MX else rdata.exchange
                if not target.is_subdomain(self.origin):
                    continue
                apex_ns = rrset.rdtype == RdataType.NS and rrset.name == self.origin
                if below is None and not apex_ns and self._under_cut(target):
                    continue  # below a cut: only a referral carries glue
                for rdtype in _ADDRESS_TYPES:
                    key = (target, rdtype)
                    if key in self._dynamic:
                        uses.add(key)
                    address = self.rrset(target, rdtype)
                    if address is not None and key not in seen and key not in in_answer:
                        seen.add(key)
                        out.append(address)
        if below is not None:  # in-bailiwick glue first (RFC 9471), as Knot does
            out.sort(key=lambda r: not r.name.is_subdomain(below))
        return tuple(out)

    def _under_cut(self, name: dns.name.Name) -> bool:
        while name != self.origin:
            if name in self._cuts:
                return True
            name = name.parent()
        return False


def wild_owner(encloser: dns.name.Name) -> dns.name.Name:
    return dns.name.Name((_WILD, *encloser.labels))


def minimal_any(node: Node) -> dns.rrset.RRset:
    """RFC 8482 §4.2: answer ANY with one rrset of the node, the lowest type."""
    return node[min(node)]
