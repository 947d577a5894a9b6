"""File-only validation of ``dnsserve.toml``: every rule a decoded file must
meet that needs the file alone.

Owns the value checks (addresses, ADDRESS:PORT, DNS names; ``parse_hostport``
is the one parser of an address with a port, ``net`` and the ``--listen``
flag use it too), ``validate`` (one error line per problem, never an
exception) and the form of those lines, which names file, key and value:

    dnsserve.toml: pool[1].members[0].weight = -1: must be >= 0
    dnsserve.toml: pool[0].members[0].target: missing: required in a CNAME pool

Pure: no I/O, no clock. Must not: define the file's shape (``config_schema``'s
Structs do), read files or decode TOML (``config`` does, then calls
``validate``), or look at loaded zones (``config`` checks pools against
them).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import shlex
from collections.abc import Callable, Sequence
from typing import Any

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import dns.ttl

from dnsserve.answer.policies import AllDown
from dnsserve.answer.rrl import MAX_RATE
from dnsserve.config_schema import (
    HEX_PREFIX,
    MAX_IDENTITY,
    MAX_WORKERS,
    MIN_MAX_ZONE_LINE_BYTES,
    TSIG_ALGORITHMS,
    Config,
    CookiesConfig,
    DnssecConfig,
    MemberConfig,
    MonitorConfig,
    NodeConfig,
    PoolConfig,
    PoolType,
    RrlConfig,
    ServerConfig,
    WatchConfig,
    identity_bytes,
)
from dnsserve.config_values import (
    check_listen,
    hostport_problem,
    key_problem_line,
    node_url_problem,
    parse_hostport,
    parse_node_url,
    problem_line,
)
from dnsserve.health.model import CheckKind
from dnsserve.posture.findings import RULES
from dnsserve.zones.online import ALGORITHMS as SIGNING_ALGORITHMS


def _ip_problem(text: str, version: int | None = None) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    want = {4: "an IPv4", 6: "an IPv6", None: "an IP"}[version]
    if address is None or "%" in text or (version and address.version != version):
        return f"not {want} address"
    return None


def _name_problem(text: str, *, absolute: bool) -> str | None:
    if absolute and not text.endswith("."):
        return "must be an absolute name (end with '.')"
    try:
        dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        return f"not a DNS name ({exc})"
    return None


_VALUE_CHECKS: dict[PoolType, Callable[[str], str | None]] = {
    PoolType.A: lambda v: _ip_problem(v, 4),
    PoolType.AAAA: lambda v: _ip_problem(v, 6),
    PoolType.CNAME: lambda v: _name_problem(v, absolute=False),
}


def _canonical(value: str, rdtype: PoolType) -> str:
    if rdtype is PoolType.CNAME:
        return dns.name.from_text(value).to_text().lower()
    return ipaddress.ip_address(value).compressed


# -- validation of the whole file -----------------------------------------------


def validate(config: Config, *, file: str) -> list[str]:
    """Every check that needs this file alone; returns the error lines."""
    errors = _check_server(config.server, file)
    monitors: dict[str, str] = {}
    for i, monitor in enumerate(config.monitor):
        key = f"monitor[{i}]"
        if monitor.name in monitors:
            first = monitors[monitor.name]
            errors.append(problem_line(file, f"{key}.name", monitor.name,
                                       f"duplicate monitor name (first at {first})"))
        monitors.setdefault(monitor.name, key)
        errors += _check_monitor(monitor, key, file)
    pools: dict[tuple[dns.name.Name, PoolType], str] = {}
    for i, pool in enumerate(config.pool):
        key = f"pool[{i}]"
        errors += _check_pool(pool, key, file, monitors)
        if _name_problem(pool.owner, absolute=True) is None:
            ident = (dns.name.from_text(pool.owner), pool.type)
            if ident in pools:
                errors.append(problem_line(file, f"{key}.owner", pool.owner,
                                           f"duplicate pool for {pool.owner} {pool.type.value} "
                                           f"(first at {pools[ident]})"))
            pools.setdefault(ident, key)
    errors += _check_transfers(config, file)
    errors += _check_nodes(config.node, file)
    errors += _check_posture(config, file)
    errors += check_watch(config.watch, file)
    errors += _check_defences(config.rrl, config.cookies, file)
    return errors


def _check_server(server: ServerConfig, file: str) -> list[str]:
    errors = check_listen(server.listen, file=file, key="server.listen")
    if server.control and (problem := hostport_problem(server.control)):
        errors.append(problem_line(file, "server.control", server.control, problem))
    elif server.control and not server.control_allow_remote:
        host = parse_hostport(server.control)[0]
        if not ipaddress.ip_address(host).is_loopback:
            errors.append(problem_line(file, "server.control", server.control,
                                       "not a loopback address: the control API's reads are "
                                       "open to whoever connects (control_allow_remote = true "
                                       "allows it)"))
    if server.max_zone_file_bytes < 1:
        errors.append(problem_line(file, "server.max_zone_file_bytes",
                                   server.max_zone_file_bytes, "must be >= 1"))
    if server.max_zone_line_bytes < MIN_MAX_ZONE_LINE_BYTES:
        errors.append(problem_line(file, "server.max_zone_line_bytes", server.max_zone_line_bytes,
                                   f"must be >= {MIN_MAX_ZONE_LINE_BYTES} (the longest record "
                                   "must fit)"))
    for i, path in enumerate(server.include_paths):
        if not path:
            errors.append(problem_line(file, f"server.include_paths[{i}]", path,
                                       "must name a directory"))
    if not server.reload_timeout > 0:
        errors.append(problem_line(file, "server.reload_timeout", server.reload_timeout,
                                   "must be > 0"))
    if not 0 <= server.max_delete_fraction <= 1:
        errors.append(problem_line(file, "server.max_delete_fraction",
                                   server.max_delete_fraction, "must be in [0, 1]"))
    if not server.tcp_idle_timeout > 0:
        errors.append(problem_line(file, "server.tcp_idle_timeout", server.tcp_idle_timeout,
                                   "must be > 0"))
    if server.tcp_max_connections < 1:
        errors.append(problem_line(file, "server.tcp_max_connections",
                                   server.tcp_max_connections, "must be >= 1"))
    if server.tcp_max_connections_per_prefix < 1:
        errors.append(problem_line(file, "server.tcp_max_connections_per_prefix",
                                   server.tcp_max_connections_per_prefix, "must be >= 1"))
    for key, top in (("tcp_ipv4_prefix_length", 32), ("tcp_ipv6_prefix_length", 128)):
        if not 0 <= getattr(server, key) <= top:
            errors.append(problem_line(file, f"server.{key}", getattr(server, key),
                                       f"must be between 0 and {top}"))
    for key in ("nsid", "identity"):
        if key == "identity" and server.identity == server.nsid:
            continue  # not written (it follows the NSID), or the same: judged as nsid
        if (problem := _identity_problem(getattr(server, key))) is not None:
            errors.append(problem_line(file, f"server.{key}", getattr(server, key), problem))
    if not 0 < server.suspect_fraction <= 1:
        errors.append(problem_line(file, "server.suspect_fraction", server.suspect_fraction,
                                   "must be in (0, 1]"))
    if server.workers is not None and not 1 <= server.workers <= MAX_WORKERS:
        errors.append(problem_line(file, "server.workers", server.workers,
                                   f"must be between 1 and {MAX_WORKERS}"))
    return errors


def _identity_problem(value: str | None) -> str | None:
    """Why an ``nsid`` / ``identity`` value cannot be used, or None."""
    if value is None:
        return None
    try:
        octets = identity_bytes(value)
    except ValueError:
        return f"{HEX_PREFIX} must be followed by an even number of hex digits"
    if not octets:
        return "empty (false turns it off)"
    if len(octets) > MAX_IDENTITY:
        return f"longer than {MAX_IDENTITY} octets"
    return None


def _check_defences(rrl: RrlConfig, cookies: CookiesConfig, file: str) -> list[str]:
    """``[rrl]`` and ``[cookies]``."""
    errors = []
    for key, value, low, high in (
        ("rate", rrl.rate, 1, MAX_RATE), ("slip", rrl.slip, 0, 10),
        ("ipv4_prefix", rrl.ipv4_prefix, 0, 32), ("ipv6_prefix", rrl.ipv6_prefix, 0, 128),
        ("table_size", rrl.table_size, 1, 1 << 24),
    ):
        if not low <= value <= high:
            errors.append(problem_line(file, f"rrl.{key}", value,
                                       f"must be between {low} and {high}"))
    for i, text in enumerate(rrl.exempt):
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            errors.append(problem_line(file, f"rrl.exempt[{i}]", text,
                                       "not an address prefix (192.0.2.0/24, 2001:db8::/32)"))
    for key, secret in (("secret", cookies.secret), ("previous_secret", cookies.previous_secret)):
        if secret is None:
            continue
        try:
            ok = len(bytes.fromhex(secret)) == 16
        except ValueError:
            ok = False
        if not ok:
            errors.append(problem_line(file, f"cookies.{key}", secret,
                                       "must be 32 hex digits (16 bytes)"))
    if cookies.previous_secret is not None and cookies.secret is None:
        errors.append(problem_line(file, "cookies.previous_secret", cookies.previous_secret,
                                   "needs cookies.secret beside it"))
    return errors


def _check_monitor(m: MonitorConfig, key: str, file: str) -> list[str]:
    errors = []

    def bad(field: str, problem: str) -> None:
        errors.append(problem_line(file, f"{key}.{field}", getattr(m, field), problem))

    if not m.name or "/" in m.name or any(c.isspace() for c in m.name):
        bad("name", "must be non-empty, without '/' or spaces")
    if m.port is None and m.kind is CheckKind.TCP:
        errors.append(key_problem_line(file, f"{key}.port", 'missing: required for kind "tcp"'))
    if m.port is not None and not 0 < m.port < 65536:
        bad("port", "must be 1..65535")
    if not m.path.startswith("/"):
        bad("path", "must start with '/'")
    if not m.expect_status or any(not 100 <= s <= 599 for s in m.expect_status):
        bad("expect_status", "one or more HTTP status codes (100..599)")
    if not m.timeout > 0:
        bad("timeout", "must be > 0")
    elif not m.interval > m.timeout:
        bad("interval", f"must be greater than timeout ({m.timeout})")
    for field in ("rise", "fall"):
        if getattr(m, field) < 1:
            bad(field, "must be >= 1")
    if m.kind is CheckKind.DNS:
        if m.query_name is None:
            errors.append(key_problem_line(file, f"{key}.query_name",
                                           'missing: required for kind "dns"'))
        elif problem := _name_problem(m.query_name, absolute=False):
            bad("query_name", problem)
        try:
            dns.rdatatype.from_text(m.query_type)
        except dns.exception.DNSException:
            bad("query_type", "not a DNS record type")
        try:
            dns.rcode.from_text(m.expect_rcode)
        except dns.exception.DNSException:
            bad("expect_rcode", "not a DNS rcode")
    if m.kind is CheckKind.EXEC and m.command is None:
        errors.append(key_problem_line(file, f"{key}.command", 'missing: required for kind "exec"'))
    if m.command is not None and (not m.command or not m.command[0].strip()):
        bad("command", "must name a program (argv list or a shell command line)")
    return errors


def _check_pool(pool: PoolConfig, key: str, file: str, monitors: dict[str, str]) -> list[str]:
    errors = []

    def bad(field: str, value: Any, problem: str) -> None:
        errors.append(problem_line(file, f"{key}.{field}", value, problem))

    if problem := _name_problem(pool.owner, absolute=True):
        bad("owner", pool.owner, problem)
    if pool.monitor not in monitors:
        known = ", ".join(sorted(monitors)) or "none defined"
        bad("monitor", pool.monitor, f"no such monitor (known: {known})")
    if pool.max_answers < 1:
        bad("max_answers", pool.max_answers, "must be >= 1")
    if not 0 <= pool.ttl <= 2**31 - 1:
        bad("ttl", pool.ttl, "must be 0..2147483647")
    if pool.when_all_down is AllDown.FALLBACK and not pool.fallback:
        bad("fallback", pool.fallback, 'must not be empty when when_all_down = "fallback"')
    check_value = _VALUE_CHECKS[pool.type]
    for j, value in enumerate(pool.fallback):
        if problem := check_value(value):
            bad(f"fallback[{j}]", value, f"{problem} (pool type {pool.type.value})")
    if not pool.members:
        bad("members", pool.members, "at least one member")
    seen: dict[str, str] = {}
    for j, member in enumerate(pool.members):
        mkey = f"{key}.members[{j}]"
        errors += _check_member(pool.type, member, mkey, file)
        field = "target" if pool.type is PoolType.CNAME else "address"
        answer = getattr(member, field)
        if answer is not None and check_value(answer) is None:
            norm = _canonical(answer, pool.type)
            if norm in seen:
                errors.append(problem_line(file, f"{mkey}.{field}", answer,
                                           f"duplicate member (first at {seen[norm]})"))
            seen.setdefault(norm, mkey)
    return errors


def _check_member(rdtype: PoolType, member: MemberConfig, key: str, file: str) -> list[str]:
    errors = []

    def bad(field: str, problem: str) -> None:
        errors.append(problem_line(file, f"{key}.{field}", getattr(member, field), problem))

    if rdtype is PoolType.CNAME:
        if member.target is None:
            errors.append(key_problem_line(file, f"{key}.target",
                                           "missing: required in a CNAME pool"))
        elif problem := _VALUE_CHECKS[PoolType.CNAME](member.target):
            bad("target", problem)
        if problem := _ip_problem(member.address):
            bad("address", f"{problem} (the address to probe)")
    else:
        if problem := _VALUE_CHECKS[rdtype](member.address):
            bad("address", f"{problem} (pool type {rdtype.value})")
        if member.target is not None:
            bad("target", "only CNAME pools take a target")
    if member.probe is not None and (problem := _ip_problem(member.probe)):
        bad("probe", problem)
    if member.weight < 0:
        bad("weight", "must be >= 0")
    if member.priority < 0:
        bad("priority", "must be >= 0")
    return errors


def _check_transfers(config: Config, file: str) -> list[str]:
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
        if problem := _name_problem(zone.name, absolute=True):
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


def _check_posture(config: Config, file: str) -> list[str]:
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


def _check_nodes(nodes: Sequence[NodeConfig], file: str) -> list[str]:
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
