"""The posture rules over the config alone: legal settings that are risky.

Pure [C]: owns each rule below and its line (``file: key = value: problem``,
as ``config_validate`` writes errors). ``config.config_warnings`` is these
findings' messages; ``dnsserve check`` prints the findings with their ids.
Must not: look at zones (``posture.poolrules`` does) or read files.

    pool-nodata              when_all_down = "nodata": an empty answer when all are down
    pool-fallback-unused     fallback set, when_all_down is not "fallback"
    pool-zero-weights        a weighted pool whose weights are all 0
    pool-cname-rotates       a CNAME pool of several members under policy "all"
    monitor-tls-unverified   an https monitor with tls_verify = false
    zone-secondary-unused    transfer settings on a secondary zone
    zone-notify-no-transfer  notify without allow_transfer or transfer_keys
    zone-publish-no-notify   publish without notify
"""

from __future__ import annotations

from dnsserve.answer.policies import AllDown, Policy
from dnsserve.config_schema import Config, PoolType
from dnsserve.config_values import key_problem_line, problem_line
from dnsserve.health.model import CheckKind
from dnsserve.posture.findings import Finding, finding


def config_findings(config: Config, *, file: str = "<config>") -> list[Finding]:
    """Every rule of the module docstring over ``config`` (read from ``file``)."""
    out: list[Finding] = []

    def add(rule: str, key: str, line: str) -> None:
        out.append(finding(rule, line, file=file, key=key))

    for i, pool in enumerate(config.pool):
        key = f"pool[{i}]"
        if pool.when_all_down is AllDown.NODATA:
            add("pool-nodata", f"{key}.when_all_down",
                problem_line(file, f"{key}.when_all_down", "nodata",
                             f"fails closed: {pool.owner} {pool.type.value} gets an "
                             "empty answer when every member is down"))
        if pool.fallback and pool.when_all_down is not AllDown.FALLBACK:
            add("pool-fallback-unused", f"{key}.fallback",
                problem_line(file, f"{key}.fallback", pool.fallback,
                             'unused unless when_all_down = "fallback"'))
        if pool.policy is Policy.WEIGHTED and all(m.weight == 0 for m in pool.members):
            add("pool-zero-weights", f"{key}.members",
                key_problem_line(file, f"{key}.members",
                                 "every weight is 0: answers are drawn evenly"))
        if pool.type is PoolType.CNAME and pool.policy is Policy.ALL and len(pool.members) > 1:
            add("pool-cname-rotates", key,
                key_problem_line(file, key, "a CNAME answer holds one target: "
                                 "policy \"all\" rotates through the targets"))
    for i, monitor in enumerate(config.monitor):
        if monitor.kind is CheckKind.HTTPS and not monitor.tls_verify:
            add("monitor-tls-unverified", f"monitor[{i}].tls_verify",
                problem_line(file, f"monitor[{i}].tls_verify", False,
                             "TLS certificates are not verified"))
    for i, zone in enumerate(config.zone):
        unused = [k for k in ("allow_transfer", "transfer_keys", "notify") if getattr(zone, k)]
        if zone.primaries and unused:
            add("zone-secondary-unused", f"zone[{i}]",
                key_problem_line(file, f"zone[{i}]", f"{', '.join(unused)} unused: "
                                 "a secondary zone is not transferred onwards yet"))
        if zone.primaries:
            continue
        if zone.notify and not (zone.allow_transfer or zone.transfer_keys):
            add("zone-notify-no-transfer", f"zone[{i}].notify",
                problem_line(file, f"zone[{i}].notify", list(zone.notify),
                             "secondaries are notified but no transfer is allowed "
                             "(set allow_transfer or transfer_keys)"))
        if zone.publish and not zone.notify:
            add("zone-publish-no-notify", f"zone[{i}].publish",
                key_problem_line(file, f"zone[{i}].publish", "no notify: "
                                 "secondaries see published changes only at their SOA refresh"))
    return out
