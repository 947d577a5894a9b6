"""Check-cost benchmark: CPU per HTTP health check, dnsserve vs gdnsd; 900 checks/s on one core.

Owns this measurement and its section of benchmarks/RESULTS.md. Two parts:

(a) **CPU per check.** For each rate R (checks/s), 2R members (pools of
    three) checked every 2 s (gdnsd's shortest interval; timeout 1 s) by
    dnsserve's HTTP monitor and by gdnsd's ``http_status`` plugin, one server
    after the other, against the same backends: one uvloop process
    (``testkit.backend_farm``) listening on 127.3.x.y, one address per
    member, pinned to the other CPU. CPU = utime+stime of the server's
    process tree from /proc over the window; checks = the requests the
    backends answered in it. Both servers sit idle otherwise (no queries), so
    what each spends is its checks' cost plus its idle cost.
(b) **900 checks/s on one core.** 300 pools x 3 members, interval 1 s,
    timeout 0.5 s, dnsserve pinned to one CPU: its CPU share, the checks
    made against the checks due (members x window / interval), and the p95
    of how late checks started against their schedule, from dnsserve's own
    ``dnsserve_check_lateness_seconds`` histogram (two scrapes of /metrics).

Bars (issue 10, section 4): CPU per HTTP check <= 2x gdnsd's; 900 checks/s on
one core with p95 lateness under 5 % of the interval.

Must not: send traffic anywhere but loopback, or leave a process running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import add_report_options, shown_argv, workdir, write_section
from testkit import ROOT
from testkit import health_many as hm
from testkit.backend_farm import Farm, addresses
from testkit.cpu import CLK_TCK, WatchedServer, cpu_seconds, loadavg, pick_cpus
from testkit.ports import common_port

CPU_BAR = 2.0  # dnsserve's CPU per check at most this many times gdnsd's
LATE_BAR = 0.05  # p95 lateness at most this share of the interval
MONITOR = "web"
LOADED = 0.2  # others' share of the server's core above which the report says "loaded"


@dataclass
class Window:
    """One server over one measured window."""

    server: str
    members: int
    interval: float
    seconds: float = 0.0
    cpu: float = 0.0  # seconds of CPU
    checks: int = 0  # requests the backends answered
    results: int = 0  # checks dnsserve reported (metrics), -1: not known
    others: float = math.nan  # share of the server's CPU that other processes used
    late_p95: float = math.nan
    late_n: int = 0
    command: str = ""
    load: str = ""
    error: str = ""

    @property
    def rate(self) -> float:
        return self.members / self.interval

    @property
    def us_per_check(self) -> float:
        return 1e6 * self.cpu / self.checks if self.checks else math.nan

    @property
    def cpu_share(self) -> float:
        return self.cpu / self.seconds if self.seconds else math.nan

    @property
    def due(self) -> float:
        return self.members * self.seconds / self.interval


def cpu_busy(cpu: int | None) -> float | None:
    """Seconds ``cpu`` has been busy since boot (/proc/stat: all but idle and iowait)."""
    if cpu is None:
        return None
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == f"cpu{cpu}":
            ticks = [int(x) for x in fields[1:]]
            return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK
    return None


def measure(srv: WatchedServer, farm: Farm, w: Window, args: argparse.Namespace,
            control: str = "") -> None:
    """Warm up, then take the window's CPU, checks and (dnsserve) lateness."""
    time.sleep(args.warmup)
    before_m = hm.scrape(control) if control else {}
    busy = cpu_busy(args.server_cpu)
    before, start, asked = srv.tree(), farm.requests(), time.monotonic()
    time.sleep(args.seconds)
    after, end, w.seconds = srv.tree(), farm.requests(), time.monotonic() - asked
    busy_after = cpu_busy(args.server_cpu)
    after_m = hm.scrape(control) if control else {}
    if not srv.alive():
        raise RuntimeError(f"{srv.name} died during the run:\n{srv.log_tail()}")
    w.cpu, w.checks, w.load = cpu_seconds(before, after), end - start, loadavg()
    if busy is not None and busy_after is not None:
        w.others = max(0.0, busy_after - busy - w.cpu) / w.seconds
    if control:
        name = "dnsserve_check_lateness_seconds"
        w.late_p95, w.late_n = hm.quantile(hm.histogram(before_m, name, MONITOR),
                                           hm.histogram(after_m, name, MONITOR), 0.95)
        w.results = w.late_n
    print(f"  {w.server}: {w.members} members every {w.interval:g} s: {w.checks} checks"
          f" in {w.seconds:.1f} s ({w.checks / w.due:.1%} of due), CPU {w.cpu:.2f} s"
          f" = {w.us_per_check:.0f} us/check, {100 * w.cpu_share:.0f} % of a CPU"
          + (f", p95 late {1000 * w.late_p95:.1f} ms" if control else "")
          + (f"; others used {100 * w.others:.0f} % of its CPU" if w.others == w.others else ""),
          flush=True)


def run_server(name: str, work: Path, members: list[str], interval: float, timeout: float,
               args: argparse.Namespace, farm: Farm) -> Window:
    w = Window(name, len(members), interval)
    pools = hm.pools_of(members)
    srv = None
    try:
        if name == "dnsserve":
            srv, control = hm.start_dnsserve(work, pools, farm.port, interval=interval,
                                             timeout=timeout, cpu=args.server_cpu)
        else:
            srv, control = hm.start_gdnsd(work, pools, farm.port, interval=interval,
                                          timeout=timeout, cpu=args.server_cpu), ""
        w.command = shlex.join(srv.command).replace(str(work.parent), "$WORK")
        w.command = w.command.replace(f"{ROOT}/", "")
        measure(srv, farm, w, args, control)
    except Exception as exc:
        w.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"  {name} FAILED: {exc}", file=sys.stderr, flush=True)
    finally:
        if srv is not None:
            srv.stop()
    return w


def part_a(args: argparse.Namespace, tmp: Path) -> list[tuple[Window, Window]]:
    pairs = []
    for rate in args.rates:
        interval = hm.GDNSD_MIN_INTERVAL
        members = addresses(round(rate * interval))
        print(f"(a) {rate} checks/s: {len(members)} members every {interval:g} s", flush=True)
        with Farm(members, common_port(members), tmp, cpu=args.client_cpu) as farm:
            ours = run_server("dnsserve", tmp / f"a{rate}-dnsserve", members, interval, 1.0,
                              args, farm)
            peer = run_server("gdnsd", tmp / f"a{rate}-gdnsd", members, interval, 1.0,
                              args, farm)
        pairs.append((ours, peer))
    return pairs


def part_b(args: argparse.Namespace, tmp: Path) -> Window:
    members = addresses(3 * args.pools)
    print(f"(b) {args.pools} pools x 3 members every 1 s", flush=True)
    with Farm(members, common_port(members), tmp, cpu=args.client_cpu) as farm:
        return run_server("dnsserve", tmp / "b-dnsserve", members, 1.0, 0.5, args, farm)


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def verdicts(pairs: list[tuple[Window, Window]], big: Window | None) -> list[tuple[str, bool]]:
    found = [(f"{p.rate:g} checks/s: dnsserve's CPU per check <= {CPU_BAR:g}x gdnsd's"
              f" (got {ratio(o.us_per_check, p.us_per_check):.2f}x)",
              ratio(o.us_per_check, p.us_per_check) <= CPU_BAR)
             for o, p in pairs if not (o.error or p.error)]
    if big is not None and not big.error:
        ok = big.late_p95 < LATE_BAR * big.interval and big.cpu_share < 1.0
        ok = ok and big.checks >= 0.99 * big.due
        found.append((f"{big.members} members at {big.interval:g} s on one CPU: p95 lateness"
                      f" < {100 * LATE_BAR:g} % of the interval, >= 99 % of checks made",
                      ok))
    return found


def render(argv: list[str], when: str, args: argparse.Namespace,
           pairs: list[tuple[Window, Window]], big: Window | None, load: tuple[str, str]) -> str:
    def row(w: Window) -> str:
        if w.error:
            return f"| {w.server} | {w.members} | FAILED: {w.error[:80]} | | | | | |"
        late = "" if math.isnan(w.late_p95) else f"{1000 * w.late_p95:.1f}"
        others = "" if math.isnan(w.others) else f"{100 * w.others:.0f} %"
        return (f"| {w.server} | {w.members} / {w.interval:g} s = {w.rate:g}/s |"
                f" {w.checks} of {w.due:.0f} ({w.checks / w.due:.1%}) | {w.cpu:.2f} |"
                f" {100 * w.cpu_share:.1f} % | {others} | **{w.us_per_check:.0f}** | {late} |")

    head = ["| server | members / interval = rate | checks made of due | CPU s |"
            " CPU share of one core | others on that core | µs CPU per check | p95 late ms |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    ratios = [f"- {p.rate:g} checks/s: dnsserve / gdnsd = "
              f"**{ratio(o.us_per_check, p.us_per_check):.2f}×**"
              for o, p in pairs if not (o.error or p.error)]
    bars = [f"| {text} | {'yes' if ok else 'NO'} |" for text, ok in verdicts(pairs, big)]
    windows = [w for pair in pairs for w in pair] + ([big] if big is not None else [])
    busiest = max((w.others for w in windows if w.others == w.others), default=0.0)
    loaded = ([f"**Measured on a loaded machine**: other processes kept the servers' core up to"
               f" {100 * busiest:.0f} % busy during these windows, so the servers waited for it"
               " (lateness) and ran with cold caches (CPU per check); re-run on a quiet machine"
               " before judging the bars.", ""] if busiest > LOADED else [])
    commands = [w.command for o, p in pairs for w in (o, p) if w.command]
    if big is not None and big.command:
        commands.append(big.command)
    return "\n".join([
        "### CPU per health check vs gdnsd; 900 checks/s (`python -m benchmarks.bench_checks`)",
        "",
        f"Run {when}; load average at start / end: {load[0]} / {load[1]}"
        " (a loaded machine makes every figure noisy; ratios less so).",
        "",
        "Command:",
        "",
        "```",
        shlex.join(argv),
        "```",
        "",
        f"Servers pinned to CPU {args.server_cpu}, the backends (`testkit/backend_farm.py`: one"
        " uvloop process answering `GET /health` with 200 `ok` on one port of each member's"
        f" 127.3.x.y address) to CPU {args.client_cpu}. Each server: {args.warmup:g} s of"
        f" warm-up (its first checks), then a {args.seconds:g} s window. CPU = utime+stime of"
        " the server's process tree (/proc) over the window; checks = requests the backends"
        " answered in it; µs per check = CPU / checks, the server's idle cost included"
        " (no queries are sent). Others on that core: the share of the server's CPU that"
        " other processes kept busy in the window (/proc/stat), which a quiet machine has"
        " near 0: where it is high, the server waited for its CPU, and checks started"
        " late for that. (a) pools of three members, checked every 2 s (gdnsd's"
        " shortest interval, timeout 1 s): dnsserve's `http` monitor and gdnsd's `multifo` +"
        " `http_status`, one after the other, on the same backends. (b) dnsserve alone,"
        f" {args.pools} pools x 3 members, interval 1 s, timeout 0.5 s; p95 late = the 95th"
        " percentile of how long after its scheduled time a check started, from dnsserve's"
        " `dnsserve_check_lateness_seconds` histogram (interpolated within its bucket).",
        "",
        *head,
        *(row(w) for pair in pairs for w in pair),
        *([row(big)] if big is not None else []),
        "",
        "Ratios of CPU per check:",
        "",
        *ratios,
        "",
        *loaded,
        "| bar (issue 10, section 4) | met |",
        "|---|---|",
        *bars,
        "",
        "Server commands ($WORK: the run's temporary directory):",
        "",
        "```",
        *commands,
        "```",
        "",
    ])


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window (20)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before it (5)")
    ap.add_argument("--rates", default="30,300",
                    help="(a): checks per second to compare at, comma-separated (30,300)")
    ap.add_argument("--pools", type=int, default=300, help="(b): pools of 3 members (300)")
    ap.add_argument("--parts", default="a,b", help="which parts to run (a,b)")
    add_report_options(ap)
    args = pick_cpus(ap.parse_args(argv))
    args.rates = [int(x) for x in args.rates.split(",") if x.strip()]
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",")}
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = loadavg()
    with workdir("dnsserve-checks-", args.keep) as tmp:
        pairs = part_a(args, tmp) if "a" in parts else []
        big = part_b(args, tmp) if "b" in parts else None
    report = render(shown_argv("bench_checks", argv), when, args, pairs, big,
                    (load_start, loadavg()))
    print("\n" + report)
    if not args.no_report:
        write_section("checks", report, args.out)
        print(f"wrote {args.out}")
    if any(w.error for pair in pairs for w in pair) or (big is not None and big.error):
        return 1
    return 1 if args.check and not all(ok for _, ok in verdicts(pairs, big)) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
