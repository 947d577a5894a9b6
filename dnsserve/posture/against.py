"""``dnsserve check --against REF``: what a change to the zones deletes, judged as a reload would.

Pure [C]: owns comparing two versions of the zones (each a ``ZoneContent``
by origin: the reference, and the zones as they are now) into findings.
The refusals are the deletion guard's own (``zones.deletions.deletion_refusals``,
the rules a reload applies) and the serial rule is ``zones.versions.serial_problem``:
one implementation each, used by the reload and by this review. Must not:
read git or files (``posture.sources`` does), or apply ``--force``.

    rule               fires when
    delete-zone        a zone of the reference has no zone file now
    delete-apex-soa,   the deletion guard would refuse the change at a reload
    delete-apex-ns,    (zones.deletions' rules 1-4 and 9)
    delete-pool-name,
    delete-rrset,
    delete-too-many
    serial-not-bumped  the content changed and the serial did not grow (RFC 1982)
    zone-changes       (info) what the change deletes and adds, per zone
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import dns.name
from dns.rdatatype import RdataType

from dnsserve.posture.findings import Finding, finding
from dnsserve.zones.deletions import LISTED, deletion_refusals
from dnsserve.zones.versions import Record, ZoneContent, ZoneDiff, diff, new_version, serial_problem


def against_findings(
    before: Mapping[dns.name.Name, ZoneContent],
    now: Mapping[dns.name.Name, ZoneContent],
    *,
    files: Mapping[dns.name.Name, str],
    reference: str,
    protected: Collection[tuple[dns.name.Name, RdataType]] = (),
    max_delete_fraction: float = 0.1,
    failed: Collection[dns.name.Name] = (),
    unguarded: Collection[dns.name.Name] = (),
) -> list[Finding]:
    """Each zone of ``before`` compared with ``now`` (``files``: each zone's file now).

    A zone that ``failed`` to load now is not compared (its errors say why); a
    zone whose guard is off (``[[zone]] guard = false``: ``unguarded``) has its
    changes listed but no refusal, as at a reload.
    """
    out: list[Finding] = []
    for origin in sorted(before):
        if origin in failed:
            continue
        old = before[origin]
        zone = origin.to_text()
        file = files.get(origin, "")
        new = now.get(origin)
        if new is None:
            out.append(finding("delete-zone", f"zone {zone} (serial {old.serial}, {len(old)} "
                               f"records at {reference}) has no zone file now: it would not be "
                               "served", file=file, zone=zone))
            continue
        changes = diff(old, new)
        if not changes:
            continue
        mine = [(o, t) for o, t in protected if o.is_subdomain(origin)]
        refusals = [] if origin in unguarded else deletion_refusals(
            old, new, protected=mine, changes=changes, max_delete_fraction=max_delete_fraction)
        for rule, line in refusals:
            out.append(finding(rule, f"{line} (against {reference})", file=file, zone=zone))
        problem = serial_problem(new_version(old, ZoneDiff((), ()), at=0.0),
                                 new_version(new, changes, at=0.0))
        if problem is not None:
            out.append(finding("serial-not-bumped", f"zone {problem}", file=file, zone=zone,
                               at=(zone, "SOA")))
        out.append(finding("zone-changes", _summary(zone, changes, reference), file=file,
                           zone=zone))
    for origin in sorted(set(now) - set(before)):
        new = now[origin]
        out.append(finding("zone-changes", f"{origin}: a new zone since {reference} (serial "
                           f"{new.serial}, {len(new)} records)", file=files.get(origin, ""),
                           zone=origin.to_text()))
    return out


def _summary(zone: str, changes: ZoneDiff, reference: str) -> str:
    def shown(records: Sequence[bytes]) -> str:
        lines = [Record.from_wire(rr).to_text() for rr in records[:LISTED]]
        more = len(records) - LISTED
        return "; ".join(lines) + (f"; and {more} more" if more > 0 else "")

    parts = [f"{zone}: against {reference}, {len(changes.removed)} record(s) deleted, "
             f"{len(changes.added)} added"]
    if changes.removed:
        parts.append(f"deleted: {shown(changes.removed)}")
    if changes.added:
        parts.append(f"added: {shown(changes.added)}")
    return "; ".join(parts[:1]) + ("; " + " | ".join(parts[1:]) if parts[1:] else "")
