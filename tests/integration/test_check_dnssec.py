"""`dnsserve check` on pre-signed zones: signatures that expire within three days are named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dns.rdatatype
import dns.zone

from testkit.signing import ORIGIN, sign_zone

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


def online_signed(work: Path, dnssec: str) -> Path:
    """A zone dnsserve signs itself: keys by ``dnssec-keygen``, the config naming them."""
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "dnsserve", "dnssec-keygen", ORIGIN], cwd=work,
                   capture_output=True, text=True, timeout=60, check=True)
    zones = work / "zones"
    zones.mkdir()
    (zones / f"{ORIGIN.rstrip('.')}.zone").write_text(ZONE)
    config = work / "dnsserve.toml"
    config.write_text(f'[[zone]]\nname = "{ORIGIN}"\n'
                      f'dnssec = {{ keys = "keys/{ORIGIN.rstrip(".")}", {dnssec} }}\n'
                      '[posture]\nignore = ["ns-one-prefix", "ns-one-zone"]\n')
    return config


def test_online_signed_zones_are_not_warned_of_short_validity(tmp_path: Path) -> None:
    """The server re-signs an online-signed zone itself: a validity under three days is
    no reason to warn, and ``--strict`` passes."""
    config = online_signed(tmp_path, 'validity = "2h", refresh = "1h"')
    done = subprocess.run([sys.executable, "-m", "dnsserve", "check", "--strict",
                           "-c", str(config)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DNSSEC signature" not in done.stdout
    assert "ok: " in done.stdout.splitlines()[-1]


def test_the_record_count_holds_every_signature(tmp_path: Path) -> None:
    """``check`` counts every RRSIG of an owner (one per type signed), as the file holds
    them and ``status`` counts them."""
    zone = sign_zone(tmp_path / "count", ZONE)
    parsed = dns.zone.from_file(str(zone.path), origin=ORIGIN, relativize=False)
    held = sum(len(rdataset) for _, rdataset in parsed.iterate_rdatasets())
    signatures = sum(len(r) for _, r in parsed.iterate_rdatasets()
                     if r.rdtype == dns.rdatatype.RRSIG)
    assert signatures > len(parsed.nodes)  # some owner has more than one type signed
    done = check(tmp_path, zone.path.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"serial 1, {held} records" in done.stdout, done.stdout


def test_keys_of_another_algorithm_than_configured_are_an_error(tmp_path: Path) -> None:
    """``dnssec.algorithm`` names the keys' algorithm: ECDSA keys where ED25519 is
    configured are refused in one line naming the setting and the key files."""
    config = online_signed(tmp_path, 'algorithm = "ED25519"')  # dnssec-keygen's ECDSA keys
    done = subprocess.run([sys.executable, "-m", "dnsserve", "check", "-c", str(config)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "ED25519" in line]
    assert len(lines) == 1, done.stdout
    assert "ECDSAP256SHA256" in lines[0] and ": error: " in lines[0]
    names = sorted(p.name for p in (tmp_path / "keys" / ORIGIN.rstrip(".")).glob("*.key"))
    assert len(names) == 2 and all(n in lines[0] for n in names), lines[0]
