"""A pre-signed zone transferred out (AXFR) keeps its signatures: ``dnssec-verify`` accepts it.

RRSIGs are kept beside the data they sign (one stored RRset per covered
type), so an AXFR of a pre-signed zone carries them, its NSEC/NSEC3 chain
and its DNSKEYs; BIND's ``dnssec-verify`` checks the transferred copy
(every RRset signed, the chain complete). Loopback only; the server is
stopped by PID.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import dns.name
import dns.query
import dns.rdatatype
import dns.zone
import pytest

from testkit.peers import required_binary
from testkit.server import start_server
from testkit.signing import ORIGIN, sign_zone


@pytest.mark.parametrize("nsec3", [False, True], ids=["nsec", "nsec3"])
def test_axfr_of_a_signed_zone_verifies(tmp_path: Path, nsec3: bool) -> None:
    verify = required_binary("dnssec-verify", "BIND tool")
    zone = sign_zone(tmp_path / "zones", nsec3_salt="aabbcc" if nsec3 else None)
    config = tmp_path / "dnsserve.toml"
    config.write_text(f'[[zone]]\nname = "{ORIGIN}"\nallow_transfer = ["127.0.0.1/32"]\n')
    srv = start_server(tmp_path, "-c", str(config), zones=zone.path.parent)
    try:
        xfr = dns.query.xfr(srv.host, dns.name.from_text(ORIGIN), port=srv.port, timeout=10,
                            relativize=False)
        copy = dns.zone.from_xfr(xfr, relativize=False)
    finally:
        srv.stop()
    signatures = sum(1 for node in copy.values() for rds in node
                     if rds.rdtype == dns.rdatatype.RRSIG)
    assert signatures > 20
    out = tmp_path / "axfr.zone"
    copy.to_file(str(out), relativize=False)
    done = subprocess.run([verify, "-o", ORIGIN, str(out)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Zone fully signed" in done.stdout + done.stderr
