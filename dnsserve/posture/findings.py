"""Findings and the catalogue of rules: what ``dnsserve check`` reports.

Pure [C]: owns ``Finding`` (a rule id, a severity, where: a zone file and
line or a config key, a message, and the rule's one-line fix), the
catalogue ``RULES`` (each rule's id, severity, what it finds and its fix,
which the README's table and SARIF's ``rules[]`` are made from), and the
text and JSON forms of one finding. Must not: run rules, read files or
decide an exit code.

A rule id is stable: tools (SARIF viewers, ``[posture] ignore``) name it.
``zone-error``, ``zone-warning`` and ``config-error`` are the problems
``dnsserve check`` reported before posture rules existed (a zone that does
not load, a bad key): they keep their text, and every other finding reads

    file:line: severity: message [rule-id]
      fix: ...
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    what: str  # one line: what the rule finds
    fix: str  # one line: what to do about it


_R = Rule
RULES: dict[str, Rule] = {r.id: r for r in (
    # -- what check reported before posture: kept as they were ----------------
    _R("zone-error", "error", "a zone file that does not load, or a zone that cannot be served",
       "correct the record at the line named; the zone is not served until then"),
    _R("zone-warning", "warning", "a zone that loads with a problem worth a look",
       "see the message; the zone is served as it is"),
    _R("config-error", "error", "a configuration key with a bad value, or a pool outside the zones",
       "correct the key named in dnsserve.toml"),
    _R("dnssec-signatures-expiring", "warning",
       "a pre-signed zone with RRSIGs that expire within three days",
       "re-sign the zone (dnssec-signzone, ldns-signzone) and reload it"),
    # -- structural (zones.compile judges these while loading) ----------------
    _R("cname-apex", "error", "a CNAME at the zone apex (RFC 1034 §3.6.2)",
       "use A/AAAA records at the apex, or a pool"),
    _R("cname-beside-data", "error", "a CNAME beside other data at one name (RFC 1034 §3.6.2)",
       "keep either the CNAME or the other records at that name"),
    _R("target-is-cname", "warning", "an MX, NS or SRV target that is a CNAME (RFC 2181 §10.3)",
       "point the record at the name the CNAME points to"),
    _R("target-no-address", "warning", "an in-zone MX, NS or SRV target without A/AAAA records",
       "add A/AAAA records for the target, or point at a name that has them"),
    _R("ns-no-glue", "warning", "an in-bailiwick NS target below its delegation without glue",
       "add the name server's A/AAAA records (glue) below the delegation"),
    _R("glue-out-of-bailiwick", "warning",
       "addresses below a delegation that are not its NS targets (glue for another one)",
       "remove them, or list the name as an NS target of that delegation"),
    _R("occluded-data", "warning",
       "data at or below a delegation (not NS, DS or glue) or below a DNAME: never served",
       "below a delegation: move the records into the delegated zone; below a DNAME: "
       "move them under the DNAME's target (its synthesis answers there); or remove them"),
    _R("ttl-mixed", "warning",
       "an RRset whose records have different TTLs (RFC 2181 §5.2): served with the smallest",
       "give every record of the RRset the same TTL"),
    _R("owner-outside-zone", "warning",
       "a record whose owner is outside the zone's origin: left out, as BIND and Knot do",
       "move the record into the zone file of the zone it belongs to, or remove it"),
    _R("raw-octet", "warning",
       "a raw octet past ASCII outside a comment: read as that octet (Knot DNS refuses the file)",
       "write the octet as a \\DDD escape (0xe9: \\233), which every server reads"),
    _R("ds-misplaced", "warning", "a DS record at the zone apex or at a name that is not a "
       "delegation", "put the DS in the parent zone, at the delegation"),
    # -- structural (posture.zonerules) -----------------------------------------
    _R("cname-chain-long", "warning", "a CNAME chain longer than 8 steps (resolvers give up)",
       "point the first CNAME nearer the end of the chain"),
    _R("soa-timers", "warning", "SOA refresh, retry, expire or minimum outside RFC 1912's ranges",
       "use refresh 1200-43200, retry 180 to below refresh, expire 2-4 weeks, minimum 60-86400"),
    _R("ns-one-prefix", "warning", "every NS of a zone in one IPv4 /24 (or IPv6 /48)",
       "add a name server in another network (RFC 2182 §3.1)"),
    _R("ns-one-zone", "warning", "every NS name of a zone inside one zone",
       "add a name server whose name is in another domain (a lapse of one takes all)"),
    _R("dangling-target", "error",
       "a CNAME, DNAME, MX, NS or SRV target inside a zone we serve that does not exist there",
       "add the target's records, or correct or remove the record that points at it"),
    _R("takeover-cname", "warning",
       "a CNAME into a hosting suffix known for subdomain takeover when the resource is deleted",
       "remove the CNAME when the resource goes; check it with --resolve"),
    _R("takeover-unresolved", "error",
       "a CNAME into a takeover-prone hosting suffix whose target does not resolve (NXDOMAIN)",
       "remove the CNAME now: anyone may claim that resource and serve your name"),
    _R("rrset-region-single", "warning",
       "a static A/AAAA RRset or CNAME whose addresses or targets all fall in one region",
       "add addresses (or a pool with members) in another region"),
    # -- pools --------------------------------------------------------------------
    _R("pool-single-member", "warning", "a pool with a single member: nothing to fail over to",
       "add a member, preferably in another region"),
    _R("pool-region-single", "warning", "a pool whose members all are in one region",
       "add a member in another region"),
    _R("pool-static-mismatch", "warning",
       "a pool whose members differ from the zone's static records at its name",
       "make the zone file's records the pool's members (a secondary serves those)"),
    _R("pool-nodata", "warning", 'a pool with when_all_down = "nodata": fails closed',
       'use "all", "fallback" or "hold" unless an empty answer is meant'),
    _R("ttl-over-budget", "warning", "a pool's TTL over the failover budget",
       "lower the pool's ttl to [posture] failover_budget or less"),
    _R("cname-ttl-over-budget", "warning",
       "a CNAME to a pool's name with a TTL over the failover budget",
       "lower the CNAME's TTL to [posture] failover_budget or less"),
    # -- config warnings ----------------------------------------------------------
    _R("pool-fallback-unused", "warning",
       'a fallback list, unused unless when_all_down = "fallback"',
       'remove fallback, or set when_all_down = "fallback"'),
    _R("pool-zero-weights", "warning", "a weighted pool whose weights are all 0",
       "give the members weights above 0"),
    _R("pool-cname-rotates", "warning", 'a CNAME pool of several members with policy "all"',
       'use policy "priority" or "weighted" for a CNAME pool'),
    _R("monitor-tls-unverified", "warning", "an https monitor that does not verify certificates",
       "set tls_verify = true (and ca_file for a private CA)"),
    _R("zone-secondary-unused", "warning", "transfer settings on a secondary zone, unused",
       "remove them from the [[zone]]"),
    _R("zone-notify-no-transfer", "warning", "secondaries notified but no transfer allowed",
       "set allow_transfer or transfer_keys on the [[zone]]"),
    _R("zone-publish-no-notify", "warning", "a published zone without notify",
       "set notify so secondaries see published changes at once"),
    # -- check --against (the deletion guard's rules: zones.deletions) ------------
    _R("delete-apex-soa", "error", "a change that removes a zone's apex SOA",
       "keep the SOA record at the apex"),
    _R("delete-apex-ns", "error", "a change that removes a zone's apex NS records",
       "keep the apex NS records"),
    _R("delete-pool-name", "error", "a change that deletes a name a pool serves",
       "keep records at the pool's name, or remove the pool first"),
    _R("delete-rrset", "error", "a change that empties an RRset that is served",
       "keep at least one record, or delete the name on purpose with --force at reload"),
    _R("delete-too-many", "error", "a change that deletes more than max_delete_fraction of a zone",
       "split the change, or raise [server] max_delete_fraction on purpose"),
    _R("delete-zone", "error", "a change that deletes a whole zone file",
       "keep the zone file, or stop serving the zone on purpose"),
    _R("serial-not-bumped", "warning", "a zone whose content changed but whose serial did not grow",
       "increase the SOA serial (RFC 1982): secondaries transfer only a later one"),
    _R("zone-changes", "info", "what a change deletes and adds in a zone",
       "review the list"),
)}


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding: a rule broken at one place."""

    rule: str
    severity: Severity
    message: str
    file: str = ""  # a zone file, or the config file for a config key
    line: int = 0  # 0: the file as a whole (or a config key)
    key: str = ""  # a config key path: pool[0].ttl
    zone: str = ""  # the zone's origin, when the finding is about one
    # where in the zone, until a line is found for it (posture.review.place): (owner, type)
    at: tuple[str, str] | None = None

    @property
    def fix(self) -> str:
        rule = RULES.get(self.rule)
        return rule.fix if rule is not None else ""

    @property
    def legacy(self) -> bool:
        """One of the problems ``check`` printed before posture: printed as it was."""
        return self.rule in ("zone-error", "zone-warning", "config-error")

    def to_text(self) -> str:
        """``file:line: severity: message [rule]`` (a config finding: ``severity: message``,
        the message naming file and key), then the fix on a line of its own."""
        if self.key or not self.file:
            head = self.message if self.severity == "error" else f"{self.severity}: {self.message}"
        else:
            where = f"{self.file}:{self.line}" if self.line else self.file
            head = f"{where}: {self.severity}: {self.message}"
        if self.legacy:
            return head
        return f"{head} [{self.rule}]\n  fix: {self.fix}" if self.fix else f"{head} [{self.rule}]"

    def to_dict(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {"rule": self.rule, "severity": self.severity,
                                     "message": self.message}
        for name in ("file", "line", "key", "zone", "fix"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out


def finding(
    rule: str, message: str, *, file: str = "", line: int = 0, key: str = "", zone: str = "",
    at: tuple[str, str] | None = None,
) -> Finding:
    """A finding of ``rule`` at its catalogue severity."""
    return Finding(rule, RULES[rule].severity, message, file, line, key, zone, at)


def counts(findings: Iterable[Finding], *, strict: bool = False) -> tuple[int, int]:
    """(errors, warnings); with ``strict`` (``--strict``) every warning is an error too."""
    errors = warnings = 0
    for f in findings:
        errors += f.severity == "error" or (strict and f.severity == "warning")
        warnings += f.severity == "warning"
    return errors, warnings


def placed(f: Finding, file: str, line: int) -> Finding:
    """``f`` at the line found for it."""
    return replace(f, file=file or f.file, line=line, at=None)


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """By file (config findings, with no file, first), then line, then rule."""
    return sorted(findings, key=lambda f: (f.file, f.line, f.key, f.rule, f.message))
