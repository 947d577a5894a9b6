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
   10  RRSIGs                         other RRSIGs (a re-signing)    a change: 9 does not
                                                                     count signatures

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

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TypeVar

import dns.name
from dns.rdatatype import RdataType

from dnsserve.zones.versions import (
    Record,
    ZoneContent,
    ZoneDiff,
    canonical_order,
    diff,
    record_keys,
)

T = TypeVar("T")

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
    return [line for _, line in deletion_refusals(
        old, new, protected=protected, max_delete_fraction=max_delete_fraction, changes=changes)]


def deletion_refusals(
    old: ZoneContent,
    new: ZoneContent,
    *,
    protected: Collection[tuple[dns.name.Name, RdataType]] = (),
    max_delete_fraction: float = 0.1,
    changes: ZoneDiff | None = None,
) -> list[tuple[str, str]]:
    """``check_deletions``' refusals, each with the rule id that names it (``RULE_IDS``):
    what ``dnsserve check --against`` reports at review time."""
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
    removed = list(record_keys(changes.removed))
    left = new.types_at({owner for owner, _, _ in removed})  # the new zone at those owners
    emptied = [
        (owner, RdataType(rdtype))
        for owner, rdtype in dict.fromkeys((owner, rdtype) for owner, rdtype, _ in removed)
        if rdtype not in left.get(owner, ())
    ]
    gone_pools = sorted(
        {owner for owner, _ in emptied if owner not in left} & {owner for owner, _ in pools},
        key=lambda owner: canonical_order(_name(owner)),
    )
    reported = {(apex, RdataType.SOA), (apex, RdataType.NS)}
    rest = [k for k in emptied if k not in reported and k[0] not in gone_pools]
    too_many = _too_many(zone, len(old), _gone(apex, changes, removed), max_delete_fraction)
    return [
        *_apex(zone, apex, emptied, changes.removed),
        *(("delete-pool-name", line) for line in _pool_names(zone, gone_pools, pools)),
        *(("delete-rrset", line) for line in _emptied(zone, rest, pools, left)),
        *(("delete-too-many", line) for line in too_many),
    ]


# The rule ids of deletion_refusals (posture.findings' catalogue names them too).
RULE_IDS = ("delete-apex-soa", "delete-apex-ns", "delete-pool-name", "delete-rrset",
            "delete-too-many")


def _apex(
    zone: str, apex: bytes, emptied: list[tuple[bytes, RdataType]], removed: Sequence[bytes]
) -> list[tuple[str, str]]:
    """Rules 1 and 2."""
    out = []
    if (apex, RdataType.SOA) in emptied:
        out.append(("delete-apex-soa", f"{zone}: the apex SOA would go"))
    if (apex, RdataType.NS) in emptied:
        records = [Record.from_wire(rr) for rr in removed if rr.startswith(apex)]
        ns = [r for r in records if r.owner == apex and r.rdtype == RdataType.NS]
        out.append(("delete-apex-ns",
                    f"{zone}: the apex NS records would go: {_listed(ns, _rdata_text)}"))
    return out


def _pool_names(zone: str, gone: list[bytes], pools: set[tuple[bytes, RdataType]]) -> list[str]:
    """Rule 3."""

    def pool(owner: bytes) -> str:
        return f"{_name(owner)} (pool {_types(t for p, t in pools if p == owner)})"

    if not gone:
        return []
    return [f"{zone}: {len(gone)} pool name(s) would go: {_listed(gone, pool)}"]


def _emptied(
    zone: str,
    emptied: list[tuple[bytes, RdataType]],
    pools: set[tuple[bytes, RdataType]],
    left: dict[bytes, set[RdataType]],
) -> list[str]:
    """Rules 4, 5 and 6 (the apex and the pool names gone are reported already)."""
    lost: dict[bytes, list[RdataType]] = {}
    for owner, rdtype in emptied:
        if (owner, rdtype) in pools or not _still_answers(rdtype, left.get(owner, set())):
            lost.setdefault(owner, []).append(rdtype)

    def rrsets(owner: bytes) -> str:
        gone = "" if owner in left else " (the name would go)"
        return f"{_name(owner)} {_types(lost[owner])}{gone}"

    if not lost:
        return []
    count = sum(len(types) for types in lost.values())
    return [f"{zone}: {count} RRset(s) would be emptied: {_listed(list(lost), rrsets)}"]


def _too_many(zone: str, old_records: int, gone: list[bytes], fraction: float) -> list[str]:
    """Rule 9."""
    if len(gone) <= max(fraction * old_records, SMALL_ZONE_ALLOWANCE):
        return []
    share = len(gone) / old_records
    return [
        f"{zone}: {len(gone)} of {old_records} records would go ({share:.1%}, more than"
        f" {fraction:.0%}): {_listed(gone, _brief)}"
    ]


def _still_answers(rdtype: RdataType, left: set[RdataType]) -> bool:
    """Rules 5 and 6: an emptied RRset whose owner still answers its queries."""
    if rdtype == RdataType.CNAME:
        return bool(left)
    return RdataType.CNAME in left


def _gone(apex: bytes, changes: ZoneDiff, removed: list[tuple[bytes, int, bytes]]) -> list[bytes]:
    """Removed records whose rdata is not back (rule 8), the apex SOA and RRSIGs
    left out (rule 10: a re-signing replaces every signature, and deletes no data).

    ``removed`` is ``record_keys(changes.removed)``.
    """
    back = {same for _, _, same in record_keys(changes.added)}
    return [
        rr
        for rr, (owner, rdtype, same) in zip(changes.removed, removed, strict=True)
        if same not in back and not (owner == apex and rdtype == RdataType.SOA)
        and rdtype != RdataType.RRSIG
    ]


def _name(owner: bytes) -> dns.name.Name:
    return dns.name.from_wire(owner, 0)[0]


def _types(types: Iterable[RdataType]) -> str:
    return " ".join(t.name for t in sorted(types))


def _rdata_text(record: Record) -> str:
    return str(record.to_rdata().to_text())


def _brief(rr: bytes) -> str:
    record = Record.from_wire(rr)
    return f"{record.name()} {record.rdtype.name} {_rdata_text(record)}"


def _listed(items: Sequence[T], show: Callable[[T], str]) -> str:
    """The first ``LISTED`` items shown, and how many more (only those are formatted)."""
    more = len(items) - LISTED
    return "; ".join(map(show, items[:LISTED])) + (f"; and {more} more" if more > 0 else "")
