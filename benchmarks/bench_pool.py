"""Pool benchmark: CPU per query for a pool name vs a static name, in one run.

Owns this comparison and its part of benchmarks/RESULTS.md. The method
is the core benchmark's (bench_core.py): dnsserve pinned to CPU 0, dnsperf at
a fixed rate (-Q 20000) from CPU 1, and the server's own CPU time
(utime+stime of its process tree from /proc) around each run, divided by the
queries answered. The two query files differ only in the name: one asks
www.example.com A (a pool of three members, all up behind real backends, so
the monitor runs and checks them throughout), the other static.example.com A
(three static A records, the same addresses, so the answers have the same
size). Runs alternate static, pool, pool, static (ABBA), so a drift in the
machine's load falls on both sides equally.

Must not: send traffic anywhere but 127.0.0.x, or leave a process running
(the server, the backends and dnsperf are stopped by PID, in ``finally``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.report import add_report_options, shown_argv, workdir, write_section
from testkit import ROOT
from testkit import health_pool as hp
from testkit.backend_process import BackendSet
from testkit.cpu import cpu_seconds, loadavg, pick_cpus
from testkit.dnsperf import Run, dnsperf_cmd, measure

RATE = 20_000
BAR = 1.1  # pool µs/query <= 1.1 x static


@dataclass
class Side:
    name: str
    qname: str
    runs: list[Run] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return sum(r.cpu for r in self.runs)

    @property
    def completed(self) -> int:
        return sum(r.completed for r in self.runs)

    @property
    def us_per_query(self) -> float:
        return 1e6 * self.cpu / self.completed if self.completed else float("inf")


def query_file(work: Path, qname: str) -> Path:
    path = work / f"queries-{qname.split('.')[0]}.txt"
    path.write_text(f"{qname} A\n")
    return path


def run(args: argparse.Namespace, work: Path) -> tuple[dict[str, Side], str, str, float]:
    sides = {"static": Side("static", hp.STATIC_NAME), "pool": Side("pool", hp.POOL_NAME)}
    files = {k: query_file(work, s.qname) for k, s in sides.items()}
    client = None if args.server_cpu is None else str(args.client_cpu)
    with BackendSet(list(hp.ADDRESSES)) as backends:
        srv = None
        try:
            srv = hp.start_dnsserve(work / "dnsserve", backends.port, interval=1.0,
                                    timeout=0.5, cpu=args.server_cpu)
            hp.settle(srv.port, 3.0, hp.PollStats())
            if hp.answer_addresses(srv.port, hp.STATIC_NAME) != set(hp.ADDRESSES):
                raise RuntimeError("the static name does not answer the three addresses")
            idle = srv.tree()
            time.sleep(args.idle)
            idle_pct = 100 * cpu_seconds(idle, srv.tree()) / args.idle

            def cmd(kind: str, seconds: int) -> list[str]:
                return dnsperf_cmd(srv.port, files[kind], seconds, rate=args.rate,
                                              clients=1, outstanding=100, client_cpu=client)

            for kind in ("static", "pool"):
                measure(srv, "warmup", cmd(kind, args.warmup), args.warmup)
            order = ["static", "pool", "pool", "static"] * args.rounds
            for kind in order:
                c = cmd(kind, args.seconds)
                print(f"  {kind}: {shlex.join(c)}", flush=True)
                r = measure(srv, kind, c, args.seconds)
                print(f"    {r.completed:,} answered, {r.cpu:.2f} s CPU,"
                      f" {r.us_per_query:.2f} µs/query, rcodes {r.rcodes}", flush=True)
                sides[kind].runs.append(r)
            if hp.answer_addresses(srv.port) != set(hp.ADDRESSES):
                raise RuntimeError("a pool member left the answer during the runs")
            return sides, shlex.join(srv.command), srv.affinity, idle_pct
        finally:
            if srv is not None:
                srv.stop()


def blocks(sides: dict[str, Side]) -> list[float]:
    """Pool / static within each ABBA block (two runs of each side per block)."""
    out = []
    pool, static = sides["pool"].runs, sides["static"].runs
    for i in range(0, min(len(pool), len(static)) - 1, 2):
        p = sum(r.cpu for r in pool[i:i + 2]) / sum(r.completed for r in pool[i:i + 2])
        s = sum(r.cpu for r in static[i:i + 2]) / sum(r.completed for r in static[i:i + 2])
        out.append(p / s)
    return out


def render(argv: list[str], when: str, args: argparse.Namespace, sides: dict[str, Side],
           command: str, affinity: str, idle_pct: float, load: tuple[str, str]) -> str:
    ratio = sides["pool"].us_per_query / sides["static"].us_per_query
    ok = ratio <= BAR
    rows = ["| run | query | sent | completed | lost % | server CPU s | µs CPU/query |"
            " load avg after |", "|---|---|---:|---:|---:|---:|---:|---|"]
    order = ["static", "pool", "pool", "static"] * args.rounds
    seen = {"static": 0, "pool": 0}
    for i, kind in enumerate(order, 1):
        r = sides[kind].runs[seen[kind]]
        seen[kind] += 1
        rows.append(f"| {i} | {sides[kind].qname} A | {r.sent:,} | {r.completed:,} |"
                    f" {r.loss_pct:.2f} | {r.cpu:.2f} | {r.us_per_query:.2f} |"
                    f" {r.load.split()[0] if r.load else ''} |")
    return "\n".join([
        "### CPU per query: pool name vs static name (`python -m benchmarks.bench_pool`)",
        "",
        f"Run {when}; load average at start / end: {load[0]} / {load[1]}.",
        "",
        "Command:",
        "",
        "```",
        shlex.join(argv),
        "```",
        "",
        f"dnsserve (`{command}`) pinned to CPU {args.server_cpu} (threads allowed on"
        f" {{{affinity}}}), serving `{hp.POOL_NAME}` A from a pool of three members"
        f" ({', '.join(hp.ADDRESSES)}, all up behind real HTTP backends, HTTP monitor every"
        f" 1 s, so the monitor thread runs during every run) and `{hp.STATIC_NAME}` A as three"
        " static records of the same addresses (same answer size). dnsperf at"
        f" `-Q {args.rate}` from CPU {args.client_cpu}, one query file per side with a single"
        f" line; {args.seconds} s per run, in the order static, pool, pool, static"
        f" (block repeated ×{args.rounds}), after {args.warmup} s of warm-up on each."
        " Server CPU = utime+stime of its process tree from /proc, around each run"
        " (testkit.dnsperf.measure); µs CPU/query = that / queries answered. Both sides include"
        f" the monitor's own CPU (idle, the server used {idle_pct:.1f} % of a CPU: the"
        " monitor checking three members).",
        "",
        *rows,
        "",
        "| side | queries answered | server CPU s | µs CPU/query |",
        "|---|---:|---:|---:|",
        *(f"| {s.name} (`{s.qname}` A) | {s.completed:,} | {s.cpu:.2f} | {s.us_per_query:.2f} |"
          for s in sides.values()),
        "",
        f"Pool / static: **{ratio:.3f}×** (bar ≤ {BAR}×: {'met' if ok else '**NOT met**'});"
        f" per static-pool-pool-static block: {', '.join(f'{b:.3f}×' for b in blocks(sides))}"
        " (the spread is the noise of this machine).",
        "For reference (issue 3): PowerDNS answers LUA records ~60× slower than static ones;"
        " gdnsd's dynamic answers cost the same as static.",
        "",
    ])


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=6, help="seconds per measured run (6)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="repeat the static-pool-pool-static block (3)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up seconds per side (2)")
    ap.add_argument("--idle", type=float, default=2.0, help="idle CPU window, seconds (2)")
    ap.add_argument("--rate", type=int, default=RATE, help="dnsperf -Q (20000)")
    add_report_options(ap)
    return pick_cpus(ap.parse_args(argv))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = loadavg()
    with workdir("dnsserve-pool-", args.keep) as tmp:
        sides, command, affinity, idle_pct = run(args, tmp)
        command = command.replace(str(tmp), "$WORK").replace(f"{ROOT}/", "")
        load = (load_start, loadavg())
        report = render(shown_argv("bench_pool", argv), when, args, sides, command,
                        affinity, idle_pct, load)
        report = report.replace(str(tmp), "$WORK")
    print("\n" + report)
    if not args.no_report:
        write_section("pool", report, args.out)
        print(f"wrote {args.out}")
    ratio = sides["pool"].us_per_query / sides["static"].us_per_query
    return 1 if args.check and ratio > BAR else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
