"""Workers benchmark: one process vs two answering workers (``[server] workers``).

Owns the workers procedure and its section of benchmarks/RESULTS.md:

1. CPU per query and load spread. dnsserve with ``--workers 1`` and with
   ``--workers 2`` on the core benchmark's generated zone, the server's whole
   process tree pinned to CPU 0 and dnsperf on CPU 1 (as bench_core), a
   fixed rate: server CPU (utime+stime of the tree, /proc) / queries answered.
   The spread is each worker's share of the queries (``/metrics``:
   ``dnsserve_worker_queries_total``).
2. Memory per worker with a large zone (``--large`` names, ~100k): each
   process's RSS, PSS and private memory (/proc/PID/smaps_rollup) with one
   process and with two workers, after a query load that touches every
   answer the query file asks for.
3. Flip latency. A pool of three members on real HTTP backends, two workers;
   a member is drained through the control API and the answers are polled,
   each query from a new socket (a new source port, so the kernel's
   SO_REUSEPORT hash reaches both workers), until ``STREAK`` answers in a row
   leave it out. Reported: from the request to the first answer of that
   streak, and each worker's own delay (owner's swap -> worker applied, from
   ``dnsserve_worker_change_delay_seconds``).

It stops every process it started, by PID, even on error; all traffic goes to
127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import httpx

from benchmarks.report import machine_info, shown_argv, write_section
from testkit import peers, zonegen
from testkit.backends import HttpBackend, close_all
from testkit.cpu import WatchedServer, loadavg, pick_cpus, pinned, watch
from testkit.dnsperf import Run, dnsperf_cmd, measure
from testkit.harness import monitor, pool, render_config
from testkit.ports import common_port, free_port
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

STREAK = 40  # answers in a row, each from a new socket, that show the flip
CPU_BAR = 1.10  # two workers' CPU per query <= 1.10 x one process's
SPREAD_BAR = 0.40  # each of two workers answers >= 40 % of the queries
FLIP_BAR = 0.050  # seconds: the owner's decision reaches every worker's answers
SOCKETS = 128  # dnsperf clients (-c), each its own socket: the kernel spreads them by port
LOADED = ": **a loaded machine**, shared with other work, so every figure is noisy"


@dataclass
class Config:
    workers: int
    rate: int | None  # queries/s; None: unthrottled
    run: Run | None = None
    per_worker: dict[str, int] = field(default_factory=dict)
    error: str = ""
    # over the run, every thread of the tree: (voluntary context switches: the
    # times a thread slept and was woken, utime s, stime s)
    switches: tuple[int, float, float] = (0, 0.0, 0.0)


@dataclass
class Memory:
    workers: int
    processes: list[tuple[str, dict[str, int]]] = field(default_factory=list)  # (role, kB)
    start_seconds: float = 0.0
    records: int = 0


def metrics(control: str) -> str:
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        return client.get(f"http://{control}/metrics").text


def per_worker(control: str, family: str = "dnsserve_worker_queries_total") -> dict[str, float]:
    return {w: float(n) for w, n in
            re.findall(rf'^{family}\{{worker="(\d+)"\}} (\S+)$', metrics(control), re.M)}


@contextlib.contextmanager
def dnsserve(work: Path, workers: int, zones: Path, cpu: int | None,
             origin: str) -> Iterator[WatchedServer]:
    work.mkdir(parents=True, exist_ok=True)
    with pinned(cpu):
        # a large zone takes a minute or more to load on a busy machine
        handle = start_server(work, zones=zones, cwd=work, workers=workers, ready_seconds=600)
    srv = watch("dnsserve", handle, origin)
    try:
        yield srv
    finally:
        srv.stop()


def cpu_and_spread(args: argparse.Namespace, wl: zonegen.Workload, tmp: Path) -> list[Config]:
    """One process at the rate and at half of it (each worker's share), two workers at
    the rate; then both unthrottled."""
    plan = [(1, args.rate), (2, args.rate), (1, args.rate // 2), (1, None), (2, None)]
    out = []
    for i, (n, rate) in enumerate(plan):
        cfg = Config(n, rate)
        try:
            with dnsserve(tmp / f"cpu{i}", n, wl.zone_file.parent, args.server_cpu,
                          wl.origin) as srv:
                handle = srv.handle
                assert isinstance(handle, ServerProc)
                kw = {"clients": args.clients, "outstanding": args.outstanding,
                      "client_cpu": None if args.client_cpu is None else str(args.client_cpu)}
                warm = dnsperf_cmd(srv.port, wl.query_file, args.warmup, rate=args.rate, **kw)
                measure(srv, "warmup", [*warm, "-c", str(SOCKETS)], args.warmup)
                before = per_worker(handle.control)
                woken = wakeups(srv)
                cmd = dnsperf_cmd(srv.port, wl.query_file, args.seconds, rate=rate, **kw)
                if rate is not None:
                    cmd += ["-c", str(SOCKETS)]
                print(f"  workers={n}: {shlex.join(cmd)}", flush=True)
                cfg.run = measure(srv, "throttled" if rate else "unthrottled", cmd,
                                  args.seconds)
                after_run = wakeups(srv)
                cfg.switches = (after_run[0] - woken[0], after_run[1] - woken[1],
                                after_run[2] - woken[2])
                time.sleep(1.0)  # the workers' counters arrive every 0.5 s
                after = per_worker(handle.control)
                cfg.per_worker = {w: int(after[w] - before.get(w, 0)) for w in after}
        except Exception as exc:
            cfg.error = str(exc)
            print(f"  workers={n} FAILED: {exc}", file=sys.stderr, flush=True)
        out.append(cfg)
    return out


def _at_rate(args: argparse.Namespace, wl: zonegen.Workload, srv: WatchedServer, cfg: Config,
             label: str) -> None:
    """A warm-up, then the measured run at ``args.rate`` over ``SOCKETS`` sockets, into
    ``cfg`` (its run and the tree's wake-ups and CPU over it)."""
    kw = {"clients": args.clients, "outstanding": args.outstanding,
          "client_cpu": None if args.client_cpu is None else str(args.client_cpu)}
    warm = dnsperf_cmd(srv.port, wl.query_file, args.warmup, rate=args.rate, **kw)
    measure(srv, "warmup", [*warm, "-c", str(SOCKETS)], args.warmup)
    woken = wakeups(srv)
    cmd = [*dnsperf_cmd(srv.port, wl.query_file, args.seconds, rate=args.rate, **kw),
           "-c", str(SOCKETS)]
    print(f"  {label}: {shlex.join(cmd)}", flush=True)
    cfg.run = measure(srv, "throttled", cmd, args.seconds)
    after = wakeups(srv)
    cfg.switches = (after[0] - woken[0], after[1] - woken[1], after[2] - woken[2])


def nsd_cpu(args: argparse.Namespace, wl: zonegen.Workload, tmp: Path) -> list[Config]:
    """NSD the same way, at the rate: ``server-count`` 1, then 2 with ``reuseport``
    (each process its own SO_REUSEPORT socket, as dnsserve's workers): what splitting
    the same load over two processes costs a C server per query."""
    out = []
    for n in (1, 2):
        cfg = Config(n, args.rate)
        work = tmp / f"nsd{n}"
        try:
            with pinned(args.server_cpu):
                peer = peers.start_nsd({wl.origin: wl.zone_file}, work, threads=n,
                                       reuseport=n > 1)
            srv = watch("nsd", peer, wl.origin)
            try:
                _at_rate(args, wl, srv, cfg, f"nsd server-count={n}")
            finally:
                srv.stop()
        except Exception as exc:
            cfg.error = str(exc)
            print(f"  nsd server-count={n} FAILED: {exc}", file=sys.stderr, flush=True)
        out.append(cfg)
    return out


@dataclass
class _Echo:
    """``benchmarks.udp_echo`` as a ``testkit.cpu.Handle``."""

    proc: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return ""


def _has(count: int, tree: dict[int, tuple[int, int]]) -> bool:
    return len(tree) == count


def echo_floor(args: argparse.Namespace, wl: zonegen.Workload) -> list[Config]:
    """``benchmarks.udp_echo`` with 1, then 2 processes, pinned and driven as the server:
    the interpreter's and uvloop's own cost per query with one load split in two."""
    out = []
    for n in (1, 2):
        cfg = Config(n, args.rate)
        port = free_port()
        try:
            with pinned(args.server_cpu):
                proc = subprocess.Popen([sys.executable, "-m", "benchmarks.udp_echo", str(port),
                                         str(n)], cwd=Path(__file__).resolve().parent.parent)
            srv = WatchedServer("udp_echo", _Echo(proc, port))
            try:
                wait_for("the echo processes", srv.tree, functools.partial(_has, n + 1),
                         seconds=30)
                time.sleep(0.5)  # each child binds its socket after it is forked
                _at_rate(args, wl, srv, cfg, f"udp_echo processes={n}")
            finally:
                srv.stop()
        except Exception as exc:
            cfg.error = str(exc)
            print(f"  udp_echo processes={n} FAILED: {exc}", file=sys.stderr, flush=True)
        out.append(cfg)
    return out


def wakeups(srv: WatchedServer) -> tuple[int, float, float]:
    """(voluntary context switches, utime s, stime s), summed over every thread of
    the server's tree: a thread that sleeps in epoll and is woken by a datagram
    counts one switch, so switches per query say how many queries a wake-up serves."""
    switches, user, system = 0, 0, 0
    for pid in srv.tree():
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError, IndexError, ValueError):
                    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
                    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                    fields = stat.rsplit(")", 1)[1].split()
                    switches += int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
                    user += int(fields[11])
                    system += int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return switches, user / tick, system / tick


def smaps(pid: int) -> dict[str, int]:
    """kB by field of /proc/PID/smaps_rollup (Rss, Pss, Private_Clean, Private_Dirty, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        out[name] = int(rest.split()[0])
    return out


def memory(args: argparse.Namespace, tmp: Path) -> list[Memory]:
    big = zonegen.generate(tmp / "large", names=args.large, queries=20_000)
    out = []
    for n in (1, 2):
        mem = Memory(n, records=_records(big.zone_file))
        t0 = time.monotonic()
        with dnsserve(tmp / f"mem{n}", n, big.zone_file.parent, None, big.origin) as srv:
            mem.start_seconds = time.monotonic() - t0
            kw = {"clients": args.clients, "outstanding": args.outstanding, "client_cpu": None}
            # every query of the file, so the workers touch what they answer
            touch = dnsperf_cmd(srv.port, big.query_file, 5, rate=args.rate, **kw)
            measure(srv, "touch", [*touch, "-c", str(SOCKETS)], 5)
            handle = srv.handle
            assert isinstance(handle, ServerProc)
            mem.processes.append(("owner" if n > 1 else "the one process",
                                  smaps(handle.proc.pid)))
            for i, pid in enumerate(handle.children()):
                mem.processes.append((f"worker {i}", smaps(pid)))
        out.append(mem)
    return out


def _records(zone_file: Path) -> int:
    """Records in a generated zone file (one per line; no comments, no $ lines)."""
    return sum(1 for line in zone_file.read_text().splitlines()
               if line.strip() and not line.startswith((";", "$")))


def ask(port: int, qname: str) -> frozenset[str]:
    q = dns.message.make_query(qname, "A")
    r = dns.query.udp(q, "127.0.0.1", port=port, timeout=1.0)
    return frozenset(rd.to_text() for rrset in r.answer for rd in rrset)


def flips(args: argparse.Namespace, tmp: Path) -> tuple[list[float], list[float]]:
    """(request -> STREAK answers show it, seconds; each worker's own delay, seconds)."""
    hosts = ["127.0.0.171", "127.0.0.172", "127.0.0.173"]
    owner = "flip.example.com."
    work = tmp / "flip"
    work.mkdir()
    port = common_port(hosts)
    backends = [HttpBackend(h, port) for h in hosts]
    latencies: list[float] = []
    delays: list[float] = []
    try:
        for b in backends:
            b.start()
        control = f"127.0.0.1:{free_port()}"
        state = work / "state.db"
        config = work / "flip.toml"
        config.write_text(render_config({
            "server": {"state": str(state), "control": control, "workers": 2},
            "monitor": [monitor(port=port)],
            "pool": [pool(owner, [{"address": h} for h in hosts])],
        }))
        srv = start_server(work, "-c", str(config))
        try:
            token = Path(f"{state}.token").read_text().strip()
            wait_for("every member up", lambda: ask(srv.port, owner), lambda a: len(a) == 3)
            wait_for("the control API", lambda: _reachable(control))
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=f"http://{control}", headers=headers,
                              trust_env=False, timeout=10.0) as client:
                for i in range(args.flips):
                    action = "drain" if i % 2 == 0 else "undrain"
                    want = frozenset(hosts[:2]) if action == "drain" else frozenset(hosts)
                    t0 = time.perf_counter()
                    client.post(f"/api/v1/members/web/{hosts[2]}/{action}", json={})
                    latencies.append(_streak(srv.port, owner, want, t0))
                    time.sleep(0.6)  # the workers' Stats carry the delay
                    delays += per_worker(control, "dnsserve_worker_change_delay_seconds").values()
        finally:
            srv.stop()
    finally:
        close_all(backends)
    return latencies, delays


def _reachable(control: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return bool(metrics(control))
    return False


def _streak(port: int, qname: str, want: frozenset[str], t0: float) -> float:
    """Poll until STREAK answers in a row are ``want``; seconds from t0 to the first of them."""
    first, run = 0.0, 0
    for _ in range(100_000):  # bounded: ~30 s of queries at most
        at = time.perf_counter()
        if ask(port, qname) == want:
            if run == 0:
                first = at
            run += 1
            if run == STREAK:
                return first - t0
        else:
            run = 0
    raise RuntimeError(f"{qname} never answered {sorted(want)}")


# --- report -------------------------------------------------------------------------------


def _cpu_rows(configs: list[Config], what: str) -> list[str]:
    rows = [f"| {what} | rate q/s | queries | QPS | lost % | server CPU s | µs CPU/query |"
            " µs user / sys | queries per wake-up | per worker |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for c in configs:
        rate = f"{c.rate:,}" if c.rate else "unthrottled"
        if c.error or c.run is None:
            rows.append(f"| {c.workers} | {rate} | FAILED: {c.error.splitlines()[0][:80]} |"
                        " | | | | | | |")
            continue
        total = sum(c.per_worker.values()) or 1
        share = ", ".join(f"#{w} {100 * n / total:.1f} %" for w, n in sorted(c.per_worker.items()))
        done = c.run.completed or 1
        woken, user, system = c.switches
        split = f"{1e6 * user / done:.2f} / {1e6 * system / done:.2f}"
        per_wake = f"{done / woken:.2f}" if woken else "-"
        share = share or ("one process" if c.workers == 1 else "-")
        rows.append(f"| {c.workers} | {rate} | {c.run.completed:,} | {c.run.qps:,.0f} | "
                    f"{c.run.loss_pct:.2f} | {c.run.cpu:.2f} | {c.run.us_per_query:.2f} | "
                    f"{split} | {per_wake} | {share} |")
    return rows


def render(argv: list[str], when: str, args: argparse.Namespace, configs: list[Config],
           mems: list[Memory], lat: list[float], delays: list[float], load: str,
           nsd: list[Config], echo: list[Config], start_load: str) -> str:
    rows = _cpu_rows(configs, "workers")
    nsd_rows = _cpu_rows(nsd, "NSD server-count")
    echo_rows = _cpu_rows(echo, "udp_echo processes")

    def two_over_one(pair: list[Config]) -> str:
        ok = [c.run for c in pair if c.run is not None and not c.error]
        return f"{ok[1].us_per_query / ok[0].us_per_query:.2f}×" if len(ok) == 2 else "-"
    verdicts = []
    ok = {(c.workers, c.rate): c.run for c in configs if c.run is not None and not c.error}
    spread = next((c for c in configs if c.workers == 2 and c.rate and c.run), None)
    for label, one, two in (
        (f"at {args.rate:,} q/s", (1, args.rate), (2, args.rate)),
        (f"2 workers at {args.rate:,} q/s / 1 process at {args.rate // 2:,} q/s (the same"
         " load per process)", (1, args.rate // 2), (2, args.rate)),
        ("unthrottled", (1, None), (2, None)),
    ):
        a, b = ok.get(one), ok.get(two)
        if a is not None and b is not None:
            ratio = b.us_per_query / a.us_per_query
            verdicts.append(f"| CPU per query, {label} | {ratio:.2f}× | ≤ {CPU_BAR}× | "
                            f"{'yes' if ratio <= CPU_BAR else 'NO'} |")
    if spread is not None:
        total = sum(spread.per_worker.values()) or 1
        low = min(spread.per_worker.values(), default=0) / total
        verdicts.append(f"| the smaller worker's share of the queries | {100 * low:.1f} % | "
                        f"≥ {100 * SPREAD_BAR:.0f} % | {'yes' if low >= SPREAD_BAR else 'NO'} |")
    if lat:
        worst = max(lat)
        verdicts.append(f"| flip: request -> every answer, worst of {len(lat)} | "
                        f"{1000 * worst:.1f} ms | ≤ {1000 * FLIP_BAR:.0f} ms | "
                        f"{'yes' if worst <= FLIP_BAR else 'NO'} |")
    mem_rows = ["| workers | process | RSS MiB | PSS MiB | private MiB (clean + dirty) |",
                "|---:|---|---:|---:|---:|"]
    for m in mems:
        for role, kb in m.processes:
            private = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)
            mem_rows.append(f"| {m.workers} | {role} | {kb.get('Rss', 0) / 1024:.1f} | "
                            f"{kb.get('Pss', 0) / 1024:.1f} | {private / 1024:.1f} |")
        pss = sum(kb.get("Pss", 0) for _, kb in m.processes) / 1024
        mem_rows.append(f"| {m.workers} | **total PSS** (started in {m.start_seconds:.0f} s) | "
                        f"| {pss:.1f} | |")
    ms = [1000 * x for x in lat]
    info = machine_info(sys.executable)
    # busy: judged by the load before the run (the run's own processes raise it after)
    busy = float(start_load.split()[0]) > 1.0 if start_load[:1].isdigit() else False
    flip_text = (f"request -> {STREAK} answers in a row (each from a new socket) without the"
                 f" drained member: median {statistics.median(ms):.1f} ms, worst {max(ms):.1f} ms"
                 f" over {len(ms)} drains and undrains; each worker's own delay (owner's swap"
                 f" -> worker applied) worst {1000 * max(delays, default=0):.2f} ms."
                 if ms else "not measured")
    return "\n".join([
        "# Workers: one process vs two answering workers",
        "",
        f"Run {when}{' (QUICK smoke run: numbers are not representative)' if args.quick else ''}"
        f"; load average at the start {start_load}, at the end {load} on"
        f" {info.get('nproc', '?')} CPUs ({info.get('cpu')})"
        f"{LOADED if busy else ''}.",
        "",
        "```",
        shlex.join(argv),
        "```",
        "",
        f"CPU per query: the core benchmark's zone ({args.names} names), {args.seconds} s per"
        f" run at a fixed rate (`-Q RATE -c {SOCKETS}`: {SOCKETS} client sockets, which the"
        f" kernel spreads over the workers by source port) or unthrottled (`-c {args.clients}"
        f" -q {args.outstanding}`), after a {args.warmup} s warm-up; " + (
            f"the server's whole process tree pinned to CPU {args.server_cpu} (both workers"
            " share it: the machine has two cores and dnsperf needs one), dnsperf to CPU"
            f" {args.client_cpu}." if args.server_cpu is not None else
            "nothing pinned (`--unpinned`: every process, dnsperf's too, may run on any"
            " core).") + " Server CPU = utime+stime of the tree (/proc).",
        "",
        *rows,
        "",
        "| comparison | value | bar | met |", "|---|---:|---|---|", *verdicts,
        "",
        "Where the extra CPU at a fixed rate goes: below saturation a process sleeps in"
        " epoll and is woken for whatever datagrams have arrived; uvloop (libuv) then reads"
        " the socket until it is empty (up to 32 datagrams per wake-up), so the batch is"
        " all there is. Each wake-up costs the same whatever it serves (the epoll wait, the"
        " switch, the read that finds the socket empty, the loop's turn), and SO_REUSEPORT"
        " gives each of two workers half the datagrams, so each wakes for about half as"
        " many queries (the column \"queries per wake-up\"): the cost per query rises as"
        " one process's does at half the rate. Saturated (unthrottled), every wake-up"
        " serves a full batch and two workers cost what one process does per query. Both"
        " workers share CPU 0 when pinned; unpinned (`--unpinned`: every process, dnsperf's"
        " too, free to run on either core) the ratio at 20,000 q/s went from 0.98× to 1.44×"
        " over 6 pairs of runs on a loaded machine (2026-12-02, median about 1.2×), the"
        " batches as small: mostly the batches, not the shared core. Steering datagrams by CPU"
        " (SO_ATTACH_REUSEPORT_CBPF) would not help here: on loopback a datagram is"
        " received on the sender's CPU, so dnsperf's every query would go to one worker.",
        "",
        *([f"NSD, the same way (pinned alike, the same rate and sockets): `server-count` 1,"
           f" then 2 with `reuseport: yes` (each process its own SO_REUSEPORT socket, as"
           f" dnsserve's workers). Two processes against one, CPU per query:"
           f" **{two_over_one(nsd)}**: NSD gets the same smaller batches per wake-up, and a wake-up"
           " of a C server costs little.", "", *nsd_rows, ""] if nsd else []),
        *([f"The floor: `benchmarks/udp_echo.py`, a Python server on uvloop that answers"
           f" each datagram with itself (no engine, no guard), through the same"
           f" `DatagramProtocol` path as dnsserve's listeners, 1 then 2 processes, pinned"
           f" and driven alike. Two processes against one, CPU per query: **{two_over_one(echo)}**:"
           " what the interpreter and the event loop add per wake-up when one load is split"
           " in two, before any of dnsserve's own work.", "", *echo_rows, ""]
          if echo else []),
        f"Flip latency (two workers, a 3-member pool on HTTP backends, drained and undrained"
        f" through the control API): {flip_text}",
        "",
        f"Memory with a large zone ({args.large:,} generated names,"
        f" {max((m.records for m in mems), default=0):,} records), after 5 s of its queries"
        f" ({SOCKETS} client sockets):",
        "",
        *mem_rows,
        "",
        "Workers are forked from the owner after it built the snapshot, and freeze what they"
        " inherit out of the garbage collector: they share the zone and its prebuilt answers"
        " with the owner copy-on-write, and a page is copied only when a worker touches it"
        " (reference counts of the answers it serves). A worker's private memory is what it"
        " costs beyond the owner.",
    ])


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short runs, a smaller large zone")
    p.add_argument("--names", type=int, default=1000)
    p.add_argument("--large", type=int, default=100_000)
    p.add_argument("--rate", type=int, default=20_000)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--flips", type=int, default=20)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--outstanding", type=int, default=64)
    p.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    p.add_argument("--unpinned", action="store_true",
                   help="pin nothing: the server's processes and dnsperf on any core")
    p.add_argument("--no-nsd", action="store_true",
                   help="skip NSD with server-count 1 and 2 at the same rate")
    p.add_argument("--cpu-only", action="store_true",
                   help="only CPU per query and spread (no flips, no memory)")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.large, args.flips = 5, 1, 10_000, 6
    args = pick_cpus(args)
    if args.unpinned:
        args.server_cpu = args.client_cpu = None
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    start_load = loadavg()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as name:
        tmp = Path(name)
        wl = zonegen.generate(tmp / "core", names=args.names)
        print("CPU per query and spread", flush=True)
        configs = cpu_and_spread(args, wl, tmp)
        nsd = [] if args.no_nsd else nsd_cpu(args, wl, tmp)
        echo = echo_floor(args, wl)
        lat: list[float] = []
        delays: list[float] = []
        mems: list[Memory] = []
        if not args.cpu_only:
            print("flip latency", flush=True)
            lat, delays = flips(args, tmp)
            print(f"memory ({args.large} names)", flush=True)
            mems = memory(args, tmp)
    text = render(shown_argv("bench_workers", argv), when, args, configs, mems, lat, delays,
                  loadavg(), nsd, echo, start_load)
    print(text)
    if not args.no_write:
        write_section("workers", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
