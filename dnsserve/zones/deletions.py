"""The deletion guard: may a reload replace one version of a zone by the next?

Pure [C]: owns the rules below, applied to two ``ZoneContent``s (the old
version, accepted and served, and the new one, loaded and compiled). It must
not load zones, read the state file or the clock, or apply ``--force``: the
caller skips the check once when told to. The same check runs at a reload
(old = the served version) and at start (old = the last accepted version in
the state file).

The lesson it keeps: in October 2025 an automation race emptied a regional
endpoint's DNS record, and everything built on that name failed. A reload
that would empty or delete what is served is refused, and the refusal says
what would go.

For the guard a record is (owner, type, class, rdata): a TTL change is a
change in the diff and the hash, never a deletion.

    #  in the old zone                in the new zone                verdict
    -  -----------------------------  -----------------------------  ----------------------
    1  the apex SOA                   no apex SOA                    refused: the SOA
                                                                     would go
    2  apex NS records                no apex NS                     refused: the NS would
                                                                     go
    3  records at a pool's owner      no record at that owner        refused: the pool
                                                                     name would go
    4  an RRset (owner, type)         nothing at (owner, type),      refused: the RRset
                                      the owner kept or gone         would be emptied
    5  an RRset (owner, T), T not     a CNAME at that owner          accepted: the owner
       CNAME, not a pool's (owner,T)                                 still answers (alias)
    6  a CNAME, not a pool's          other data at that owner       accepted: the owner
                                                                     still answers
    7  n records of an RRset          fewer, the RRset kept          a change: 9 counts it
    8  a record                       the same rdata, another TTL    a change: not counted
    9  g records gone (by 4 and 7,    -                              refused when g > max(
       or their rdata replaced; the                                  fraction x old records,
       apex SOA never counts)                                        SMALL_ZONE_ALLOWANCE)

Rules 1-3 come first; rule 4 does not repeat what they reported. A zone
compiled by ``zones.compile`` always has its apex SOA and NS: rules 1 and 2
can fire only for a content built another way, and stay so that the guard
does not depend on that.
Rule 9 divides by the old zone's record count. ``SMALL_ZONE_ALLOWANCE`` (3)
records may always go, so below 30 records the fraction alone never refuses
removing one host's A, AAAA and MX, nor 1 record of 5. A replaced rdata
counts (the old address is gone for clients); the apex SOA does not (every
edit replaces it). Each refusal is one line naming the zone and what would
go: at most ``LISTED`` items, then "and N more".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import dns.name
from dns.rdatatype import RdataType

from dnsserve.zones.versions import Record, ZoneContent, ZoneDiff, canonical_order, diff

SMALL_ZONE_ALLOWANCE = 3  # records that may always go (rule 9)
LISTED = 10  # items named in one refusal line


def check_deletions(
    old: ZoneContent,
    new: ZoneContent,
    *,
    protected: Collection[tuple[dns.name.Name, RdataType]] = (),
    max_delete_fraction: float = 0.1,
    changes: ZoneDiff | None = None,
) -> list[str]:
    """The rules of the module docstring: one line per refusal; empty = accepted.

    ``protected`` holds the pools' (owner, type), of any zone; ``changes``
    is ``diff(old, new)`` when the caller has it already.
    """
    if not 0.0 <= max_delete_fraction <= 1.0:
        raise ValueError(f"max_delete_fraction must be in [0, 1], got {max_delete_fraction}")
    if old.origin != new.origin:
        raise ValueError(f"not one zone: {old.origin} and {new.origin}")
    changes = diff(old, new) if changes is None else changes
    if not changes.removed:
        return []
    zone = old.origin.to_text()
    apex = old.origin.to_digestable()
    pools = {(owner.to_digestable(), RdataType(rdtype)) for owner, rdtype in protected}
    touched = {r.owner for r in changes.removed}
    left: dict[bytes, set[RdataType]] = {}  # what the new zone has at the touched owners
    for r in new.records:
        if r.owner in touched:
            left.setdefault(r.owner, set()).add(r.rdtype)
    emptied = [
        key
        for key in dict.fromkeys((r.owner, r.rdtype) for r in changes.removed)
        if key[1] not in left.get(key[0], ())
    ]
    refusals = _apex(zone, apex, emptied, changes.removed)
    gone_pools = sorted(
        {owner for owner, _ in pools if owner in touched and owner not in left},
        key=lambda owner: canonical_order(_name(owner)),
    )
    if gone_pools:  # rule 3
        items = [f"{_name(o)} (pool {_types(t for p, t in pools if p == o)})" for o in gone_pools]
        refusals.append(f"{zone}: {len(items)} pool name(s) would go: {_listed(items)}")
    lost: dict[bytes, list[RdataType]] = {}  # rules 4, 5, 6
    for owner, rdtype in emptied:
        if (owner == apex and rdtype in (RdataType.SOA, RdataType.NS)) or owner in gone_pools:
            continue
        if (owner, rdtype) not in pools and _still_answers(rdtype, left.get(owner, set())):
            continue
        lost.setdefault(owner, []).append(rdtype)
    if lost:
        items = [
            f"{_name(o)} {_types(types)}" + ("" if o in left else " (the name would go)")
            for o, types in lost.items()
        ]
        count = sum(len(types) for types in lost.values())
        refusals.append(f"{zone}: {count} RRset(s) would be emptied: {_listed(items)}")
    gone = _gone(apex, changes)  # rules 7, 8, 9
    if len(gone) > max(max_delete_fraction * len(old), SMALL_ZONE_ALLOWANCE):
        refusals.append(
            f"{zone}: {len(gone)} of {len(old)} records would go ({len(gone) / len(old):.1%},"
            f" more than {max_delete_fraction:.0%}): {_listed([_brief(r) for r in gone])}"
        )
    return refusals


def _apex(
    zone: str, apex: bytes, emptied: list[tuple[bytes, RdataType]], removed: Sequence[Record]
) -> list[str]:
    """Rules 1 and 2."""
    out = []
    if (apex, RdataType.SOA) in emptied:
        out.append(f"{zone}: the apex SOA would go")
    if (apex, RdataType.NS) in emptied:
        ns = [_rdata_text(r) for r in removed if r.owner == apex and r.rdtype == RdataType.NS]
        out.append(f"{zone}: the apex NS records would go: {_listed(ns)}")
    return out


def _still_answers(rdtype: RdataType, left: set[RdataType]) -> bool:
    """Rules 5 and 6: an emptied RRset whose owner still answers its queries."""
    if rdtype == RdataType.CNAME:
        return bool(left)
    return RdataType.CNAME in left


def _gone(apex: bytes, changes: ZoneDiff) -> list[Record]:
    """Removed records whose rdata is not back (rule 8), the apex SOA left out."""
    back = {(r.owner, r.rdtype, r.rdclass, r.rdata) for r in changes.added}
    return [
        r
        for r in changes.removed
        if (r.owner, r.rdtype, r.rdclass, r.rdata) not in back
        and not (r.owner == apex and r.rdtype == RdataType.SOA)
    ]


def _name(owner: bytes) -> dns.name.Name:
    return dns.name.from_wire(owner, 0)[0]


def _types(types: Iterable[RdataType]) -> str:
    return " ".join(t.name for t in sorted(types))


def _rdata_text(record: Record) -> str:
    return str(record.to_rdata().to_text())


def _brief(record: Record) -> str:
    return f"{_name(record.owner)} {record.rdtype.name} {_rdata_text(record)}"


def _listed(items: Sequence[str]) -> str:
    more = len(items) - LISTED
    return "; ".join(items[:LISTED]) + (f"; and {more} more" if more > 0 else "")
