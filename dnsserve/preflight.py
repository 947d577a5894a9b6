"""What ``dnsserve check`` finds: every problem in the zones and the config.

Owns the list of findings a server would meet at start, without starting one:
zone errors and warnings (file and line, from ``zones.load``; the structural
ones carry their posture rule id), zones whose answers cannot be prebuilt
(``answer.snapshot.build_snapshot`` leaves them out: an answer with its
additional data too large for any message), config errors against the loaded
zones, and the posture rules (``posture``: config, pools with their zones,
zones; ``--against``: the changes since a reference, judged by the deletion
guard's rules; ``--resolve``: takeover-prone targets asked of a resolver).
Findings are ``posture.findings.Finding``s, placed at their lines.

Must not: open the state file, change anything on disk, or open a socket
except ``--resolve``'s queries (``posture.sources``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rcode

from dnsserve.answer.snapshot import build_snapshot
from dnsserve.config import place_pools
from dnsserve.posture.against import against_findings
from dnsserve.posture.configrules import config_findings
from dnsserve.posture.findings import Finding, finding
from dnsserve.posture.review import ignored, needs_lines, place, resolved, review
from dnsserve.posture.sources import (
    RESOLVE_TIMEOUT,
    lines_for,
    reference_contents,
    resolve_rcodes,
    takeover_list,
)
from dnsserve.posture.survey import Survey, survey
from dnsserve.posture.takeover import Suffixes
from dnsserve.posture.zonerules import takeover_pointers, unresolved
from dnsserve.settings import Settings
from dnsserve.zones.compile import ZoneProblem
from dnsserve.zones.files import DEFAULT_RULES, FileRules
from dnsserve.zones.load import LoadedZones, load_zones, zone_file_name
from dnsserve.zones.signed import EXPIRY_WARNING, expiring
from dnsserve.zones.table import ZoneTable
from dnsserve.zones.versions import zone_content


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
    """What ``dnsserve check`` prints: every finding, and the zones that would serve."""

    problems: list[Finding]
    zones: list[ZoneSummary]

    @property
    def errors(self) -> list[Finding]:
        return [p for p in self.problems if p.severity == "error"]


def check(settings: Settings, *, against: str | None = None,
          resolve: str | None = None) -> Report:
    """Every problem in the zones and the config (errors and warnings), and the posture
    rules' findings; ``against``: the changes since that reference (a directory or a git
    revision); ``resolve``: ADDRESS:PORT of a resolver to ask about takeover-prone targets."""
    copies = settings.secondary_copies()  # a secondary zone's copy, once transferred
    loaded = load_zones(settings.zones_dir, log_problems=False, extra={
        o: p for o, p in copies.items() if p.is_file()} if copies else None,
        rules=settings.file_rules, signing=settings.signing())
    findings = [zone_finding(p) for p in loaded.problems]
    findings += [zone_finding(p) for p in unbuildable(loaded.tables, loaded.files)]
    findings += [zone_finding(p) for p in expiring_signatures(
        loaded.tables, loaded.files, now=time.time(), online=settings.signing().keys())]
    config, name = settings.config, settings.config_name
    failed = {dns.name.from_text(p.zone) for p in loaded.errors if p.zone}
    # a secondary zone not transferred yet holds its pools all the same
    tables: dict[dns.name.Name, ZoneTable | None] = dict.fromkeys(copies)
    tables.update(loaded.tables)
    placed = place_pools(config, tables, failed, file=name)
    findings += [finding("config-error", e) for e in placed.errors + placed.set_aside]
    files = {o: str(p) for o, p in loaded.files.items()}
    seen = survey(loaded.tables, files, addresses=bool(config.region))
    takeover = takeover_list()
    if not placed.errors:
        findings += review(config, placed.pools, seen, file=name, takeover=takeover)
    findings += config_findings(config, file=name)
    if resolve is not None:
        findings = resolved(findings, *_unresolved(seen, takeover, resolve))
    if against is not None:
        reference = reference_contents(against, settings.zones_dir, settings.file_rules)
        # a zone that failed to load, or whose file is gone, is placed at its file's name
        absent = failed | (reference.keys() - files.keys())
        findings += against_findings(
            reference,
            {o: zone_content(t) for o, t in loaded.tables.items()},
            files={**files, **{o: str(settings.zones_dir / zone_file_name(o)) for o in absent}},
            reference=against, protected={(p.owner, p.rdtype) for p in placed.pools},
            max_delete_fraction=settings.server.max_delete_fraction, failed=failed,
            unguarded={dns.name.from_text(z.name) for z in config.zone if not z.guard},
        )
    findings = ignored(findings, config.posture.ignore)
    lines = lines_for(needs_lines(findings), loaded.files, settings.zones_dir,
                      settings.file_rules)
    findings = place(findings, lines)
    return Report(findings, _summaries(loaded))


def _unresolved(
    seen: Survey, takeover: Suffixes, resolver: str
) -> tuple[dict[tuple[str, str], Finding], dict[tuple[str, str], str]]:
    """The takeover-prone CNAMEs whose target ``resolver`` says is NXDOMAIN, and those
    it gave no verdict on (no answer, or an rcode other than NOERROR and NXDOMAIN:
    not a resolver for us), with why."""
    pairs = [(z, p, e) for z in seen.zones for p, e in takeover_pointers(z, takeover)]
    rcodes = resolve_rcodes(resolver, [p.target for _, p, _ in pairs])
    gone: dict[tuple[str, str], Finding] = {}
    unchecked: dict[tuple[str, str], str] = {}
    for z, p, e in pairs:
        key = (z.origin.to_text(), p.owner.to_text())
        rcode = rcodes.get(p.target)
        if rcode == dns.rcode.NXDOMAIN:
            gone[key] = unresolved(z, p, e, resolver)
        elif rcode is None:
            unchecked[key] = f"--resolve {resolver} did not answer in {RESOLVE_TIMEOUT:g} s"
        elif rcode != dns.rcode.NOERROR:
            unchecked[key] = f"--resolve {resolver} answered {dns.rcode.to_text(rcode)}"
    return gone, unchecked


def check_without_config(
    zones_dir: Path, config_errors: list[str], rules: FileRules = DEFAULT_RULES
) -> Report:
    """``check`` when the config itself does not decode: its errors, and the zones'."""
    loaded = load_zones(zones_dir, log_problems=False, rules=rules)
    findings = [finding("config-error", e) for e in config_errors]
    findings += [zone_finding(p) for p in loaded.problems]
    findings += [zone_finding(p) for p in
                 expiring_signatures(loaded.tables, loaded.files, now=time.time())]
    return Report(findings, _summaries(loaded))


def zone_finding(problem: ZoneProblem) -> Finding:
    """A zone problem of the load as a finding: its rule when ``zones.compile`` named one."""
    rule = problem.rule or f"zone-{problem.severity}"
    return Finding(rule, problem.severity, problem.message, problem.file, problem.line,
                   zone=problem.zone)


def _summaries(loaded: LoadedZones) -> list[ZoneSummary]:
    out = []
    for origin, table in sorted(loaded.tables.items()):
        records = 0  # as stored: every RRSIG of an owner counts (one RRset per type signed)
        for key in table.loaded_keys():
            stored = table.wire_node(key)
            records += sum(len(rdatas) for _, _, rdatas in stored[1]) if stored else 0
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
    tables: Mapping[dns.name.Name, ZoneTable], files: Mapping[dns.name.Name, Path], *,
    now: float, online: Collection[dns.name.Name] = (),
) -> list[ZoneProblem]:
    """A warning per pre-signed zone with RRSIGs that expire within three days
    (``answer.dnssec.EXPIRY_WARNING``): validators will reject its answers then.
    The zones in ``online`` are signed by the server itself, which re-signs them
    before their signatures expire: none of theirs is named."""
    out = []
    for origin, table in tables.items():
        found = None if origin in online else expiring(table, now)
        if found is None:
            continue
        when = ("expired" if found.seconds < 0
                else f"expires in {found.seconds / 3600:.1f} hours")
        days = EXPIRY_WARNING // 86400
        out.append(ZoneProblem(
            str(files.get(origin, "")), 0, "warning",
            f"zone {origin}: {found.count} DNSSEC signature(s) expire within {days} days "
            f"(the first, over {found.owner} {found.covered.name}, {when}): re-sign the zone, "
            "or validating resolvers will reject its answers", origin.to_text(),
            rule="dnssec-signatures-expiring"))
    return out

