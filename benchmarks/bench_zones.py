"""Large zones: time to first answer, memory, and a reload under load, beside NSD and Knot.

Owns the "zones" section of benchmarks/RESULTS.md. For each size (100,000
and 1,000,000 records; ``--quick``: 100,000 only) one seeded zone is
generated (``testkit.biggen`` when it is there, else ``testkit.zonegen``'s
mix of A, AAAA, CNAME, MX and TXT names) and:

- dnsserve's phases are timed in a fresh process, one after another, with
  the server's own functions: parse (``zones.parse.parse_zone_file``), validate
  and build the table (``zones.compile.compile_records``), prebuilding
  answers (``answer.snapshot.build_snapshot``), the first answer
  (``Engine.respond``), and what the server makes after it, in threads one
  after the other: when the state file has no earlier version of the zone,
  its canonical content and first version (``zones.versions.zone_content``,
  ``staging.first_versions``; with an earlier version they come before the
  first answer: the deletion guard compares them), then the miss index
  (``answer.misses``), with the process's peak RSS after each and the collector
  off, as the server loads;
- dnsserve, NSD and Knot are each started on the zone, and the time from
  the start of the process to its first authoritative SOA answer and the
  process tree's peak RSS (VmHWM, summed over its processes) are reported,
  then the peak again once the server has settled (its CPU time still for
  2 s: dnsserve has built its miss index, in a thread after the first
  answer): what serving the zone costs, the index included;
- the largest size is reloaded under load, by dnsserve with each of
  ``--workers`` (default: 1, and 0 = the server's default, one per CPU) and
  by NSD: first one pass of the query file at ``--qps`` warms the server
  (dnsserve builds a large zone's answers when first asked; the reload is
  measured on a server that has answered its names once, as one in
  production has), then dnsperf sends the zone's query mix at ``--qps``
  (5,000 by default) for the whole reload; the zone file gets a new serial
  and the server a SIGHUP; reported are how long until the new serial is
  answered, the queries lost, and latency percentiles from dnsperf's
  per-query report (``-v``). This table is the "reload" section of
  RESULTS.md; ``--reload-only`` runs only it (the largest size, no phases,
  no Knot).

Timings on the shared 2-core machine are noisy: the load average at the
start and end is printed with the numbers. Everything runs on 127.0.0.1 and
every process started is stopped by PID.

    .venv/bin/python -m benchmarks.bench_zones --quick      # 100k records only
    .venv/bin/python -m benchmarks.bench_zones              # 100k and 1M
    .venv/bin/python -m benchmarks.bench_zones --reload-only --sizes 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.query

from benchmarks.report import add_report_options, machine_info, shown_argv, workdir, write_section
from testkit import zonegen
from testkit.peers import PeerFailed, find_binary, start_knot, start_nsd
from testkit.ports import free_port
from testkit.server import start_server
from testkit.wait import wait_for

ORIGIN = zonegen.ORIGIN
RECORDS_PER_NAME = 1.59  # zonegen's mix: records per generated name
SEED = 20261202


# -- the zone -----------------------------------------------------------------------


@dataclass
class Zone:
    path: Path
    queries: Path
    records: int
    generator: str


def make_zone(tmp: Path, records: int) -> Zone:
    """A seeded zone of about ``records`` records and a query file for it."""
    out = tmp / f"z{records}"
    out.mkdir(parents=True, exist_ok=True)
    try:
        biggen = importlib.import_module("testkit.biggen")
    except ImportError:
        work = zonegen.generate(out, names=round(records / RECORDS_PER_NAME), queries=50_000,
                                seed=SEED)
        count = sum(1 for line in work.zone_file.open() if line[:1] not in ("$", ""))
        return Zone(work.zone_file, work.query_file, count - 0, "testkit.zonegen")
    path = out / f"{ORIGIN}zone"
    biggen.write_big_zone(path, ORIGIN, records, SEED)
    queries = out / "queries.txt"
    owners = _owners(path)
    rng = random.Random(SEED)
    picks = [f"{rng.choice(owners)} {rng.choice(('A', 'AAAA', 'MX', 'TXT'))}"
             for _ in range(50_000)]
    queries.write_text("\n".join(picks) + "\n")
    return Zone(path, queries, records, "testkit.biggen")


def _owners(path: Path, limit: int = 200_000) -> list[str]:
    """Owner names of the zone file (absolute), read plainly: enough for a query mix."""
    origin, found = ORIGIN, []
    with path.open() as f:
        for line in f:
            if line.startswith("$ORIGIN"):
                origin = line.split()[1]
            if not line.strip() or line[0] in " \t;$(":
                continue
            owner = line.split()[0]
            if owner == "@":
                owner = origin
            elif not owner.endswith("."):
                owner = f"{owner}.{origin}"
            found.append(owner)
            if len(found) >= limit:
                break
    return found


# -- dnsserve's phases, in a fresh process ----------------------------------------


PHASES = """
import gc, json, resource, sys, time
from pathlib import Path
import dns.message
from dnsserve.answer.engine import Engine
from dnsserve.answer.snapshot import build_snapshot
from dnsserve.zones.compile import compile_records
from dnsserve.zones.load import origin_from_path
from dnsserve.zones.parse import parse_zone_file
from dnsserve.staging import first_versions
from dnsserve.zones.versions import zone_content
path = Path(sys.argv[1])
out = {}
def mark(name, since):
    out[name] = (time.perf_counter() - since, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return time.perf_counter()
origin = origin_from_path(path)
gc.disable()  # as the server loads (reload.Reloader.load)
t = time.perf_counter()
parsed = parse_zone_file(path, origin, include_dir=path.parent)
out["parser"] = (parse_zone_file.__module__, 0)
t = mark("parse", t)
compiled = compile_records(parsed, origin=origin)
del parsed
t = mark("validate and build the table", t)
snapshot = build_snapshot({origin: compiled.table}, defer_misses=True)
t = mark("prebuild answers", t)
query = dns.message.make_query(origin, "SOA").to_wire()
assert Engine(snapshot).respond(query, tcp=False)
t = mark("first answer", t)
content = zone_content(compiled.table)
first_versions([content], at=0.0)
t = mark("canonical content and first version (deletion guard; after the first answer"
         " when the state file has no earlier version, in a thread)", t)
snapshot.misses.complete()
mark("miss index (after the first answer, then, in a thread)", t)
print(json.dumps(out))
"""


def phases(zone: Zone) -> tuple[str, dict[str, tuple[float, int]]]:
    """The parser used, and (seconds, peak RSS in kB after) by phase."""
    proc = subprocess.run([sys.executable, "-c", PHASES, str(zone.path)], capture_output=True,
                          text=True, timeout=3600, check=True)
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    parser = str(found.pop("parser")[0])
    return parser, {k: (float(v[0]), int(v[1])) for k, v in found.items()}


# -- start to first answer ----------------------------------------------------------


def soa_serial(port: int) -> int | None:
    try:
        r = dns.query.udp(dns.message.make_query(ORIGIN, "SOA"), "127.0.0.1", port=port,
                          timeout=0.5)
    except Exception:
        return None
    if not r.answer or not r.flags & dns.flags.AA:
        return None
    serial: int = r.answer[0][0].serial
    return serial


def peak_kb(pid: int) -> int:
    """VmHWM summed over ``pid`` and its children (NSD forks its servers)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return total


SETTLE_SECONDS = 2.0  # a server whose CPU time stays still this long has settled
SETTLE_MAX = 600.0  # give up waiting (a loaded machine builds a big index slowly)


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` (clock ticks), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def settled_peak_mb(pid: int) -> float:
    """``peak_kb`` once ``pid`` has used no CPU for ``SETTLE_SECONDS`` (MB)."""
    poll = 0.5
    last, still = cpu_ticks(pid), 0.0
    for _ in range(int(SETTLE_MAX / poll)):
        time.sleep(poll)
        now = cpu_ticks(pid)
        still = still + poll if now == last else 0.0
        last = now
        if still >= SETTLE_SECONDS:
            break
    return peak_kb(pid) / 1024


@dataclass
class Start:
    name: str
    seconds: float | None
    peak_mb: float | None
    note: str = ""
    settled_mb: float | None = None
    cpu: float | None = None  # user+sys CPU seconds of the process tree at the first answer


PROBE_TIMEOUT = 0.005  # one probe's wait for the answer: the time's resolution


class FirstAnswer:
    """The moment a server first answers the zone's SOA authoritatively, and its CPU then.

    A thread sends a query every ``PROBE_TIMEOUT`` from before the server is
    started, so the time has that resolution whatever the start-up helper's
    own (coarser, bounded) wait does; every server is timed by the same probe.
    """

    def __init__(self, port: int, seconds: float) -> None:
        self.port = port
        self.started = time.perf_counter()
        self.seconds: float | None = None
        self.cpu: float | None = None
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, args=(seconds,), daemon=True)
        self._thread.start()

    def _probe(self, seconds: float) -> None:
        query = dns.message.make_query(ORIGIN, "SOA").to_wire()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(PROBE_TIMEOUT)
            for _ in range(int(seconds / PROBE_TIMEOUT)):
                if self._stop.is_set():
                    return
                try:
                    sock.sendto(query, ("127.0.0.1", self.port))
                    data = sock.recv(65535)
                except OSError:
                    continue
                took = time.perf_counter() - self.started
                with contextlib.suppress(dns.exception.DNSException):
                    r = dns.message.from_wire(data)
                    if r.answer and r.flags & dns.flags.AA:
                        self.seconds = took
                        server = newest_child()
                        if server is not None:
                            self.cpu = tree_cpu(server)
                            self.peak_mb = peak_kb(server) / 1024
                        return

    def wait(self, seconds: float = 60) -> float | None:
        self._thread.join(seconds)
        self._stop.set()
        return self.seconds


def newest_child() -> int | None:
    """The process this one started last (the server being started), if any."""
    path = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    with contextlib.suppress(OSError, ValueError):
        return max(int(p) for p in path.read_text().split())
    return None


def tree_cpu(pid: int) -> float:
    """utime + stime of ``pid`` and its children (seconds)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        pids += [int(p) for p in children.read_text().split()]
    return sum(cpu_ticks(p) for p in pids) / os.sysconf("SC_CLK_TCK")


def median_start(starts: list[Start]) -> Start:
    """One row of several starts of one server: the median time and CPU, the
    highest peaks, and every time in the note."""
    timed = [s for s in starts if s.seconds is not None]
    if not timed:
        return starts[-1]
    cpus = [s.cpu for s in timed if s.cpu is not None]
    note = " ".join(f"{s.seconds:.2f}" for s in timed)
    return Start(
        timed[0].name, statistics.median(s.seconds for s in timed if s.seconds is not None),
        max(s.peak_mb or 0 for s in timed), f"{len(timed)} starts: {note} s",
        max(s.settled_mb or 0 for s in timed), statistics.median(cpus) if cpus else None,
    )


def repeated(
    times: int, start: Callable[[int], tuple[Start, Any]]
) -> tuple[Start, Any]:
    """``start(k)`` for k in 0..times-1, each server stopped but the last:
    the median of the starts (``median_start``) and the last server (None
    when it did not start)."""
    starts: list[Start] = []
    server: Any = None
    for k in range(max(1, times)):
        if server is not None:
            server.stop()
        started, server = start(k)
        print(f"  {started}", flush=True)
        starts.append(started)
    return median_start(starts), server


def start_dnsserve(base: Path, zone: Zone, workers: int = 1, run: int = 0, *,
                   fresh: bool = True) -> tuple[Start, Any]:
    """Start dnsserve on ``zone`` in ``base/run<run>``: with ``fresh``, a first
    start (no state file), else a restart on the state file a start there left
    (the zone's version in it: the deletion guard compares the file with it)."""
    work = base / f"run{run}"
    zones = work / "zones"
    zones.mkdir(parents=True, exist_ok=True)
    target = zones / f"{ORIGIN}zone"
    if fresh or not target.exists():
        target.write_text(zone.path.read_text())
        (work / "state.db").unlink(missing_ok=True)
    config = work / "dnsserve.toml"
    # one answering process, as NSD and Knot run here (one server, one thread);
    # workers = 0: the server's default (one per CPU)
    setting = f"workers = {workers}\n" if workers else ""
    config.write_text(f'[server]\nzones = "zones"\nstate = "state.db"\n{setting}')
    port = free_port("127.0.0.1")
    first = FirstAnswer(port, 3600)
    server = start_server(work, "-c", str(config), zones=None, ready_seconds=3600, port=port)
    wait_for("dnsserve to serve the zone", lambda: soa_serial(server.port), seconds=3600)
    seconds = first.wait()
    peak = first.peak_mb
    name = "dnsserve" if fresh else "dnsserve, restarted (its version in the state file)"
    return Start(name, seconds, peak, settled_mb=settled_peak_mb(server.proc.pid),
                 cpu=first.cpu), server


def start_peer(name: str, base: Path, zone: Zone, run: int = 0) -> tuple[Start, Any]:
    """Start NSD or Knot on ``zone`` in ``base/run<run>``."""
    work = base / f"run{run}"
    work.mkdir(parents=True, exist_ok=True)
    local = work / f"{ORIGIN}zone"
    local.write_text(zone.path.read_text())
    start = start_nsd if name == "nsd" else start_knot
    port = free_port("127.0.0.1")
    first = FirstAnswer(port, 600)
    try:
        peer = start({ORIGIN: local}, work, port=port)
    except PeerFailed as exc:
        first.wait(0)
        return Start(name, None, None, f"did not serve the zone: {str(exc)[:120]}"), None
    wait_for(f"{name} to serve the zone", lambda: soa_serial(peer.port), seconds=600)
    seconds = first.wait()
    peak = first.peak_mb
    return Start(name, seconds, peak, settled_mb=settled_peak_mb(peer.proc.pid),
                 cpu=first.cpu), peer


# -- a reload under load -------------------------------------------------------------


@dataclass
class Reload:
    name: str
    seconds: float | None
    sent: int = 0
    lost: int = 0
    latencies: list[float] = field(default_factory=list)
    note: str = ""

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


_LATENCY = re.compile(r"^> \S+ .* (\d+\.\d+)$")


def run_dnsperf(
    port: int, queries: Path, seconds: int, qps: int, out: Path
) -> subprocess.Popen[bytes]:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(seconds),
           "-Q", str(qps), "-c", "4", "-q", "500", "-t", "5", "-v"]
    with out.open("wb") as sink:
        return subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)


def warm_up(port: int, queries: Path, qps: int, out: Path) -> None:
    """One pass of the query file at ``qps``: every name of the mix asked once."""
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-n", "1",
           "-Q", str(qps), "-c", "4", "-q", "500", "-t", "5"]
    with out.open("wb") as sink:
        subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, timeout=3600, check=False)


def read_dnsperf(out: Path, reload: Reload) -> None:
    text = out.read_text(errors="replace")
    sent = re.search(r"Queries sent:\s+(\d+)", text)
    lost = re.search(r"Queries lost:\s+(\d+)", text)
    timeouts = 0
    for line in text.splitlines():
        match = _LATENCY.match(line)
        if match:
            reload.latencies.append(float(match.group(1)))
        elif "timed out" in line:
            timeouts += 1
    reload.sent = int(sent.group(1)) if sent else len(reload.latencies) + timeouts
    reload.lost = int(lost.group(1)) if lost else timeouts


def reload_under_load(name: str, pid: int, port: int, zone_file: Path, zone: Zone,
                      work: Path, qps: int, expected: float) -> Reload:
    """Bump the serial of ``zone_file``, SIGHUP ``pid``, while dnsperf runs."""
    # long enough for a loaded machine; dnsperf is stopped 3 s after the swap anyway
    seconds = int(min(3600, max(60, expected * 3 + 10)))
    out = work / f"dnsperf-{name}.txt"
    warm_up(port, zone.queries, qps, work / f"dnsperf-{name}-warm.txt")
    perf = run_dnsperf(port, zone.queries, seconds, qps, out)
    try:
        time.sleep(2)
        before = soa_serial(port) or 0
        text = zone_file.read_text()
        zone_file.write_text(text.replace(f" {before} ", f" {before + 1} ", 1))
        started = time.perf_counter()
        os.kill(pid, signal.SIGHUP)
        done = threading.Event()
        took: list[float] = []

        def watch() -> None:
            for _ in range(int(seconds / 0.2) + 1):
                if soa_serial(port) == before + 1:
                    took.append(time.perf_counter() - started)
                    break
                if done.wait(0.2):
                    break

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        watcher.join(seconds + 60)
        if took:  # 3 s more of queries after the swap, then dnsperf stops (and reports)
            time.sleep(3)
            perf.send_signal(signal.SIGINT)
        perf.wait(timeout=seconds + 60)
        done.set()
        watcher.join(5)
    finally:
        if perf.poll() is None:
            perf.kill()
            perf.wait(10)
    result = Reload(name, took[0] if took else None)
    read_dnsperf(out, result)
    if not took:
        result.note = f"the new serial was not served within dnsperf's {seconds} s"
    return result


# -- the report -----------------------------------------------------------------------


def _header(title: str, argv: list[str], load: tuple[str, str]) -> list[str]:
    info = machine_info(sys.executable)
    machine = (f"{info['nproc']} cores ({info['cpu']}), Python {info['python']},"
               f" {info['nsd']}, {info['knotd']}, dnsperf {info['dnsperf']}")
    return [
        title,
        "",
        f"`{' '.join(argv)}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())};"
        f" {machine}. Load average at start / end: {load[0]} / {load[1]}"
        " (the machine is shared with other engineers' runs: timings are noisy).",
        "",
    ]


def report(sizes: list[tuple[Zone, tuple[str, dict[str, tuple[float, int]]], list[Start]]],
           argv: list[str], load: tuple[str, str], starts_per_row: int = 1) -> str:
    lines = _header("## Large zones: load time, memory", argv, load)
    for zone, (parser, split), starts in sizes:
        lines += [
            f"### {zone.records:,} records ({zone.generator}, seed {SEED})",
            "",
            "Start of the process to its first authoritative SOA answer (a probe every"
            f" {PROBE_TIMEOUT * 1000:g} ms from before the start; the median of"
            f" {starts_per_row} starts), the CPU (user+sys) the process tree had used by"
            " then (Python's start and imports included: dnsserve's own modules are compiled"
            " from source when no bytecode is cached, as with PYTHONDONTWRITEBYTECODE=1),"
            " and the tree's peak RSS then and once settled (no CPU used for"
            f" {SETTLE_SECONDS:g} s: dnsserve's miss index and first versions made). A first"
            " start has no state file; a restart has the zone's version in it (what a"
            " restarted server has), so the deletion guard compares the file with it before"
            " the first answer:",
            "",
            "| server | seconds (median) | CPU s (user+sys) | peak RSS at the first answer (MB)"
            " | peak RSS settled (MB) | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for s in starts:
            secs = f"{s.seconds:.2f}" if s.seconds is not None else "-"
            mem = f"{s.peak_mb:.0f}" if s.peak_mb is not None else "-"
            settled = f"{s.settled_mb:.0f}" if s.settled_mb is not None else "-"
            cpu = f"{s.cpu:.2f}" if s.cpu is not None else "-"
            lines.append(f"| {s.name} | {secs} | {cpu} | {mem} | {settled} | {s.note} |")
        lines += [
            "",
            f"dnsserve by phase, in one fresh process (parser: `{parser}`):",
            "",
            "| phase | seconds | peak RSS after (MB) |",
            "|---|---:|---:|",
        ]
        for phase, (took, rss) in split.items():
            lines.append(f"| {phase} | {took:.2f} | {rss / 1024:.0f} |")
        lines.append("")
    return "\n".join(lines)


def report_reload(reloads: list[Reload], zone: Zone, qps: int, argv: list[str],
                  load: tuple[str, str]) -> str:
    lines = _header(f"## Reload of the {zone.records:,}-record zone at {qps:,} queries/s",
                    argv, load)
    lines += [
        f"Zone: {zone.generator}, seed {SEED}. The zone file gets a new serial, then SIGHUP;"
        " dnsperf (`-Q` rate, `-v` per-query"
        " latencies) runs from 2 s before the SIGHUP until 3 s after the new serial is"
        " answered (then SIGINT), so the percentiles are over the reload. Before it, one"
        " pass of the query file at the same rate (not measured) has asked every name"
        " once. dnsserve's `workers` is its `[server] workers`: 1 = one process; the"
        " default = one answering process per CPU and the owner, which reloads.",
        "",
        "| server | new serial served after (s) | queries sent | lost | p50 ms | p99 ms"
        " | max ms | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in reloads:
        secs = f"{r.seconds:.2f}" if r.seconds is not None else "-"
        top = max(r.latencies) * 1000 if r.latencies else float("nan")
        lines.append(f"| {r.name} | {secs} | {r.sent:,} | {r.lost:,} | {r.pct(0.5):.2f}"
                     f" | {r.pct(0.99):.2f} | {top:.1f} | {r.note} |")
    lines += ["", "Bar (issue 10 §2): no query lost and p99 under 10 ms for dnsserve."]
    return "\n".join(lines)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _label(workers: int) -> str:
    if workers:
        return f"dnsserve (workers = {workers})"
    return f"dnsserve (workers = default, {min(8, len(os.sched_getaffinity(0)))})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 records only")
    ap.add_argument("--sizes", type=int, nargs="*", default=None, help="record counts")
    ap.add_argument("--qps", type=int, default=5000, help="query rate during the reload")
    ap.add_argument("--no-reload", action="store_true", help="skip the reload under load")
    ap.add_argument("--reload-only", action="store_true",
                    help="only the reload under load, of the largest size (no phases, no Knot)")
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 0],
                    help="dnsserve's [server] workers for the reload (0: its default)")
    ap.add_argument("--starts", type=int, default=3,
                    help="starts of each server per size (the median is reported)")
    add_report_options(ap)
    args = ap.parse_args(argv)
    shown = shown_argv("bench_zones", sys.argv[1:] if argv is None else argv)
    sizes = args.sizes or ([100_000] if args.quick else [100_000, 1_000_000])
    if args.reload_only:
        sizes = sizes[-1:]
    load_start = loadavg()
    results = []
    reloads: list[Reload] = []
    reload_zone: Zone | None = None
    with workdir("bench-zones-", args.keep) as tmp:
        for records in sizes:
            zone = make_zone(tmp, records)
            print(f"{zone.records:,} records in {zone.path}", flush=True)
            last = records == sizes[-1] and not args.no_reload
            starts: list[Start] = []
            split: tuple[str, dict[str, tuple[float, int]]] = ("", {})
            if not args.reload_only:
                split = phases(zone)
                print(f"  phases: {split}", flush=True)
            for i, workers in enumerate(args.workers if last else [1]):
                base = tmp / f"dnsserve-{records}-{workers}"
                times = args.starts if i == 0 and not args.reload_only else 1
                started, server = repeated(
                    times, functools.partial(start_dnsserve, base, zone, workers))
                work = base / f"run{max(1, times) - 1}"
                print(f"  median {started}", flush=True)
                if i == 0:
                    starts.append(started)
                if i == 0 and not args.reload_only:  # again, on the state files they left
                    server.stop()  # type: ignore[attr-defined]
                    started, server = repeated(times, functools.partial(
                        start_dnsserve, base, zone, workers, fresh=False))
                    starts.append(started)
                    print(f"  median {started}", flush=True)
                try:
                    if last:
                        reload_zone = zone
                        srv = server
                        reloads.append(reload_under_load(
                            _label(workers), srv.proc.pid, srv.port,  # type: ignore[attr-defined]
                            work / "zones" / f"{ORIGIN}zone", zone, work, args.qps,
                            started.seconds or 60))
                        print(f"  {reloads[-1]}"[:300], flush=True)
                finally:
                    server.stop()  # type: ignore[attr-defined]
            for name, binary in (("nsd", "nsd"), ("knot", "knotd")):
                if args.reload_only and name == "knot":
                    continue
                if not find_binary(binary):
                    starts.append(Start(name, None, None, "not installed"))
                    continue
                base = tmp / f"{name}-{records}"
                times = 1 if args.reload_only else args.starts
                peer_start, peer = repeated(
                    times, functools.partial(start_peer, name, base, zone))
                work = base / f"run{max(1, times) - 1}"
                starts.append(peer_start)
                print(f"  median {peer_start}", flush=True)
                if peer is None:
                    continue
                try:
                    if last and name == "nsd":
                        reloads.append(reload_under_load(
                            name, peer.proc.pid, peer.port,  # type: ignore[attr-defined]
                            work / f"{ORIGIN}zone", zone, work, args.qps,
                            peer_start.seconds or 10))
                        print(f"  {name} reload {reloads[-1].seconds}", flush=True)
                finally:
                    peer.stop()  # type: ignore[attr-defined]
            results.append((zone, split, starts))
        load = (load_start, loadavg())
        texts = {}
        if not args.reload_only:
            texts["zones"] = report(results, shown, load, args.starts)
        if reloads and reload_zone is not None:
            texts["reload"] = report_reload(reloads, reload_zone, args.qps, shown, load)
    for key, text in texts.items():
        print(text)
        if not args.no_report:
            write_section(key, text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
