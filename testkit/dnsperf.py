"""dnsperf runs against one server, with the server's CPU time around each run.

Owns the dnsperf command line (fixed rate or unthrottled, pinned with
``taskset`` to the client CPU), reading dnsperf's summary, and ``measure``:
the server's process-tree CPU time just before and just after one run. Used
by the core, pool and drift benchmarks.

Must not: send traffic anywhere but 127.0.0.1, or leave dnsperf running
(``subprocess.run`` with a timeout).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from testkit.cpu import WatchedServer, cpu_seconds, loadavg


@dataclass
class Run:
    """One dnsperf run against one server, with the server's CPU time around it."""

    mode: str  # "throttled" | "unthrottled"
    command: list[str]
    sent: int = 0
    completed: int = 0
    lost: int = 0
    qps: float = 0.0
    runtime: float = 0.0
    cpu: float = 0.0
    rcodes: dict[str, int] = field(default_factory=dict)
    load: str = ""

    @property
    def loss_pct(self) -> float:
        return 100.0 * self.lost / self.sent if self.sent else 100.0

    @property
    def us_per_query(self) -> float:
        return 1e6 * self.cpu / self.completed if self.completed else float("inf")


_INT = r"\s+(\d+)"


def parse_dnsperf(out: str, run: Run) -> None:
    def num(label: str, pat: str = _INT) -> str:
        m = re.search(label + r":" + pat, out)
        if not m:
            raise RuntimeError(f"dnsperf output has no '{label}':\n{out}")
        return m.group(1)

    run.sent = int(num("Queries sent"))
    run.completed = int(num("Queries completed"))
    run.lost = int(num("Queries lost"))
    run.qps = float(num("Queries per second", r"\s+([\d.]+)"))
    run.runtime = float(num(r"Run time \(s\)", r"\s+([\d.]+)"))
    m = re.search(r"Response codes:\s+(.*)", out)
    if m:
        for code, count in re.findall(r"([A-Z]+) (\d+)", m.group(1)):
            run.rcodes[code] = int(count)


def dnsperf_cmd(port: int, queries: Path, seconds: int, *, rate: int | None, clients: int,
                outstanding: int, client_cpu: str | None) -> list[str]:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries),
           "-l", str(seconds)]
    cmd += ["-Q", str(rate)] if rate else ["-c", str(clients), "-q", str(outstanding)]
    return ["taskset", "-c", client_cpu, *cmd] if client_cpu is not None else cmd


def measure(srv: WatchedServer, mode: str, cmd: list[str], seconds: int) -> Run:
    run = Run(mode, cmd)
    before = srv.tree()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    after = srv.tree()
    run.load = loadavg()
    if p.returncode != 0:
        raise RuntimeError(f"dnsperf exited {p.returncode}:\n{p.stdout}{p.stderr}")
    if not srv.alive():
        raise RuntimeError(f"{srv.name} died during the run:\n{srv.log_tail()}")
    run.cpu = cpu_seconds(before, after)
    parse_dnsperf(p.stdout, run)
    return run
