"""The posture rules over the pools, with the zones they answer in.

Pure [C]: owns the rules below, over the config's pools (``PoolConfig``,
whose members carry their ``region``), the pools as placed in the zones
(``answer.policies.Pool``) and the zones' survey. Must not: read files, or
judge what the config alone shows (``posture.configrules``).

    pool-single-member     a pool of one member: nothing to fail over to
    pool-region-single     every member in one region: its ``region``, else the
                           [[region]] of its address, else the cloud region its
                           CNAME target names (members of unknown region: no finding)
    pool-static-mismatch   the zone's static RRset at the pool's name is not the
                           pool's members (or there is none): a secondary, or any
                           server given the zone file, answers differently
    ttl-over-budget        the pool's TTL is over [posture] failover_budget
    cname-ttl-over-budget  a CNAME of our zones points at a pool's name and its own
                           TTL is over the budget
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dns.name
import dns.rdatatype
from dns.rdatatype import RdataType

from dnsserve.answer.lookup import find_zone
from dnsserve.answer.policies import Pool
from dnsserve.config_schema import Config, PoolConfig, PoolType
from dnsserve.config_values import key_problem_line, problem_line
from dnsserve.posture.findings import Finding, finding
from dnsserve.posture.regions import Regions
from dnsserve.posture.survey import Survey
from dnsserve.zones.table import ZoneTable


def pool_findings(
    config: Config,
    pools: Sequence[Pool],
    survey: Survey,
    *,
    file: str = "<config>",
    regions: Regions | None = None,
) -> list[Finding]:
    """Every rule of the module docstring; ``pools`` are the config's pools as placed."""
    regions = regions if regions is not None else Regions()
    budget = config.posture.failover_budget
    out: list[Finding] = []
    for i, cfg in enumerate(config.pool):
        key = f"pool[{i}]"
        if len(cfg.members) == 1:
            out.append(finding("pool-single-member", key_problem_line(
                file, f"{key}.members", f"{cfg.owner} {cfg.type.value} has one member: "
                "when it fails there is nothing to fail over to"), file=file,
                key=f"{key}.members"))
        region = single_region(cfg, regions)
        if region:
            out.append(finding("pool-region-single", key_problem_line(
                file, f"{key}.members", f"every member of {cfg.owner} {cfg.type.value} is in "
                f"region {region}"), file=file, key=f"{key}.members"))
        if cfg.ttl > budget:
            out.append(finding("ttl-over-budget", problem_line(
                file, f"{key}.ttl", cfg.ttl, f"over the failover budget ({budget} s): clients "
                "keep a failed member's answer that long"), file=file, key=f"{key}.ttl"))
    names = {p.owner for p in pools}
    for zone in survey.zones:
        for p in zone.pointers:
            if p.rdtype == RdataType.CNAME and p.target in names and p.ttl > budget:
                out.append(finding(
                    "cname-ttl-over-budget", f"CNAME {p.owner} -> {p.target} (a pool's name) "
                    f"has TTL {p.ttl}, over the failover budget ({budget} s)", file=zone.file,
                    zone=zone.origin.to_text(), at=(p.owner.to_text(), "CNAME")))
    out += static_mismatches(config, pools, survey.tables, file=file)
    return out


def single_region(cfg: PoolConfig, regions: Regions) -> str:
    """The one region every member of ``cfg`` is in, or ``""`` (several, or one unknown)."""
    found = set()
    for m in cfg.members:
        region = m.region or regions.of_address(m.address)
        if not region and cfg.type is PoolType.CNAME and m.target is not None:
            region = regions.of_name(dns.name.from_text(m.target))
        found.add(region)
    return found.pop() if len(found) == 1 and "" not in found else ""


def static_mismatches(
    config: Config,
    pools: Sequence[Pool],
    tables: Mapping[dns.name.Name, ZoneTable],
    *,
    file: str = "<config>",
) -> list[Finding]:
    """Where a zone's static records and a pool's members disagree.

    A secondary (or any other server) serves the static set from the zone
    file; when it differs from the pool, the two answer differently.
    """
    keys = {(dns.name.from_text(c.owner), c.type.rdtype): f"pool[{i}]"
            for i, c in enumerate(config.pool)}
    out = []
    for pool in pools:
        table = find_zone(tables, pool.owner, pool.rdtype)
        rrset = table.rrset(pool.owner, pool.rdtype) if table is not None else None
        static = {rd.to_text().lower() for rd in rrset} if rrset is not None else set()
        members = {pm.value.lower() for pm in pool.members}
        what = f"{pool.owner} {dns.rdatatype.to_text(pool.rdtype)}"
        key = keys.get((pool.owner, pool.rdtype), "")
        if not static:
            text = (f"{what}: the zone has no static records for this pool; "
                    "a secondary serving the zone file answers NODATA")
        elif static != members:
            text = (f"{what}: the zone's static records ({', '.join(sorted(static))}) differ "
                    f"from the pool's members ({', '.join(sorted(members))})")
        else:
            continue
        out.append(finding("pool-static-mismatch", text, file=file, key=key))
    return out
