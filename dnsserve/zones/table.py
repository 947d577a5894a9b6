"""The immutable lookup table of one zone, and the lookup sequence over it.

Owns the authoritative answer rules of RFC 1034 §4.3.2 for a single zone:
referrals at zone cuts, DNAME synthesis (RFC 6672), exact matches, CNAME
chains followed inside the zone, wildcards (RFC 4592), NODATA at existing
names and empty non-terminals, NXDOMAIN, and the additional A/AAAA of NS, MX
and SRV targets; and which of several zones holds a name (``closest_origin``,
for the snapshot and the config's pools alike). A lookup returns a
``Result`` of dnspython RRsets; turning it into wire bytes is
``answer.prebuilt``'s job.

Memory: a table keeps its zone as wire data, one ``bytes`` blob per owner
(``encode_node``: the owner as written when its case differs from the key,
then each RRset's type, TTL, count and rdatas) in a dict keyed by the owner's
lower-cased wire form (``name_key``), plus sets of keys for zone cuts, DNAMEs
and empty non-terminals. No Python object per record outlives the build:
dnspython RRsets are decoded from a blob when a lookup reaches the owner and
memoized, boundedly, in the ``WireStore`` that a table and its pool overlays
share. Readers that do not need dnspython objects use the wire accessors
(``owner_keys``, ``wire_rrset_keys``, ``wire_node``, ``exists_key``).

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

import enum
import itertools
from array import array
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

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

from dnsserve.zones.blobs import (
    blob_owner,
    blob_rrsets,
    blob_types,
    decode_node,
    encode_node,
    key_offsets,
    name_from_wire,
    name_key,
    rdatatype,
)

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

# Decoded nodes kept per table family (a loaded table and its pool overlays):
# enough for every answer a busy server is asked again and again, bounded so
# that prebuilding every answer of a big zone does not keep it all decoded.
DECODED_MAX = 16384


_RRSIG_TYPE = int(RdataType.RRSIG)
_NSEC3_TYPE = int(RdataType.NSEC3)
_DENIAL_ONLY = frozenset({_NSEC3_TYPE, _RRSIG_TYPE})
_HASH_LABEL = 32  # an NSEC3 owner's first label: a SHA-1 hash in base32hex (RFC 5155 §3)


def denial_only(types: Iterable[int]) -> bool:
    """Whether an owner with these types holds only NSEC3 records (and their RRSIGs):
    an NSEC3 owner name, which does not exist for lookups (RFC 5155 §7.2.8)."""
    found = set(types)
    return _NSEC3_TYPE in found and found <= _DENIAL_ONLY
class WireStore:
    """The loaded data of one zone: one blob per owner, keyed by its lookup key.

    Shared by a loaded table and every pool overlay made from it. ``decoded``
    memoizes decoded nodes (bounded by ``DECODED_MAX``): an rrset asked for
    twice is the same object, and nothing else of the zone is decoded.
    """

    __slots__ = ("blobs", "cuts", "decoded", "dnames", "ents", "soa")

    def __init__(
        self,
        blobs: dict[bytes, bytes],
        ents: frozenset[bytes],
        cuts: frozenset[bytes],
        dnames: frozenset[bytes],
    ) -> None:
        self.blobs = blobs
        self.ents = ents  # empty non-terminals
        self.cuts = cuts
        self.dnames = dnames
        self.decoded: dict[bytes, Node] = {}
        self.soa: dns.rrset.RRset | None = None

    def node(self, key: bytes) -> Node:
        node = self.decoded.get(key)
        if node is not None:
            return node
        blob = self.blobs.get(key)
        if blob is None:
            return _EMPTY
        if len(self.decoded) >= DECODED_MAX:  # the oldest goes first
            del self.decoded[next(iter(self.decoded))]
        node = self.decoded[key] = MappingProxyType(decode_node(key, blob))
        return node


class _Names:
    """Every name of a table that exists (owners and empty non-terminals), as a
    container of dnspython names; iterating it decodes every name (slow)."""

    __slots__ = ("_table",)

    def __init__(self, table: ZoneTable) -> None:
        self._table = table

    def __contains__(self, name: object) -> bool:
        return isinstance(name, dns.name.Name) and self._table.exists_key(name_key(name))

    def __iter__(self) -> Iterator[dns.name.Name]:
        store = self._table._store
        for key in itertools.chain(store.blobs, store.ents, self._table._added):
            yield name_from_wire(key)

    def __len__(self) -> int:
        store = self._table._store
        return len(store.blobs) + len(store.ents) + len(self._table._added)


class ZoneTable:
    """An immutable, validated zone ready for lookups.

    Build it with ``zones.compile`` (from parsed wire records) or
    ``ZoneTable.build(zone)`` from a dnspython zone loaded with
    ``relativize=False``; ``with_rrsets`` returns a copy where some rrsets are
    replaced (pool answers) without touching this one.
    """

    __slots__ = ("_added", "_apex", "_dynamic", "_hashed", "_overlay", "_store", "origin")

    def __init__(
        self,
        origin: dns.name.Name,
        store: WireStore,
        dynamic: frozenset[tuple[dns.name.Name, RdataType]] = frozenset(),
        overlay: Mapping[bytes, Node] | None = None,
        added: frozenset[bytes] = frozenset(),
    ) -> None:
        self.origin = origin
        self._apex = name_key(origin)
        self._hashed = 1 + _HASH_LABEL + len(self._apex)  # an NSEC3 owner's key length
        self._store = store
        # An overlay table is ``overlay`` over the loaded blobs, never an
        # overlay of an overlay: lookups stay one dict deep.
        self._overlay: Mapping[bytes, Node] = overlay or {}
        self._added = added  # names a pool made exist
        self._dynamic = dynamic
        if store.soa is None:
            soa = store.node(self._apex).get(RdataType.SOA)
            if soa is None:
                raise ValueError(f"no SOA at the apex of {origin}")
            store.soa = soa

    @classmethod
    def from_blobs(
        cls, origin: dns.name.Name, blobs: dict[bytes, bytes], ents: Iterable[bytes] | None = None
    ) -> ZoneTable:
        """A table over owner blobs (``encode_node``) keyed by ``name_key``.

        ``ents`` (empty non-terminals) is derived from the owners when not given.
        """
        apex = name_key(origin)
        cuts, dnames = [], []
        ns, dname = int(RdataType.NS), int(RdataType.DNAME)
        for key, blob in blobs.items():
            types = blob_types(blob)
            if ns in types and key != apex:
                cuts.append(key)
            if dname in types:
                dnames.append(key)
        found = frozenset(ents) if ents is not None else empty_non_terminals(blobs, apex)
        store = WireStore(blobs, found, frozenset(cuts), frozenset(dnames))
        return cls(origin, store)

    @classmethod
    def from_parts(
        cls,
        origin: dns.name.Name,
        blobs: dict[bytes, bytes],
        ents: frozenset[bytes],
        cuts: Iterable[bytes],
        dnames: Iterable[bytes],
    ) -> ZoneTable:
        """A table over what ``zones.compile`` found while checking the blobs."""
        return cls(origin, WireStore(blobs, ents, frozenset(cuts), frozenset(dnames)))

    @classmethod
    def build(cls, zone: dns.zone.Zone) -> ZoneTable:
        """A table of a dnspython zone (``relativize=False``); RRSIGs are kept
        beside the data they cover (one stored RRset per covered type)."""
        origin = zone.origin
        assert origin is not None
        blobs: dict[bytes, bytes] = {}
        for name, node in zone.nodes.items():
            owner = name if name.is_absolute() else name.derelativize(origin)
            rrsets = [
                (int(rds.rdtype), rds.ttl, [rd.to_wire() for rd in rds])
                for rds in sorted(node.rdatasets, key=lambda r: r.covers != RdataType.NONE)
            ]
            if any(rdtype != _RRSIG_TYPE for rdtype, _, _ in rrsets):
                wire = owner.to_wire()
                assert wire is not None
                blobs[wire.lower()] = encode_node(wire, wire.lower(), rrsets)
        return cls.from_blobs(origin, blobs)

    # -- reading -----------------------------------------------------------

    @property
    def soa(self) -> dns.rrset.RRset:
        soa = self._store.soa
        assert soa is not None
        return soa

    @property
    def names(self) -> _Names:
        """Every owner and every empty non-terminal (a container of names)."""
        return _Names(self)

    def __len__(self) -> int:
        """Owners with data in the loaded zone."""
        return len(self._store.blobs)

    def same_data(self, other: ZoneTable) -> bool:
        """Whether ``other`` reads the same loaded zone (itself, or a pool overlay of it)."""
        return self._store is other._store

    def exists_key(self, key: bytes) -> bool:
        """Whether the name of lookup key ``key`` exists (data or empty non-terminal).

        An NSEC3 record's owner with nothing else (RFC 5155 §7.2.8) does not: a
        query for it is answered as for a name that does not exist, as Knot and
        NSD answer it.
        """
        store = self._store
        blob = store.blobs.get(key)
        if blob is not None:
            return not (key[0] == _HASH_LABEL and len(key) == self._hashed
                        and denial_only(blob_types(blob)))
        return key in store.ents or key in self._added

    def node_by_key(self, key: bytes) -> Node:
        node = self._overlay.get(key)
        if node is not None:
            return node
        return self._store.node(key)

    def node(self, name: dns.name.Name) -> Node:
        return self.node_by_key(name_key(name))

    def rrset(self, name: dns.name.Name, rdtype: RdataType) -> dns.rrset.RRset | None:
        return self.node_by_key(name_key(name)).get(rdtype)

    def owner_keys(self) -> Iterator[bytes]:
        """The lookup key of every owner with data (pool overlays included)."""
        yield from self._store.blobs
        for key in self._overlay:
            if key not in self._store.blobs:
                yield key

    def wire_rrset_keys(self) -> Iterator[tuple[bytes, int]]:
        """(owner lookup key, type) of every RRset, without decoding any."""
        overlay = self._overlay
        for key, blob in self._store.blobs.items():
            if key in overlay:
                yield from ((key, int(t)) for t in overlay[key])
            else:
                yield from ((key, t) for t in blob_types(blob))
        for key, node in overlay.items():
            if key not in self._store.blobs:
                yield from ((key, int(t)) for t in node)

    def wire_types(self) -> Iterator[tuple[bytes, list[int]]]:
        """(owner lookup key, its types) of every owner, pool overlays included.

        The keys are the table's own objects: an index keyed by them shares them.
        """
        overlay, blobs = self._overlay, self._store.blobs
        if not overlay:
            for key, blob in blobs.items():
                yield key, blob_types(blob)
            return
        for key, blob in blobs.items():
            node = overlay.get(key)
            yield key, (blob_types(blob) if node is None else [int(t) for t in node])
        for key, node in overlay.items():
            if key not in blobs:
                yield key, [int(t) for t in node]

    def types_of(self, key: bytes) -> list[int]:
        """The types at the owner ``key`` (none for a name without data)."""
        node = self._overlay.get(key)
        if node is not None:
            return [int(t) for t in node]
        blob = self._store.blobs.get(key)
        return blob_types(blob) if blob is not None else []

    def empty_keys(self) -> Iterator[bytes]:
        """Names that exist without data of their own in the loaded zone (empty
        non-terminals) and names a pool made exist; the table's own objects."""
        yield from self._store.ents
        yield from self._added

    def cut_keys(self) -> frozenset[bytes]:
        """The zone cuts (owners of NS below the apex), pool overlays included."""
        return self._with_overlay(self._store.cuts, RdataType.NS, apex=False)

    def dname_keys(self) -> frozenset[bytes]:
        """The owners of a DNAME, pool overlays included."""
        return self._with_overlay(self._store.dnames, RdataType.DNAME, apex=True)

    def _with_overlay(self, loaded: frozenset[bytes], rdtype: RdataType, *,
                      apex: bool) -> frozenset[bytes]:
        if not self._overlay:
            return loaded
        found = set(loaded)
        for key, node in self._overlay.items():
            if rdtype in node and (apex or key != self._apex):
                found.add(key)
            else:
                found.discard(key)
        return frozenset(found)

    def loaded_keys(self) -> Iterator[bytes]:
        """The lookup key of every owner as loaded (pool overlays not included)."""
        return iter(self._store.blobs)

    def wire_node(self, key: bytes) -> tuple[bytes, list[tuple[int, int, list[bytes]]]] | None:
        """The loaded owner ``key`` as stored: (owner as written, [(type, TTL, rdatas)])."""
        blob = self._store.blobs.get(key)
        if blob is None:
            return None
        return blob_owner(key, blob), list(blob_rrsets(blob))

    def rrset_keys(self) -> Iterator[tuple[dns.name.Name, RdataType]]:
        """Every (owner, type) with data, for prebuilding answers (rdatas not decoded).

        An owner's types come together, with one name object.
        """
        overlay, blobs = self._overlay, self._store.blobs
        for key, blob in blobs.items():
            node = overlay.get(key)
            if node is not None:
                yield from ((rrset.name, rdtype) for rdtype, rrset in node.items())
                continue
            decoded = self._store.decoded.get(key)
            name = (next(iter(decoded.values())).name if decoded
                    else name_from_wire(blob_owner(key, blob)))
            signed = False
            for rdtype in blob_types(blob):
                if rdtype == _RRSIG_TYPE:  # one stored RRset per covered type
                    if signed:
                        continue
                    signed = True
                yield name, rdatatype(rdtype)
        for key, node in overlay.items():
            if key not in blobs:
                yield from ((rrset.name, rdtype) for rdtype, rrset in node.items())

    def with_rrsets(
        self, replacements: Mapping[tuple[dns.name.Name, RdataType], dns.rrset.RRset | None]
    ) -> ZoneTable:
        """A new table where the given rrsets are replaced (None = removed).

        The replaced rrsets are marked dynamic: a ``Result`` that uses one
        lists it in ``uses``. A replaced owner exists (as a name) even when
        its rrset is removed: a pool's name is never NXDOMAIN. The new table
        shares this one's blobs (an overlay), so building one per pool
        variant costs only the replaced nodes.
        """
        overlay = dict(self._overlay)
        added: set[bytes] = set()
        for (name, rdtype), rrset in replacements.items():
            key = name_key(name)
            node = dict(overlay.get(key, self._store.node(key)))
            if rrset is None:
                node.pop(rdtype, None)
            else:
                node[rdtype] = rrset
            overlay[key] = MappingProxyType(node)
            offsets = key_offsets(key)
            for at in offsets:
                above = key[at:]
                if above == self._apex or self.exists_key(above) or above in added:
                    break
                added.add(above)
        keys = frozenset(replacements)
        dynamic = self._dynamic if keys <= self._dynamic else self._dynamic | keys
        grown = self._added | added if added else self._added
        return ZoneTable(self.origin, self._store, dynamic, overlay, grown)

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
        store = self._store
        key = name_key(name)
        offsets = key_offsets(key)
        labels = len(offsets)  # the root label included, as len(name)
        # 1. Zone cuts and DNAMEs between the apex and the name.
        if store.cuts or store.dnames:
            for k in range(len(self.origin), labels + 1):
                above = key[offsets[labels - k] :]
                if (
                    k > len(self.origin)
                    and above in store.cuts
                    and not (k == labels and qtype == RdataType.DS)
                ):
                    return self._referral(above, answer, uses)
                if k != labels and above in store.dnames:
                    owner = dns.name.Name(name.labels[-k:])
                    step = self._dname(name, owner, above, answer, uses)
                    # the synthesized CNAME is itself the answer to a CNAME query
                    if qtype == RdataType.CNAME and not isinstance(step, Result):
                        return None
                    return step
        # 2. The name exists (with data, or as an empty non-terminal).
        if self.exists_key(key):
            return self._at_node(name, name, self.node_by_key(key), qtype, answer, uses)
        # 3. Wildcard at the closest encloser, or NXDOMAIN.
        i = 1
        while not self.exists_key(key[offsets[i] :]):
            i += 1
        source = b"\x01*" + key[offsets[i] :]
        if source in store.cuts:
            return self._referral(source, answer, uses)
        if self.exists_key(source):  # a wildcard that is an empty non-terminal is NODATA
            wild = dns.name.Name((_WILD, *name.labels[i:]))
            return self._at_node(name, wild, self.node_by_key(source), qtype, answer, uses)
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
        if self._dynamic:
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
        if self._dynamic:
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
        owner_key: bytes,
        answer: list[dns.rrset.RRset],
        uses: set[tuple[dns.name.Name, RdataType]],
    ) -> Result | dns.name.Name:
        dname = self.node_by_key(owner_key)[RdataType.DNAME]
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
        cut: bytes,
        answer: list[dns.rrset.RRset],
        uses: set[tuple[dns.name.Name, RdataType]],
    ) -> Result:
        ns = self.node_by_key(cut)[RdataType.NS]
        glue = self._addresses((ns,), below=ns.name, uses=uses)
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
        soa = self.soa
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
                target_key = name_key(target)
                apex_ns = rrset.rdtype == RdataType.NS and rrset.name == self.origin
                if below is None and not apex_ns and self._under_cut(target_key):
                    continue  # below a cut: only a referral carries glue
                node = self.node_by_key(target_key)
                for rdtype in _ADDRESS_TYPES:
                    key = (target, rdtype)
                    if self._dynamic and key in self._dynamic:
                        uses.add(key)
                    address = node.get(rdtype)
                    if address is not None and key not in seen and key not in in_answer:
                        seen.add(key)
                        out.append(address)
        if below is not None:  # in-bailiwick glue first (RFC 9471), as Knot does
            out.sort(key=lambda r: not r.name.is_subdomain(below))
        return tuple(out)

    def _under_cut(self, key: bytes) -> bool:
        cuts = self._store.cuts
        if not cuts:
            return False
        for at in key_offsets(key):
            above = key[at:]
            if above == self._apex:
                return False
            if above in cuts:
                return True
        return False


def empty_non_terminals(owners: Mapping[bytes, object], apex: bytes) -> frozenset[bytes]:
    """The names between ``apex`` and the owners (lookup keys) that have no data."""
    ents: set[bytes] = set()
    for key in owners:
        at = key[0] + 1 if key[0] else len(key)
        while at < len(key) - len(apex):
            above = key[at:]
            if above in owners or above in ents:
                break
            ents.add(above)
            at += key[at] + 1
    return frozenset(ents)


@dataclass(frozen=True, slots=True)
class PackedTable:
    """A loaded table as a few flat byte strings: what a process hands another.

    Pickling it copies a handful of large buffers (no object per owner), and
    ``unpack_steps`` rebuilds the table a slice at a time.
    """

    origin: bytes  # wire form, as written
    keys: bytes  # every owner's lookup key, concatenated
    blobs: bytes  # every owner's blob, concatenated, in the same order
    blob_ends: array[int]  # where each blob ends ("Q")
    ents: bytes  # empty non-terminals, concatenated
    cuts: bytes
    dnames: bytes


def pack_table(table: ZoneTable) -> PackedTable:
    """The loaded data of ``table`` (pool overlays are not packed)."""
    store = table._store
    ends = array("Q")
    at = 0
    for blob in store.blobs.values():
        at += len(blob)
        ends.append(at)
    origin = table.origin.to_wire()
    assert origin is not None
    return PackedTable(
        origin, b"".join(store.blobs), b"".join(store.blobs.values()), ends,
        b"".join(store.ents), b"".join(store.cuts), b"".join(store.dnames),
    )


def _split_names(joined: bytes) -> Iterator[bytes]:
    at, end = 0, len(joined)
    while at < end:
        start = at
        while joined[at]:
            at += joined[at] + 1
        at += 1
        yield joined[start:at]


def unpack_steps(packed: PackedTable, step: int = 10_000) -> Iterator[ZoneTable | None]:
    """Rebuild a packed table ``step`` owners at a time: None after each slice
    (the caller may yield to its event loop there), the table last."""
    blobs: dict[bytes, bytes] = {}
    ends = packed.blob_ends
    keys, data = packed.keys, packed.blobs
    at = blob_at = 0
    count = 0
    while count < len(ends):
        for blob_end in ends[count : count + step]:
            end = at
            while keys[end]:
                end += keys[end] + 1
            end += 1
            blobs[keys[at:end]] = data[blob_at:blob_end]
            at, blob_at = end, blob_end
        count += step
        yield None
    ents: set[bytes] = set()  # tens of thousands in a big zone: a slice at a time too
    for count, name in enumerate(_split_names(packed.ents), 1):
        ents.add(name)
        if count % step == 0:
            yield None
    origin = name_from_wire(packed.origin)
    yield ZoneTable.from_parts(
        origin, blobs, frozenset(ents), _split_names(packed.cuts), _split_names(packed.dnames)
    )


def wild_owner(encloser: dns.name.Name) -> dns.name.Name:
    return dns.name.Name((_WILD, *encloser.labels))


def minimal_any(node: Node) -> dns.rrset.RRset:
    """RFC 8482 §4.2: answer ANY with one rrset of the node, the lowest type."""
    return node[min(node)]
