"""The health inputs the config gives: the monitor's targets and ``overrides.toml``.

Owns the mapping of the config's monitors and pools to what the monitor
checks (``check_spec``, ``targets``, ``pool_names`` for the self-suspicion
guard) and the reading of ``overrides.toml`` (drains and force-ups declared
in git) into override entries, with errors that name the file and entry.

Must not: start anything or keep state: ``healthsync`` applies what these return.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import dns.rcode
import dns.rdatatype

from dnsserve.answer.policies import Pool
from dnsserve.config import Config, MonitorConfig
from dnsserve.errors import ConfigError
from dnsserve.health.model import MemberId, Override, OverrideEntry
from dnsserve.health.probes import CheckSpec
from dnsserve.health.targets import Target

OVERRIDES_FILE = "overrides.toml"  # beside the zones directory


def check_spec(monitor: MonitorConfig) -> CheckSpec:
    """A monitor's config as the probe's parameters."""
    command = monitor.command if monitor.command is not None else ()
    return CheckSpec(
        kind=monitor.kind,
        port=monitor.probe_port or 0,
        path=monitor.path,
        host=monitor.host or "",
        expect_status=tuple(monitor.expect_status),
        expect_body=monitor.expect_body or "",
        timeout=monitor.timeout,
        query_name=monitor.query_name or "",
        query_type=dns.rdatatype.RdataType.make(monitor.query_type),
        expect_rcode=dns.rcode.Rcode.make(monitor.expect_rcode),
        expect_answer=monitor.expect_answer,
        command=command,
        tls_verify=monitor.tls_verify,
        ca_file=monitor.ca_file or "",
    )


def targets(config: Config, pools: Sequence[Pool]) -> list[Target]:
    """One target per member (monitor, probe address), shared by every pool."""
    monitors = {m.name: m for m in config.monitor}
    out: dict[MemberId, Target] = {}
    for pool in pools:
        for pm in pool.members:
            m = monitors[pm.member.monitor]
            out.setdefault(
                pm.member, Target(pm.member, check_spec(m), m.interval, m.rise, m.fall)
            )
    return list(out.values())


def pool_names(pools: Sequence[Pool]) -> dict[MemberId, set[str]]:
    """Which pools each member serves (for the self-suspicion guard)."""
    out: dict[MemberId, set[str]] = {}
    for pool in pools:
        name = f"{pool.owner}/{dns.rdatatype.to_text(pool.rdtype)}"
        for pm in pool.members:
            out.setdefault(pm.member, set()).add(name)
    return out


def read_overrides_file(path: Path, now: float) -> dict[MemberId, OverrideEntry]:
    """``overrides.toml``: ``[[drain]]`` / ``[[force_up]]`` tables with ``member``,
    optional ``reason`` and ``until`` (a TOML date-time). Missing file: none.
    Raises ConfigError naming the file and the entry."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    out: dict[MemberId, OverrideEntry] = {}
    kinds = {"drain": Override.DRAIN, "force_up": Override.FORCE_UP}
    for key in data:
        if key not in kinds:
            raise ConfigError(f"{path}: {key}: unknown table (use [[drain]] or [[force_up]])")
    for key, kind in kinds.items():
        for i, entry in enumerate(data.get(key, [])):
            where = f"{path}: {key}[{i}]"
            out.update(_override_entry(entry, kind, where, now))
    return out


def _override_entry(
    entry: Any, kind: Override, where: str, now: float
) -> dict[MemberId, OverrideEntry]:
    if not isinstance(entry, dict) or not isinstance(entry.get("member"), str):
        raise ConfigError(f"{where}: needs member = \"MONITOR/ADDRESS\"")
    unknown = set(entry) - {"member", "reason", "until"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    try:
        member = MemberId.from_text(entry["member"])
    except ValueError as exc:
        raise ConfigError(f"{where}.member: {exc}") from None
    until = entry.get("until")
    if until is not None:
        if not isinstance(until, datetime) or until.tzinfo is None:
            raise ConfigError(f"{where}.until: a TOML date-time with a zone, like "
                              "2026-12-24T08:00:00Z")
        until = until.timestamp()
        if until <= now:
            return {}  # expired in git: nothing to apply
    reason = str(entry.get("reason", "")) or "declared in overrides.toml"
    return {member: OverrideEntry(kind, until, reason, source="file", set_at=now)}
