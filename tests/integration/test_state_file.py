"""The state file across processes: a server and the CLI on one file, under trouble.

Covers what a unit test of ``store`` cannot: a writer killed with SIGKILL, the
running server with its file locked by another process, deleted, corrupt,
read-only or written by an older config, the CLI's override commands on a
missing file or an unknown member, and the CLI reading a file it may not
write.

Everything runs on loopback: the real server process (``testkit.server``),
real HTTP backends on 127.0.3.x (``testkit.backends``), the CLI and a writer
as subprocesses, stopped by PID. Waits are bounded polls with deadlines
(behaviour, not speed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import httpx
import pytest

from dnsserve.health.model import MemberHealth, MemberId, Override, OverrideEntry, State
from dnsserve.store import Store
from testkit import SHIPPED_ZONES
from testkit.backends import Mode
from testkit.harness import Harness, addresses, monitor, pool, render_config, wait_answer
from testkit.ports import free_port
from testkit.server import wait_ready
from testkit.wait import wait_for


def ip(x: int) -> str:
    return f"127.0.3.{x}"


def web(x: int) -> str:
    return f"web/{ip(x)}"


# -- a writer killed with SIGKILL ----------------------------------------------------------------


CHILD = textwrap.dedent(
    """
    import sys
    from dnsserve.health.model import MemberHealth, MemberId, State
    from dnsserve.store import Store

    store = Store.open(sys.argv[1])
    member = MemberId("web", "127.0.0.11")
    old = State.UP
    for i in range(100_000):  # bounded; the parent kills it long before
        new = State.DOWN if old is State.UP else State.UP
        event_id = store.record_transition(
            member, old, new, f"check {i}", float(i), MemberHealth(new, float(i))
        )
        sys.stdout.write(f"{event_id} {i}\\n")
        sys.stdout.flush()
        old = new
    """
)


def test_kill_9_loses_no_committed_event(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    committed: list[tuple[int, int]] = []
    try:
        assert proc.stdout is not None
        for _ in range(40):  # kill right after the 40th commit returned
            line = proc.stdout.readline()
            assert line, f"child exited early: {proc.stderr.read() if proc.stderr else ''}"
            event_id, i = map(int, line.split())
            committed.append((event_id, i))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == -signal.SIGKILL
    with Store.open(path) as store:
        events = {e.id: e for e in store.events(limit=1_000_000)}
        for event_id, i in committed:
            assert events[event_id].reason == f"check {i}"
        # the state row commits with its event: it is at least as new as the last one seen
        last_time = store.load_states()[MemberId("web", "127.0.0.11")].since
        assert last_time >= committed[-1][1]
        assert max(events) >= committed[-1][0]


# -- the state file locked by another process ---------------------------------------------------


# Regression (a fixed bug): the override poll opens a write transaction on the main
# loop and the monitor writes  the store in its trio thread: a locked state file stalls UDP
# answers (10 s busy timeout  per poll) and delays a failover by 20-30 s
def test_locked_state_file_stalls_neither_answers_nor_failover(harness: Harness) -> None:
    a, b = ip(31), ip(32)
    owner = "locked-state.example.com."
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
def test_corrupt_state_file_is_moved_aside_and_dns_starts(harness: Harness, kind: str) -> None:
    """Whatever is in the state file, DNS starts: a file that is not a state file is
    moved aside (kept, named in the log) and a fresh one started; status says so."""
    backends = harness.http(ip(61), ip(62))
    harness.write_config([monitor(port=backends[ip(61)].port)],
                         [pool("corrupt-state.example.com.",
                               [{"address": ip(61)}, {"address": ip(62)}])])
    _corrupt(kind, harness.state)
    srv = harness.serve()
    assert addresses(srv, "corrupt-state.example.com.") == {ip(61), ip(62)}
    aside = list(harness.tmp_path.glob("state.db.damaged-*"))
    assert len(aside) == 1
    assert str(aside[0]) in srv.log_text()
    problems = harness.api("GET", "/api/v1/status").json()["problems"]
    assert any(str(aside[0]) in p for p in problems), problems
    with Store.open(harness.state) as store:  # the fresh one is a state file
        assert store.load_states() is not None


def test_state_file_from_an_older_config(harness: Harness) -> None:
    """Members (and a monitor) no longer in the config: the server starts, restores the
    current members' states, ignores the rest and leaves their rows alone."""
    a, b = ip(63), ip(64)
    owner = "stale-state.example.com."
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


# Regression (a fixed bug): an override for a member no longer in the config
# (renamed monitor, removed  member) is silently ignored at start; nothing tells the operator
# the drain is void
def test_orphaned_override_is_reported_at_start(harness: Harness) -> None:
    a, b = ip(66), ip(67)
    with Store.open(harness.state) as store:
        store.set_override(MemberId("old", a), OverrideEntry(Override.DRAIN), time.time())
    backends = harness.http(a, b)
    harness.write_config([monitor(port=backends[a].port)],
                         [pool("orphan-override.example.com.", [{"address": a}, {"address": b}])])
    srv = harness.serve()
    wait_answer(srv, "orphan-override.example.com.", {a, b})
    assert f"old/{a}" in srv.log_text()


# Regression (a fixed bug): a state file deleted while the server runs goes
# unnoticed: it keeps writing the  unlinked file, a drain set with the CLI in the new file is
# never applied, no error
def test_state_file_deleted_while_running(harness: Harness) -> None:
    a, b = ip(71), ip(72)
    owner = "deleted-state.example.com."
    backends = harness.http(a, b)
    harness.write_config([monitor(port=backends[a].port)],
                         [pool(owner, [{"address": a}, {"address": b}])])
    srv = harness.serve()
    harness.wait_up([web(71), web(72)])
    for suffix in ("", "-wal", "-shm"):  # an operator wipes the state
        Path(f"{harness.state}{suffix}").unlink(missing_ok=True)
    # The server notices and makes a new file, and what it writes lands there.
    wait_for("the server to recreate the state file", harness.state.exists,
             lambda exists: exists, seconds=10.0)
    harness.cli("drain", web(71), "-c", str(harness.config))
    got = wait_for(f"{owner} to leave out the drained {a}", lambda: addresses(srv, owner),
                   lambda got: got == {b}, seconds=10.0)
    assert got == {b}
    wait_for("the drain in the new state file",
             lambda: harness._rows("SELECT member FROM overrides"),
             lambda rows: [r["member"] for r in rows] == [web(71)])


# -- the CLI's override commands -----------------------------------------------------------------


# Regression (a fixed bug): drain with a mistyped --state created a new state file and
# reported success; a MONITOR/ADDRESS no pool has was accepted even when the config was given.
# The CLI now changes a running server only through its control API: it never creates or
# writes a state file, and still refuses a member no pool has before asking any server.
def test_drain_never_writes_a_state_file_and_refuses_an_unknown_member(
    harness: Harness,
) -> None:
    harness.write_config([monitor(port=9)], [pool("drain-cli.example.com.",
                                                  [{"address": ip(73)}, {"address": ip(74)}])])
    done = harness.cli("drain", web(73), "--state", str(harness.state), check=False)
    assert done.returncode == 2 and "--state" in done.stderr  # no such option any more
    done = harness.cli("drain", web(73), "-c", str(harness.config), check=False)
    assert done.returncode == 1, done.stdout  # no token, and no server to take it
    done = harness.cli("drain", f"wbe/{ip(73)}", "-c", str(harness.config), check=False)
    assert done.returncode == 1 and f"wbe/{ip(73)}: in no pool of" in done.stderr
    assert not harness.state.exists()


# -- permissions (run unprivileged: as root, through setpriv as nobody) --------------------------


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temporary directory an unprivileged user can reach (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="dnsserve-perm-"))
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


def test_state_file_in_a_read_only_directory_never_stops_dns(open_dir: Path) -> None:
    """The state file cannot be made: DNS is served with health in memory, the log says
    why once (naming the cause), and /healthz's detail says it too."""
    readonly = open_dir / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    state = readonly / "state.db"
    config = open_dir / "c.toml"
    control = f"127.0.0.1:{free_port()}"
    config.write_text(render_config({
        "server": {"state": str(state), "control": control},
        "monitor": [monitor(port=9)],
        "pool": [pool("readonly-state.example.com.", [{"address": ip(75)}, {"address": ip(76)}])],
    }))
    port = free_port()
    log = open_dir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*unprivileged(), sys.executable, "-m", "dnsserve", "serve", "-c", str(config),
             "--zones", str(SHIPPED_ZONES), "--listen", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=open_dir,
        )
    try:
        wait_ready("127.0.0.1", port, proc)
        q = dns.message.make_query("readonly-state.example.com.", "A")
        answer = dns.query.udp(q, "127.0.0.1", port=port, timeout=2.0)
        served = {rd.address for rrset in answer.answer for rd in rrset}
        assert served and served <= {ip(75), ip(76)}  # (their checks fail: port 9)
        health = wait_for("/healthz to name the state file problem",
                          lambda: httpx.get(f"http://{control}/healthz", trust_env=False),
                          lambda r: "permission denied" in r.json()["state_file"])
        assert health.status_code == 200  # DNS is fine: no reason to withdraw the route
        text = log.read_text()
        assert text.count("state file not written") == 1, text
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


# Regression (a fixed bug): status cannot read a read-only state file:
# load_overrides deletes expired rows  (a write transaction) on every read, also the server's
# poll once a second
def test_status_reads_a_read_only_state_file(open_dir: Path) -> None:
    state = open_dir / "state.db"
    with Store.open(state) as store:
        store.set_override(MemberId("web", ip(77)), OverrideEntry(Override.DRAIN), time.time())
    state.chmod(0o444)
    done = run_as_nobody(open_dir, "status", "--offline", "--state", str(state))
    assert done.returncode == 0, done.stderr
    assert f"web/{ip(77)}" in done.stdout


def test_a_row_with_a_bad_value_never_freezes_health(harness: Harness) -> None:
    """passes = 'abc' in one row (it once killed the monitor at every start): the row is
    skipped and logged, and that member is checked and fails over like the others."""
    a, b = ip(68), ip(69)
    owner = "bad-row.example.com."
    with Store.open(harness.state) as store:
        store.save_states({MemberId("web", a): MemberHealth(State.UP, 1.0, "", 1, 0, 1.0)})
    conn = sqlite3.connect(harness.state)
    conn.execute("UPDATE member_state SET passes = 'abc'")
    conn.commit()
    conn.close()
    backends = harness.http(a, b)
    harness.write_config([monitor(port=backends[a].port)],
                         [pool(owner, [{"address": a}, {"address": b}])])
    srv = harness.serve()
    wait_answer(srv, owner, {a, b})
    backends[a].mode = Mode.ERROR
    wait_answer(srv, owner, {b})  # the monitor runs: the member was checked and went down
    log = srv.log_text()
    assert "member_state row" in log and "skipped" in log
    assert "monitor thread died" not in log
