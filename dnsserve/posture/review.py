"""Every posture rule over one set of zones and one config: what ``dnsserve check`` adds.

Pure [C]: owns running the rule modules together (``review``), placing a
zone finding at its line once the lines are known (``place``: the loaded
tables keep no lines; ``posture.sources`` reads them again only for the
zones with findings), leaving out what ``[posture] ignore`` names, and
folding ``--resolve``'s verdicts in (``resolved``). Must not: read files,
resolve names or print.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from dnsserve.answer.policies import Pool
from dnsserve.config_schema import Config
from dnsserve.posture.findings import Finding, placed
from dnsserve.posture.poolrules import pool_findings
from dnsserve.posture.regions import Regions
from dnsserve.posture.survey import Survey
from dnsserve.posture.takeover import Suffixes
from dnsserve.posture.zonerules import zone_findings

# (owner, type) as text, lower-cased -> (file, line); ("owner", "") is the owner's first line
Lines = Mapping[tuple[str, str], tuple[str, int]]


def regions_of(config: Config) -> Regions:
    return Regions.from_prefixes((r.name, r.prefixes) for r in config.region)


def review(
    config: Config,
    pools: Sequence[Pool],
    survey: Survey,
    *,
    file: str,
    takeover: Suffixes,
) -> list[Finding]:
    """The zone rules and the pool rules (the config rules run with the config's checks)."""
    regions = regions_of(config)
    return [
        *zone_findings(survey, regions=regions, takeover=takeover),
        *pool_findings(config, pools, survey, file=file, regions=regions),
    ]


def needs_lines(findings: Iterable[Finding]) -> set[str]:
    """The zones (origins as text) some finding waits on a line in."""
    return {f.zone for f in findings if f.at is not None and not f.line}


def place(findings: Iterable[Finding], lines: Mapping[str, Lines]) -> list[Finding]:
    """Each finding with an (owner, type) at its line in ``lines[zone]``, when known."""
    out = []
    for f in findings:
        zone_lines = lines.get(f.zone)
        if f.at is None or zone_lines is None:
            out.append(f)
            continue
        owner, rdtype = f.at[0].lower(), f.at[1]
        where = zone_lines.get((owner, rdtype)) or zone_lines.get((owner, ""))
        out.append(placed(f, *where) if where is not None else f)
    return out


def ignored(findings: Iterable[Finding], rules: Iterable[str]) -> list[Finding]:
    """The findings whose rule ``[posture] ignore`` does not name."""
    skip = set(rules)
    return [f for f in findings if f.rule not in skip]


def resolved(
    findings: Iterable[Finding],
    unresolved: Mapping[tuple[str, str], Finding],
    unchecked: Mapping[tuple[str, str], str] | None = None,
) -> list[Finding]:
    """``--resolve``: each takeover-cname whose target was NXDOMAIN becomes its
    takeover-unresolved error (``unresolved`` by the CNAME's (zone, owner)); one the
    resolver gave no verdict on says so (``unchecked``: why, by the same key), so a
    resolver that is down or refuses is not taken for a clean bill."""
    out = []
    for f in findings:
        if f.rule != "takeover-cname" or f.at is None:
            out.append(f)
            continue
        key = (f.zone, f.at[0])
        if key in unresolved:
            out.append(unresolved[key])
        elif unchecked and key in unchecked:
            out.append(replace(f, message=f"{f.message}; not checked: {unchecked[key]}"))
        else:
            out.append(f)
    return out
