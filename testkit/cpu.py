"""Benchmark processes pinned to a CPU, and the CPU time of a server's process tree.

Starting and stopping is the tests' own (``testkit.server.start_server`` for
dnsserve, ``testkit.peers`` for NSD and Knot: one server thread each, NSD with
``rrl-ratelimit: 0``), so a benchmark runs the same loopback-only configs as
the differential tests. This module adds the CPU choice (``pick_cpus``), CPU
pinning (the affinity is set on this process around the start and inherited by
the server, exactly what ``taskset -c`` does before its exec), a readiness
check on the benchmark zone's SOA, and the server's CPU time, read from /proc
for its whole process tree (``WatchedServer``). It never sends DNS traffic
except that readiness probe, and only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from testkit import peers
from testkit.server import running, serves_zone, start_server
from testkit.wait import WaitTimeout, wait_for

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
    """What server.ServerProc and peers.Peer have in common."""

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


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them ("?" if unreadable)."""
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def pick_cpus(args: argparse.Namespace) -> argparse.Namespace:
    """Server on CPU 0 and client on CPU 1 when there are two; unpinned otherwise."""
    two = (os.cpu_count() or 1) >= 2
    args.server_cpu = 0 if two else None
    args.client_cpu = 1 if two else None
    return args


def wait_zone(port: int, proc: subprocess.Popen[bytes], origin: str,
              seconds: float = 30.0) -> None:
    """Poll with an SOA query until the zone is answered with AA (bounded in time)."""
    def served() -> bool:
        running(proc)
        return serves_zone("127.0.0.1", port, origin)

    wait_for(f"the server on port {port} to answer {origin} SOA", served,
             seconds=seconds, poll=0.1)


@dataclass
class WatchedServer:
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
                try:
                    wait_for(f"{self.name}'s process {pid} to end",
                             functools.partial(_gone, pid, start), seconds=5.0, poll=0.1)
                except WaitTimeout:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.handle.log_text().splitlines()[-lines:])
        return ""


def _gone(pid: int, start: int) -> bool:
    """``pid`` has ended (or the number now belongs to another process)."""
    st = _stat(pid)
    return st is None or st[2] != start


def watch(name: str, handle: Handle, origin: str) -> WatchedServer:
    """Wait until ``handle`` serves ``origin``; read back its CPU affinity. Stops it on error."""
    srv = WatchedServer(name, handle)
    try:
        wait_zone(srv.port, handle.proc, origin)
        srv.affinity = srv.check_affinity()
    except BaseException:
        srv.stop()
        raise
    return srv


def start_watched(name: str, zone_file: Path, origin: str, work: Path,
                  cpu: int | None) -> WatchedServer:
    """Start ``name`` (dnsserve | nsd | knot) on a free loopback port, serving one zone."""
    work.mkdir(parents=True, exist_ok=True)
    with pinned(cpu):
        if name == "dnsserve":
            # cwd = work: no ./dnsserve.toml is picked up; zones and listen from flags.
            handle: Handle = start_server(work, zones=zone_file.parent, cwd=work)
        elif name == "nsd":
            handle = peers.start_nsd({origin: zone_file}, work, threads=1)
        elif name == "knot":
            handle = peers.start_knot({origin: zone_file}, work, threads=1)
        else:
            raise ValueError(f"unknown server {name!r}")
    return watch(name, handle, origin)
