"""The posture rules over the loaded zones: each a pure function of a ``Survey``.

Pure [C]: owns the rules below; each returns ``Finding``s placed at a zone
file and an (owner, type) that ``posture.review.place`` turns into a line. Must
not: read files, resolve names (``--resolve`` is ``posture.sources``'s) or
repeat a rule ``zones.compile`` already judges while loading (a CNAME at the
apex or beside data, an MX/NS/SRV target that is a CNAME or has no address,
missing or foreign glue, occluded data: those come tagged with their rule ids
from the load; the survey leaves occluded data out of what these rules read).

    rule                 fires when
    dangling-target      a CNAME/DNAME/MX/NS/SRV target is in a zone we serve and
                         does not exist there (NXDOMAIN; "." is no target)
    takeover-cname       a CNAME target is under a suffix of takeover.json
    rrset-region-single  every address of an A/AAAA RRset is in one [[region]], or a
                         CNAME target's host name names a cloud region
    cname-chain-long     a chain of more than MAX_CHAIN CNAMEs starts at a name no
                         CNAME of ours points to (or loops)
    soa-timers           SOA refresh, retry, expire or minimum outside SOA_RANGES
    ns-one-prefix        the addresses we hold for every apex NS target are in one
                         IPv4 /24 and one IPv6 /48 (judged only when we hold them all)
    ns-one-zone          every apex NS name is inside one zone (the zone we serve
                         that holds it, else its parent domain)
"""

from __future__ import annotations

import ipaddress

import dns.name
from dns.rdatatype import RdataType

from dnsserve.posture.findings import Finding, finding
from dnsserve.posture.regions import Regions
from dnsserve.posture.survey import Pointer, Survey, ZoneSurvey
from dnsserve.posture.takeover import Entry, Suffixes
from dnsserve.zones.table import closest_origin

MAX_CHAIN = 8
# RFC 1912 §2.2 (and RFC 2308 §5 for the minimum, the negative-caching TTL): (low, high)
SOA_RANGES = {
    "refresh": (1200, 43200),
    "retry": (180, 43200),  # and below refresh
    "expire": (1209600, 2419200),  # 2 to 4 weeks
    "minimum": (60, 86400),  # RFC 2308 §5: over a day is problematic
}
_V4_PREFIX, _V6_PREFIX = 24, 48


def zone_findings(
    survey: Survey, *, regions: Regions | None = None, takeover: Suffixes | None = None
) -> list[Finding]:
    """Every zone rule over every zone of ``survey``."""
    regions = regions if regions is not None else Regions()
    takeover = takeover if takeover is not None else Suffixes()
    out: list[Finding] = []
    for zone in survey.zones:
        out += dangling(zone, survey)
        out += takeover_cnames(zone, takeover)
        out += region_single(zone, regions)
        out += long_chains(zone, survey)
        out += soa_timers(zone)
        out += ns_diversity(zone, survey)
    return out


def _at(zone: ZoneSurvey, rule: str, message: str, owner: dns.name.Name,
        rdtype: RdataType) -> Finding:
    return finding(rule, message, file=zone.file, zone=zone.origin.to_text(),
                   at=(owner.to_text(), rdtype.name))


def dangling(zone: ZoneSurvey, survey: Survey) -> list[Finding]:
    out = []
    for p in zone.pointers:
        if p.target == dns.name.root:
            continue  # "no service" (RFC 7505, RFC 2782)
        if survey.exists(p.target) is False:
            where = closest_origin(p.target, survey.tables)
            out.append(_at(zone, "dangling-target",
                           f"{p.rdtype.name} target {p.target} of {p.owner} does not exist in "
                           f"our zone {where} (NXDOMAIN)", p.owner, p.rdtype))
    return out


def takeover_pointers(zone: ZoneSurvey, takeover: Suffixes) -> list[tuple[Pointer, Entry]]:
    """The CNAMEs of ``zone`` into a takeover-prone suffix, with the suffix's entry."""
    out = []
    for p in zone.pointers:
        if p.rdtype == RdataType.CNAME and (entry := takeover.match(p.target)) is not None:
            out.append((p, entry))
    return out


def takeover_cnames(zone: ZoneSurvey, takeover: Suffixes) -> list[Finding]:
    return [
        _at(zone, "takeover-cname", f"CNAME {p.owner} -> {p.target}: {entry.service} "
            f"({entry.suffix}) is known for subdomain takeover ({entry.status}) once the "
            "resource is deleted", p.owner, p.rdtype)
        for p, entry in takeover_pointers(zone, takeover)
    ]


def unresolved(zone: ZoneSurvey, pointer: Pointer, entry: Entry, resolver: str) -> Finding:
    """``--resolve``: the CNAME's target is NXDOMAIN at ``resolver``."""
    return _at(zone, "takeover-unresolved",
               f"CNAME {pointer.owner} -> {pointer.target}: NXDOMAIN at {resolver}: the "
               f"{entry.service} resource is gone and anyone may claim it", pointer.owner,
               pointer.rdtype)


def region_single(zone: ZoneSurvey, regions: Regions) -> list[Finding]:
    out = []
    if regions.prefixes:
        for s in zone.addresses:
            found = {regions.of_address(a) for a in s.addresses}
            if len(found) == 1 and "" not in found:
                (region,) = found
                out.append(_at(zone, "rrset-region-single",
                               f"{s.owner} {s.rdtype.name}: every address "
                               f"({', '.join(s.addresses)}) is in region {region}",
                               s.owner, s.rdtype))
    for p in zone.pointers:
        if p.rdtype == RdataType.CNAME and (region := regions.of_name(p.target)):
            out.append(_at(zone, "rrset-region-single",
                           f"CNAME {p.owner} -> {p.target}: its only target is in region "
                           f"{region}", p.owner, p.rdtype))
    return out


def long_chains(zone: ZoneSurvey, survey: Survey) -> list[Finding]:
    """At each chain's start (a CNAME no CNAME of ours points to), and once per loop
    that nothing enters (at its least owner)."""
    cnames = [p for p in zone.pointers if p.rdtype == RdataType.CNAME]
    pointed = {p.target for z in survey.zones for p in z.pointers if p.rdtype == RdataType.CNAME}
    out = []
    for p in cnames:
        seen, name = _follow(p, survey)
        loop = name in seen
        if p.owner in pointed and not (loop and name == p.owner and p.owner == min(seen)):
            continue  # not the start of a chain, nor the one to name a loop
        if len(seen) > MAX_CHAIN or loop:
            what = "loops" if loop else f"is longer than {MAX_CHAIN} CNAMEs"
            out.append(_at(zone, "cname-chain-long", f"the CNAME chain from {p.owner} {what}",
                           p.owner, RdataType.CNAME))
    return out


def _follow(p: Pointer, survey: Survey) -> tuple[set[dns.name.Name], dns.name.Name]:
    """The owners a chain from ``p`` passes (at most MAX_CHAIN + 1) and where it stops."""
    seen, name = {p.owner}, p.target
    while len(seen) <= MAX_CHAIN and name not in seen:
        following = survey.cname_target(name)
        if following is None:
            break
        seen.add(name)
        name = following
    return seen, name


def soa_timers(zone: ZoneSurvey) -> list[Finding]:
    soa = zone.soa
    if soa is None:
        return []
    values = {field: int(getattr(soa, field)) for field in SOA_RANGES}
    bad = [f"{field} {value} (not {low}..{high})" for field, value in values.items()
           for low, high in [SOA_RANGES[field]] if not low <= value <= high]
    if values["retry"] >= values["refresh"]:
        bad.append(f"retry {values['retry']} (not below refresh {values['refresh']})")
    if values["expire"] <= values["refresh"] + values["retry"]:
        bad.append(f"expire {values['expire']} (not above refresh + retry)")
    if not bad:
        return []
    return [_at(zone, "soa-timers", f"SOA of {zone.origin}: {'; '.join(bad)} (RFC 1912 §2.2)",
                zone.origin, RdataType.SOA)]


def ns_diversity(zone: ZoneSurvey, survey: Survey) -> list[Finding]:
    names = sorted(set(zone.apex_ns))
    if not names:
        return []
    out = []
    homes = {closest_origin(n, survey.tables) or n.parent() for n in names}
    if len(homes) == 1:
        (home,) = homes
        out.append(_at(zone, "ns-one-zone", f"every NS of {zone.origin} "
                       f"({', '.join(map(str, names))}) is inside {home}",
                       zone.origin, RdataType.NS))
    known = [survey.addresses_of(n) for n in names]
    if all(known):
        nets = {ipaddress.ip_network(f"{a}/{_V4_PREFIX if ':' not in a else _V6_PREFIX}",
                                     strict=False)
                for addresses in known if addresses for a in addresses}
        if len({n for n in nets if n.version == 4}) <= 1 and \
                len({n for n in nets if n.version == 6}) <= 1:
            shown = ", ".join(sorted(map(str, nets)))
            out.append(_at(zone, "ns-one-prefix", f"every NS of {zone.origin} is in {shown}: "
                           "one network's outage takes them all", zone.origin, RdataType.NS))
    return out


__all__ = ["MAX_CHAIN", "SOA_RANGES", "Pointer", "zone_findings"]
