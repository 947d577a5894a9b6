"""The monitor thread against real HTTP backends on 127.0.0.x.

The schedule a monitor refuses, before any thread starts, is tested in
tests/unit/test_monitor_schedule.py.

Waits are bounded polls on a condition (a deadline, not a timing assertion):
a flip must be reported eventually; how fast is the benchmarks' business.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dnsserve.health.guard import Suspicion
from dnsserve.health.model import MemberHealth, MemberId, State
from dnsserve.health.monitor import Monitor
from dnsserve.health.probes import CheckKind, CheckSpec, ProbeResult
from dnsserve.health.targets import CheckOutcome, Target
from testkit.backends import HttpBackend, Mode
from testkit.ports import free_port
from testkit.wait import WAIT, wait_for

Seen = CheckOutcome


class Recorder:
    """Collects on_result / on_suspicion calls from the monitor thread."""

    def __init__(self) -> None:
        self.results: list[Seen] = []
        self.suspicions: list[Suspicion] = []
        self.cond = threading.Condition()

    def on_result(self, outcome: CheckOutcome) -> None:
        with self.cond:
            self.results.append(outcome)
            self.cond.notify_all()

    def on_suspicion(self, event: Suspicion) -> None:
        with self.cond:
            self.suspicions.append(event)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], seconds: float = WAIT) -> bool:
        """Poll ``predicate`` (woken early by every callback) until true or the deadline."""
        code = predicate.__code__
        return wait_for(f"the condition at {Path(code.co_filename).name}:{code.co_firstlineno}",
                        lambda: self._holding(predicate), seconds=seconds, sleep=self._nap)

    def _holding(self, predicate: Callable[[], bool]) -> bool:
        with self.cond:
            return predicate()

    def _nap(self, seconds: float) -> None:
        with self.cond:
            self.cond.wait(seconds)

    def flips(self, member: MemberId) -> list[Seen]:
        return [s for s in self.results if s.member == member and s.flipped]

    def of(self, member: MemberId) -> list[Seen]:
        return [s for s in self.results if s.member == member]


@pytest.fixture
def cleanup() -> Iterator[list[Callable[[], object]]]:
    """Stop functions run at the end, last registered first."""
    stops: list[Callable[[], object]] = []
    yield stops
    for stop in reversed(stops):
        stop()


def http_target(address: str, port: int, *, interval: float = 0.2, timeout: float = 0.15,
                rise: int = 2, fall: int = 2) -> Target:
    spec = CheckSpec(kind=CheckKind.HTTP, port=port, path="/health", timeout=timeout)
    return Target(MemberId("web", address), spec, interval, rise, fall)


def start_monitor(cleanup: list[Callable[[], object]], targets: list[Target],
                  initial: dict[MemberId, MemberHealth] | None = None,
                  **kw: object) -> tuple[Monitor, Recorder]:
    rec = Recorder()
    monitor = Monitor(targets, initial or {}, rec.on_result, on_suspicion=rec.on_suspicion,
                      seed=7, **kw)  # type: ignore[arg-type]
    monitor.start()
    cleanup.append(monitor.stop)
    return monitor, rec


def test_stopped_backend_flips_down_and_comes_back(cleanup: list[Callable[[], object]]) -> None:
    port = free_port("127.0.0.31")
    a = HttpBackend("127.0.0.31", port).start()
    b = HttpBackend("127.0.0.32", port).start()
    cleanup += [a.stop, b.stop]
    ta, tb = http_target("127.0.0.31", port), http_target("127.0.0.32", port)
    monitor, rec = start_monitor(cleanup, [ta, tb])

    # Never seen: up, and checked at once.
    assert rec.wait(lambda: bool(rec.of(ta.member)) and bool(rec.of(tb.member)))
    assert rec.of(ta.member)[0].health.state is State.UP
    assert rec.wait(lambda: any(s.result == ProbeResult(True, "HTTP 200") for s in rec.results))

    a.stop()
    assert rec.wait(lambda: bool(rec.flips(ta.member)))
    down = rec.flips(ta.member)[0]
    assert down.health.state is State.DOWN
    assert down.health.reason == "connect refused"
    # fall = 2: the failure before the flip was reported without a flip.
    failures = [s for s in rec.of(ta.member) if not s.result.ok]
    assert failures[0].health.state is State.UP and not failures[0].flipped
    assert failures[1] is down
    assert monitor.health()[ta.member].state is State.DOWN

    a.start()
    assert rec.wait(lambda: len(rec.flips(ta.member)) == 2)
    up = rec.flips(ta.member)[1]
    assert (up.health.state, up.health.reason) == (State.UP, "HTTP 200")
    assert rec.flips(tb.member) == []

    assert monitor.stop() is True
    counters = monitor.counters()
    assert counters["flips"] == 2
    assert counters["checks"] >= len(rec.results)


def test_hanging_backend_times_out(cleanup: list[Callable[[], object]]) -> None:
    port = free_port("127.0.0.33")
    backend = HttpBackend("127.0.0.33", port, Mode.HANG).start()
    cleanup.append(backend.stop)
    target = http_target("127.0.0.33", port)
    monitor, rec = start_monitor(cleanup, [target])
    assert rec.wait(lambda: bool(rec.flips(target.member)))
    down = rec.flips(target.member)[0]
    assert (down.result.reason, down.health.reason) == ("timeout", "timeout")
    assert monitor.counters()["timeouts"] >= 2
    assert monitor.stop() is True


def test_stop_joins_while_a_check_hangs(
    cleanup: list[Callable[[], object]], tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    spec = CheckSpec(
        kind=CheckKind.EXEC, command=f"echo $$ > {pidfile}; exec sleep 10", timeout=5.0
    )
    target = Target(MemberId("slow", "127.0.0.34"), spec, 6.0, 1, 1)
    monitor, rec = start_monitor(cleanup, [target])
    # The at-once check runs (and hangs).
    assert rec.wait(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    pid = int(pidfile.read_text())
    assert monitor.stop() is True
    assert rec.results == []  # cancelled by stop, not reported as a result
    # The command was killed and reaped, not left behind.
    assert not Path(f"/proc/{pid}").exists()


def test_check_now_and_the_schedule_record(cleanup: list[Callable[[], object]]) -> None:
    port = free_port("127.0.0.35")
    backend = HttpBackend("127.0.0.35", port).start()
    cleanup.append(backend.stop)
    target = http_target("127.0.0.35", port, interval=30.0, timeout=1.0)
    known = {target.member: MemberHealth(State.UP, since=0.0)}  # from the state file
    monitor, rec = start_monitor(cleanup, [target], initial=known)
    assert monitor.check_now(target.member)
    assert not monitor.check_now(MemberId("web", "127.0.0.99"))
    assert rec.wait(lambda: any(r.scheduled is None for r in monitor.records()))
    assert rec.wait(lambda: bool(rec.of(target.member)))
    assert monitor.counters()["triggered"] == 1


def test_regular_checks_start_at_or_after_their_schedule(
    cleanup: list[Callable[[], object]],
) -> None:
    port = free_port("127.0.0.36")
    backend = HttpBackend("127.0.0.36", port).start()
    cleanup.append(backend.stop)
    target = http_target("127.0.0.36", port)
    monitor, rec = start_monitor(cleanup, [target])
    assert rec.wait(lambda: sum(r.scheduled is not None for r in monitor.records()) >= 4)
    # The first record is the at-once check of a member never seen; the rest
    # follow the jittered phase.
    scheduled = [r for r in monitor.records() if r.scheduled is not None][1:]
    assert all(r.started >= r.scheduled for r in scheduled)  # type: ignore[operator]
    # Every `interval` from one phase: the due times are whole intervals apart.
    gaps = [b.scheduled - a.scheduled for a, b in itertools.pairwise(scheduled)]  # type: ignore[operator]
    assert all(abs(g / 0.2 - round(g / 0.2)) < 1e-6 and round(g / 0.2) >= 1 for g in gaps)


def test_checks_that_wait_for_the_concurrency_bound_report_lateness(
    cleanup: list[Callable[[], object]],
) -> None:
    port = free_port("127.0.0.53")
    # Three hanging members, one check at a time: each check takes its whole
    # timeout (0.15 s), so three need 0.45 s of every 0.2 s interval.
    backends = [HttpBackend(f"127.0.0.{i}", port, Mode.HANG).start() for i in (53, 54, 55)]
    cleanup += [b.stop for b in backends]
    targets = [http_target(b.host, port) for b in backends]
    monitor, rec = start_monitor(cleanup, targets, max_concurrency=1)
    assert rec.wait(lambda: len(rec.results) >= 12)
    assert monitor.stop() is True
    assert all(o.late >= 0.0 for o in rec.results)
    assert max(o.late for o in rec.results) > 0.1


def test_one_check_serves_every_pool_sharing_a_member(
    cleanup: list[Callable[[], object]],
) -> None:
    port = free_port("127.0.0.37")
    backend = HttpBackend("127.0.0.37", port).start()
    cleanup.append(backend.stop)
    target = http_target("127.0.0.37", port)
    monitor, rec = start_monitor(cleanup, [target, target])
    assert rec.wait(lambda: len(rec.results) >= 3)
    assert {s.member for s in rec.results} == {target.member}
    assert list(monitor.health()) == [target.member]
    with pytest.raises(ValueError, match="two different checks"):
        Monitor([target, target._replace(fall=5)], {}, rec.on_result)


def test_update_members_starts_and_stops_checks(cleanup: list[Callable[[], object]]) -> None:
    port = free_port("127.0.0.38")
    a = HttpBackend("127.0.0.38", port).start()
    b = HttpBackend("127.0.0.39", port).start()
    cleanup += [a.stop, b.stop]
    ta, tb = http_target("127.0.0.38", port), http_target("127.0.0.39", port)
    monitor, rec = start_monitor(cleanup, [ta])
    assert rec.wait(lambda: bool(rec.of(ta.member)))
    monitor.update_members([tb])
    seen_a = len(rec.of(ta.member))
    assert rec.wait(lambda: len(rec.of(tb.member)) >= 3)
    assert len(rec.of(ta.member)) == seen_a
    assert list(monitor.health()) == [tb.member]


def test_everything_down_at_once_is_suspected(cleanup: list[Callable[[], object]]) -> None:
    port = free_port("127.0.0.41")
    addresses = [f"127.0.0.{i}" for i in (41, 42, 43, 44)]
    targets = [http_target(a, port, interval=0.5, timeout=0.2) for a in addresses]
    pools = {t.member: {"www.example.com./A" if i < 2 else "api.example.com./A"}
             for i, t in enumerate(targets)}
    known = {t.member: MemberHealth(State.UP, since=0.0) for t in targets}
    # No backend listens: every check is refused, as when the monitor's own
    # network is gone.
    monitor, rec = start_monitor(cleanup, targets, initial=known, pools=pools)
    assert rec.wait(lambda: bool(rec.suspicions))
    entered = rec.suspicions[0]
    assert entered.suspect and entered.members == {t.member for t in targets}
    assert monitor.suspect
    assert all(h.state is State.UP for h in monitor.health().values())
    assert all(h.state is State.UP for h in entered.restored.values())
    # One backend comes back: its pass clears suspicion, the others fail over.
    backend = HttpBackend(addresses[0], port).start()
    cleanup.append(backend.stop)
    assert rec.wait(lambda: len(rec.suspicions) == 2)
    assert not rec.suspicions[1].suspect and not monitor.suspect
    others = [t.member for t in targets[1:]]
    assert rec.wait(lambda: all(monitor.health()[m].state is State.DOWN for m in others))
    assert monitor.health()[targets[0].member].state is State.UP


def test_a_partial_outage_fails_over(cleanup: list[Callable[[], object]]) -> None:
    port = free_port("127.0.0.45")
    addresses = [f"127.0.0.{i}" for i in (45, 46, 47, 48)]
    up = [HttpBackend(a, port).start() for a in addresses[:2]]
    cleanup += [b.stop for b in up]
    targets = [http_target(a, port) for a in addresses]
    pools = {t.member: {f"pool{i % 2}"} for i, t in enumerate(targets)}
    monitor, rec = start_monitor(cleanup, targets, pools=pools)
    down = [t.member for t in targets[2:]]
    assert rec.wait(lambda: all(rec.flips(m) for m in down))
    assert not rec.suspicions and not monitor.suspect
    assert all(monitor.health()[t.member].state is State.UP for t in targets[:2])


def test_stop_before_start_and_twice(cleanup: list[Callable[[], object]]) -> None:
    target = http_target("127.0.0.50", free_port("127.0.0.50"))
    monitor = Monitor([target], {}, lambda *a: None)
    assert monitor.stop() is True
    monitor.start()
    with pytest.raises(RuntimeError, match="already started"):
        monitor.start()
    assert Recorder().wait(lambda: monitor.counters()["checks"] > 0)
    assert monitor.stop() is True
    assert monitor.stop() is True


def test_a_bad_ca_file_fails_its_checks_not_the_monitor(
    cleanup: list[Callable[[], object]], tmp_path: Path
) -> None:
    port = free_port("127.0.0.51")
    backend = HttpBackend("127.0.0.51", port).start()
    cleanup.append(backend.stop)
    bad = CheckSpec(
        kind=CheckKind.HTTPS, port=port, timeout=0.5, ca_file=str(tmp_path / "none.pem")
    )
    broken = Target(MemberId("tls", "127.0.0.51"), bad, 1.0, 1, 1)
    fine = http_target("127.0.0.51", port)
    _, rec = start_monitor(cleanup, [broken, fine])
    assert rec.wait(lambda: bool(rec.of(broken.member)) and len(rec.of(fine.member)) >= 2)
    result = rec.of(broken.member)[0].result
    assert (result.ok, result.reason) == (False, "tls config error")
    assert "none.pem" in result.detail


def test_alive_follows_the_thread() -> None:
    spec = CheckSpec(kind=CheckKind.TCP, port=free_port("127.0.0.36"), timeout=0.1)
    monitor = Monitor([Target(MemberId("tcp", "127.0.0.36"), spec, 0.5, 1, 1)], {},
                      lambda *args: None)
    assert not monitor.alive
    monitor.start()
    try:
        assert monitor.alive
    finally:
        assert monitor.stop()
    assert not monitor.alive


# Issue "Survive faults" item 4: a check that fails for want of a file descriptor here says
# nothing about the member. Run in a child process whose descriptors are really exhausted
# (RLIMIT_NOFILE 64, then /dev/null opened until EMFILE): an exec check (pipes, fork) and a
# TCP check (a socket) of members that are fine, fall = 1 so one failure would flip them.
EXHAUSTED = """
import json, logging, os, resource, socket, sys, threading, time
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
from dnsserve.health.model import MemberId, State
from dnsserve.health.monitor import Monitor
from dnsserve.health.targets import Target
from dnsserve.health.probes import CheckKind, CheckSpec

listener = socket.create_server(("127.0.0.52", 0))
listener.settimeout(0.05)
stop = threading.Event()
def accept():
    while not stop.is_set():
        try:
            listener.accept()[0].close()
        except OSError:  # a timeout, or no descriptor for the connection right now
            pass
threading.Thread(target=accept, daemon=True).start()
port = listener.getsockname()[1]
run = MemberId("run", "127.0.0.52")
tcp = MemberId("port", "127.0.0.52")
targets = [Target(run, CheckSpec(kind=CheckKind.EXEC, command=("true",), timeout=0.9), 1.0, 1, 1),
           Target(tcp, CheckSpec(kind=CheckKind.TCP, port=port, timeout=0.9), 1.0, 1, 1)]
outcomes = []
monitor = Monitor(targets, {}, outcomes.append)

def wait(predicate):
    for _ in range(400):  # 20 s at most
        if predicate():
            return True
        time.sleep(0.05)
    return False

def up():
    health = monitor.health()
    return all(m in health and health[m].state is State.UP for m in (run, tcp))

monitor.start()
report = {"up_before": wait(lambda: up() and monitor.counters()["passes"] >= 4)}
held = []
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
report["exhausted"] = wait(lambda: monitor.counters()["local_errors"] >= 6)
report["up_while_exhausted"] = up()
for fd in held:
    os.close(fd)
passes = monitor.counters()["passes"]
report["passing_again"] = wait(lambda: monitor.counters()["passes"] >= passes + 4)
monitor.stop()
stop.set()
report["up_after"] = up()
report["counters"] = monitor.counters()
report["flips"] = sum(o.flipped for o in outcomes)
report["local_results_reported"] = sum(o.result.local_error for o in outcomes)
print(json.dumps(report))
"""


def test_checks_that_cannot_run_here_leave_members_up() -> None:
    done = subprocess.run([sys.executable, "-c", EXHAUSTED], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["up_before"] and got["exhausted"] and got["passing_again"], got
    assert got["up_while_exhausted"] and got["up_after"], got
    assert got["flips"] == 0 and got["local_results_reported"] == 0, got
    assert got["counters"]["failures"] == 0 and got["counters"]["local_errors"] >= 6, got
    assert "could not run on this host (local error: EMFILE" in done.stderr, done.stderr
    assert "is down" not in done.stderr
