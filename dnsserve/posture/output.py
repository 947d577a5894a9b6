"""``dnsserve check``'s output forms: text grouped by file, JSON, SARIF 2.1.0.

Pure [C]: findings in, text or documents out. Must not: decide the exit
code (the CLI does, from ``findings.counts``) or read files.

SARIF (OASIS SARIF 2.1.0): one run whose tool driver is dnsserve with every
rule of ``RULES`` (id, short description, help = the fix, default level),
one result per finding (ruleId, level, message.text, a physical location:
the file's URI relative to ``root`` and region.startLine, 1 for a finding
about a whole file or a config key). Levels: error, warning, note (info).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from dnsserve import __version__
from dnsserve.posture.findings import RULES, Finding, ordered

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFORMATION_URI = "https://github.com/dnsserve/dnsserve#posture-checks"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def to_text(findings: Sequence[Finding]) -> list[str]:
    """The findings grouped by file (config findings first), each group under its file's name."""
    lines: list[str] = []
    for file, group in itertools.groupby(ordered(findings), key=lambda f: f.file):
        items = list(group)
        if len(findings) > 1:
            # no file: config errors, whose messages name the config file and key
            lines.append(f"== {file or 'configuration'}: {_tally(items)}")
        lines.extend(line for f in items for line in f.to_text().splitlines())
    return lines


def _tally(findings: Sequence[Finding]) -> str:
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    return ", ".join(f"{n} {s}(s)" for s, n in counts.items() if n)


def to_json(findings: Sequence[Finding]) -> list[dict[str, str | int]]:
    """A list of findings (rule, severity, message, file, line, key, zone, fix)."""
    return [f.to_dict() for f in ordered(findings)]


def to_sarif(findings: Sequence[Finding], *, root: PurePath | None = None) -> dict[str, Any]:
    """One SARIF 2.1.0 log; file URIs relative to ``root`` when they are below it."""
    ids = list(RULES)
    rules = [
        {
            "id": rule.id,
            "name": rule.id,
            "shortDescription": {"text": rule.what},
            "help": {"text": rule.fix},
            "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        }
        for rule in RULES.values()
    ]
    results = []
    for f in ordered(findings):
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "level": _LEVEL[f.severity],
            "message": {"text": f"{f.message} (fix: {f.fix})" if f.fix else f.message},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(f.file, root)},
                    "region": {"startLine": max(f.line, 1)},
                },
            }],
        }
        if f.rule in RULES:
            result["ruleIndex"] = ids.index(f.rule)
        if f.key:
            result["properties"] = {"configKey": f.key}
        results.append(result)
    return {
        "version": SARIF_VERSION,
        "$schema": SARIF_SCHEMA,
        "runs": [{
            "tool": {"driver": {"name": "dnsserve", "version": __version__,
                                "informationUri": INFORMATION_URI, "rules": rules}},
            "results": results,
        }],
    }


def _uri(file: str, root: PurePath | None) -> str:
    if not file:
        return "dnsserve.toml"
    path = PurePath(file)
    if root is not None and path.is_absolute():
        try:
            path = path.relative_to(root)
        except ValueError:
            return path.as_uri()
    return path.as_posix()
