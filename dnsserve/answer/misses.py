"""Misses on a fast path: the answer to a name with no prebuilt answer, from its wire bytes.

Owns the miss index of a snapshot's zones and the bodies it shares between
misses. Per query it reads only the answer key (lower-cased qname wire,
qtype, qclass): it walks up the qname's labels with one dict lookup per
label to the closest encloser, reads what was decided for that name when the
index was built, and serves a body memoized for (encloser, qtype as far as
it matters, length of the part of the qname below the encloser). No
dnspython, no name objects, per query.

Why a body can be shared. A prebuilt body is rendered with name compression
against the question at offset 12. For a qname P + E (E the closest
encloser, P labels that do not exist), the answer's records are the zone's
own (owners and rdata names of the zone, the qname itself as a wildcard's
owner), so their compression pointers point into the question only at
suffixes of the qname that are E or above (their offsets fixed by the length
of P), or at the whole qname (offset 12). A suffix of P may itself be named
in the zone's data (an rdata target, an SOA RNAME, an owner in a zone it
shadows) without existing: the index holds every such name as a name of its
own, which answers as below its encloser, so the walk stops there and a body
is shared only by qnames that run through it at the same offset. So every
qname with the same first name found, the same length below it and the same
outcome gets the same body, byte for byte, whatever its labels. The
decisions, by the rules of ``ZoneTable.lookup`` (E: the first name of the
index found walking up; a mentioned name decides as its encloser's "below"):

    walking up from the qname                outcome           template type
    no name of the index                      REFUSED (no zone) -
    qname is E, DS                            slow path         -
    qname is E, a cut/DNAME above it          referral / slow   one per name
    qname is E, a cut itself                  referral          one per name
    qname is E                                node              qtype if the node has it,
                                                                 ANY, or it has a CNAME;
                                                                 else one NODATA
    below E, a cut/DNAME at or above E        referral / slow   one per name
    below E, *.E a cut                        referral          one per name
    below E, *.E exists                       wildcard node     as "qname is E"
    below E, otherwise                        NXDOMAIN          one per name

Bodies are learnt, not predicted: the first query of a (name, type, length)
is answered by the slow path (``answer.lookup``) and its body kept. An
answer that used a pool's rrset (``Result.uses``) depends on health: its
(name, type, length) is marked, and its body is kept only as long as the
zones it was built from are the current ones (a flip makes new ones). So the
index and its other bodies stay valid across snapshots that change only
pool selections (health flips); ``answer.snapshot`` hands the same index on.

Memory. The index is one dict from each name (lower-cased wire) to what was
decided for it, and the decisions are shared: a handful of ``_Name``
objects for a whole zone (one per distinct outcome and set of types), so a
name costs its dict entry only, and the dict's keys are the table's own
key objects (``ZoneTable.wire_types`` / ``empty_keys``), not copies. Only
names the data mentions without them existing are new ``bytes``. The build
keeps nothing per name beyond that dict (about 60 bytes a name: 40 MB for a
million-record zone's 700,000 names, where a set of types and an object per
name took 400 MB). A body is memoized under (the encloser's name, template
type, length below it).

Must not: change or reach into ``zones.table`` (the index is built from
``ZoneTable``'s public reading API only), hold anything per query beyond the
bounded body memo, or decide anything the slow path would decide otherwise
(the unit tests compare both byte for byte). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import dns.name
import dns.rdata
from dns.rcode import Rcode
from dns.rdatatype import RdataType

from dnsserve.answer.lookup import find_zone, key_parts, lookup
from dnsserve.answer.prebuilt import Prebuilt, empty, render
from dnsserve.zones.blobs import is_below
from dnsserve.zones.table import ZoneTable, denial_only

TEMPLATES = 20_000  # bodies kept at most; then the memo starts again (a flood costs relearning)

# Outcomes of a name, for the name itself ("at") or for names below it ("below").
SLOW = 0  # DNAME, DS at an existing name: the slow path answers
FIXED = 1  # one body whatever the qtype: a referral or NXDOMAIN
NODE = 2  # the answer at a node (the name's own, or a wildcard's)

_FIXED_TYPE = 0x10000  # the template type of a FIXED outcome
_NODATA_TYPE = 0x10001  # the template type of NODATA at a node, whatever the qtype

_DS = int(RdataType.DS)
_NSEC3 = int(RdataType.NSEC3)
_CNAME = int(RdataType.CNAME)
_NS = int(RdataType.NS)
_DNAME = int(RdataType.DNAME)
_ANY = int(RdataType.ANY)
# qtypes at a CNAME whose bodies are kept for good (the ones prebuilt for an eager zone)
_CHASED = frozenset({int(RdataType.A), int(RdataType.AAAA), int(RdataType.CNAME), _ANY})
_NOTIMP_TYPES = frozenset({int(RdataType.MAILA), int(RdataType.MAILB)})
_WILD = b"\x01*"
# Types whose rdata is one uncompressed name at an offset (after a preference, or
# SRV's priority, weight and port), as the zone tables store them.
_NAME_AT = {
    int(RdataType.CNAME): 0, int(RdataType.NS): 0, int(RdataType.PTR): 0,
    int(RdataType.DNAME): 0, int(RdataType.MX): 2, int(RdataType.KX): 2, int(RdataType.RT): 2,
    int(RdataType.AFSDB): 2, int(RdataType.SRV): 6,
}
_SOA = int(RdataType.SOA)
# Types whose rdata holds no domain name: their records are not read for names.
# DNSSEC's records are read for none either: an RRSIG's signer is the apex, an NSEC's
# next name an owner of the zone, and no answer adds records for them (decoding a
# signed zone's every RRSIG and NSEC here cost most of its reload).
_NAMELESS = frozenset({
    RdataType.A, RdataType.AAAA, RdataType.TXT, RdataType.SPF, RdataType.CAA,
    RdataType.SSHFP, RdataType.TLSA, RdataType.HINFO, RdataType.LOC, RdataType.DS,
    RdataType.DNSKEY, RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3,
    RdataType.NSEC3PARAM, RdataType.CDS, RdataType.CDNSKEY,
})

PoolKey = tuple[dns.name.Name, RdataType]


class _Name:
    """What was decided, when the index was built, for a name of the index (one
    that exists, or one the data mentions: that answers as below its encloser).
    Shared by every name decided alike (``_Decisions``)."""

    __slots__ = ("at", "at_types", "below", "below_types")

    def __init__(
        self,
        at: int,
        at_types: frozenset[int] | None,
        below: int,
        below_types: frozenset[int] | None,
    ) -> None:
        self.at = at  # SLOW | FIXED | NODE, for the name itself
        # NODE: the qtypes with an answer of their own (None: every qtype, the node has a CNAME)
        self.at_types = at_types
        self.below = below  # the same for names below it that do not exist
        self.below_types = below_types


# A memoized body's key: (the encloser's name, template type, length of the qname below it).
TemplateKey = tuple[bytes, int, int]


class MissIndex:
    """The miss index of a set of zones, and the bodies learnt from it.

    ``answer(key, zones)`` gives the answer to a query not prebuilt, or None
    when the slow path must answer it. ``zones`` is the current snapshot's
    (the one whose pools are at their current selection): the slow path
    learns from it; an answer that depends on pools is never kept.
    """

    __slots__ = (
        "_kept", "_longest", "_names", "_notimp", "_pool_zones", "_pooled_bodies", "_refused",
        "_source", "_templates", "limit", "pools",
    )

    def __init__(
        self,
        names: dict[bytes, _Name] | None,
        pools: frozenset[PoolKey],
        *,
        limit: int = TEMPLATES,
        source: Mapping[dns.name.Name, ZoneTable] | None = None,
    ) -> None:
        # None: a deferred index (``build_index(defer=True)``), which declines
        # every name (the slow path answers) until ``complete`` builds it
        self._names = names
        self._source = source
        # no name of the index is longer: the walk starts at the first suffix this short
        self._longest = max(map(len, names), default=1) if names is not None else 1
        self.pools = pools  # the pools the index was built with (names they add exist)
        self.limit = limit
        self._templates: dict[TemplateKey, Prebuilt | None] = {}  # bounded by ``limit``
        # bounded by the zones' names and types
        self._kept: dict[TemplateKey, Prebuilt | None] = {}
        # bodies that use a pool (None in the memos above), for the zones they were built from
        self._pool_zones: Mapping[dns.name.Name, ZoneTable] | None = None
        self._pooled_bodies: dict[TemplateKey, Prebuilt] = {}
        self._refused = empty(Rcode.REFUSED)
        self._notimp = empty(Rcode.NOTIMP)

    @property
    def ready(self) -> bool:
        """Whether the index is built (a deferred one: once ``complete`` ran)."""
        return self._names is not None

    def complete(self) -> MissIndex:
        """Build a deferred index (at most once; harmless to call again). Returns self.

        Safe while another thread answers from it: until the names are in
        place it declines, and they are assigned last, in one step.
        """
        source = self._source
        if self._names is None and source is not None:
            built = build_index(source, self.pools, limit=self.limit)
            self._longest = built._longest
            self._names = built._names
            self._source = None
        return self

    def __len__(self) -> int:
        """Bodies in the bounded memo now (names below the index's names)."""
        return len(self._templates)

    @property
    def kept(self) -> int:
        """Bodies of the index's names themselves (a lazy zone's answers among them)."""
        return len(self._kept)

    def answer(
        self, key: bytes, zones: Mapping[dns.name.Name, ZoneTable]
    ) -> Prebuilt | None:
        names = self._names
        if names is None:
            return None  # deferred, not built yet: the slow path answers
        if key[-2] or key[-1] != 1:  # a class other than IN (CHAOS names are prebuilt)
            return self._refused
        qtype = (key[-4] << 8) | key[-3]
        if 250 < qtype < 255:  # IXFR, AXFR: REFUSED here; MAILB, MAILA: NOTIMP
            return self._notimp if qtype in _NOTIMP_TYPES else self._refused
        end = len(key) - 4
        i = 0
        start = end - self._longest
        while i < start:
            i += key[i] + 1
        while True:
            name = key[i:end]
            info = names.get(name)
            if info is not None:
                break
            n = key[i]
            if n == 0:
                return self._refused  # in no zone we serve
            i += n + 1
        if i:
            kind, types = info.below, info.below_types
        else:
            if qtype == _DS:
                return None  # DS: the parent side answers at cuts and apexes
            kind, types = info.at, info.at_types
        if kind == FIXED:
            t = _FIXED_TYPE
        elif kind == NODE:
            t = qtype if types is None or qtype in types else _NODATA_TYPE
        else:
            return None
        k = (name, t, i)
        # names of the index themselves have finitely many bodies: kept for good (in a
        # lazy zone they are its answers); below them, and any qtype after a CNAME, bounded
        memo = (
            self._templates
            if i or (t == qtype and types is None and qtype not in _CHASED)
            else self._kept
        )
        if k in memo:
            body = memo[k]
            return body if body is not None else self._pooled(k, key, zones)
        return self._learn(k, key, zones, memo)

    def _pooled(
        self, k: TemplateKey, key: bytes, zones: Mapping[dns.name.Name, ZoneTable]
    ) -> Prebuilt:
        """A body that uses a pool: shared by its shape only within one snapshot's zones."""
        if zones is not self._pool_zones:  # a health flip (or a reload): pools moved
            self._pool_zones = zones
            self._pooled_bodies = {}
        body = self._pooled_bodies.get(k)
        if body is None:
            qname, qtype, qclass = key_parts(key)
            result = lookup(zones, qname, qtype)
            if result is None:
                return self._refused
            body = render(qname, qtype, qclass, result)
            if len(self._pooled_bodies) >= self.limit:
                self._pooled_bodies.clear()
            self._pooled_bodies[k] = body
        return body

    def _learn(
        self,
        k: TemplateKey,
        key: bytes,
        zones: Mapping[dns.name.Name, ZoneTable],
        memo: dict[TemplateKey, Prebuilt | None],
    ) -> Prebuilt:
        """Answer by the slow path; keep the body unless it depends on a pool."""
        qname, qtype, qclass = key_parts(key)
        result = lookup(zones, qname, qtype)
        if result is None:  # not expected: the index found a zone
            return self._refused
        body = render(qname, qtype, qclass, result)
        if memo is self._templates and len(memo) >= self.limit:
            memo.clear()
        memo[k] = None if result.uses else body
        return body


class Outside:
    """A miss index that declines every name at or below one of ``origins``.

    While a secondary zone is expired (``Snapshot.expired``) the slow path
    answers its names (SERVFAIL), and only it knows a zone with no copy yet;
    names in no such zone are answered by ``index`` as ever.
    """

    __slots__ = ("_index", "_origins")

    def __init__(self, index: MissIndex, origins: Iterable[dns.name.Name]) -> None:
        self._index = index
        self._origins = frozenset(_wire(origin) for origin in origins)

    @property
    def index(self) -> MissIndex:
        return self._index

    def answer(
        self, key: bytes, zones: Mapping[dns.name.Name, ZoneTable]
    ) -> Prebuilt | None:
        origins = self._origins
        end = len(key) - 4
        i = 0
        while True:
            if key[i:end] in origins:
                return None
            n = key[i]
            if n == 0:
                return self._index.answer(key, zones)
            i += n + 1


def build_index(
    zones: Mapping[dns.name.Name, ZoneTable],
    pools: Iterable[PoolKey] = (),
    *,
    limit: int = TEMPLATES,
    defer: bool = False,
) -> MissIndex:
    """The miss index of ``zones``, the pools' rrsets overlaid on them.

    ``defer``: build nothing now (a million records take seconds); the index
    declines every name, so the slow path answers, until ``complete()``.

    ``pools`` are the (owner, type) every pool answers for: a pool's owner
    exists even when its rrset is empty (NODATA), and a node holding a pool
    keeps an answer per qtype of the pool's type.
    """
    pool_set = frozenset(pools)
    if defer:
        return MissIndex(None, pool_set, limit=limit, source=zones)
    origins = {_wire(origin): origin for origin in zones}
    by_zone: dict[bytes, list[PoolKey]] = {}
    for pool in pool_set:
        table = find_zone(zones, pool[0], pool[1])
        if table is not None:
            by_zone.setdefault(_wire(table.origin), []).append(pool)
    names: dict[bytes, _Name] = {}
    decisions = _Decisions()
    mentioned: set[bytes] = set()
    for origin_wire, origin in origins.items():
        _Zone(zones[origin], origin_wire, origins, by_zone.get(origin_wire, ()),
              decisions).add_to(names, mentioned)
    # A name the data mentions that does not exist is a name of its own: below it,
    # the answer's names may compress against it. It answers as below its encloser
    # (a name in no zone needs no entry: the walk finds nothing and answers REFUSED).
    # A mentioned name found on the way up decides as that encloser's "below" too.
    for name in mentioned:
        chain: list[bytes] = []
        while name not in names:
            if not name[0]:
                chain = []  # in no zone we serve
                break
            chain.append(name)
            name = name[name[0] + 1 :]
        if chain:
            encloser = names[name]
            below, types = encloser.below, encloser.below_types
            shared = decisions.get(below, types, below, types)
            for suffix in chain:
                names[suffix] = shared
    return MissIndex(names, pool_set, limit=limit)


class _Decisions:
    """One ``_Name`` per distinct decision, and one frozenset per set of types."""

    def __init__(self) -> None:
        self._names: dict[tuple[int, frozenset[int] | None, int, frozenset[int] | None],
                          _Name] = {}
        self._types: dict[frozenset[int], frozenset[int]] = {}

    def get(self, at: int, at_types: frozenset[int] | None, below: int,
            below_types: frozenset[int] | None) -> _Name:
        key = (at, at_types, below, below_types)
        found = self._names.get(key)
        if found is None:
            found = self._names[key] = _Name(at, at_types, below, below_types)
        return found

    def node_types(self, types: Iterable[int]) -> frozenset[int] | None:
        """The qtypes with an answer of their own at a node of ``types`` (None: a CNAME)."""
        shared = frozenset(types)
        if _CNAME in shared:
            return None  # a CNAME: each qtype follows it to its own answer
        shared |= _ANY_ONLY
        return self._types.setdefault(shared, shared)


_ANY_ONLY = frozenset({_ANY})


class _Zone:
    """One zone's names in wire form, and the decisions of ``ZoneTable.lookup`` for them.

    Reads the table owner by owner (``wire_types``, ``empty_keys``) and keeps
    nothing per name but the index's entry: the zone cuts and DNAMEs above a
    name are found by walking up its labels, not by a map of every name.
    """

    def __init__(
        self,
        table: ZoneTable,
        origin: bytes,
        origins: Mapping[bytes, object],
        pools: Iterable[PoolKey],
        decisions: _Decisions,
    ) -> None:
        self.table = table
        self.origin = origin
        self.origins = origins
        # a zone we serve below this one holds the names at and below its origin
        self.inner = any(o != origin and is_below(o, origin) for o in origins)
        self.decisions = decisions
        self.cuts = table.cut_keys()
        self.dnames = table.dname_keys()
        # the pools' (owner, types) the table may not hold (pools not overlaid), and
        # the names they make exist (the owners and every name up to the apex)
        self.pool_types: dict[bytes, set[int]] = {}
        for pool_owner, pool_type in pools:
            self.pool_types.setdefault(_wire(pool_owner), set()).add(int(pool_type))
        self.pool_names: set[bytes] = set()
        for owner in self.pool_types:
            for suffix in _suffixes(owner):
                if len(suffix) < len(origin):
                    break
                self.pool_names.add(suffix)

    def add_to(self, names: dict[bytes, _Name], mentioned: set[bytes]) -> None:
        """Decide every name of the zone into ``names``; the names its data mentions
        that do not exist in it (or that a zone below it holds) into ``mentioned``."""
        table, pool_types, inner = self.table, self.pool_types, self.inner
        for key, types in table.wire_types():
            if _NSEC3 in types and denial_only(types):
                continue  # an NSEC3 owner name does not exist (RFC 5155 §7.2.8)
            if inner and self.shadowed(key):
                mentioned.add(key)  # a deeper zone we serve answers it
                continue
            extra = pool_types.get(key)
            names[key] = self.decide(key, types if extra is None else extra.union(types))
            if not _NAMELESS.issuperset(types):
                for name in _names_at(table, key):
                    if not self.exists(name) or (inner and self.shadowed(name)):
                        mentioned.add(name)
        for key in table.empty_keys():
            if key in names:
                continue  # a pool's owner at an empty non-terminal: decided with its types
            if inner and self.shadowed(key):
                mentioned.add(key)
                continue
            names[key] = self.decide(key, pool_types.get(key, ()))
        for key in self.pool_names:  # pools the table does not hold (not overlaid)
            if key in names or table.exists_key(key):
                continue
            if inner and self.shadowed(key):
                mentioned.add(key)
                continue
            names[key] = self.decide(key, pool_types.get(key, ()))

    def exists(self, name: bytes) -> bool:
        return self.table.exists_key(name) or name in self.pool_names

    def shadowed(self, name: bytes) -> bool:
        """A zone we serve below this one holds ``name``."""
        while len(name) > len(self.origin):
            if name in self.origins:
                return True
            name = name[name[0] + 1 :]
        return False

    def _own(self, name: bytes) -> int | None:
        """The outcome a cut (referral) or a DNAME at ``name`` gives names below it."""
        if name in self.cuts:
            return FIXED
        if name in self.dnames:
            return SLOW
        return None

    def _above(self, name: bytes) -> int | None:
        """The outcome of the top-most cut or DNAME strictly above ``name`` (None: none)."""
        found = None
        if (self.cuts or self.dnames) and name != self.origin:
            stop = len(self.origin)
            at = name[0] + 1
            while True:
                above = name[at:]
                own = self._own(above)
                if own is not None:
                    found = own  # the one nearest the apex wins
                if len(above) <= stop:
                    return found
                at += name[at] + 1
        return found

    def decide(self, name: bytes, types: Iterable[int]) -> _Name:
        """The outcomes for ``name`` (of ``types``) and for names below it."""
        strict = self._above(name)
        inclusive = strict if strict is not None else self._own(name)
        node_types = self.decisions.node_types
        if strict is not None:
            at, at_types = strict, None
        elif name in self.cuts:
            at, at_types = FIXED, None  # DS at the cut is sent to the slow path
        else:
            at, at_types = NODE, node_types(types)
        if inclusive is not None:
            below, below_types = inclusive, None
        else:
            source = _WILD + name
            if source in self.cuts:
                below, below_types = FIXED, None
            elif self.exists(source):
                extra = self.pool_types.get(source, ())
                below, below_types = NODE, node_types([*self.table.types_of(source), *extra])
            else:
                below, below_types = FIXED, None  # NXDOMAIN
        return self.decisions.get(at, at_types, below, below_types)


def _names_at(table: ZoneTable, key: bytes) -> Iterator[bytes]:
    """The names (lower-cased wire) in the rdata of owner ``key``, read from its stored
    wire form where the type's layout is simple, else from the decoded records."""
    stored = table.wire_node(key)
    rare = stored is None  # only in a pool's overlay: decoded
    for rdtype, _, rdatas in stored[1] if stored is not None else ():
        if rdtype in _NAMELESS:
            continue
        at = _NAME_AT.get(rdtype)
        if at is not None:
            yield from (rdata[at:].lower() for rdata in rdatas)
        elif rdtype == _SOA:
            for rdata in rdatas:
                end = _name_end(rdata, 0)
                yield rdata[:end].lower()
                yield rdata[end : _name_end(rdata, end)].lower()
        else:
            rare = True
    if rare:
        for rdtype, rrset in table.node_by_key(key).items():
            if rdtype not in _NAMELESS:
                for rdata in rrset:
                    yield from (_wire(n) for n in rdata_names(rdata))


def _name_end(wire: bytes, at: int) -> int:
    """The offset just past the uncompressed name at ``at``."""
    while wire[at]:
        at += wire[at] + 1
    return at + 1


def _wire(name: dns.name.Name) -> bytes:
    wire = name.to_wire()
    assert wire is not None  # None only when writing to a file
    return wire.lower()


def _suffixes(wire: bytes) -> Iterator[bytes]:
    """``wire`` and every name above it, the root included."""
    i = 0
    while True:
        yield wire[i:]
        if wire[i] == 0:
            return
        i += wire[i] + 1


def rdata_names(rdata: dns.rdata.Rdata) -> Iterator[dns.name.Name]:
    """Every domain name in ``rdata``'s fields (targets, SOA MNAME/RNAME, HIP servers...)."""
    cls = type(rdata)
    slots = _SLOTS.get(cls)
    if slots is None:
        slots = _SLOTS[cls] = tuple(s for c in cls.__mro__ for s in getattr(c, "__slots__", ()))
    for slot in slots:
        value = getattr(rdata, slot, None)
        if isinstance(value, dns.name.Name):
            yield value
        elif isinstance(value, tuple | list):
            yield from (v for v in value if isinstance(v, dns.name.Name))


_SLOTS: dict[type, tuple[str, ...]] = {}  # each rdata class's fields, read once
