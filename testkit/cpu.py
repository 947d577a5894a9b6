"""Benchmark processes: dnsserve, NSD and Knot on loopback, pinned to one CPU.

Starting and stopping is delegated to the test harness, so the benchmark runs
the same loopback-only configs as the differential tests: tests/conftest.py
(``start_server``: dnsserve) and tests/peers.py (``start_nsd``, ``start_knot``:
one server thread each, NSD with ``rrl-ratelimit: 0``). This module adds CPU
pinning (the affinity is set on this process around the start and inherited by
the server, exactly what ``taskset -c`` does before its exec), a readiness
check on the benchmark zone's SOA, and the server's CPU time, read from /proc
for its whole process tree. It never sends DNS traffic except that readiness
probe, and only to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import dns.exception
import dns.flags
import dns.message
import dns.query

TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import conftest  # noqa: E402  (tests/ is not a package; path set just above)
import peers  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, cpu ticks incl. reaped children, starttime) of ``pid``, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rindex(")") + 2 :].split()
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return ppid, utime + stime + cutime + cstime, int(rest[19])


def process_tree(root: int) -> dict[int, tuple[int, int]]:
    """{pid: (cpu ticks, starttime)} for ``root`` and all its live descendants."""
    parents: dict[int, list[int]] = {}
    info: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _stat(int(entry))
        if st is None:
            continue
        parents.setdefault(st[0], []).append(int(entry))
        info[int(entry)] = (st[1], st[2])
    tree: dict[int, tuple[int, int]] = {}
    todo = [root]
    while todo and len(tree) < 10_000:
        pid = todo.pop()
        if pid in info and pid not in tree:
            tree[pid] = info[pid]
            todo.extend(parents.get(pid, ()))
    return tree


def cpu_seconds(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> float:
    """CPU time the tree used between two snapshots (utime+stime, reaped children included)."""
    ticks = 0
    for pid, (cpu, start) in after.items():
        prev = before.get(pid)
        ticks += cpu - prev[0] if prev is not None and prev[1] == start else cpu
    return ticks / CLK_TCK


class Handle(Protocol):
    """What conftest.ServerProc and peers.Peer have in common."""

    proc: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None: ...

    def log_text(self) -> str: ...


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run the block with this process's affinity set to ``cpu``; children inherit it."""
    if cpu is None:
        yield
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def wait_zone(port: int, proc: subprocess.Popen[bytes], origin: str,
              seconds: float = 30.0) -> None:
    """Poll with an SOA query until the zone is answered with AA (bounded in time)."""
    deadline = time.monotonic() + seconds
    q = dns.message.make_query(origin, "SOA")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        with contextlib.suppress(OSError, dns.exception.DNSException):
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.3)
            if r.rcode() == 0 and r.flags & dns.flags.AA and r.answer:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer {origin} SOA within {seconds:.0f} s")


@dataclass
class Server:
    """One running server: its handle, and every PID of its tree we have seen."""

    name: str
    handle: Handle
    affinity: str = ""
    seen: dict[int, int] = field(default_factory=dict)  # pid -> starttime

    @property
    def pid(self) -> int:
        return self.handle.proc.pid

    @property
    def port(self) -> int:
        return self.handle.port

    @property
    def command(self) -> list[str]:
        return [str(a) for a in self.handle.proc.args]  # type: ignore[union-attr]

    def alive(self) -> bool:
        return self.handle.proc.poll() is None

    def tree(self) -> dict[int, tuple[int, int]]:
        t = process_tree(self.pid)
        self.seen.update({pid: start for pid, (_, start) in t.items()})
        return t

    def check_affinity(self) -> str:
        """The CPUs every thread of the tree may run on, e.g. "0" (one CPU for all)."""
        cpus: set[int] = set()
        for pid in self.tree():
            with contextlib.suppress(OSError):
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with contextlib.suppress(OSError):
                        cpus |= os.sched_getaffinity(int(tid))
        return ",".join(str(c) for c in sorted(cpus))

    def stop(self) -> None:
        """Stop by PID (the harness's stop), then SIGKILL any descendant still ours."""
        self.tree()
        try:
            self.handle.stop()
        finally:
            if self.handle.proc.poll() is None:  # the harness's stop was interrupted
                self.handle.proc.kill()
                self.handle.proc.wait(timeout=10)
            for pid, start in self.seen.items():
                if pid == self.pid:
                    continue
                for _ in range(50):
                    st = _stat(pid)
                    if st is None or st[2] != start:
                        break
                    time.sleep(0.1)
                else:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.handle.log_text().splitlines()[-lines:])
        return ""


def start(name: str, zone_file: Path, origin: str, work: Path, cpu: int | None) -> Server:
    """Start ``name`` (dnsserve | nsd | knot) on a free loopback port, serving one zone."""
    work.mkdir(parents=True, exist_ok=True)
    with pinned(cpu):
        if name == "dnsserve":
            # cwd = work: no ./dnsserve.toml is picked up; zones and listen from flags.
            handle: Handle = conftest.start_server(work, zones=zone_file.parent, cwd=work)
        elif name == "nsd":
            handle = peers.start_nsd({origin: zone_file}, work, threads=1)
        elif name == "knot":
            handle = peers.start_knot({origin: zone_file}, work, threads=1)
        else:
            raise ValueError(f"unknown server {name!r}")
    srv = Server(name, handle)
    try:
        wait_zone(srv.port, handle.proc, origin)
        srv.affinity = srv.check_affinity()
    except BaseException:
        srv.stop()
        raise
    return srv
