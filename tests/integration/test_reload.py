"""SIGHUP reloads zones; a reload never leaves a half-applied or silently deleted zone.

A reload while the server answers, starts or checks pools:
test_reload_while_serving.py.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dns.message
import dns.rcode

from testkit import SHIPPED_ZONES
from testkit.ports import free_port
from testkit.server import ServerProc, held_fifo, start_server
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


# The server refuses a FIFO (zones.files); these tests hold a load on one, opened
# as files once were (testkit.server.held_fifo).
HELD = held_fifo("held.inc")


def _fifo_zone(zones: Path) -> Path:
    """A zone whose $INCLUDE is a FIFO: loading it (as ``HELD`` opens it) blocks
    until someone writes to it."""
    fifo = zones / "held.inc"
    os.mkfifo(fifo)
    (zones / "held.example.zone").write_text(
        "$ORIGIN held.example.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 60 60 600 60\n"
        "  IN NS ns1\n$INCLUDE held.inc\n"
    )
    return fifo


def _writer(fifo: Path) -> int | None:
    """A write end of ``fifo``, or None while no reader has it open (ENXIO)."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise
        return None


def _release(fd: int) -> None:
    """Let the reader of a FIFO whose write end is ``fd`` finish (one record, then EOF)."""
    try:
        os.write(fd, b"ns1 IN A 192.0.2.1\n")
    finally:
        os.close(fd)


def test_sighup_during_a_reload_is_not_dropped(tmp_path: Path) -> None:
    """A reload held by a blocking $INCLUDE; an edit and a second SIGHUP arrive
    meanwhile: once the first reload ends, a second one runs and serves the edit."""
    zones = tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    srv = start_server(tmp_path, zones=zones, preload=HELD)
    try:
        fifo = _fifo_zone(zones)
        os.kill(srv.proc.pid, signal.SIGHUP)  # this reload blocks on the FIFO
        # (two signals sent at once may arrive as one: wait for the first to
        # reach the FIFO; the open write end holds the reader until released)
        fd = wait_for("the first reload to open the FIFO", lambda: _writer(fifo),
                      lambda fd: fd is not None)
        assert fd is not None
        bump(zones / "example.org.zone", "2026112601", "2026112605")
        os.kill(srv.proc.pid, signal.SIGHUP)  # arrives while the first one runs
        wait_for("the second SIGHUP to be queued", srv.log_text,
                 lambda log: "another follows it" in log)
        assert soa_serial(srv, "example.org.") == 2026112601  # nothing applied yet
        (zones / "held.example.zone").unlink()  # the second reload must not block too
        _release(fd)
        assert wait_for("the edit made during the first reload to be served",
                        lambda: soa_serial(srv, "example.org."),
                        lambda serial: serial == 2026112605) == 2026112605
    finally:
        srv.stop()


def test_a_reload_that_hangs_is_abandoned_and_sigterm_still_exits(tmp_path: Path) -> None:
    """A $INCLUDE that never ends: past server.reload_timeout the reload is abandoned
    and reported, the old data serves, the next reload works, and SIGTERM ends the
    process although a thread is still stuck reading the FIFO. (4 s: room for the
    process that loads the zones to start on a loaded machine.)"""
    zones = tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    config = tmp_path / "c.toml"
    config.write_text(f'[server]\nreload_timeout = 4.0\ncontrol = "127.0.0.1:{free_port()}"\n')
    srv = start_server(tmp_path, "-c", str(config), zones=zones, preload=HELD)
    try:
        _fifo_zone(zones)
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("the reload to be abandoned", srv.log_text,
                 lambda log: "reload abandoned after 4 s" in log)
        assert soa_serial(srv, "example.org.") == 2026112601
        (zones / "held.example.zone").unlink()
        bump(zones / "example.org.zone", "2026112601", "2026112606")
        os.kill(srv.proc.pid, signal.SIGHUP)
        assert wait_for("the next reload to be served", lambda: soa_serial(srv, "example.org."),
                        lambda serial: serial == 2026112606) == 2026112606
        os.kill(srv.proc.pid, signal.SIGTERM)
        assert srv.proc.wait(timeout=20) == 0  # not held by the stuck reader
    finally:
        srv.stop()


def test_reload_reports_a_new_zone_that_fails_to_load(tmp_path: Path) -> None:
    """A zone file added since the last load that fails (a FIFO, an ``$INCLUDE`` outside
    the zones directory) is named in ``dnsserve reload``'s output, as a served zone that
    breaks is; the good zones are still served."""
    zones = tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    control = f"127.0.0.1:{free_port()}"
    conf = tmp_path / "dnsserve.toml"
    conf.write_text(f'[server]\nzones = "zones"\ncontrol = "{control}"\nstate = "state.db"\n')
    srv = start_server(tmp_path, "-c", str(conf), zones=None)
    try:
        os.mkfifo(zones / "fifo.example.zone")
        (zones / "p.example.zone").write_text(
            "$ORIGIN p.example.\n$TTL 300\n@ SOA ns1 h 1 3600 900 1209600 300\n@ NS ns1\n"
            "ns1 A 127.0.0.1\n$INCLUDE /etc/passwd\n"
        )
        done = subprocess.run([sys.executable, "-m", "dnsserve", "reload", "-c", str(conf)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              check=False)
        out = done.stdout + done.stderr
        assert "reload: ok" in out, out
        for origin in ("fifo.example.", "p.example."):
            line = next((x for x in out.splitlines() if f"zone {origin} " in x), "")
            assert "failed to load" in line and "not served" in line, out
        assert "is outside the zones directory" in out, out
        assert "root:" not in out
        assert soa_serial(srv, "example.org.") == 2026112601
        assert srv.udp(dns.message.make_query("p.example.", "SOA")).rcode() == dns.rcode.REFUSED
    finally:
        srv.stop()
