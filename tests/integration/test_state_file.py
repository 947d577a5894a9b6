"""Review of the runtime wiring: lifecycle, concurrency and failure handling.

Covers what ``app.Server`` connects (monitor thread -> main loop, the override
poll, SIGHUP reloads, shutdown), the self-suspicion guard as the running
server applies it, the state file under trouble (locked, deleted, corrupt,
read-only, from an older config), the CLI's override commands, and the TCP
listener under idle, stalled and capped connections.

Tests marked ``xfail(strict=True, reason="bug: ...")`` reproduce a bug the
review found: they fail today, and pass (so the mark must go) once it is fixed.
The others pin down behaviour the review verified.

Everything runs on loopback: the real server process (``conftest.start_server``
or a Popen stopped by PID), real HTTP backends on 127.0.3.x (``backends.py``),
real exec probes. Waits are bounded polls with deadlines (behaviour, not speed);
the durations the review measured are printed (``-s``), never asserted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import pytest
from backends import HttpBackend, Mode
from conftest import SHIPPED_ZONES, ServerProc, free_port, start_server, wait_ready
from test_health_e2e import (
    FALL,
    Harness,
    addresses,
    monitor,
    pool,
    query,
    render_config,
    wait_answer,
    wait_for,
)

from dnsserve import app
from dnsserve.answer.snapshot import answer_key
from dnsserve.health.guard import Suspicion
from dnsserve.health.model import MemberHealth, MemberId, Override, OverrideEntry, State
from dnsserve.store import Store

WAIT = 15.0  # seconds a condition may take before a test fails
INCLUDE = "include/example.com-ns.inc"  # example.com.zone $INCLUDEs it (a FIFO stalls a load)


def ip(x: int) -> str:
    return f"127.0.3.{x}"


def web(x: int) -> str:
    return f"web/{ip(x)}"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with contextlib.ExitStack() as stack:
        yield Harness(tmp_path, stack)


def six_in_three_pools(harness: Harness, first: int, *, when_all_down: str = "all",
                       interval: float = 0.5, timeout: float = 0.3,
                       ) -> tuple[dict[str, str], dict[str, list[str]], dict[str, HttpBackend]]:
    """Three pools of two members each (the guard's smallest case is 4 members in 2 pools)."""
    names = {k: f"review-{k}.example.com." for k in "abc"}
    hosts = {k: [ip(first + 2 * i), ip(first + 2 * i + 1)] for i, k in enumerate("abc")}
    everyone = [h for hs in hosts.values() for h in hs]
    backends = harness.http(*everyone)
    harness.write_config(
        [monitor(port=backends[everyone[0]].port, interval=interval, timeout=timeout)],
        [pool(names[k], [{"address": h} for h in hosts[k]], when_all_down=when_all_down)
         for k in names],
    )
    return names, hosts, backends


def alarms(harness: Harness) -> list[str]:
    return [e["to_state"] for e in harness.events("*")]


def down_events(harness: Harness, hosts: list[str]) -> dict[str, list[str]]:
    """Each member's "down" events (reasons): a state the server published."""
    return {f"web/{h}": [e["reason"] for e in harness.events(f"web/{h}")
                         if e["to_state"] == "down"] for h in hosts}


# -- the self-suspicion guard as the server applies it ------------------------------------------


# Regression (found in review, fixed): guard applies the first DOWN flips (5 of 6 with
# suspect_fraction=1.0) before suspicion triggers, then restores them: answers change (NODATA
# for nodata pools) for up to about one interval
def test_guard_publishes_no_down_flip_before_suspicion(harness: Harness) -> None:
    names, hosts, backends = six_in_three_pools(harness, 11, when_all_down="nodata")
    everyone = [h for hs in hosts.values() for h in hs]
    srv = harness.serve()
    harness.wait_up([f"web/{h}" for h in everyone])
    for k in names:
        wait_answer(srv, names[k], set(hosts[k]))

    for backend in backends.values():  # every check fails from now on, all at once
        backend.mode = Mode.ERROR
    wrong: list[tuple[str, frozenset[str] | None]] = []
    deadline = time.monotonic() + WAIT
    for _ in range(2000):
        for k in names:
            got = addresses(srv, names[k])
            if got is not None and got != frozenset(hosts[k]):
                wrong.append((k, got))  # an empty set is NODATA
        if alarms(harness) or time.monotonic() > deadline:
            break
    assert alarms(harness) == ["suspicion"]
    assert down_events(harness, everyone) == {f"web/{h}": [] for h in everyone}
    assert wrong == []


# Regression (found in review, fixed): after an operator forces a state, suspicion is cleared
# but the held members' next failures re-trigger it within one interval (flips applied, then
# restored again)
def test_operator_force_ends_suspicion(harness: Harness) -> None:
    names, hosts, backends = six_in_three_pools(harness, 21)
    everyone = [h for hs in hosts.values() for h in hs]
    members = [f"web/{h}" for h in everyone]
    srv = harness.serve()
    harness.wait_up(members)
    for k in names:
        wait_answer(srv, names[k], set(hosts[k]))
    for backend in backends.values():
        backend.mode = Mode.ERROR
    wait_for("a suspicion alarm", lambda: alarms(harness), lambda a: a == ["suspicion"])
    harness.wait_states("members failing while held",
                        lambda s: all(s[m]["failures"] >= FALL + 1 for m in members))

    harness.cli("drain", members[0], "--state", str(harness.state))  # the operator acts
    wait_for("suspicion to clear", lambda: alarms(harness),
             lambda a: a[:2] == ["suspicion", "suspicion-cleared"])
    base = {m: s["failures"] for m, s in harness.states().items()}
    # Every member fails FALL + 2 more checks: enough for every one of them to flip.
    harness.wait_states("every member failing again after the drain",
                        lambda s: all(s[m]["failures"] >= base[m] + FALL + 2 for m in members))
    assert alarms(harness) == ["suspicion", "suspicion-cleared"]


# -- the state file locked by another process ---------------------------------------------------


# Regression (found in review, fixed): the override poll opens a write transaction on the main
# loop and the monitor writes  the store in its trio thread: a locked state file stalls UDP
# answers (10 s busy timeout  per poll) and delays a failover by 20-30 s
def test_locked_state_file_stalls_neither_answers_nor_failover(harness: Harness) -> None:
    a, b = ip(31), ip(32)
    owner = "review-lock.example.com."
    backends = harness.http(a, b)
    harness.write_config([monitor(port=backends[a].port)],
                         [pool(owner, [{"address": a}, {"address": b}])])
    srv = harness.serve()
    harness.wait_up([web(31), web(32)])
    wait_answer(srv, owner, {a, b})

    # Another process holds the write lock (an operator's sqlite3 shell, a slow
    # VACUUM, a stuck CLI) for longer than SQLite's 10 s busy timeout.
    unanswered = 0
    got: frozenset[str] | None = None
    with contextlib.closing(sqlite3.connect(harness.state, timeout=5,
                                            isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            backends[a].mode = Mode.ERROR
            deadline = time.monotonic() + 14.0
            for _ in range(200):
                try:
                    msg = srv.udp(dns.message.make_query(owner, "A"), timeout=2.0)
                except dns.exception.Timeout:
                    unanswered += 1
                    continue
                got = frozenset(rr.to_text() for rrset in msg.answer for rr in rrset)
                if got == {b} or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        finally:
            db.execute("ROLLBACK")
    assert unanswered == 0
    assert got == {b}  # the failover happened while the file was locked


# -- reloads -------------------------------------------------------------------------------------


def _fifo_instead_of(path: Path) -> str:
    """Replace ``path`` by a FIFO: a reader blocks until the test feeds it. Returns the text."""
    text = path.read_text()
    path.unlink()
    os.mkfifo(path)
    return text


def _writer_when_read(fifo: Path, seconds: float = WAIT) -> int:
    """Wait until the server opened ``fifo`` to read it; return our (non-blocking) write end."""
    deadline = time.monotonic() + seconds
    for _ in range(2000):
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:  # ENXIO: no reader yet
                raise
        time.sleep(0.01)
    raise RuntimeError("the server never read the FIFO")


def _feed(fd: int, fifo: Path, text: str) -> None:
    """Give the blocked reader the file's text and EOF; put the plain file back."""
    with contextlib.suppress(OSError):
        os.write(fd, text.encode())
    os.close(fd)
    fifo.unlink()
    fifo.write_text(text)


# Regression (found in review, fixed): SIGHUP reloads zones synchronously on the main loop: no
# query is answered while  zone files are read and compiled (measured: 4 s for a 20,000-record
# zone)
def test_queries_are_answered_while_a_reload_reads_zone_files(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(SHIPPED_ZONES, zones)
    srv = start_server(tmp_path, zones=zones)
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


# Regression (found in review, fixed): SIGHUP before the loop installs its handler (while
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
            [sys.executable, "-m", "dnsserve", "serve", "--zones", str(zones),
             "--listen", f"127.0.0.1:{port}"],
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
    owner = "review-reload.example.com."
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


# Regression (found in review, fixed): reselect swaps when only a Selection's reason text
# changed: entering or leaving  suspicion rebuilds every pool's answers on the main loop (3 s
# stall at 100 pools)
def test_entering_suspicion_rebuilds_no_unchanged_answer(tmp_path: Path) -> None:
    """Runs the app's own main-loop steps in process (no sockets): load, then the
    suspicion event the monitor thread hands over. No answer changes, so no prebuilt
    answer may be rebuilt (a full rebuild stalls the loop: 3 s at 100 pools)."""
    hosts = {k: [f"192.0.2.{10 + 2 * i}", f"192.0.2.{11 + 2 * i}"] for i, k in enumerate("abc")}
    owners = {k: f"review-susp-{k}.example.com." for k in hosts}
    config = tmp_path / "c.toml"
    config.write_text(render_config({
        "server": {"state": str(tmp_path / "state.db")},
        "monitor": [{"name": "web", "kind": "tcp", "port": 9, "interval": 1.0, "timeout": 0.5}],
        "pool": [pool(owners[k], [{"address": h} for h in hosts[k]]) for k in hosts],
    }))
    server = app.Server(app.settings(config, zones=SHIPPED_ZONES))
    server._start_health()
    try:
        server.load()
        assert server.engine is not None
        before = server.engine.snapshot
        keys = [answer_key(dns.name.from_text(owners[k]), dns.rdatatype.A, dns.rdataclass.IN)
                for k in hosts]
        held = frozenset(MemberId("web", h) for hs in hosts.values() for h in hs)
        server._apply_suspicion(Suspicion(True, time.time(), held, MappingProxyType({}), "test"))
        after = server.engine.snapshot
        assert server.view.suspect
        assert [after.answers[k] is before.answers[k] for k in keys] == [True, True, True]
    finally:
        assert server.store is not None
        server.store.close()


# -- shutdown ------------------------------------------------------------------------------------


def test_sigterm_with_checks_in_flight_exits_cleanly(harness: Harness,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A hanging HTTP check and exec checks (with a child of their own) in flight: SIGTERM
    ends the server with 0, kills every probe process, and closes the state file."""
    a, b = ip(51), ip(52)
    backends = harness.http(a, b)
    for backend in backends.values():
        backend.mode = Mode.HANG
    pids = harness.tmp_path / "probe-pids"
    script = harness.tmp_path / "probe.sh"
    script.write_text(f"#!/bin/sh\necho $$ >> {pids}\nsleep 60 &\necho $! >> {pids}\nwait\n")
    script.chmod(0o755)
    slow = {"interval": 2.0, "timeout": 1.9}
    harness.write_config(
        [monitor(port=backends[a].port, **slow),
         {"name": "probe", "kind": "exec", "command": [str(script)], "rise": 2, "fall": 2,
          **slow}],
        [pool("review-stop.example.com.", [{"address": a}, {"address": b}]),
         pool("review-stop2.example.com.", [{"address": ip(53)}, {"address": ip(54)}],
              monitor="probe")],
    )
    srv = harness.serve()
    wait_for("both exec checks and both HTTP checks in flight",
             lambda: (len(pids.read_text().split()) if pids.exists() else 0,
                      sum(be.requests for be in backends.values())),
             lambda n: n[0] >= 4 and n[1] >= 2)
    probes = [int(p) for p in pids.read_text().split()]
    started = time.monotonic()
    os.kill(srv.proc.pid, signal.SIGTERM)
    code = srv.proc.wait(timeout=30)
    took = time.monotonic() - started

    def running(pid: int) -> bool:  # a zombie waiting for init is dead
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            return "\nState:\tZ" not in status
        return False

    left = wait_for("every probe process to end", lambda: [p for p in probes if running(p)],
                    lambda still: not still, seconds=5.0)
    with capsys.disabled():
        print(f"\n[review] SIGTERM with hanging http + exec checks in flight: exit {code} "
              f"after {took:.2f} s")
    assert code == 0
    assert left == []
    assert not Path(f"{harness.state}-wal").exists()  # closed: SQLite removes the WAL
    assert "stopping" in srv.log_text()


# -- startup and the state file ------------------------------------------------------------------


def _real_state_file(path: Path) -> None:
    with Store.open(path) as store:
        for i in range(200):  # a few pages, so a truncated copy is damaged, not empty
            member = MemberId("web", f"127.0.3.{i % 250}")
            health = MemberHealth(State.UP, 1.0, "x" * 100, 1, 0, 1.0)
            store.record_transition(member, None, State.UP, "x" * 100, 1.0, health)


def _corrupt(kind: str, path: Path) -> None:
    if kind == "garbage":
        path.write_bytes(bytes(range(256)) * 20)
    elif kind == "text":
        path.write_text("this is not a state file\n")
    else:  # a real state file cut short
        full = path.with_suffix(".full")
        _real_state_file(full)
        path.write_bytes(full.read_bytes()[:8192])


@pytest.mark.parametrize("kind", ["garbage", "text", "truncated"])
def test_corrupt_state_file_exits_1_naming_the_file(harness: Harness, kind: str) -> None:
    harness.write_config([monitor(port=9)], [pool("review-corrupt.example.com.",
                                                  [{"address": ip(61)}, {"address": ip(62)}])])
    _corrupt(kind, harness.state)
    done = harness.cli("serve", "-c", str(harness.config), "--zones", str(SHIPPED_ZONES),
                       "--listen", f"127.0.0.1:{free_port()}", check=False, timeout=20)
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 1, lines
    assert len(lines) == 1 and lines[0].startswith(f"dnsserve: {harness.state}: "), lines


def test_state_file_from_an_older_config(harness: Harness) -> None:
    """Members (and a monitor) no longer in the config: the server starts, restores the
    current members' states, ignores the rest and leaves their rows alone."""
    a, b = ip(63), ip(64)
    owner = "review-stale.example.com."
    with Store.open(harness.state) as store:
        down = MemberHealth(State.DOWN, 1.0, "HTTP 503", 0, 5, 1.0)
        for member in (MemberId("web", a), MemberId("web", ip(65)), MemberId("old", b)):
            store.record_transition(member, State.UP, State.DOWN, "HTTP 503", 1.0, down)
    backends = harness.http(a, b)
    harness.write_config([monitor(port=backends[a].port)],
                         [pool(owner, [{"address": a}, {"address": b}])])
    srv = harness.serve()
    first = addresses(srv, owner) or addresses(srv, owner)  # one retry for a lost packet
    assert first == {b}  # a is down from the file; "old/b" is another member
    wait_answer(srv, owner, {a, b})
    rows = harness.states()
    assert (rows[f"web/{ip(65)}"]["state"], rows[f"old/{b}"]["state"]) == ("down", "down")


# Regression (found in review, fixed): an override for a member no longer in the config
# (renamed monitor, removed  member) is silently ignored at start; nothing tells the operator
# the drain is void
def test_orphaned_override_is_reported_at_start(harness: Harness) -> None:
    a, b = ip(66), ip(67)
    with Store.open(harness.state) as store:
        store.set_override(MemberId("old", a), OverrideEntry(Override.DRAIN), time.time())
    backends = harness.http(a, b)
    harness.write_config([monitor(port=backends[a].port)],
                         [pool("review-orphan.example.com.", [{"address": a}, {"address": b}])])
    srv = harness.serve()
    wait_answer(srv, "review-orphan.example.com.", {a, b})
    assert f"old/{a}" in srv.log_text()


# Regression (found in review, fixed): a state file deleted while the server runs goes
# unnoticed: it keeps writing the  unlinked file, a drain set with the CLI in the new file is
# never applied, no error
def test_state_file_deleted_while_running(harness: Harness) -> None:
    a, b = ip(71), ip(72)
    owner = "review-deleted.example.com."
    backends = harness.http(a, b)
    harness.write_config([monitor(port=backends[a].port)],
                         [pool(owner, [{"address": a}, {"address": b}])])
    srv = harness.serve()
    harness.wait_up([web(71), web(72)])
    for suffix in ("", "-wal", "-shm"):  # an operator wipes the state
        Path(f"{harness.state}{suffix}").unlink(missing_ok=True)
    # The server notices and makes a new file (the CLI refuses a missing one).
    wait_for("the server to recreate the state file", harness.state.exists,
             lambda exists: exists, seconds=10.0)
    harness.cli("drain", web(71), "--state", str(harness.state))
    got = wait_for(f"{owner} to leave out the drained {a}", lambda: addresses(srv, owner),
                   lambda got: got == {b}, seconds=10.0)
    assert got == {b}


# -- the CLI's override commands -----------------------------------------------------------------


# Regression (found in review, fixed): drain with a mistyped --state creates a new state file
# and reports success; a  MONITOR/ADDRESS no pool has is accepted even when the config is
# given
def test_drain_refuses_a_missing_state_file_and_an_unknown_member(harness: Harness) -> None:
    harness.write_config([monitor(port=9)], [pool("review-cli.example.com.",
                                                  [{"address": ip(73)}, {"address": ip(74)}])])
    Store.open(harness.state).close()
    typo = harness.tmp_path / "stat.db"
    done = harness.cli("drain", web(73), "--state", str(typo), check=False)
    assert (done.returncode, typo.exists()) == (1, False), done.stdout
    done = harness.cli("drain", f"wbe/{ip(73)}", "-c", str(harness.config),
                       "--state", str(harness.state), check=False)
    assert done.returncode == 1, done.stdout


# -- permissions (run unprivileged: as root, through setpriv as nobody) --------------------------


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temporary directory an unprivileged user can reach (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="dnsserve-review-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        for sub in path.rglob("*"):
            with contextlib.suppress(OSError):
                sub.chmod(0o777 if sub.is_dir() else 0o666)
        shutil.rmtree(path, ignore_errors=True)


def unprivileged() -> list[str]:
    """A command prefix that drops root (permissions are not enforced for root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot test permissions")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    # The checkout must be readable by that user (a clone in a 0700 directory is not).
    probe = subprocess.run([*prefix, sys.executable, "-c", "import dnsserve"],
                           capture_output=True, text=True, timeout=20, check=False)
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot import dnsserve from this checkout: "
                    f"{probe.stderr.strip().splitlines()[-1:]}")
    return prefix


def run_as_nobody(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*unprivileged(), sys.executable, "-m", "dnsserve", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=20, check=False)


def test_state_file_in_a_read_only_directory_exits_1_naming_it(open_dir: Path) -> None:
    readonly = open_dir / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    state = readonly / "state.db"
    config = open_dir / "c.toml"
    config.write_text(render_config({
        "server": {"state": str(state)},
        "monitor": [monitor(port=9)],
        "pool": [pool("review-ro.example.com.", [{"address": ip(75)}, {"address": ip(76)}])],
    }))
    done = run_as_nobody(open_dir, "serve", "-c", str(config), "--zones", str(SHIPPED_ZONES),
                         "--listen", f"127.0.0.1:{free_port()}")
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 1, lines
    assert len(lines) == 1 and lines[0].startswith(f"dnsserve: {state}: "), lines


# Regression (found in review, fixed): status cannot read a read-only state file:
# load_overrides deletes expired rows  (a write transaction) on every read, also the server's
# poll once a second
def test_status_reads_a_read_only_state_file(open_dir: Path) -> None:
    state = open_dir / "state.db"
    with Store.open(state) as store:
        store.set_override(MemberId("web", ip(77)), OverrideEntry(Override.DRAIN), time.time())
    state.chmod(0o444)
    done = run_as_nobody(open_dir, "status", "--state", str(state))
    assert done.returncode == 0, done.stderr
    assert f"web/{ip(77)}" in done.stdout


# -- the TCP listener under idle, stalled and excess connections ---------------------------------


def test_idle_stalled_and_excess_tcp_connections_leave_udp_answering(tmp_path: Path) -> None:
    cap, idle = 20, 2.0
    config = tmp_path / "c.toml"
    config.write_text(render_config({"server": {
        "state": str(tmp_path / "state.db"), "tcp_max_connections": cap,
        "tcp_idle_timeout": idle}}))
    srv = start_server(tmp_path, "-c", str(config))
    held: list[socket.socket] = []
    try:
        query_wire = dns.message.make_query("www.example.com.", "A").to_wire()
        for i in range(cap):
            sock = socket.create_connection((srv.host, srv.port), timeout=5)
            held.append(sock)
            if i % 3 == 1:
                sock.sendall(b"\x00")  # half a length prefix, then nothing
            elif i % 3 == 2:
                sock.sendall(struct.pack("!H", len(query_wire)) + query_wire[:5])  # stalls
        wait_for("UDP answers while the cap is reached",
                 lambda: [query(srv, "www.example.com.") is not None for _ in range(20)],
                 lambda got: all(got))
        with pytest.raises((EOFError, ConnectionError)):  # over the cap: closed at once
            dns.query.tcp(dns.message.make_query("www.example.com.", "A"), srv.host,
                          port=srv.port, timeout=5)
        # A client trickling bytes of its one query does not reset the idle timer.
        trickle = held[2]
        for byte in query_wire[5:8]:
            trickle.sendall(bytes([byte]))
            time.sleep(idle / 4)
        ended = []
        for sock in held:
            sock.settimeout(idle + 10)
            try:
                ended.append(sock.recv(512) == b"")
            except ConnectionError:
                ended.append(True)
        assert ended == [True] * cap  # every idle or stalled connection was closed
        msg = dns.query.tcp(dns.message.make_query("www.example.com.", "A"), srv.host,
                            port=srv.port, timeout=5)
        assert msg.answer
        assert srv.proc.poll() is None
    finally:
        for sock in held:
            sock.close()
        srv.stop()
