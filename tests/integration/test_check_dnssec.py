"""`dnsserve check` on pre-signed zones: signatures that expire within three days are named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testkit.signing import sign_zone

ZONE = """$ORIGIN signed.example.
$TTL 3600
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.3
"""


def check(cwd: Path, zones: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dnsserve", "check", "--zones", str(zones)],
                          cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_signatures_expiring_within_three_days_are_a_warning(tmp_path: Path) -> None:
    zone = sign_zone(tmp_path / "soon", ZONE, end="+86400")  # one day left
    done = check(tmp_path, zone.path.parent)
    assert done.returncode == 0, done.stdout + done.stderr  # a warning, still served
    lines = [line for line in done.stdout.splitlines() if "DNSSEC signature" in line]
    assert len(lines) == 1, done.stdout
    assert f"{zone.path}: warning: zone signed.example.: " in lines[0]
    assert "expire within 3 days" in lines[0] and "expires in " in lines[0]
    assert "hours" in lines[0]


def test_signatures_valid_for_long_are_not(tmp_path: Path) -> None:
    zone = sign_zone(tmp_path / "later", ZONE)  # dnssec-signzone's default: 30 days
    done = check(tmp_path, zone.path.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DNSSEC signature" not in done.stdout
    assert "ok: " in done.stdout.splitlines()[-1]
