"""File-only validation of ``dnsserve.toml``'s operations sections: the checks
``config_validate.validate`` runs after the server's and the pools'.

Owns the rules of ``[[key]]`` and ``[[zone]]`` (TSIG keys, transfers, NOTIFY,
a secondary's primaries, online DNSSEC), ``[[region]]`` and ``[posture]``,
``[watch]`` and ``[[node]]``, each problem one line naming file, key and value
(``config_values.problem_line``).

Pure: no I/O, no clock. Must not: define the file's shape (``config_schema``),
or look at loaded zones.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import shlex
from collections.abc import Sequence

import dns.exception
import dns.name
import dns.ttl

from dnsserve.config_schema import (
    TSIG_ALGORITHMS,
    Config,
    DnssecConfig,
    NodeConfig,
    WatchConfig,
)
from dnsserve.config_values import (
    hostport_problem,
    key_problem_line,
    name_problem,
    node_url_problem,
    parse_hostport,
    parse_node_url,
    problem_line,
)
from dnsserve.posture.findings import RULES
from dnsserve.zones.online import ALGORITHMS as SIGNING_ALGORITHMS


def check_transfers(config: Config, file: str) -> list[str]:
    errors = []
    keys: set[str] = set()
    for i, tkey in enumerate(config.key):
        key = f"key[{i}]"
        if not tkey.name or tkey.name in keys:
            errors.append(problem_line(file, f"{key}.name", tkey.name,
                                       "empty or duplicate key name"))
        keys.add(tkey.name)
        if tkey.algorithm not in TSIG_ALGORITHMS:
            errors.append(problem_line(file, f"{key}.algorithm", tkey.algorithm,
                                       f"one of {', '.join(sorted(TSIG_ALGORITHMS))}"))
        if (tkey.secret is None) == (tkey.key_file is None):
            errors.append(key_problem_line(file, key, "exactly one of secret and key_file"))
        elif tkey.secret is not None:
            try:
                base64.b64decode(tkey.secret, validate=True)
            except (binascii.Error, ValueError):
                errors.append(problem_line(file, f"{key}.secret", tkey.secret, "not base64"))
    zones: set[dns.name.Name] = set()
    for i, zone in enumerate(config.zone):
        key = f"zone[{i}]"
        if problem := name_problem(zone.name, absolute=True):
            errors.append(problem_line(file, f"{key}.name", zone.name, problem))
        elif dns.name.from_text(zone.name) in zones:
            errors.append(problem_line(file, f"{key}.name", zone.name, "duplicate zone"))
        else:
            zones.add(dns.name.from_text(zone.name))
        for field in ("allow_transfer", "allow_notify"):
            for j, prefix in enumerate(getattr(zone, field)):
                try:
                    ipaddress.ip_network(prefix, strict=False)
                except ValueError:
                    errors.append(
                        problem_line(file, f"{key}.{field}[{j}]", prefix, "not an address prefix")
                    )
        for field in ("notify", "primaries"):
            for j, target in enumerate(getattr(zone, field)):
                if problem := hostport_problem(target, default_port=53):
                    errors.append(problem_line(file, f"{key}.{field}[{j}]", target, problem))
        if not zone.publish_min_interval >= 0:
            errors.append(problem_line(file, f"{key}.publish_min_interval",
                                       zone.publish_min_interval, "must be >= 0"))
        named = [(f"transfer_keys[{j}]", n) for j, n in enumerate(zone.transfer_keys)]
        named += [("key", zone.key)] if zone.key is not None else []
        for field, name in named:
            if name not in keys:
                errors.append(problem_line(file, f"{key}.{field}", name, "no such key"))
        if zone.dnssec is not None:
            errors += _check_dnssec(zone.dnssec, f"{key}.dnssec", file, secondary=zone.secondary)
        if not zone.primaries:
            for field in ("key", "allow_notify"):
                if getattr(zone, field):
                    errors.append(problem_line(file, f"{key}.{field}", getattr(zone, field),
                                               "only for a secondary zone (set primaries)"))
    return errors


MIN_RESIGN = 10  # seconds: validity - refresh, how often the zone may be re-signed at most


def _check_dnssec(dnssec: DnssecConfig, key: str, file: str, *, secondary: bool) -> list[str]:
    errors = []
    if secondary:
        errors.append(problem_line(file, key, "...", "a secondary zone is signed by its "
                                   "primary: remove dnssec, or the zone's primaries"))
    if dnssec.algorithm not in SIGNING_ALGORITHMS:
        errors.append(problem_line(file, f"{key}.algorithm", dnssec.algorithm,
                                   f"use {' or '.join(SIGNING_ALGORITHMS)}"))
    if dnssec.nsec3:
        errors.append(problem_line(file, f"{key}.nsec3", True,
                                   "online signing makes an NSEC chain only (for now)"))
    seconds = {}
    for field in ("validity", "refresh"):
        try:
            seconds[field] = dns.ttl.from_text(getattr(dnssec, field))
        except dns.exception.DNSException:
            errors.append(problem_line(file, f"{key}.{field}", getattr(dnssec, field),
                                       "a duration such as 14d, 2w or 1209600"))
    if len(seconds) == 2 and not 0 < seconds["refresh"] <= seconds["validity"] - MIN_RESIGN:
        errors.append(problem_line(file, f"{key}.refresh", dnssec.refresh,
                                   f"must be more than 0 and at least {MIN_RESIGN} s less "
                                   "than validity (the zone is re-signed that long before "
                                   "its signatures expire)"))
    return errors


# -- [[region]] and [posture]: what dnsserve check holds zones and pools to ---------


def check_posture(config: Config, file: str) -> list[str]:
    errors = []
    names: dict[str, str] = {}
    for i, region in enumerate(config.region):
        key = f"region[{i}]"
        if not region.name or any(c.isspace() for c in region.name):
            errors.append(problem_line(file, f"{key}.name", region.name,
                                       "must be non-empty, without spaces"))
        elif region.name in names:
            errors.append(problem_line(file, f"{key}.name", region.name,
                                       f"duplicate region (first at {names[region.name]})"))
        names.setdefault(region.name, key)
        for j, prefix in enumerate(region.prefixes):
            try:
                ipaddress.ip_network(prefix, strict=False)
            except ValueError:
                errors.append(problem_line(file, f"{key}.prefixes[{j}]", prefix,
                                           "not an address prefix"))
    posture = config.posture
    if posture.failover_budget < 0:
        errors.append(problem_line(file, "posture.failover_budget", posture.failover_budget,
                                   "must be >= 0 (seconds)"))
    for j, rule in enumerate(posture.ignore):
        if rule not in RULES:
            errors.append(problem_line(file, f"posture.ignore[{j}]", rule,
                                       "no such rule id (README: Posture checks)"))
    return errors


def check_watch(watch: WatchConfig, file: str) -> list[str]:
    """``[watch]``: positive timers and bounds, addresses that parse, a hook that splits."""
    errors = []
    for field in ("interval", "timeout", "hook_timeout"):
        if not getattr(watch, field) > 0:
            errors.append(problem_line(file, f"watch.{field}", getattr(watch, field),
                                       "must be > 0 (seconds)"))
    for field in ("max_queries", "full_every"):
        if getattr(watch, field) < 1:
            errors.append(problem_line(file, f"watch.{field}", getattr(watch, field),
                                       "must be >= 1"))
    if not 0 < watch.ns_port < 65536:
        errors.append(problem_line(file, "watch.ns_port", watch.ns_port, "not a port"))
    for j, server in enumerate(watch.servers):
        try:
            parse_hostport(server)
        except ValueError as exc:
            errors.append(problem_line(file, f"watch.servers[{j}]", server, str(exc)))
    if watch.metrics:
        try:
            parse_hostport(watch.metrics)
        except ValueError as exc:
            errors.append(problem_line(file, "watch.metrics", watch.metrics, str(exc)))
    if watch.control and not watch.control.startswith(("http://", "https://")):
        errors.append(problem_line(file, "watch.control", watch.control,
                                   "expected http://ADDRESS:PORT"))
    try:
        shlex.split(watch.on_deviation)
    except ValueError as exc:
        errors.append(problem_line(file, "watch.on_deviation", watch.on_deviation,
                                   f"cannot be split into arguments: {exc}"))
    return errors


# -- [[node]]: the servers the CLI's live commands act on -------------------------


def check_nodes(nodes: Sequence[NodeConfig], file: str) -> list[str]:
    errors = []
    names: dict[str, str] = {}
    urls: dict[tuple[str, int], str] = {}
    for i, node in enumerate(nodes):
        key = f"node[{i}]"
        if not node.name or "/" in node.name or any(c.isspace() for c in node.name):
            errors.append(problem_line(file, f"{key}.name", node.name,
                                       "must be non-empty, without '/' or spaces"))
        elif node.name in names:
            errors.append(problem_line(file, f"{key}.name", node.name,
                                       f"duplicate node name (first at {names[node.name]})"))
        names.setdefault(node.name, key)
        if problem := node_url_problem(node.url):
            errors.append(problem_line(file, f"{key}.url", node.url, problem))
        else:
            where = parse_node_url(node.url)
            if where in urls:
                errors.append(problem_line(file, f"{key}.url", node.url,
                                           f"duplicate node (first at {urls[where]})"))
            urls.setdefault(where, key)
        if node.dns is not None and (problem := hostport_problem(node.dns)):
            errors.append(problem_line(file, f"{key}.dns", node.dns, problem))
        if node.token_file is not None and not node.token_file.strip():
            errors.append(problem_line(file, f"{key}.token_file", node.token_file,
                                       "must name a file"))
    return errors
