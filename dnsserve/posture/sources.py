"""What the posture rules need from outside: the takeover list, zone lines, the
reference version of the zones, a resolver's verdict.

Edge [E]: owns reading ``posture/takeover.json``; reading a zone file again
(the fast reader) for the lines of the records a finding names, only for the
zones with such findings and never on the serving path; the reference of
``check --against REF``, another directory or a git revision of the zones
directory (``git ls-tree`` and ``git show`` into a temporary directory,
loaded like any zones directory); and ``--resolve``'s queries (dnspython,
UDP then TCP when truncated, a bounded timeout per name). Must not: judge
anything (``posture``'s pure modules do) or print.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
from dns.rdatatype import RdataType

from dnsserve.config_values import parse_hostport
from dnsserve.errors import ConfigError, ZoneError
from dnsserve.posture.review import Lines
from dnsserve.posture.takeover import Suffixes
from dnsserve.zones.blobs import name_from_wire
from dnsserve.zones.files import DEFAULT_RULES, FileRules
from dnsserve.zones.load import load_zones
from dnsserve.zones.parse import parse_zone_file
from dnsserve.zones.versions import ZoneContent, zone_content

GIT_TIMEOUT = 60.0  # seconds for one git command
RESOLVE_TIMEOUT = 2.0  # seconds for one query to the --resolve resolver


def takeover_list() -> Suffixes:
    """The package's ``takeover.json``."""
    text = resources.files("dnsserve.posture").joinpath("takeover.json").read_text("utf-8")
    return Suffixes.from_json(text)


def zone_lines(
    path: Path, origin: dns.name.Name, zones_dir: Path, rules: FileRules = DEFAULT_RULES
) -> Lines:
    """Where each (owner, type) of a zone file was first written, and each owner."""
    try:
        parsed = parse_zone_file(path, origin, include_dir=zones_dir, rules=rules)
    except (ZoneError, OSError):
        return {}
    out: dict[tuple[str, str], tuple[str, int]] = {}
    names: dict[bytes, str] = {}
    for i, owner in enumerate(parsed.owners):
        key = owner.lower()
        text = names.get(key)
        if text is None:
            text = names[key] = name_from_wire(key).to_text().lower()
        where = parsed.where(i)
        out.setdefault((text, RdataType.make(parsed.types[i]).name), where)
        out.setdefault((text, ""), where)
    return out


def lines_for(
    zones: Iterable[str], files: Mapping[dns.name.Name, Path], zones_dir: Path,
    rules: FileRules = DEFAULT_RULES,
) -> dict[str, Lines]:
    """``zone_lines`` of each zone named (origins as text)."""
    out = {}
    for zone in zones:
        origin = dns.name.from_text(zone)
        path = files.get(origin)
        if path is not None:
            out[zone] = zone_lines(path, origin, zones_dir, rules)
    return out


# -- check --against REF ----------------------------------------------------------


def reference_contents(
    ref: str, zones_dir: Path, rules: FileRules = DEFAULT_RULES
) -> dict[dns.name.Name, ZoneContent]:
    """The zones at ``ref``: a directory of zone files, else a git revision of ``zones_dir``.

    Zones that do not load at the reference are left out (nothing to compare).
    Raises ``ConfigError`` when ``ref`` is neither.
    """
    if Path(ref).is_dir():
        return _contents(Path(ref), rules)
    with tempfile.TemporaryDirectory(prefix="dnsserve-against-") as tmp:
        _git_export(ref, zones_dir, Path(tmp))
        return _contents(Path(tmp), rules)


def _contents(directory: Path, rules: FileRules) -> dict[dns.name.Name, ZoneContent]:
    loaded = load_zones(directory, log_problems=False, extra={}, rules=rules)
    return {origin: zone_content(table) for origin, table in loaded.tables.items()}


def _git(args: list[str], cwd: Path) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False,
                              timeout=GIT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"--against: git {args[0]}: {exc}") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(f"--against: git {' '.join(args)}: {why[-1] if why else 'failed'}")
    return done.stdout


def _git_export(ref: str, zones_dir: Path, into: Path) -> None:
    """The files of ``zones_dir`` at revision ``ref``, written below ``into``."""
    zones_dir = zones_dir.resolve()
    if not zones_dir.is_dir():
        raise ConfigError(f"--against {ref}: the zones directory {zones_dir} does not exist")
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], zones_dir).decode().strip())
    except ConfigError as exc:
        if "not a git repository" not in str(exc):
            raise  # git missing, or a failure of its own: as git says it
        raise ConfigError(f"--against {ref}: not a directory, and the zones directory "
                          f"{zones_dir} is in no git repository") from None
    prefix = zones_dir.relative_to(top.resolve()).as_posix()
    try:
        commit = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                      top).decode().strip()
    except ConfigError:
        raise ConfigError(f"--against {ref}: neither a directory nor a revision of the git "
                          f"repository {top}") from None
    listed = _git(["ls-tree", "-r", "-z", "--name-only", commit, "--", f"{prefix}/"], top)
    for name in filter(None, listed.decode("utf-8", "surrogateescape").split("\0")):
        rel = Path(name).relative_to(prefix) if prefix != "." else Path(name)
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_git(["show", f"{commit}:{name}"], top))


# -- check --resolve ADDRESS:PORT -----------------------------------------------------


def resolve_rcodes(
    resolver: str, names: Iterable[dns.name.Name], *, timeout: float = RESOLVE_TIMEOUT
) -> dict[dns.name.Name, dns.rcode.Rcode | None]:
    """Each name's rcode for an A query at ``resolver`` (None: no answer in ``timeout``)."""
    try:
        host, port = parse_hostport(resolver, 53)
    except ValueError as exc:
        raise ConfigError(f"--resolve {resolver}: {exc}") from None
    out: dict[dns.name.Name, dns.rcode.Rcode | None] = {}
    for name in dict.fromkeys(names):
        query = dns.message.make_query(name, dns.rdatatype.A)
        try:
            reply = dns.query.udp(query, host, port=port, timeout=timeout)
            if reply.flags & dns.flags.TC:
                reply = dns.query.tcp(query, host, port=port, timeout=timeout)
            out[name] = reply.rcode()
        except (dns.exception.DNSException, OSError):
            out[name] = None
    return out
