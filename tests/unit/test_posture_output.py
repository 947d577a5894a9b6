"""dnsserve check's output forms (dnsserve.posture.output): text grouped by file, JSON,
and SARIF 2.1.0, its required properties checked by hand (no schema package offline)."""

from __future__ import annotations

import json
from pathlib import PurePath

from dnsserve.posture.findings import RULES, Finding, finding
from dnsserve.posture.output import SARIF_VERSION, to_json, to_sarif, to_text
from testkit import ROOT

FINDINGS = [
    finding("soa-timers", "SOA of example.com.: expire 1", file="/r/zones/example.com.zone",
            line=3, zone="example.com."),
    finding("pool-nodata", 'dnsserve.toml: pool[0].when_all_down = "nodata": fails closed',
            file="/r/dnsserve.toml", key="pool[0].when_all_down"),
    Finding("zone-error", "error", "bad thing", "/r/zones/example.org.zone", 7,
            zone="example.org."),
    finding("zone-changes", "example.com.: 1 record(s) deleted", file="/r/zones/example.com.zone"),
]


def test_text_is_grouped_by_file_each_finding_with_its_rule_and_fix() -> None:
    lines = to_text(FINDINGS)
    headers = [line for line in lines if line.startswith("== ")]
    assert headers == ["== /r/dnsserve.toml: 1 warning(s)",
                       "== /r/zones/example.com.zone: 1 warning(s), 1 info(s)",
                       "== /r/zones/example.org.zone: 1 error(s)"]
    assert "/r/zones/example.com.zone:3: warning: SOA of example.com.: expire 1 [soa-timers]" \
        in lines
    assert f"  fix: {RULES['soa-timers'].fix}" in lines
    # a config finding reads as check's config warnings always did; a load error unchanged
    assert any(line.startswith("warning: dnsserve.toml: pool[0].when_all_down") for line in lines)
    assert "/r/zones/example.org.zone:7: error: bad thing" in lines


def test_json_is_a_list_of_findings() -> None:
    doc = json.loads(json.dumps(to_json(FINDINGS)))
    assert [d["rule"] for d in doc] == ["pool-nodata", "zone-changes", "soa-timers", "zone-error"]
    soa = doc[2]
    assert soa == {"rule": "soa-timers", "severity": "warning",
                   "message": "SOA of example.com.: expire 1",
                   "file": "/r/zones/example.com.zone", "line": 3, "zone": "example.com.",
                   "fix": RULES["soa-timers"].fix}
    assert doc[0]["key"] == "pool[0].when_all_down"


def test_sarif_has_the_required_properties_of_2_1_0() -> None:
    log = json.loads(json.dumps(to_sarif(FINDINGS, root=PurePath("/r"))))
    assert log["version"] == SARIF_VERSION == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "dnsserve"
    ids = [r["id"] for r in driver["rules"]]
    assert ids == list(RULES)
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    assert len(run["results"]) == len(FINDINGS)
    for result in run["results"]:
        assert result["ruleId"] in ids and ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note", "none")
        assert result["message"]["text"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert not physical["artifactLocation"]["uri"].startswith("/")
        assert isinstance(physical["region"]["startLine"], int)
        assert physical["region"]["startLine"] >= 1
    by_rule = {r["ruleId"]: r for r in run["results"]}
    soa = by_rule["soa-timers"]["locations"][0]["physicalLocation"]
    assert soa == {"artifactLocation": {"uri": "zones/example.com.zone"},
                   "region": {"startLine": 3}}
    assert by_rule["zone-changes"]["level"] == "note"
    assert by_rule["pool-nodata"]["properties"] == {"configKey": "pool[0].when_all_down"}


def test_the_readme_lists_every_rule_with_its_severity() -> None:
    readme = (ROOT / "README.md").read_text()
    for rule in RULES.values():
        assert f"| `{rule.id}` | {rule.severity} | {rule.what} | {rule.fix} |" in readme, rule.id
