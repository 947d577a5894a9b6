"""Configuration: ``dnsserve.toml`` decoded once into frozen msgspec Structs.

Owns reading and decoding the file (TOML, then ``config_schema``'s Structs
and ``validate``), decode errors as lines naming file, key and value, the
cross-check of pools against loaded zone origins, warnings, member ids, and
the mapping of a pool's config to the pure ``answer.policies.Pool``. The
Structs live in ``config_schema``, ``validate`` and ``parse_hostport`` in
``config_validate``; all are importable from here. Relative paths
(``zones``, ``state``, ``ca_file``) are kept as written; the caller decides
what they are relative to.

Must not: read zone files, open sockets, or be consulted per query. Code
downstream gets these objects, never dicts.

Every error names the file, the key path and the bad value, one per line:

    dnsserve.toml: pool[1].members[0].weight = -1: must be >= 0
    dnsserve.toml: pool[0].type: missing required key
    dnsserve.toml:7: TOML syntax error: Unclosed inline table (at line 7, column 14)

``server.version`` / ``server.identity`` are the CHAOS TXT answers for
version.bind / id.server; ``None`` means disabled (REFUSED). In the file,
``false`` or ``""`` disables; identity is disabled by default, unless
``server.nsid`` is set: then identity, when not written, is the NSID (one
identity for the node, as BIND's ``server-id`` is both).
"""

from __future__ import annotations

import enum
import ipaddress
import re
import tomllib
import typing
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
import msgspec

from dnsserve.answer.policies import Pool, PoolMember
from dnsserve.config_schema import (
    Config,
    MemberConfig,
    MonitorConfig,
    PoolConfig,
    PoolType,
)
from dnsserve.config_validate import validate
from dnsserve.config_values import parse_hostport, parse_node_url, problem_line
from dnsserve.errors import ConfigError
from dnsserve.health.model import DEFAULT_PORTS, MemberId
from dnsserve.posture.configrules import config_findings
from dnsserve.zones.blobs import name_key
from dnsserve.zones.signed import is_signed
from dnsserve.zones.table import ZoneTable, closest_origin

__all__ = [
    "DEFAULT_PORTS",
    "Config",
    "ConfigError",
    "MemberConfig",
    "MonitorConfig",
    "PoolConfig",
    "PoolType",
    "check_pools_against_zones",
    "config_warnings",
    "decode_config",
    "load_config",
    "member_id",
    "member_ids",
    "parse_hostport",
    "parse_node_url",
    "place_pools",
    "pool_from_config",
    "pools_from_config",
    "validate",
]


# -- decoding -----------------------------------------------------------------


def load_config(path: Path) -> Config:
    """Read and decode ``path``; raise ConfigError naming file, key and value."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return decode_config(data, file=str(path))


def decode_config(data: str | bytes, *, file: str = "<config>") -> Config:
    """Decode TOML text into a Config (what ``msgspec.toml.decode`` does, plus
    keeping the raw document so errors can quote the bad value)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_line(str(exc), text)
        raise ConfigError(f"{file}:{line}: TOML syntax error: {exc}") from None
    errors = _normalise_chaos(raw, file)
    if errors:
        raise ConfigError("\n".join(errors))
    try:
        config = msgspec.convert(raw, type=Config, str_keys=True)
    except msgspec.ValidationError as exc:
        errors = _every_decode_error(raw, file) or [_validation_message(str(exc), raw, file)]
        raise ConfigError("\n".join(errors)) from None
    errors = validate(config, file=file)
    if errors:
        raise ConfigError("\n".join(errors))
    return config


def _every_decode_error(raw: dict[str, Any], file: str) -> list[str]:
    """One error line per bad table or array entry: msgspec stops at the first
    problem of a document, so each entry is decoded on its own to find them all."""
    hints = typing.get_type_hints(Config)
    errors = []
    for key, value in raw.items():
        hint = hints.get(key)
        if hint is None:
            errors.append(problem_line(file, key, value, "unknown key"))
            continue
        many = typing.get_origin(hint) is tuple and isinstance(value, list)
        kind = typing.get_args(hint)[0] if many else hint
        entries = [(f"{key}[{i}]", v) for i, v in enumerate(value)] if many else [(key, value)]
        for path, entry in entries:
            try:
                msgspec.convert(entry, type=kind, str_keys=True)
            except msgspec.ValidationError as exc:
                message = str(exc)
                if " - at `$" in message:
                    message = message.replace(" - at `$", f" - at `$.{path}", 1)
                else:
                    message += f" - at `$.{path}`"
                errors.append(_validation_message(message, raw, file))
    return errors


def _toml_line(message: str, text: str) -> int:
    match = re.search(r"at line (\d+)", message)
    if match:
        return int(match.group(1))
    return text.count("\n") + 1  # "at end of document"


def _normalise_chaos(raw: dict[str, Any], file: str) -> list[str]:
    """``false`` or ``""`` disables a CHAOS answer or the NSID: stored as None.
    An identity not written follows the NSID."""
    server = raw.get("server")
    if not isinstance(server, dict):
        return []
    errors = []
    for key in ("version", "identity", "nsid"):
        value = server.get(key)
        if value is False or value == "":
            server[key] = None
        elif value is True:
            errors.append(problem_line(file, f"server.{key}", value,
                                       "a string, or false to disable"))
    if "identity" not in server and isinstance(server.get("nsid"), str):
        server["identity"] = server["nsid"]  # id.server / hostname.bind agree with the NSID
    return errors


_AT = re.compile(r"^(?P<msg>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_FIELD = re.compile(r"field `(?P<field>[^`]+)`")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _validation_message(message: str, raw: dict[str, Any], file: str) -> str:
    match = _AT.match(message)
    problem, path = (match["msg"], match["path"].lstrip(".")) if match else (message, "")
    field = _FIELD.search(problem)
    if field and "missing required field" in problem:
        return f"{file}: {_join(path, field['field'])}: missing required key"
    if field and "unknown field" in problem:
        key = _join(path, field["field"])
        return problem_line(file, key, _lookup(raw, key), "unknown key")
    problem = problem.replace("`", "")
    choices = _CHOICES.get(path.rpartition(".")[2])
    if "invalid enum value" in problem.lower() and choices:
        problem = f"must be one of {', '.join(choices)}"
    problem = problem[0].lower() + problem[1:] if problem else problem
    if not path:
        return f"{file}: {problem}"
    return problem_line(file, path, _lookup(raw, path), problem)


_CHOICES = {  # field name -> allowed values, from the Structs' Enum annotations
    name: tuple(str(member.value) for member in hint)
    for cls in (MonitorConfig, PoolConfig)
    for name, hint in typing.get_type_hints(cls).items()
    if isinstance(hint, type) and issubclass(hint, enum.Enum)
}


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _lookup(raw: Any, key: str) -> Any:
    node = raw
    for name, index in _STEP.findall("." + key):
        try:
            node = node[int(index)] if index else node[name]
        except (KeyError, IndexError, TypeError):
            return None
    return node


# -- checks against the loaded zones, warnings ---------------------------------


def check_pools_against_zones(
    config: Config, origins: Iterable[dns.name.Name], *, file: str = "<config>"
) -> list[str]:
    """Error lines for pools outside every loaded zone, CNAME pools at an apex
    and primary ``[[zone]]`` entries without a zone file."""
    return list(place_pools(config, dict.fromkeys(origins), file=file).errors)


@dataclass(frozen=True, slots=True)
class Placed:
    """The config's pools placed in the loaded zones (``place_pools``)."""

    pools: tuple[Pool, ...]  # to serve
    set_aside: tuple[str, ...]  # pools inside a zone whose file failed, with why
    errors: tuple[str, ...]  # config errors: the config must not be served
    aside: frozenset[tuple[dns.name.Name, str]] = frozenset()  # set aside: (owner, type)


def place_pools(
    config: Config,
    tables: Mapping[dns.name.Name, ZoneTable | None],
    failed: Collection[dns.name.Name] = (),
    *,
    file: str = "<config>",
) -> Placed:
    """Each pool in the zone that holds its owner, as the policies' ``Pool``.

    A pool inside a zone whose file ``failed`` to load is set aside (the other
    zones and pools serve). Errors: an owner inside no zone file at all, a
    CNAME pool at an apex, a pool beside a CNAME (RFC 1034 §3.6.2), a primary
    ``[[zone]]`` without a zone file. ``tables`` may map an origin to None
    when only the origins are known (no CNAME checks then).
    """
    known = ", ".join(sorted(o.to_text() for o in tables)) or "none loaded"
    signing = {dns.name.from_text(z.name) for z in config.zone if z.dnssec is not None}
    pools: list[Pool] = []
    set_aside: list[str] = []
    aside: set[tuple[dns.name.Name, str]] = set()
    errors: list[str] = []
    for i, cfg in enumerate(config.pool):
        owner = dns.name.from_text(cfg.owner)
        origin = closest_origin(owner, tables)
        key = f"pool[{i}].owner"
        if origin is None:
            broken = closest_origin(owner, failed)
            if broken is None:
                errors.append(problem_line(file, key, cfg.owner,
                                           f"not inside a loaded zone (zones: {known})"))
            else:
                aside.add((owner, cfg.type.value))
                set_aside.append(f"{file}: pool[{i}] ({cfg.owner} {cfg.type.value}) set aside: "
                                 f"its zone {broken} failed to load")
            continue
        problem = _conflict(cfg.type, owner, origin, tables[origin]) or _unsignable(
            owner, origin, tables[origin], signing)
        if problem is not None:
            errors.append(problem_line(file, key, cfg.owner, problem))
            continue
        pools.append(pool_from_config(cfg, origin))
    for i, zone in enumerate(config.zone):
        name = dns.name.from_text(zone.name)
        if not zone.primaries and name not in tables and name not in failed:
            errors.append(problem_line(file, f"zone[{i}].name", zone.name,
                                       "primary zone without a zone file (or set primaries)"))
    return Placed(tuple(pools), tuple(set_aside), tuple(errors), frozenset(aside))


def _unsignable(
    owner: dns.name.Name, origin: dns.name.Name, table: ZoneTable | None,
    signing: Collection[dns.name.Name],
) -> str | None:
    """Why a pool cannot answer in a signed zone, or None: a pre-signed zone (its
    file signed beforehand, no keys in the config) cannot sign a pool's answers,
    and in an online-signed one the pool's name must be in the zone file (its NSEC
    record is made at load: a name the chain says does not exist fails validation)."""
    if table is None or not is_signed(table):
        return None
    if origin in signing:
        if table.exists_key(name_key(owner)):
            return None
        return (f"zone {origin} is signed online and {owner} is not in its zone file: "
                "the denial chain is made at load, so a pool's name must be there (give "
                "it the pool's static records)")
    return (f"zone {origin} is signed (DNSKEY and RRSIGs in its file) but has no "
            "[[zone]] dnssec keys: a pool answer needs a signature made for it, and without "
            "a valid one validating resolvers reject it (SERVFAIL); give the zone's keys "
            "(dnssec = { keys = ... }) so dnsserve signs it, or move the pool out")


_BESIDE_CNAME = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.MX, dns.rdatatype.TXT)


def _conflict(
    rdtype: PoolType, owner: dns.name.Name, origin: dns.name.Name, table: ZoneTable | None
) -> str | None:
    """Why a pool cannot answer at ``owner`` in its zone, or None."""
    if rdtype is PoolType.CNAME:
        if owner == origin:
            return "a CNAME pool cannot sit at a zone apex"
        others = [t for t in _BESIDE_CNAME if table is not None and table.rrset(owner, t)]
        if others:
            names = ", ".join(dns.rdatatype.to_text(t) for t in others)
            return f"a CNAME pool where the zone has other data ({names}): CNAME beside data"
    elif table is not None and table.rrset(owner, dns.rdatatype.CNAME) is not None:
        return (f"the zone has a CNAME at {owner}: an {rdtype.value} pool there would put "
                "data beside a CNAME")
    return None


def config_warnings(config: Config, *, file: str = "<config>") -> list[str]:
    """Legal but risky settings (``dnsserve check`` prints these, with their rule ids:
    ``posture.configrules``)."""
    return [f.message for f in config_findings(config, file=file)]


# -- from config to the pure core ------------------------------------------------


def member_id(pool: PoolConfig, member: MemberConfig) -> MemberId:
    """The monitored thing: the pool's monitor and the address probed."""
    address = member.probe if member.probe is not None else member.address
    return MemberId(pool.monitor, ipaddress.ip_address(address).compressed)


def pool_from_config(pool: PoolConfig, origin: dns.name.Name | None = None) -> Pool:
    """The policy input of one pool; relative CNAME targets are made absolute
    against ``origin`` (the owner's zone), as a zone file would."""
    base = origin if origin is not None else dns.name.root

    def value(text: str) -> str:
        if pool.type is PoolType.CNAME:
            return dns.name.from_text(text, origin=base).to_text()
        return ipaddress.ip_address(text).compressed

    members = tuple(
        PoolMember(
            value=value(m.target if pool.type is PoolType.CNAME and m.target else m.address),
            member=member_id(pool, m),
            weight=m.weight,
            priority=m.priority,
        )
        for m in pool.members
    )
    return Pool(
        owner=dns.name.from_text(pool.owner),
        rdtype=pool.type.rdtype,
        policy=pool.policy,
        members=members,
        max_answers=pool.max_answers,
        ttl=pool.ttl,
        when_all_down=pool.when_all_down,
        fallback=tuple(value(v) for v in pool.fallback),
    )


def pools_from_config(config: Config, origins: Iterable[dns.name.Name]) -> tuple[Pool, ...]:
    """Every pool for the policies; call after check_pools_against_zones passed."""
    served = set(origins)
    return tuple(
        pool_from_config(p, closest_origin(dns.name.from_text(p.owner), served))
        for p in config.pool
    )


def member_ids(config: Config) -> list[MemberId]:
    """Every member the config's pools name (for the CLI to resolve a bare address)."""
    return sorted({member_id(pool, m) for pool in config.pool for m in pool.members})
