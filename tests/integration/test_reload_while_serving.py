"""A reload while the server works: queries go on being answered, a SIGHUP while
it starts does not kill it, and pools keep their health.

A FIFO in place of an included zone file stands in for a slow disk or a large
zone: the server (which refuses FIFOs, so it is started with the file opened
as files once were: ``testkit.server.held_fifo``) blocks reading it until the
test feeds it. Everything runs
on loopback: the real server process, real HTTP backends on 127.0.3.x.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.message

from testkit import SHIPPED_ZONES
from testkit.backends import Mode
from testkit.harness import Harness, addresses, monitor, pool, query, wait_answer
from testkit.ports import free_port
from testkit.server import PRELOADED, ServerProc, held_fifo, start_server, wait_ready
from testkit.wait import WAIT, wait_for


def ip(x: int) -> str:
    return f"127.0.3.{x}"


def web(x: int) -> str:
    return f"web/{ip(x)}"


INCLUDE = "include/example.com-ns.inc"  # example.com.zone $INCLUDEs it (a FIFO stalls a load)
HELD = held_fifo(Path(INCLUDE).name)


def _fifo_instead_of(path: Path) -> str:
    """Replace ``path`` by a FIFO: a reader blocks until the test feeds it. Returns the text."""
    text = path.read_text()
    path.unlink()
    os.mkfifo(path)
    return text


def _writer_when_read(fifo: Path, seconds: float = WAIT) -> int:
    """Wait until the server opened ``fifo`` to read it; return our (non-blocking) write end."""

    def open_writer() -> int | None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            return None

    fd = wait_for(f"the server to open {fifo.name} for reading", open_writer,
                  lambda fd: fd is not None, seconds=seconds, poll=0.01)
    assert fd is not None
    return fd


def _feed(fd: int, fifo: Path, text: str) -> None:
    """Give the blocked reader the file's text and EOF; put the plain file back."""
    with contextlib.suppress(OSError):
        os.write(fd, text.encode())
    os.close(fd)
    fifo.unlink()
    fifo.write_text(text)


# Regression (a fixed bug): SIGHUP reloads zones synchronously on the main loop: no
# query is answered while  zone files are read and compiled (measured: 4 s for a 20,000-record
# zone)
def test_queries_are_answered_while_a_reload_reads_zone_files(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    srv = start_server(tmp_path, zones=zones, preload=HELD)
    fd = None
    fifo = zones / INCLUDE
    text = ""
    answered = []
    try:
        text = _fifo_instead_of(fifo)  # stands in for a slow disk or a large zone
        os.kill(srv.proc.pid, signal.SIGHUP)
        fd = _writer_when_read(fifo)
        for _ in range(3):
            answered.append(query(srv, "www.example.org.") is not None)
    finally:
        if fd is not None:
            _feed(fd, fifo, text)
        elif text and fifo.is_fifo():
            fifo.unlink()
            fifo.write_text(text)
        srv.stop()
    assert answered == [True, True, True]


# Regression (a fixed bug): SIGHUP before the loop installs its handler (while
# zones load at start) kills the  server with the default action; systemd counts that as a
# clean exit and does not restart
def test_sighup_while_starting_does_not_kill_the_server(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    fifo = zones / INCLUDE
    text = _fifo_instead_of(fifo)  # startup blocks reading it
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", PRELOADED, HELD, "serve", "--zones", str(zones),
             "--listen", f"127.0.0.1:{port}", "--control", ""],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )
    srv = ServerProc(proc, "127.0.0.1", port, log)
    try:
        fd = _writer_when_read(fifo)
        os.kill(proc.pid, signal.SIGHUP)  # e.g. `systemctl reload` while it starts
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)  # gives the default action time to act
        _feed(fd, fifo, text)
        assert proc.poll() is None, f"exit {proc.returncode}"
        wait_ready("127.0.0.1", port, proc)
    finally:
        srv.stop()


def test_reload_keeps_pool_health_and_a_broken_pool_zone(harness: Harness) -> None:
    """SIGHUP with pools: selections and health survive; a pool's zone that fails to
    reload keeps its last good version; no answer is empty or brings back a down member."""
    a, b = ip(41), ip(42)
    owner = "reload-pool.example.com."
    zones = harness.tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    backends = harness.http(a, b)
    harness.write_config([monitor(port=backends[a].port)],
                         [pool(owner, [{"address": a}, {"address": b}])], zones=str(zones))
    srv = start_server(harness.tmp_path, "-c", str(harness.config), zones=None)
    harness.stack.callback(srv.stop)
    harness.wait_up([web(41), web(42)])
    backends[a].mode = Mode.ERROR
    wait_answer(srv, owner, {b})

    zone = zones / "example.com.zone"
    good = zone.read_text()
    seen: set[frozenset[str] | None] = set()
    for edit, expected_log in ((good.replace("2026112601 ; serial", "2026112602 ; serial"),
                                "generation"),
                               (good + "\nbroken IN A 192.0.2.999\n", "failed to reload")):
        zone.write_text(edit)
        marks = srv.log_text().count(expected_log)
        os.kill(srv.proc.pid, signal.SIGHUP)
        for _ in range(200):  # bounded; ends when the reload is logged
            seen.add(addresses(srv, owner))
            if srv.log_text().count(expected_log) > marks:
                break
            time.sleep(0.02)
        assert srv.log_text().count(expected_log) > marks, srv.log_text()
        seen.add(addresses(srv, owner))
    assert seen - {None} == {frozenset({b})}  # None: a lost UDP packet, retried next round
    msg = srv.udp(dns.message.make_query("example.com.", "SOA"))
    assert msg.answer[0][0].serial == 2026112602  # the last good version is served
    backends[a].mode = Mode.OK
    wait_answer(srv, owner, {a, b})
    assert srv.proc.poll() is None
