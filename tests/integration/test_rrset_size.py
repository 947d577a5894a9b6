"""RRsets too large for any DNS message: refused by ``check`` and at load, one zone at a time.

Issue "Survive faults" item 1: a zone with 5,000 A records at one name (or a
TXT RRset over 64 KB) passed ``dnsserve check``; ``serve`` then exited 1 with
a TooBig traceback and served no zone at all, and a SIGHUP that brought such
a zone failed the whole reload. NSD, Knot and BIND reject such a zone at
load. The rule (``zones.compile``): an RRset whose wire form cannot fit a
message after a header and the longest possible question is an error naming
file and line; one whose smallest answer is over 1,232 octets a warning. A
zone whose answers cannot be prebuilt although each RRset fits (an MX whose
two targets hold 48 KB of addresses each) is left out at the prebuild stage
(``answer.snapshot.build_snapshot``): the other zones are served.

Real zone files, the real server and CLI as subprocesses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dns.message
import dns.rcode

from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

GOOD = "$TTL 60\n@ IN SOA ns1 hostmaster 1 60 60 600 60\n  IN NS ns1\nns1 IN A 192.0.2.1\n"


def write_zone(zones: Path, origin: str, extra: str = "") -> Path:
    path = zones / f"{origin}zone"
    path.write_text(f"$ORIGIN {origin}\n{GOOD}{extra}")
    return path


def many_a(owner: str, count: int, net: int = 10) -> str:
    return "".join(f"{owner} IN A {net}.{i // 65536}.{i // 256 % 256}.{i % 256}\n"
                   for i in range(count))


def big_txt(owner: str, records: int) -> str:
    return "".join(f'{owner} IN TXT "{i:05d}{"t" * 250}"\n' for i in range(records))


def check(zones: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dnsserve", "check", "--zones", str(zones)],
        capture_output=True, text=True, timeout=120, check=False, cwd=zones.parent,
    )


def rcode(srv: ServerProc, qname: str, rdtype: str = "SOA") -> str:
    return dns.rcode.to_text(srv.tcp(dns.message.make_query(qname, rdtype), timeout=5).rcode())


def test_check_names_file_and_line_of_an_rrset_no_message_can_hold(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    write_zone(zones, "good.example.")
    write_zone(zones, "many.example.", many_a("big", 5000))  # ~80 KB of A records
    write_zone(zones, "txt.example.", big_txt("big", 300))  # ~77 KB of TXT
    write_zone(zones, "udp.example.", many_a("wide", 100))  # 1.6 KB: a warning only
    done = check(zones)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout + done.stderr
    # The RRset's first record is on line 6 (after $ORIGIN, $TTL, SOA, NS, ns1).
    assert f"{zones / 'many.example.zone'}:6: error:" in out
    assert "A RRset at big.many.example." in out and "does not fit in a DNS message" in out
    assert f"{zones / 'txt.example.zone'}:6: error:" in out
    assert f"{zones / 'udp.example.zone'}:6: warning:" in out
    # no problem of the load names the good zone (posture findings, tagged [rule-id], may)
    assert not [line for line in out.splitlines()
                if "good.example.zone" in line and not line.startswith(("zone ", "== "))
                and not line.endswith("]")]
    assert "zone good.example.: serial" in out  # listed as a zone that would serve


def test_serve_leaves_out_only_the_oversized_zones_and_reload_goes_on(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    write_zone(zones, "good.example.")
    write_zone(zones, "many.example.", many_a("big", 5000))
    srv = start_server(tmp_path, zones=zones)
    try:
        assert rcode(srv, "good.example.") == "NOERROR"
        assert rcode(srv, "many.example.") == "REFUSED"  # not served
        assert "big.many.example." in srv.log_text()
        # A reload that brings an oversized TXT zone and a good new zone serves the new one.
        write_zone(zones, "txt.example.", big_txt("big", 300))
        write_zone(zones, "new.example.")
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("new.example. served after SIGHUP", lambda: rcode(srv, "new.example."),
                 lambda got: got == "NOERROR")
        assert rcode(srv, "good.example.") == "NOERROR"
        assert rcode(srv, "txt.example.") == "REFUSED"
        assert srv.proc.poll() is None
    finally:
        srv.stop()


def test_a_zone_whose_answers_cannot_be_prebuilt_is_left_out(tmp_path: Path) -> None:
    """Each RRset fits, but the MX answer with both targets' addresses as additional data
    does not (~96 KB): that zone alone is left out at the prebuild stage."""
    zones = tmp_path / "zones"
    zones.mkdir()
    write_zone(zones, "good.example.")
    mx = "@ IN MX 10 t1\n@ IN MX 20 t2\n" + many_a("t1", 3000, 10) + many_a("t2", 3000, 11)
    write_zone(zones, "mx.example.", mx)
    done = check(zones)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{zones / 'mx.example.zone'}: error: zone mx.example. cannot be served" in done.stdout
    assert "mx.example. MX" in done.stdout and "TooBig" in done.stdout
    srv = start_server(tmp_path, zones=zones)
    try:
        assert rcode(srv, "good.example.") == "NOERROR"
        assert rcode(srv, "mx.example.", "MX") == "REFUSED"
        assert srv.proc.poll() is None
    finally:
        srv.stop()
