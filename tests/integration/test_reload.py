"""SIGHUP reloads zones; a reload never leaves a half-applied or silently deleted zone.

A reload while the server answers, starts or checks pools:
test_reload_while_serving.py.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import dns.message
import dns.rcode

from testkit import SHIPPED_ZONES
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for


def soa_serial(srv: ServerProc, zone: str) -> int | None:
    r = srv.udp(dns.message.make_query(zone, "SOA"))
    return r.answer[0][0].serial if r.answer else None


def bump(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_reload_applies_good_zone_and_keeps_broken_or_missing(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    srv = start_server(tmp_path, zones=zones)
    try:
        assert soa_serial(srv, "example.org.") == 2026112601
        # A good edit is served after SIGHUP.
        bump(zones / "example.org.zone", "2026112601", "2026112602")
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("example.org. SOA serial 2026112602", lambda: soa_serial(srv, "example.org."),
                 lambda serial: serial == 2026112602)
        # A broken edit: the last good version stays, the error names the file.
        bump(zones / "example.org.zone", "ns1     IN A    192.0.2.153", "ns1 IN A 192.0.2.999")
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("a failed reload of example.org.zone in the log",
                 lambda: "example.org.zone" in srv.log_text() and "failed" in srv.log_text())
        assert soa_serial(srv, "example.org.") == 2026112602
        # A removed zone file does not silently delete the zone.
        (zones / "example.org.zone").unlink()
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("'lost its zone file' in the log", lambda: "lost its zone file" in srv.log_text())
        assert soa_serial(srv, "example.org.") == 2026112602
        # A new zone appears.
        (zones / "example.net.zone").write_text(
            "$ORIGIN example.net.\n$TTL 60\n"
            "@ IN SOA ns1 hostmaster 7 60 60 600 60\n  IN NS ns1\nns1 IN A 192.0.2.1\n"
        )
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("example.net. SOA serial 7", lambda: soa_serial(srv, "example.net."),
                 lambda serial: serial == 7)
        assert srv.proc.poll() is None
    finally:
        srv.stop()


def test_unserved_name_is_refused_before_and_after_reload(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        q = dns.message.make_query("example.invalid.", "A")
        assert srv.udp(q).rcode() == dns.rcode.REFUSED
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("'generation 2' in the log", lambda: "generation 2" in srv.log_text())
        assert srv.tcp(q).rcode() == dns.rcode.REFUSED
    finally:
        srv.stop()
