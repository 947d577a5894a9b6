"""Transfers' edge state: the TSIG keyring and each zone's transfer and NOTIFY settings.

Owns reading ``[[key]]`` entries (a secret in the config, or ``key_file``:
a file in BIND's ``key`` syntax, relative to the config's directory) into
``TsigKey``s and the dnspython keyring both sides of transfers use (the
secondary side reads ``load_keyring`` too), and each primary ``[[zone]]``'s
``AccessRule`` and NOTIFY targets (``zone_settings``), and the recent diffs
IXFR answers from (``History``).

Must not: open sockets (``net``, ``notify`` and dnspython's transfer calls
do), answer queries (``handoff`` does, with ``xfr.*``), or be consulted per
ordinary query.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.tsig

from dnsserve.config_schema import Config
from dnsserve.config_values import parse_hostport
from dnsserve.errors import ConfigError
from dnsserve.xfr.access import DENY, AccessRule
from dnsserve.xfr.keys import KeySyntaxError, TsigKey, check_secret, from_text
from dnsserve.xfr.publish import DEFAULT_MIN_INTERVAL, PoolKey, PublishZone
from dnsserve.zones.versions import ZoneDiff

Keyring = Mapping[dns.name.Name, dns.tsig.Key]


@dataclass(frozen=True, slots=True)
class ZoneTransfer:
    """One primary zone's transfer settings."""

    origin: dns.name.Name
    access: AccessRule = DENY
    notify: tuple[tuple[str, int], ...] = ()  # secondaries to NOTIFY: (address, port)
    notify_key: dns.name.Name | None = None  # sign NOTIFY with this key (the zone's first)


def load_keys(config: Config, base: Path) -> dict[str, TsigKey]:
    """Every ``[[key]]`` by name; ConfigError naming the key and file when one is unusable.

    ``key_file`` is relative to ``base`` (the config file's directory) and
    must hold a ``key`` clause of the entry's name (or exactly one clause).
    """
    keys: dict[str, TsigKey] = {}
    errors: list[str] = []
    for i, entry in enumerate(config.key):
        where = f"key[{i}] ({entry.name})"
        try:
            if entry.secret is not None:
                check_secret(entry.secret)
                keys[entry.name] = TsigKey(entry.name, entry.algorithm.lower(), entry.secret)
            elif entry.key_file is not None:
                keys[entry.name] = _from_file(entry.name, base / entry.key_file)
            else:
                errors.append(f"{where}: needs secret or key_file")
        except (KeySyntaxError, OSError, UnicodeDecodeError) as exc:
            errors.append(f"{where}: {exc}")
    if errors:
        raise ConfigError("\n".join(errors))
    return keys


def _from_file(name: str, path: Path) -> TsigKey:
    try:
        clauses = from_text(path.read_text(encoding="utf-8"))
    except KeySyntaxError as exc:
        raise KeySyntaxError(f"{path}: {exc}") from None
    wanted = dns.name.from_text(name)
    for key in clauses:
        if key.dns_name == wanted:
            return TsigKey(name, key.algorithm, key.secret)
    if len(clauses) == 1:
        return TsigKey(name, clauses[0].algorithm, clauses[0].secret)
    raise KeySyntaxError(f"{path}: no key named {name!r} among {len(clauses)}")


def keyring(keys: Mapping[str, TsigKey]) -> dict[dns.name.Name, dns.tsig.Key]:
    """The dnspython keyring of ``keys``: key name -> ``dns.tsig.Key``."""
    return {key.dns_name: key.to_dnspython() for key in keys.values()}


def load_keyring(config: Config, base: Path) -> dict[dns.name.Name, dns.tsig.Key]:
    """``keyring(load_keys(config, base))``: what the engine and both transfer sides use."""
    return keyring(load_keys(config, base))


def zone_settings(config: Config) -> dict[dns.name.Name, ZoneTransfer]:
    """Each primary ``[[zone]]`` (one without ``primaries``): its access rule and NOTIFY list.

    The config is validated already (prefixes, addresses, key names).
    """
    out: dict[dns.name.Name, ZoneTransfer] = {}
    for zone in config.zone:
        if zone.primaries:
            continue
        origin = dns.name.from_text(zone.name)
        try:
            access = AccessRule.from_text(zone.allow_transfer, zone.transfer_keys)
            notify = tuple(parse_hostport(t, 53) for t in zone.notify)
        except ValueError as exc:
            raise ConfigError(f"zone {zone.name}: {exc}") from None
        notify_key = dns.name.from_text(zone.transfer_keys[0]) if zone.transfer_keys else None
        out[origin] = ZoneTransfer(origin, access, notify, notify_key)
    return out


def publish_zones(
    config: Config, origins: Iterable[dns.name.Name]
) -> dict[dns.name.Name, PublishZone]:
    """The zones (among the served ``origins``) with published pools: a pool with
    ``publish = true``, or any pool inside a ``[[zone]]`` with ``publish = true``."""
    served = sorted(origins, key=lambda o: len(o), reverse=True)  # closest origin first
    zones = {dns.name.from_text(z.name): z for z in config.zone if not z.primaries}
    found: dict[dns.name.Name, set[PoolKey]] = {}
    for pool in config.pool:
        owner = dns.name.from_text(pool.owner)
        origin = next((o for o in served if owner.is_subdomain(o)), None)
        if origin is None:
            continue
        zone = zones.get(origin)
        if pool.publish or (zone is not None and zone.publish):
            found.setdefault(origin, set()).add((owner, pool.type.rdtype))
    return {
        origin: PublishZone(
            origin, frozenset(keys),
            zones[origin].publish_min_interval if origin in zones else DEFAULT_MIN_INTERVAL,
        )
        for origin, keys in found.items()
    }


class History:
    """Each zone's recent diffs, oldest first, for IXFR; at most ``limit`` per zone.

    Filled from the state file at start and with each accepted version after.
    """

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._diffs: dict[dns.name.Name, collections.deque[ZoneDiff]] = {}

    def add(self, origin: dns.name.Name, changes: ZoneDiff) -> None:
        diffs = self._diffs.setdefault(origin, collections.deque(maxlen=self.limit))
        diffs.append(changes)

    def extend(self, origin: dns.name.Name, changes: Iterable[ZoneDiff]) -> None:
        for one in changes:
            self.add(origin, one)

    def diffs(self, origin: dns.name.Name) -> Sequence[ZoneDiff]:
        return tuple(self._diffs.get(origin, ()))
