"""What ``dnsserve check`` finds: every problem in the zones and the config.

Owns the list of problems a server would meet at start, without starting one:
zone errors and warnings (file and line, from ``zones.load``), zones whose
answers cannot be prebuilt (``answer.snapshot.build_snapshot`` leaves them
out: an answer with its additional data too large for any message), config
errors against the loaded zones, config warnings, and where a pool's members
and the zone's static records disagree (a secondary serves the static set).

Must not: open sockets or the state file, or change anything on disk.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdatatype

from dnsserve.answer.dnssec import EXPIRY_WARNING, expiring
from dnsserve.answer.lookup import find_zone
from dnsserve.answer.policies import Pool
from dnsserve.answer.snapshot import build_snapshot
from dnsserve.config import config_warnings, place_pools
from dnsserve.settings import Settings
from dnsserve.zones.compile import ZoneProblem
from dnsserve.zones.load import LoadedZones, load_zones
from dnsserve.zones.table import ZoneTable


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """A problem of the configuration, shaped like a ``ZoneProblem`` for output."""

    text: str
    severity: str  # "error" | "warning"

    def to_text(self) -> str:
        return self.text if self.severity == "error" else f"warning: {self.text}"

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "message": self.text}


Problem = ZoneProblem | ConfigProblem


@dataclass(frozen=True, slots=True)
class ZoneSummary:
    """A zone ``dnsserve check`` found servable: what a server would serve."""

    origin: str
    file: str
    serial: int
    records: int

    def to_text(self) -> str:
        return f"zone {self.origin}: serial {self.serial}, {self.records} records ({self.file})"


@dataclass(frozen=True, slots=True)
class Report:
    """What ``dnsserve check`` prints: every problem, and the zones that would serve."""

    problems: list[Problem]
    zones: list[ZoneSummary]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def check(settings: Settings) -> Report:
    """Every problem in the zones and the config (errors and warnings)."""
    copies = settings.secondary_copies()  # a secondary zone's copy, once transferred
    loaded = load_zones(settings.zones_dir, log_problems=False, extra={
        o: p for o, p in copies.items() if p.is_file()} if copies else None)
    problems: list[Problem] = list(loaded.problems)
    problems += unbuildable(loaded.tables, loaded.files)
    problems += expiring_signatures(loaded.tables, loaded.files, now=time.time())
    config, name = settings.config, settings.config_name
    failed = {dns.name.from_text(p.zone) for p in loaded.errors if p.zone}
    # a secondary zone not transferred yet holds its pools all the same
    tables: dict[dns.name.Name, ZoneTable | None] = dict.fromkeys(copies)
    tables.update(loaded.tables)
    placed = place_pools(config, tables, failed, file=name)
    problems += [ConfigProblem(e, "error") for e in placed.errors + placed.set_aside]
    if not placed.errors:
        problems += [
            ConfigProblem(w, "warning") for w in static_mismatches(placed.pools, loaded.tables)
        ]
    problems += [ConfigProblem(w, "warning") for w in config_warnings(config, file=name)]
    return Report(problems, _summaries(loaded))


def check_without_config(zones_dir: Path, config_errors: list[str]) -> Report:
    """``check`` when the config itself does not decode: its errors, and the zones'."""
    loaded = load_zones(zones_dir, log_problems=False)
    problems: list[Problem] = [ConfigProblem(e, "error") for e in config_errors]
    problems += loaded.problems
    problems += expiring_signatures(loaded.tables, loaded.files, now=time.time())
    return Report(problems, _summaries(loaded))


def _summaries(loaded: LoadedZones) -> list[ZoneSummary]:
    out = []
    for origin, table in sorted(loaded.tables.items()):
        records = 0
        for name, rdtype in table.rrset_keys():
            rrset = table.rrset(name, rdtype)
            records += len(rrset) if rrset is not None else 0
        serial = int(table.soa[0].serial)
        out.append(ZoneSummary(origin.to_text(), str(loaded.files[origin]), serial, records))
    return out


def unbuildable(
    tables: Mapping[dns.name.Name, ZoneTable], files: Mapping[dns.name.Name, Path]
) -> list[ZoneProblem]:
    """The zones that load but whose answers cannot all be prebuilt: not served."""
    left_out = build_snapshot(tables, lazy_rrsets=None).left_out  # every answer built
    return [
        ZoneProblem(str(files.get(origin, "")), 0, "error",
                    f"zone {origin} cannot be served: {why}", origin.to_text())
        for origin, why in left_out.items()
    ]


def expiring_signatures(
    tables: Mapping[dns.name.Name, ZoneTable], files: Mapping[dns.name.Name, Path], *, now: float
) -> list[ZoneProblem]:
    """A warning per pre-signed zone with RRSIGs that expire within three days
    (``answer.dnssec.EXPIRY_WARNING``): validators will reject its answers then."""
    out = []
    for origin, table in tables.items():
        found = expiring(table, now)
        if found is None:
            continue
        when = ("expired" if found.seconds < 0
                else f"expires in {found.seconds / 3600:.1f} hours")
        days = EXPIRY_WARNING // 86400
        out.append(ZoneProblem(
            str(files.get(origin, "")), 0, "warning",
            f"zone {origin}: {found.count} DNSSEC signature(s) expire within {days} days "
            f"(the first, over {found.owner} {found.covered.name}, {when}): re-sign the zone, "
            "or validating resolvers will reject its answers", origin.to_text()))
    return out


def static_mismatches(
    pools: Sequence[Pool], tables: Mapping[dns.name.Name, ZoneTable]
) -> list[str]:
    """Where a zone's static records and a pool's members disagree.

    A secondary (or any other server) serves the static set from the zone
    file; when it differs from the pool, the two answer differently.
    """
    out = []
    for pool in pools:
        table = find_zone(tables, pool.owner, pool.rdtype)
        rrset = table.rrset(pool.owner, pool.rdtype) if table is not None else None
        static = {rd.to_text().lower() for rd in rrset} if rrset is not None else set()
        members = {pm.value.lower() for pm in pool.members}
        what = f"{pool.owner} {dns.rdatatype.to_text(pool.rdtype)}"
        if not static:
            out.append(f"{what}: the zone has no static records for this pool; "
                       "a secondary serving the zone file answers NODATA")
        elif static != members:
            out.append(f"{what}: the zone's static records ({', '.join(sorted(static))}) differ "
                       f"from the pool's members ({', '.join(sorted(members))})")
    return out
