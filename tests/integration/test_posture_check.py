"""dnsserve check's posture rules end to end: --against a real git repository made here,
--resolve against a real dnsserve on loopback, the output formats, exit codes, --strict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from testkit.server import start_server

SOA = "@ SOA ns1 hostmaster {serial} 7200 900 1209600 300\n"
BASE = ("@ NS ns1\n@ NS ns1.example.net.\nns1 A 192.0.2.1\n"
        "www A 192.0.2.10\nwww A 198.51.100.10\napi A 192.0.2.20\napi TXT \"v=1\"\n"
        + "".join(f"h{i} A 198.51.100.{i}\n" for i in range(30)))
CONFIG = """\
[server]
zones = "zones"
[[monitor]]
name = "web"
kind = "tcp"
port = 80
[[pool]]
owner = "www.example.com."
type = "A"
monitor = "web"
members = [{ address = "192.0.2.10", region = "a" }, { address = "198.51.100.10", region = "b" }]
"""


def zone(serial: int, body: str = BASE) -> str:
    return f"$ORIGIN example.com.\n$TTL 300\n{SOA.format(serial=serial)}{body}"


def check(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dnsserve", "check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def findings(done: subprocess.CompletedProcess[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in json.loads(done.stdout):
        out.setdefault(f["rule"], []).append(f)
    return out


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                           "-c", "commit.gpgsign=false", *args], cwd=repo, check=True,
                          capture_output=True, text=True, timeout=60).stdout


def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "zones").mkdir(parents=True)
    (repo / "dnsserve.toml").write_text(CONFIG)
    (repo / "zones" / "example.com.zone").write_text(zone(1))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "zones")
    return repo


def test_against_a_git_revision_flags_what_the_reload_guard_refuses(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    done = check(repo, "--against", "main", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not {"zone-changes", "delete-rrset"} & set(findings(done))  # nothing changed
    # the pool's name deleted, api's TXT emptied, ten hosts gone, the serial kept
    body = BASE.replace("www A 192.0.2.10\nwww A 198.51.100.10\n", "").replace(
        'api TXT "v=1"\n', "")
    body = "".join(line + "\n" for line in body.splitlines() if not line.startswith("h1"))
    (repo / "zones" / "example.com.zone").write_text(zone(1, body))
    done = check(repo, "--against", "main", "--format", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    found = findings(done)
    assert {"delete-pool-name", "delete-rrset", "delete-too-many", "serial-not-bumped",
            "zone-changes"} <= set(found), sorted(found)
    assert "www.example.com." in found["delete-pool-name"][0]["message"]
    assert found["delete-pool-name"][0]["file"].endswith("zones/example.com.zone")
    assert found["zone-changes"][0]["severity"] == "info"
    assert found["serial-not-bumped"][0]["line"] == 3  # the SOA's line
    # the text form lists the same, grouped under the zone file
    text = check(repo, "--against", "main")
    assert text.returncode == 1
    assert "[delete-pool-name]" in text.stdout and "== " in text.stdout


def test_against_a_later_commit_and_a_directory(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    (repo / "zones" / "example.com.zone").write_text(zone(2, BASE + "new A 192.0.2.77\n"))
    git(repo, "commit", "-q", "-am", "a new host")
    done = check(repo, "--against", "HEAD~1", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    (changes,) = findings(done)["zone-changes"]
    assert "1 record(s) deleted, 2 added" in changes["message"]  # the SOA, and new
    assert "new.example.com. 300 IN A 192.0.2.77" in changes["message"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "example.com.zone").write_text(zone(1, BASE + "gone TXT \"x\"\n"))
    done = check(repo, "--against", str(old), "--format", "json")
    assert done.returncode == 1, done.stdout
    assert "delete-rrset" in findings(done)
    # a whole zone file deleted
    git(repo, "rm", "-q", "zones/example.com.zone")
    (repo / "zones").mkdir(exist_ok=True)
    (repo / "zones" / "other.example.zone").write_text(
        zone(1).replace("example.com.", "other.example."))
    done = check(repo, "--against", "HEAD", "--format", "json")
    assert "delete-zone" in findings(done) and done.returncode == 1
    (gone,) = findings(done)["delete-zone"]
    # placed at the file that is gone (as the zones directory is named: absolute here)
    assert (repo / gone["file"]).resolve() == (repo / "zones" / "example.com.zone").resolve()
    text = check(repo, "--against", "HEAD").stdout
    assert f"== {gone['file']}: 1 error(s)" in text, text


def test_against_an_unknown_revision_is_an_error_naming_it(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    done = check(repo, "--against", "no-such-branch")
    assert done.returncode == 1
    assert "--against" in done.stderr and "no-such-branch" in done.stderr, done.stderr
    assert "neither a directory nor a revision of the git repository" in done.stderr, done.stderr
    elsewhere = tmp_path / "not-git"
    (elsewhere / "zones").mkdir(parents=True)
    done = check(elsewhere, "--zones", "zones", "--against", "HEAD")
    assert done.returncode == 1
    assert "--against HEAD: not a directory, and the zones directory" in done.stderr, done.stderr


TAKEOVER_ZONE = ("$ORIGIN s3-website-us-east-1.amazonaws.com.\n$TTL 60\n"
                 "@ SOA ns hostmaster 1 7200 900 1209600 300\n@ NS ns\nns A 127.0.0.1\n"
                 "kept A 127.0.0.2\n")


def test_resolve_makes_a_takeover_target_that_is_nxdomain_an_error(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "s3-website-us-east-1.amazonaws.com.zone").write_text(TAKEOVER_ZONE)
    ours = tmp_path / "ours"
    ours.mkdir()
    body = BASE + ("kept CNAME kept.s3-website-us-east-1.amazonaws.com.\n"
                   "gone CNAME gone.s3-website-us-east-1.amazonaws.com.\n")
    (ours / "example.com.zone").write_text(zone(1, body))
    done = check(tmp_path, "--zones", str(ours), "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(findings(done)["takeover-cname"]) == 2
    assert check(tmp_path, "--zones", str(ours), "--strict").returncode == 1  # warnings
    srv = start_server(tmp_path, zones=served)  # the resolver: authoritative for the suffix
    try:
        done = check(tmp_path, "--zones", str(ours), "--format", "json",
                     "--resolve", f"127.0.0.1:{srv.port}")
    finally:
        srv.stop()
    assert done.returncode == 1, done.stdout + done.stderr
    found = findings(done)
    (error,) = found["takeover-unresolved"]
    assert error["severity"] == "error" and "gone.example.com." in error["message"]
    assert error["line"] == zone(1, body).splitlines().index(
        "gone CNAME gone.s3-website-us-east-1.amazonaws.com.") + 1
    (kept,) = found["takeover-cname"]
    assert "kept.example.com." in kept["message"]


def test_resolve_that_gives_no_verdict_is_said_not_a_clean_bill(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    ours.mkdir()
    body = BASE + "gone CNAME gone.s3-website-us-east-1.amazonaws.com.\n"
    (ours / "example.com.zone").write_text(zone(1, body))
    served = tmp_path / "served"
    served.mkdir()
    (served / "example.org.zone").write_text(
        "$ORIGIN example.org.\n$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 300\n"
        "@ NS ns\nns A 127.0.0.1\n")
    srv = start_server(tmp_path, zones=served)  # not a resolver: REFUSED for the suffix
    try:
        done = check(tmp_path, "--zones", str(ours), "--format", "json",
                     "--resolve", f"127.0.0.1:{srv.port}")
    finally:
        srv.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    (warning,) = findings(done)["takeover-cname"]
    assert warning["message"].endswith(
        f"; not checked: --resolve 127.0.0.1:{srv.port} answered REFUSED"), warning


def test_sarif_from_the_cli_and_ignore(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    one_net = "@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n"
    (repo / "zones" / "example.com.zone").write_text(zone(1, one_net).replace("1209600", "86400"))
    done = check(repo, "--format", "sarif")
    assert done.returncode == 0, done.stderr
    log = json.loads(done.stdout)
    assert log["version"] == "2.1.0" and log["runs"][0]["tool"]["driver"]["name"] == "dnsserve"
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in log["runs"][0]["results"]}
    # relative to the working directory: the zone's findings, and the pool's (no www now)
    assert uris == {"zones/example.com.zone", "dnsserve.toml"}, uris
    (repo / "dnsserve.toml").write_text(CONFIG + '[posture]\nignore = ["ns-one-prefix"]\n')
    rules = {r["ruleId"] for r in json.loads(check(repo, "--format", "sarif").stdout)
             ["runs"][0]["results"]}
    assert "ns-one-prefix" not in rules and "soa-timers" in rules, rules


def test_occluded_data_loads_and_is_named_at_its_line(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    body = BASE + "sub NS ns.sub\nns.sub A 192.0.2.7\nhidden.sub TXT \"never served\"\n"
    (zones / "example.com.zone").write_text(zone(1, body))
    done = check(tmp_path, "--zones", str(zones), "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr  # a warning: the zone is served
    (occluded,) = findings(done)["occluded-data"]
    assert occluded["severity"] == "warning" and "hidden.sub.example.com." in occluded["message"]
    assert occluded["line"] == zone(1, body).splitlines().index(
        'hidden.sub TXT "never served"') + 1
