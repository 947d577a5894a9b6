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

import ipaddress
from collections.abc import Callable
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
    Config,
    CookiesConfig,
    MemberConfig,
    MonitorConfig,
    PoolConfig,
    PoolType,
    RrlConfig,
    ServerConfig,
    identity_bytes,
)
from dnsserve.config_validate_ops import check_nodes, check_posture, check_transfers, check_watch
from dnsserve.config_values import (
    check_listen,
    hostport_problem,
    ip_problem,
    key_problem_line,
    name_problem,
    parse_hostport,
    problem_line,
)
from dnsserve.health.model import CheckKind

_VALUE_CHECKS: dict[PoolType, Callable[[str], str | None]] = {
    PoolType.A: lambda v: ip_problem(v, 4),
    PoolType.AAAA: lambda v: ip_problem(v, 6),
    PoolType.CNAME: lambda v: name_problem(v, absolute=False),
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
        if name_problem(pool.owner, absolute=True) is None:
            ident = (dns.name.from_text(pool.owner), pool.type)
            if ident in pools:
                errors.append(problem_line(file, f"{key}.owner", pool.owner,
                                           f"duplicate pool for {pool.owner} {pool.type.value} "
                                           f"(first at {pools[ident]})"))
            pools.setdefault(ident, key)
    errors += check_transfers(config, file)
    errors += check_nodes(config.node, file)
    errors += check_posture(config, file)
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
        elif problem := name_problem(m.query_name, absolute=False):
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

    if problem := name_problem(pool.owner, absolute=True):
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
        if problem := ip_problem(member.address):
            bad("address", f"{problem} (the address to probe)")
    else:
        if problem := _VALUE_CHECKS[rdtype](member.address):
            bad("address", f"{problem} (pool type {rdtype.value})")
        if member.target is not None:
            bad("target", "only CNAME pools take a target")
    if member.probe is not None and (problem := ip_problem(member.probe)):
        bad("probe", problem)
    if member.weight < 0:
        bad("weight", "must be >= 0")
    if member.priority < 0:
        bad("priority", "must be >= 0")
    return errors
