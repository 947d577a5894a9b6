"""`dnsserve check` as an operator runs it before a reload: every problem, every zone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from testkit import SHIPPED_ZONES


def check(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dnsserve", "check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_check_lists_each_zone_with_its_serial_and_record_count(tmp_path: Path) -> None:
    done = check(tmp_path, "--zones", str(SHIPPED_ZONES))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("zone example.org.: serial 2026112601, 7 records")
               for line in lines), lines
    assert lines[-1].startswith("ok: ") and "3 zone(s)" in lines[-1]


def test_a_misnamed_zone_file_is_named_in_a_warning(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    (zones / "example.org.zone").rename(zones / "example.org")  # the .zone forgotten
    done = check(tmp_path, "--zones", str(zones))
    assert f"{zones / 'example.org'}: warning: " in done.stdout, done.stdout
    assert "not named <origin>.zone" in done.stdout


def test_every_config_error_is_reported_also_as_json(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[server]\nbogus = 1\n[[monitor]]\nname = "web"\nkind = "htp"\n'
        '[[pool]]\nowner = "www.example.com."\ntype = "MX"\nmonitor = "web"\n'
        'members = [{ address = "127.0.0.11", wieght = 3 }]\n'
    )
    done = check(tmp_path, "-c", str(config), "--zones", str(SHIPPED_ZONES))
    assert done.returncode == 1
    for fragment in ("server.bogus = 1: unknown key", 'monitor[0].kind = "htp"',
                     'pool[0].type = "MX"'):
        assert fragment in done.stdout, done.stdout
    done = check(tmp_path, "-c", str(config), "--zones", str(SHIPPED_ZONES), "--format", "json")
    assert done.returncode == 1
    errors = [p["message"] for p in json.loads(done.stdout) if p["severity"] == "error"]
    assert len(errors) >= 3, errors


def test_a_config_error_still_checks_the_configured_zones(tmp_path: Path) -> None:
    """A bad key is one error; the zones directory the config names is still checked
    (with the config's include_paths), not a made-up <config dir>/zones."""
    (tmp_path / "cfg").mkdir()
    zones = tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "extra.inc").write_text("extra A 192.0.2.77\n")
    with (zones / "example.org.zone").open("a") as f:
        f.write(f"$INCLUDE {shared / 'extra.inc'}\n")
    config = tmp_path / "cfg" / "e.toml"
    config.write_text('[server]\nzones = "../zones"\ninclude_paths = ["../shared"]\n'
                      'control = ""\n[rrl]\nrate = -1\n')
    done = check(tmp_path, "-c", str(config))
    assert done.returncode == 1
    errors = [x for x in done.stdout.splitlines() if ": error: " in x or "rrl.rate" in x]
    assert len(errors) == 1 and "rrl.rate = -1" in errors[0], done.stdout
    assert "does not exist" not in done.stdout, done.stdout
    assert "zone example.org.: serial 2026112601, 8 records" in done.stdout, done.stdout


def test_an_error_in_an_included_file_names_its_zone(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    (zones / "sub").mkdir()
    (zones / "sub" / "bad.inc").write_text("bad A 192.0.2.300\n")
    with (zones / "example.org.zone").open("a") as f:
        f.write("$INCLUDE sub/bad.inc\n")
    done = check(tmp_path, "--zones", str(zones))
    assert done.returncode == 1
    (error,) = [x for x in done.stdout.splitlines() if ": error: " in x]
    assert error.startswith(f"{zones / 'sub' / 'bad.inc'}:1: error: "), error
    assert f"(in zone example.org., {zones / 'example.org.zone'}: the zone is not served)" \
        in error, error


def test_a_config_that_is_not_a_regular_file_is_named_so(tmp_path: Path) -> None:
    done = check(tmp_path, "-c", "/dev/null", "--zones", str(SHIPPED_ZONES))
    assert done.returncode == 1
    assert "/dev/null: not a regular file" in done.stdout + done.stderr, done.stdout
    done = check(tmp_path, "-c", str(tmp_path / "absent.toml"), "--zones", str(SHIPPED_ZONES))
    assert "absent.toml: no such configuration file" in done.stdout + done.stderr, done.stdout
