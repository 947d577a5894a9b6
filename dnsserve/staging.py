"""Staging: the next state to serve, built whole before anything is swapped.

Owns ``prepare``: from an immutable ``ReloadInput`` (the settings just read,
what is served now, the health view and selections at that moment, and the
zone files when they were read already, in a child process) it loads
every zone file whose files changed, places the pools, runs the deletion guard, and prebuilds a
whole new snapshot. It may run in any thread and reads nothing the main loop
owns; ``reload.Reloader`` swaps the result in.

A reload is all or nothing. These refuse it (the old zones and config keep
serving, and the refusal lists why):

    what                                                    overridden by
    the config file does not parse or validate              -
    a pool is inside no loaded zone, or beside a CNAME      -
    the deletion guard (``zones.deletions``): a zone would  ``force`` (once)
      lose its apex SOA or NS, a pool's name, a served
      RRset, or more than ``max_delete_fraction`` of it

These do not refuse it, and are reported with it: a zone whose file fails to
load or is gone keeps its last good version; a zone whose content changed
while its serial did not (secondaries would never pick it up).

At start there is nothing old to keep: a zone that fails to load is not
served and the pools inside it are set aside (the other zones serve); a zone
the guard refuses against the last version accepted in the state file serves
that last version instead. Starting with no zone at all is an error unless
``allow_empty``. A zone with no version in the state file has nothing for
the guard to check: with ``defer_first`` (the server's start) its content
is made when first read and its first version is handed out in
``Prepared.first``, to be recorded after the first answer (``first_versions``).

Must not: touch sockets, the monitor, the engine or the state file (what to
record is handed out in ``Prepared``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import dns.exception
import dns.name
import dns.rdatatype
import dns.zone

from dnsserve.answer.policies import Pool, Selection, select
from dnsserve.answer.snapshot import PoolKey, Snapshot, build_snapshot
from dnsserve.config import Placed, place_pools
from dnsserve.config_schema import identity_bytes
from dnsserve.errors import ConfigError, DnsServeError
from dnsserve.health.model import HealthView
from dnsserve.settings import Settings
from dnsserve.zones.compile import compile_zone
from dnsserve.zones.deletions import check_deletions
from dnsserve.zones.load import Fingerprint, LoadedZones, load_zones, zone_file_name
from dnsserve.zones.online import signature_expiry
from dnsserve.zones.poolsign import PoolSigner
from dnsserve.zones.signed import is_signed
from dnsserve.zones.table import ZoneTable
from dnsserve.zones.versions import (
    ZoneContent,
    ZoneDiff,
    ZoneVersion,
    diff,
    new_version,
    serial_problem,
    to_rrsets,
    zone_content,
)

log = logging.getLogger("dnsserve")


class ReloadRefused(DnsServeError):
    """A reload that must not be applied; ``lines`` say why, one problem each."""

    def __init__(self, lines: Sequence[str], *, guard: bool = False) -> None:
        self.lines = tuple(lines)
        self.guard = guard  # refused by the deletion guard only: ``force`` applies it
        super().__init__("\n".join(self.lines))


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    """One served zone, for status: where it came from and how its last load went."""

    origin: dns.name.Name
    file: str
    serial: int
    content: ZoneContent  # the version served now (its records may be made when first read)
    loaded_at: float  # when the version served now was accepted
    ok: bool = True  # the last load of its file succeeded
    result: str = ""

    @property
    def records(self) -> int:
        return len(self.content)


@dataclass(frozen=True, slots=True)
class Served:
    """What is served now: the zones (with their content for the guard) and pools."""

    settings: Settings
    loaded: LoadedZones
    contents: Mapping[dns.name.Name, ZoneContent]
    pools: tuple[Pool, ...]
    zones: Mapping[dns.name.Name, ZoneInfo]
    signer: PoolSigner | None = None  # the online-signed zones' keys: signs pool answers
    # each signed zone's first RRSIG expiry (seconds since the epoch): status, /metrics
    # and the re-signing timer; found here, off the main loop (a walk of every record)
    signature_expiry: Mapping[dns.name.Name, float] = field(default_factory=dict)
    set_aside: tuple[str, ...] = ()  # pools not served, and why
    notes: tuple[str, ...] = ()  # what the load reported (zones kept, files gone, ...)
    unserved: Mapping[dns.name.Name, str] = field(default_factory=dict)  # zones failed at start


@dataclass(frozen=True, slots=True)
class ReloadInput:
    """Everything ``prepare`` reads, captured on the main loop at one moment."""

    settings: Settings
    previous: Served | None  # None at start
    accepted: Mapping[dns.name.Name, ZoneContent]  # at start: the state file's last versions
    view: HealthView
    selections: Mapping[PoolKey, Selection]
    now: float
    force: bool = False
    allow_empty: bool = False
    loaded: LoadedZones | None = None  # the zone files, read already (None: read them here)
    # zones read in a child process and compared there with the content served:
    # (that content, the diff, its hash, the new content's hash), by origin
    compared: Mapping[dns.name.Name, Compared] = field(default_factory=dict)
    # a zone with no earlier version: content made when read, version recorded later
    defer_first: bool = False


@dataclass(frozen=True, slots=True)
class Compared:
    """A zone's new content compared with ``old`` elsewhere (a child process)."""

    old: ZoneContent  # what it was compared with: used only while that is served
    changes: ZoneDiff
    old_hash: str
    new_hash: str


@dataclass(frozen=True, slots=True)
class Prepared:
    """A whole new state to serve, not yet swapped in, and what to record of it."""

    served: Served
    snapshot: Snapshot
    versions: tuple[tuple[ZoneVersion, ZoneDiff, ZoneContent], ...]  # accepted changes
    warnings: tuple[str, ...] = ()
    # zones served for the first time (``ReloadInput.defer_first``): their first
    # versions, made later by ``first_versions(first, at=first_at)``, then recorded
    first: tuple[ZoneContent, ...] = ()
    first_at: float = 0.0


def first_versions(
    contents: Sequence[ZoneContent], *, at: float
) -> list[tuple[ZoneVersion, ZoneDiff, ZoneContent]]:
    """The versions of zones with no earlier one: every record added (any thread)."""
    out = []
    for content in contents:
        changes = ZoneDiff((), content.records)
        out.append((new_version(content, changes, at=at), changes, content))
    return out


def select_all(
    pools: Sequence[Pool],
    view: HealthView,
    now: float,
    previous: Mapping[PoolKey, Selection],
) -> dict[PoolKey, Selection]:
    """Every pool's selection under ``view`` (``previous`` serves "hold")."""
    return {
        (p.owner, p.rdtype): select(p, view, now, previous.get((p.owner, p.rdtype)))
        for p in pools
    }


def prepare(inp: ReloadInput) -> Prepared:
    """Load every zone and build a whole new snapshot (any thread; swaps nothing).

    Raises ReloadRefused with every reason when the result must not be served.
    """
    settings, previous = inp.settings, inp.previous
    copies = settings.secondary_copies()
    clash = [settings.zones_dir / zone_file_name(o) for o in sorted(copies)
             if (settings.zones_dir / zone_file_name(o)).exists()]
    if clash:
        raise ReloadRefused([f"{path}: zone {path.name.removesuffix('.zone')} is a secondary "
                             f"zone in {settings.config_name} (primaries): remove the file, or "
                             "the zone's primaries" for path in clash])
    extra, waiting = settings.copies_to_load()
    loaded = inp.loaded
    if loaded is None:
        loaded = load_zones(settings.zones_dir, extra=extra,
                            previous=previous.loaded if previous else None,
                            rules=settings.file_rules, signing=settings.signing())
    failed = _failed(loaded) | waiting  # pools in a zone with no copy yet are set aside
    tables = dict(loaded.tables)
    zones: dict[dns.name.Name, ZoneInfo] = {}
    warnings: list[str] = []
    if previous is not None:
        # A reload never silently deletes what we serve: a zone that fails to
        # load, or whose file is gone, keeps its last good version (a restart
        # drops a removed zone on purpose).
        for origin, table in previous.loaded.tables.items():
            if origin not in tables:
                why = (f"failed to reload ({_why(loaded, origin)})" if origin in failed
                       else "lost its zone file")
                line = f"zone {origin} {why}; still serving the last good version"
                log.error("%s", line)
                warnings.append(line)
                tables[origin] = table
                zones[origin] = replace(previous.zones[origin], ok=False, result=why)
        # A zone that was not served and fails now (a new file): said as loudly.
        for origin in sorted(failed - waiting - set(tables)):
            line = f"zone {origin} failed to load ({_why(loaded, origin)}); not served"
            log.error("%s", line)
            warnings.append(line)
    if previous is None:
        # A zone served before (its last version is in the state file) whose file is
        # gone at start is not served; say so, it may be a mistake.
        for origin, content in inp.accepted.items():
            if origin not in tables and origin not in failed:
                line = (f"zone {origin}: its file is gone; it was served before (serial "
                        f"{content.serial}) and is not served now")
                log.warning("%s", line)
                warnings.append(line)
    if not tables and not inp.allow_empty and not copies:
        why = "; ".join(p.to_text() for p in loaded.errors) or "no zone files"
        raise ReloadRefused([f"no zone could be loaded from {settings.zones_dir}: {why}"])
    placed = place_pools(settings.config, tables, failed, file=settings.config_name)
    pools, set_aside, errors = placed.pools, list(placed.set_aside), list(placed.errors)
    if _drops_served(previous, placed):
        errors += set_aside  # a reload never drops a pool that is served
    if errors:
        raise ReloadRefused(errors)
    try:
        signer = PoolSigner.read({o: s for o, s in settings.signing().items() if o in tables})
    except ConfigError as exc:
        raise ReloadRefused([str(exc)]) from None
    contents, versions, guard, first = _versions(inp, tables, pools, warnings)
    if guard and not inp.force:
        if previous is not None:
            raise ReloadRefused([line for lines in guard.values() for line in lines],
                                guard=True)
        for origin, lines in guard.items():  # at start: serve the last accepted version
            tables[origin] = _table_from(inp.accepted[origin])
            contents[origin] = inp.accepted[origin]
            versions = [v for v in versions if v[2].origin != origin]
            line = (f"zone {origin}: the file would delete what was served ("
                    f"{'; '.join(lines)}); serving the last accepted version (serial "
                    f"{contents[origin].serial}) instead; dnsserve serve --force accepts the file")
            log.error("%s", line)
            warnings.append(line)
            zones[origin] = ZoneInfo(
                origin, str(loaded.files.get(origin, "")), contents[origin].serial,
                contents[origin], inp.now, ok=False,
                result="the file would delete what was served: serving the last accepted "
                       "version (serve --force accepts the file)",
            )
    for origin in tables:
        if origin not in zones:
            content = contents[origin]
            old = previous.zones.get(origin) if previous is not None else None
            changed = old is None or any(v[2].origin == origin for v in versions)
            zones[origin] = ZoneInfo(
                origin, str(loaded.files.get(origin, old.file if old else "")),
                int(tables[origin].soa[0].serial), content,
                inp.now if changed or old is None else old.loaded_at,
            )
    def build(pools: Sequence[Pool]) -> Snapshot:
        return build_snapshot(
            tables,
            selections=signer.sign(select_all(pools, inp.view, inp.now, inp.selections),
                                   inp.selections, inp.now),
            version=settings.server.version,
            identity=_octets(settings.server.identity),
            nsid=_octets(settings.server.nsid) or b"",
            health=inp.view,
            defer_misses=True,  # built after the swap, off the answers' way (Reloader)
        )

    snapshot = build(pools)
    unbuilt: dict[dns.name.Name, str] = {}
    if snapshot.left_out:
        # A zone whose answers cannot be built is a zone that failed to load:
        # its last good version serves, or (at start) it is not served.
        for origin, why in snapshot.left_out.items():
            kept = previous.loaded.tables.get(origin) if previous is not None else None
            line = f"zone {origin} ({loaded.files.get(origin, '')}) cannot be served: {why}"
            if previous is not None and kept is not None and kept is not tables.get(origin):
                tables[origin], contents[origin] = kept, previous.contents[origin]
                zones[origin] = replace(previous.zones[origin], ok=False, result=why)
                line += "; still serving the last good version"
            else:
                tables.pop(origin, None)
                zones.pop(origin, None)
                unbuilt[origin] = why
            versions = [v for v in versions if v[2].origin != origin]
            first = [c for c in first if c.origin != origin]
            log.error("%s", line)
            warnings.append(line)
        placed = place_pools(settings.config, tables, failed | set(unbuilt),
                             file=settings.config_name)
        pools, set_aside = placed.pools, list(placed.set_aside)
        if placed.errors or _drops_served(previous, placed):
            raise ReloadRefused([*placed.errors, *set_aside, *warnings])
        snapshot = build(pools)
    unserved = {o: _why(loaded, o) for o in failed if o not in tables} | unbuilt
    unserved |= {o: "a secondary zone with no copy yet: waiting for its first transfer"
                 for o in waiting if o not in tables}
    served = Served(
        settings,
        LoadedZones(tables, loaded.problems, loaded.files, _fresh_prints(loaded, tables)),
        contents, pools, zones, signer, _signature_expiry(previous, tables, inp.now),
        set_aside=tuple(set_aside), notes=tuple(warnings), unserved=unserved,
    )
    return Prepared(served, snapshot, tuple(versions), tuple(warnings), tuple(first),
                    inp.now)


def _signature_expiry(
    previous: Served | None, tables: Mapping[dns.name.Name, ZoneTable], now: float
) -> dict[dns.name.Name, float]:
    """Each signed zone's first RRSIG expiry; a table served already keeps its figure."""
    out = {}
    for origin, table in tables.items():
        if (previous is not None and previous.loaded.tables.get(origin) is table
                and origin in previous.signature_expiry):
            out[origin] = previous.signature_expiry[origin]
        elif is_signed(table):
            first = signature_expiry(table, now)
            if first is not None:
                out[origin] = first
    return out


def _fresh_prints(
    loaded: LoadedZones, tables: Mapping[dns.name.Name, ZoneTable]
) -> Mapping[dns.name.Name, Fingerprint]:
    """The fingerprints of the tables served that this load read (a kept last
    good version has none: its file is read again at the next reload)."""
    return {o: f for o, f in loaded.fingerprints.items() if tables.get(o) is loaded.tables[o]}


def _drops_served(previous: Served | None, placed: Placed) -> bool:
    """Whether a pool served now would be set aside (a pool set aside at start,
    its zone still broken, does not hold up reloads of everything else)."""
    if previous is None:
        return False
    served = {(p.owner, dns.rdatatype.to_text(p.rdtype)) for p in previous.pools}
    return bool(served & placed.aside)


def _why(loaded: LoadedZones, origin: dns.name.Name) -> str:
    text = origin.to_text()
    return "; ".join(p.to_text() for p in loaded.errors if p.zone == text) or "failed to load"


def _versions(
    inp: ReloadInput,
    tables: Mapping[dns.name.Name, ZoneTable],
    pools: Sequence[Pool],
    warnings: list[str],
) -> tuple[
    dict[dns.name.Name, ZoneContent],
    list[tuple[ZoneVersion, ZoneDiff, ZoneContent]],
    dict[dns.name.Name, list[str]],
    list[ZoneContent],
]:
    """Each zone's content, the versions to record, the guard's refusals by zone, and
    the zones whose first version is left for later (``ReloadInput.defer_first``)."""
    previous = inp.previous
    before = previous.contents if previous is not None else inp.accepted
    fraction = inp.settings.server.max_delete_fraction
    unguarded = {dns.name.from_text(z.name) for z in inp.settings.config.zone if not z.guard}
    contents: dict[dns.name.Name, ZoneContent] = {}
    versions: list[tuple[ZoneVersion, ZoneDiff, ZoneContent]] = []
    refusals: dict[dns.name.Name, list[str]] = {}
    first: list[ZoneContent] = []
    for origin, table in tables.items():
        old = before.get(origin)
        kept = previous is not None and table is previous.loaded.tables.get(origin)
        if old is not None and kept:
            contents[origin] = old  # kept (failed or lost file): nothing new
            continue
        ready = inp.loaded.contents.get(origin) if inp.loaded is not None else None
        fresh = ready is not None and inp.loaded is not None and (
            inp.loaded.tables.get(origin) is table
        )
        if old is None and inp.defer_first and not (ready is not None and fresh):
            # nothing to compare with: answered first, content made when read
            contents[origin] = content = zone_content(table, pending=True)
            first.append(content)
            continue
        content = ready if ready is not None and fresh else zone_content(table)
        contents[origin] = content
        known = inp.compared.get(origin)
        if known is not None and (known.old is not old or content is not ready):
            known = None  # compared with something else: compare here
        if known is not None:
            changes = known.changes
        else:
            changes = diff(old, content) if old is not None else ZoneDiff((), content.records)
        if old is not None and not changes:
            continue
        if old is not None and origin not in unguarded:
            protected = {(p.owner, p.rdtype) for p in pools if p.owner.is_subdomain(origin)}
            lines = check_deletions(
                old, content, protected=protected, max_delete_fraction=fraction,
                changes=changes,
            )
            if lines:
                refusals[origin] = lines
        version = new_version(content, changes, at=inp.now,
                              hash=known.new_hash if known is not None else None)
        if old is not None:
            old_version = new_version(old, ZoneDiff((), ()), at=inp.now,
                                      hash=known.old_hash if known is not None else None)
            if (problem := serial_problem(old_version, version)) is not None:
                warnings.append(f"zone {problem}")
        versions.append((version, changes, content))
    return contents, versions, refusals, first


def _table_from(content: ZoneContent) -> ZoneTable:
    """A served table from recorded content (the last accepted version)."""
    zone = dns.zone.Zone(content.origin, relativize=False)
    for rrset in to_rrsets(content.records):
        zone.replace_rdataset(rrset.name, rrset)
    return compile_zone(zone, file="<state file>", lines={})


def _failed(loaded: LoadedZones) -> set[dns.name.Name]:
    """Origins whose file had an error this time."""
    out: set[dns.name.Name] = set()
    for problem in loaded.problems:
        if problem.severity == "error" and problem.zone:
            try:
                out.add(dns.name.from_text(problem.zone))
            except dns.exception.DNSException:
                continue
    return out


def _octets(text: str | None) -> bytes | None:
    """An ``nsid`` / ``identity`` setting as octets (validated with the config)."""
    return None if text is None else identity_bytes(text)
