"""What ``dnsserve check`` finds: every problem in the zones and the config.

Owns the list of problems a server would meet at start, without starting one:
zone errors and warnings (file and line, from ``zones.load``), config errors
against the loaded zones, config warnings, and where a pool's members and the
zone's static records disagree (a secondary serves the static set).

Must not: open sockets or the state file, or change anything on disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype

from dnsserve.answer.policies import Pool
from dnsserve.answer.snapshot import find_zone
from dnsserve.config import config_warnings, place_pools
from dnsserve.settings import Settings
from dnsserve.zones.compile import ZoneProblem
from dnsserve.zones.load import load_zones
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


def check(settings: Settings) -> list[Problem]:
    """Every problem in the zones and the config (errors and warnings)."""
    loaded = load_zones(settings.zones_dir, log_problems=False)
    problems: list[Problem] = list(loaded.problems)
    config, name = settings.config, settings.config_name
    failed = {dns.name.from_text(p.zone) for p in loaded.errors if p.zone}
    placed = place_pools(config, loaded.tables, failed, file=name)
    problems += [ConfigProblem(e, "error") for e in placed.errors + placed.set_aside]
    if not placed.errors:
        problems += [
            ConfigProblem(w, "warning") for w in static_mismatches(placed.pools, loaded.tables)
        ]
    problems += [ConfigProblem(w, "warning") for w in config_warnings(config, file=name)]
    return problems


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
