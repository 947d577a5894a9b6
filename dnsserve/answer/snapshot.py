"""Frozen snapshots: everything one query reads, built whole and swapped.

Owns the merge of all served zones into one table of prebuilt answers keyed
by ``answer.lookup.answer_key`` (``answer.chaos``'s answers among them), and
the pools' rrsets overlaid onto the zones. The choice of zone for a qname
and the slow path that computes an answer on a miss are ``answer.lookup``'s.

A snapshot is never changed after it is built: a reload or a health change
builds a new one (sharing unchanged prebuilt answers) and the edge swaps the
reference. Pure: no I/O, no clock.

A zone one of whose answers cannot be prebuilt (dnspython raises TooBig when
an answer, with its additional data, cannot fit a message although each
RRset does) is left out whole, as a zone that fails to parse is: the build
goes on without it and names it, with the error, in ``Snapshot.left_out``;
the caller reports it. Nothing here raises for one zone's data.

A large zone (``LAZY_RRSETS`` rrsets or more) that holds no pool is lazy: its
answers are not prebuilt here (that costs about half a millisecond each) but
built when first asked, through the miss index (``answer.misses``), and kept
there. Such a zone is never left out; an answer of it that cannot be built is
the engine's SERVFAIL when asked (``build_snapshot(lazy_rrsets=None)``, as
``dnsserve check`` calls it, builds every answer and reports it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rrset
from dns.rdataclass import RdataClass
from dns.rdatatype import RdataType

from dnsserve.answer.chaos import chaos_answers
from dnsserve.answer.lookup import answer_key, compute, find_zone, in_expired, key_parts, lookup
from dnsserve.answer.misses import MissIndex, build_index
from dnsserve.answer.policies import Selection
from dnsserve.answer.prebuilt import Prebuilt, Variants, render
from dnsserve.health.model import HealthView
from dnsserve.zones.blobs import name_key
from dnsserve.zones.table import Result, ZoneTable

LAZY_RRSETS = 2_000  # a zone with this many rrsets and no pool is answered lazily
_DENIAL_TYPES = frozenset({RdataType.NSEC3, RdataType.RRSIG})

K = TypeVar("K")
V = TypeVar("V")
Entry = Prebuilt | Variants
PoolKey = tuple[dns.name.Name, RdataType]  # (owner, type) a pool answers for


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the engine reads: prebuilt answers and the zones for misses.

    ``base`` holds the zones as loaded; ``zones`` the same with every pool's
    rrset replaced by its current first variant (the slow path reads these).
    ``depends`` maps each pool to the answer keys that use its rrset (in any
    variant), so a health change rebuilds only those; ``zone_pools`` lists
    the pools each zone holds. ``left_out`` names the zones given to
    ``build_snapshot`` that are not served, each with why: an answer of
    theirs could not be prebuilt. ``misses`` is the miss index of ``zones``
    (``answer.misses``): the engine's fast path for names not prebuilt; a
    snapshot that changes only pool selections shares it. ``lazy`` names the
    zones whose answers are built when first asked (``LAZY_RRSETS``).
    """

    zones: Mapping[dns.name.Name, ZoneTable]
    answers: Mapping[bytes, Entry]
    health: HealthView = field(default_factory=HealthView)
    generation: int = 0
    base: Mapping[dns.name.Name, ZoneTable] = field(default_factory=dict)
    selections: Mapping[PoolKey, Selection] = field(default_factory=dict)
    depends: Mapping[PoolKey, frozenset[bytes]] = field(default_factory=dict)
    zone_pools: Mapping[dns.name.Name, frozenset[PoolKey]] = field(default_factory=dict)
    left_out: Mapping[dns.name.Name, str] = field(default_factory=dict)
    misses: MissIndex | None = None
    # Secondary zones past their expire (or with no copy yet): SERVFAIL (``with_expired``).
    expired: frozenset[dns.name.Name] = frozenset()
    lazy: frozenset[dns.name.Name] = frozenset()
    nsid: bytes = b""  # RFC 5001: answered to a query that asks (``answer.edns``); b"": off

    def find_zone(self, qname: dns.name.Name, qtype: int) -> ZoneTable | None:
        return find_zone(self.zones, qname, qtype)

    def compute(self, qname: dns.name.Name, qtype: int, qclass: int) -> Prebuilt:
        """The slow path: an answer not prebuilt (NXDOMAIN, wildcard, referral, …)."""
        return compute(self.zones, qname, qtype, qclass, self.expired)

    def with_expired(self, expired: frozenset[dns.name.Name]) -> Snapshot:
        """A new snapshot where the zones in ``expired`` answer SERVFAIL.

        Their prebuilt answers are dropped (their queries take the slow path,
        which answers SERVFAIL); the zones stay. A zone that leaves the set
        is answered by the slow path until the next snapshot is built (the
        reloader rebuilds one). The engine drops its cached misses when the
        set changes.
        """
        if expired == self.expired:
            return self
        answers = self.answers
        if expired - self.expired:
            answers = MappingProxyType({
                key: entry for key, entry in answers.items()
                if not in_expired(self.zones, *key_parts(key), expired)
            })
        return replace(self, answers=answers, expired=expired)

    def with_selections(
        self,
        changed: Mapping[PoolKey, Selection],
        *,
        health: HealthView | None = None,
        generation: int | None = None,
    ) -> Snapshot:
        """A new snapshot where the pools in ``changed`` answer their new selection.

        Every selection in ``changed`` is stored (its reason too), but only
        the pools whose answers differ (``Selection.answers_same``) are
        rebuilt, and of those only the answers that use them; every other
        prebuilt answer is shared with this snapshot.
        """
        selections = _copied(self.selections)
        selections.update(changed)
        moved = {
            pool for pool, selection in changed.items()
            if pool not in self.selections or not self.selections[pool].answers_same(selection)
        }
        zones, answers = self.zones, self.answers
        depends, zone_pools = self.depends, self.zone_pools
        if moved:
            rrsets = _PoolRRsets(selections)
            zones, zone_pools = self._moved_zones(moved, rrsets)
            keys = set().union(*(depends.get(pool, frozenset()) for pool in moved))
            found = [_found(zones, key) for key in keys]
            rebuilt, uses = _prebuild_dynamic(zones, selections, rrsets, found)
            if self.expired:  # a pool inside an expired zone still answers SERVFAIL
                rebuilt = {k: v for k, v in rebuilt.items()
                           if not in_expired(zones, *key_parts(k), self.expired)}
            answers = {**self.answers, **rebuilt}
            depends = _merge_depends(depends, uses)
        misses = self.misses
        if misses is None or not selections.keys() <= misses.pools:
            # a new pool's owner may be a new name: the index is built again
            misses = build_index(zones, selections)
        return Snapshot(
            zones,
            answers,
            health if health is not None else self.health,
            self.generation + 1 if generation is None else generation,
            self.base,
            MappingProxyType(selections),
            depends,
            zone_pools,
            self.left_out,
            misses,
            self.expired,
            self.lazy,
        )

    def _moved_zones(
        self, moved: set[PoolKey], rrsets: _PoolRRsets
    ) -> tuple[Mapping[dns.name.Name, ZoneTable], Mapping[dns.name.Name, frozenset[PoolKey]]]:
        """``zones`` with the moved pools at their new first variant.

        A zone holding a moved pool gets the moved rrsets on top of its one
        flat overlay (``ZoneTable.with_rrsets`` never stacks overlays); its
        other pools keep the rrset objects they have now.
        """
        zone_pools = _copied(self.zone_pools)
        touched: set[dns.name.Name] = set()
        for pool in moved:
            table = find_zone(self.base, pool[0], pool[1])
            if table is not None:
                touched.add(table.origin)
                zone_pools[table.origin] = zone_pools.get(table.origin, frozenset()) | {pool}
        zones = _copied(self.zones)
        for origin in touched:
            # with_rrsets keeps one flat overlay over the loaded table, so only
            # the moved pools' nodes are touched, whatever the pool count.
            zones[origin] = self.zones[origin].with_rrsets(
                {pool: rrsets.get(pool, 0) for pool in moved if pool in zone_pools[origin]}
            )
        return MappingProxyType(zones), MappingProxyType(zone_pools)



def _candidates(table: ZoneTable) -> Iterable[tuple[dns.name.Name, int]]:
    for qname, qtype in table.rrset_keys():
        if qtype in _DENIAL_TYPES and not table.exists_key(name_key(qname)):
            continue  # an NSEC3 owner name: answered as a name that does not exist
        yield qname, qtype
        if qtype == RdataType.CNAME:
            yield qname, RdataType.A
            yield qname, RdataType.AAAA


def pool_rrset(
    pool: PoolKey,
    selection: Selection,
    k: int,
    parsed: dict[tuple[RdataType, str], dns.rdata.Rdata] | None = None,
) -> dns.rrset.RRset | None:
    """The rrset a pool answers with in variant ``k`` (None: NODATA, fail closed).

    ``parsed`` keeps each value's rdata, so the variants (the same values
    rotated) parse every value once.
    """
    values = selection.values_variants[k] if selection.values_variants else ()
    if not values:
        return None
    owner, rdtype = pool
    cache = {} if parsed is None else parsed
    rdatas = []
    for value in values:
        rdata = cache.get((rdtype, value))
        if rdata is None:
            rdata = cache[rdtype, value] = dns.rdata.from_text(RdataClass.IN, rdtype, value)
        rdatas.append(rdata)
    return dns.rrset.from_rdata_list(owner, selection.ttl, rdatas)


class _PoolRRsets:
    """Each pool's rrset per variant, made once per snapshot build."""

    __slots__ = ("_made", "_parsed", "_selections")

    def __init__(self, selections: Mapping[PoolKey, Selection]) -> None:
        self._selections = selections
        self._made: dict[tuple[PoolKey, int], dns.rrset.RRset | None] = {}
        self._parsed: dict[tuple[RdataType, str], dns.rdata.Rdata] = {}

    def get(self, pool: PoolKey, k: int) -> dns.rrset.RRset | None:
        key = (pool, k)
        if key not in self._made:
            self._made[key] = pool_rrset(pool, self._selections[pool], k, self._parsed)
        return self._made[key]


def _current_zones(
    base: Mapping[dns.name.Name, ZoneTable],
    selections: Mapping[PoolKey, Selection],
    rrsets: _PoolRRsets,
) -> tuple[Mapping[dns.name.Name, ZoneTable], Mapping[dns.name.Name, frozenset[PoolKey]]]:
    """The zones with each pool's rrset at its first variant, and each zone's pools."""
    by_zone: dict[dns.name.Name, dict[PoolKey, dns.rrset.RRset | None]] = {}
    for pool in selections:
        table = find_zone(base, pool[0], pool[1])
        if table is not None:
            by_zone.setdefault(table.origin, {})[pool] = rrsets.get(pool, 0)
    zones = dict(base)
    for origin, replacements in by_zone.items():
        zones[origin] = base[origin].with_rrsets(replacements)
    pools = {origin: frozenset(replacements) for origin, replacements in by_zone.items()}
    return MappingProxyType(zones), MappingProxyType(pools)


# An answer key, its qname, qtype and qclass, and its lookup in the current zones.
Found = tuple[bytes, dns.name.Name, int, int, Result | None]


def _found(zones: Mapping[dns.name.Name, ZoneTable], key: bytes) -> Found:
    qname, qtype, qclass = key_parts(key)
    return key, qname, qtype, qclass, lookup(zones, qname, qtype)


def _prebuild_dynamic(
    zones: Mapping[dns.name.Name, ZoneTable],
    selections: Mapping[PoolKey, Selection],
    rrsets: _PoolRRsets,
    found: Iterable[Found],
    failed: dict[dns.name.Name, str] | None = None,
) -> tuple[dict[bytes, Entry], dict[PoolKey, set[bytes]]]:
    """The answers that use a pool, once per variant of the first pool each uses.

    ``zones`` has every pool at its first variant, and ``found`` the
    lookups made in it. Other pools the same
    answer touches (an MX whose two targets are pools) stay at their first
    variant: one rotation per answer is enough. Answers are grouped by that
    first pool, so its zone is overlaid once per variant whatever the number
    of answers or pools. Returns the answers and, per pool, the keys whose
    answer used it in any variant. With ``failed``, an answer that cannot be
    built is left out and its zone noted there (``_note_failure``); without,
    the error is raised.
    """
    answers: dict[bytes, Entry] = {}
    uses: dict[PoolKey, set[bytes]] = {}
    groups: dict[PoolKey, list[tuple[Found, Prebuilt]]] = {}
    for item in found:
        key, qname, qtype, qclass, result = item
        pools = sorted(p for p in (result.uses if result else ()) if p in selections)
        try:
            if result is None or not pools:
                answers[key] = compute(zones, qname, qtype, qclass)
                continue
            first = render(qname, qtype, qclass, result)
        except Exception as exc:
            if failed is None:
                raise
            _note_failure(failed, zones, qname, qtype, exc)
            continue
        _note(uses, key, result.uses)
        groups.setdefault(pools[0], []).append((item, first))
    for pool, items in groups.items():
        selection = selections[pool]
        variants = {item[0]: [first] for item, first in items}
        table = find_zone(zones, pool[0], pool[1])
        assert table is not None  # the answers above found this pool in it
        for k in range(1, len(selection.values_variants)):
            overlay = table.with_rrsets({pool: rrsets.get(pool, k)})
            for (key, qname, qtype, qclass, _), _ in items:
                if key not in variants:
                    continue  # an earlier variant of it failed
                try:
                    result = overlay.lookup(qname, RdataType(qtype))
                    variants[key].append(render(qname, qtype, qclass, result))
                except Exception as exc:
                    if failed is None:
                        raise
                    _note_failure(failed, zones, qname, qtype, exc)
                    del variants[key]
                    continue
                _note(uses, key, result.uses)
        for key, rendered in variants.items():
            answers[key] = (
                rendered[0] if len(rendered) == 1
                else Variants(tuple(rendered), selection.cum_weights)
            )
    return answers, uses


def _note_failure(
    failed: dict[dns.name.Name, str],
    zones: Mapping[dns.name.Name, ZoneTable],
    qname: dns.name.Name,
    qtype: int,
    exc: Exception,
) -> None:
    """Note the zone that answers ``qname``/``qtype`` as failed (the first error kept)."""
    table = find_zone(zones, qname, qtype)
    origin = table.origin if table is not None else qname
    why = f"the answer to {qname} {RdataType.to_text(qtype)} cannot be built: {exc!r}"
    failed.setdefault(origin, why)


def _copied(mapping: Mapping[K, V]) -> dict[K, V]:
    """A dict copy of ``mapping``, from a dict or a MappingProxyType over one
    without hashing the keys again (dns.name.Name hashes in Python: ~2.5 µs)."""
    if isinstance(mapping, dict | MappingProxyType):
        return mapping.copy()
    return dict(mapping)


def _note(uses: dict[PoolKey, set[bytes]], key: bytes, pools: Iterable[PoolKey]) -> None:
    for pool in pools:
        uses.setdefault(pool, set()).add(key)


def _merge_depends(
    depends: Mapping[PoolKey, frozenset[bytes]], uses: Mapping[PoolKey, set[bytes]]
) -> Mapping[PoolKey, frozenset[bytes]]:
    """``depends`` grown by ``uses`` (a CNAME pool's new target may lead to another pool)."""
    grown = {pool: keys for pool, keys in uses.items() if not keys <= depends.get(pool, set())}
    if not grown:
        return depends
    merged = _copied(depends)
    for pool, keys in grown.items():
        merged[pool] = merged.get(pool, frozenset()) | keys
    return MappingProxyType(merged)


def build_snapshot(
    zones: Mapping[dns.name.Name, ZoneTable],
    *,
    selections: Mapping[PoolKey, Selection] | None = None,
    version: str | None = None,
    identity: str | bytes | None = None,
    generation: int = 0,
    health: HealthView | None = None,
    lazy_rrsets: int | None = LAZY_RRSETS,
    defer_misses: bool = False,
    nsid: bytes = b"",
) -> Snapshot:
    """Prebuild every answer of ``zones`` with each pool at its selection.

    ``defer_misses``: the miss index is built later, by whoever calls its
    ``complete()`` (the slow path answers misses until then).

    Zones of ``lazy_rrsets`` rrsets or more without a pool are left to be
    answered when first asked (None: every zone is prebuilt).

    A zone an answer of which cannot be built is left out and named in
    ``left_out``. Leaving a zone out changes who answers its names (a
    parent's delegation, or nobody), so the build starts again without it;
    each round leaves out at least one zone, so there are at most as many
    rounds as zones, and one when every zone builds.
    """
    selections = dict(selections or {})
    serving = dict(zones)
    left_out: dict[dns.name.Name, str] = {}
    while True:
        failed: dict[dns.name.Name, str] = {}
        snapshot = _build(
            serving, selections, version, identity, generation, health, failed, lazy_rrsets,
            defer_misses,
        )
        left_out.update(failed)
        removed = [origin for origin in failed if serving.pop(origin, None) is not None]
        if not removed:  # no failure, or none a zone can be blamed for: this is the snapshot
            return replace(snapshot, left_out=MappingProxyType(left_out), nsid=nsid)


def _build(
    zones: Mapping[dns.name.Name, ZoneTable],
    selections: dict[PoolKey, Selection],
    version: str | None,
    identity: str | bytes | None,
    generation: int,
    health: HealthView | None,
    failed: dict[dns.name.Name, str],
    lazy_rrsets: int | None = None,
    defer_misses: bool = False,
) -> Snapshot:
    """One round of ``build_snapshot``; the zones an answer failed for go to ``failed``."""
    rrsets = _PoolRRsets(selections)
    current, zone_pools = _current_zones(zones, selections, rrsets)
    answers: dict[bytes, Entry] = {}
    dynamic: dict[bytes, Found] = {}
    lazy = frozenset(
        origin for origin, table in current.items()
        if lazy_rrsets is not None and origin not in zone_pools
        and _at_least(table.rrset_keys(), lazy_rrsets)
    )
    candidates = [c for o, t in current.items() if o not in lazy for c in _candidates(t)]
    candidates += [(owner, rdtype) for owner, rdtype in selections]
    for qname, qtype in candidates:
        key = answer_key(qname, qtype, RdataClass.IN)
        if key in answers or key in dynamic:
            continue
        try:
            result = lookup(current, qname, qtype)
            if result is not None and result.uses:
                dynamic[key] = (key, qname, qtype, RdataClass.IN, result)
            else:
                answers[key] = compute(current, qname, qtype, RdataClass.IN)
        except Exception as exc:  # one zone's data must not stop the others being served
            _note_failure(failed, current, qname, qtype, exc)
    prebuilt, uses = _prebuild_dynamic(current, selections, rrsets, dynamic.values(), failed)
    answers.update(prebuilt)
    answers.update(chaos_answers(version, identity))
    depends = {pool: frozenset(uses.get(pool, ())) for pool in selections}
    depends.update((pool, frozenset(keys)) for pool, keys in uses.items())
    return Snapshot(
        current,
        answers,
        health if health is not None else HealthView(),
        generation,
        MappingProxyType(dict(zones)),
        MappingProxyType(selections),
        MappingProxyType(depends),
        zone_pools,
        misses=build_index(current, selections, defer=defer_misses),
        lazy=lazy,
    )


def _at_least(items: Iterable[object], n: int) -> bool:
    """Whether ``items`` yields ``n`` items or more (read no further)."""
    return n <= 0 or any(True for k, _ in enumerate(items, 1) if k >= n)
