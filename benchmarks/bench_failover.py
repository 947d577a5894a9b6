"""Failover benchmark: dnsserve side by side with gdnsd and PowerDNS, in one run.

Owns the failover procedure and its section of benchmarks/RESULTS.md. The
servers' health configurations over the same three backends (a dnsserve pool,
a gdnsd DYNA ``multifo`` resource with the ``http_status`` monitor, a
PowerDNS LUA ``ifurlup`` record) are testkit/health_pool.py's, shared with
bench_pool and bench_drift.

Procedure, per server: three HTTP backends (testkit/backend_process.py, one
process each) on 127.0.0.11/12/13; the server answers www.example.com A with the
healthy ones. Each trial waits a random phase, SIGKILLs one backend, polls the
server every 10 ms (one dnspython UDP query each) and records the seconds from
the kill to the first answer without that address; then, after another random
phase, starts the backend again and records the seconds from the moment it
listens to the first answer that has the address back. A trial that takes more
than 30 s is a failure (counted as infinitely slow in the median).

Must not: send traffic anywhere but 127.0.0.x, configure a peer to do anything
by itself (no PowerDNS security poll, no gdnsd TCP control), or leave a process
running: every process is stopped by its PID in ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.report import (
    add_report_options,
    command_output,
    machine_info,
    shown_argv,
    workdir,
    write_section,
)
from testkit import ROOT
from testkit.backend_process import BackendSet
from testkit.cpu import WatchedServer, loadavg
from testkit.health_pool import (
    ADDRESSES,
    POOL_NAME,
    TRIAL_LIMIT,
    PollStats,
    dnsserve_config,
    gdnsd_config,
    pdns_config,
    pdns_lua,
    settle,
    start_dnsserve,
    start_gdnsd,
    start_pdns,
    wait_until,
)

BAR_1S = 2.5  # dnsserve interval = 1, fall = 2: median seconds to leave the answer
BAR_025S = 1.0  # dnsserve interval = 0.25, fall = 2


# -- the measurement -------------------------------------------------------------------

@dataclass
class Contestant:
    label: str
    settings: str
    interval: float  # the check interval: the random phase before each kill/restart spans it
    start: Callable[[Path, int], WatchedServer]
    bar: float | None = None


@dataclass
class Outcome:
    contestant: Contestant
    command: str = ""
    down: list[float | None] = field(default_factory=list)
    up: list[float | None] = field(default_factory=list)
    stats: PollStats = field(default_factory=PollStats)
    error: str = ""

    @staticmethod
    def median(xs: list[float | None]) -> float:
        return statistics.median([x if x is not None else float("inf") for x in xs]) \
            if xs else float("nan")

    @property
    def failures(self) -> int:
        return sum(x is None for x in self.down + self.up)


def run_contestant(c: Contestant, trials: int, work: Path, rng: random.Random) -> Outcome:
    out = Outcome(c)
    print(f"{c.label} ({c.settings}):", flush=True)
    with BackendSet(list(ADDRESSES)) as backends:
        srv = None
        try:
            srv = c.start(work, backends.port)
            out.command = shlex.join(srv.command)
            print(f"  {out.command}", flush=True)
            settle(srv.port, max(3.0, 3 * c.interval), out.stats)
            for i in range(trials):
                victim = ADDRESSES[i % len(ADDRESSES)]
                time.sleep(rng.uniform(0.5, 0.5 + c.interval))
                killed = backends[victim].kill()
                out.down.append(wait_until(srv.port, killed, lambda a, v=victim: v not in a,
                                           out.stats))
                time.sleep(rng.uniform(0.5, 0.5 + c.interval))
                listening = backends[victim].start()
                out.up.append(wait_until(srv.port, listening, lambda a, v=victim: v in a,
                                         out.stats))
                print(f"  trial {i + 1}: kill {victim}: gone after {_s(out.down[-1])},"
                      f" back {_s(out.up[-1])} after restart", flush=True)
                if not srv.alive():
                    raise RuntimeError(f"{c.label} died:\n{srv.log_tail()}")
        except Exception as exc:
            out.error = str(exc)
            print(f"  {c.label} FAILED: {exc}", file=sys.stderr, flush=True)
        finally:
            if srv is not None:
                srv.stop()
    return out


def contestants(names: list[str]) -> list[Contestant]:
    every = [
        Contestant("dnsserve", "interval = 1, timeout = 0.5, fall = 2, rise = 2", 1.0,
                   lambda w, p: start_dnsserve(w / "dnsserve-1s", p, interval=1.0,
                                               timeout=0.5), BAR_1S),
        Contestant("dnsserve", "interval = 0.25, timeout = 0.2, fall = 2, rise = 2", 0.25,
                   lambda w, p: start_dnsserve(w / "dnsserve-250ms", p, interval=0.25,
                                               timeout=0.2), BAR_025S),
        Contestant("gdnsd", "multifo + http_status: interval 2 (shortest), timeout 1,"
                   " up/ok/down_thresh 1", 2.0, lambda w, p: start_gdnsd(w / "gdnsd", p)),
        Contestant("powerdns", "LUA ifurlup, selector/backupSelector 'all',"
                   " lua-health-checks-interval=1, caches off", 1.0,
                   lambda w, p: start_pdns(w / "powerdns", p)),
    ]
    return [c for c in every if c.label in names]


# -- the report ------------------------------------------------------------------------

def machine_lines(python: str) -> list[str]:
    info = machine_info(python)
    keep = {k: info[k] for k in ("nproc", "cpu", "kernel", "python", "dnsserve")}
    gdnsd = re.search(r"gdnsd version (\S+)", command_output(["gdnsd", "-V"]))
    keep["gdnsd"] = gdnsd.group(1) if gdnsd else "not installed"
    keep["pdns_server"] = _pdns_version()
    return [f"{k} {v}" for k, v in keep.items()]


def _pdns_version() -> str:
    if shutil.which("pdns_server") is None:
        return "not installed"
    for line in command_output(["pdns_server", "--version"]).splitlines():
        if "PowerDNS Authoritative Server" in line:
            return line.split("Server", 1)[1].split("(")[0].strip()
    return "unknown"


def _s(x: float | None) -> str:
    return "fail" if x is None else f"{x:.2f}"


def _m(x: float) -> str:
    return "n/a" if x != x else ("fail" if x == float("inf") else f"{x:.2f}")


def results_rows(outcomes: list[Outcome]) -> list[str]:
    rows = ["| server | health settings | leave: median s | leave: trials s | return: median s"
            " | return: trials s | failed trials | empty answers | timeouts / queries |",
            "|---|---|---:|---|---:|---|---:|---:|---:|"]
    for o in outcomes:
        if o.error and not o.down:
            rows.append(f"| {o.contestant.label} | {o.contestant.settings} | FAILED: "
                        f"{o.error.splitlines()[0][:80]} | | | | | | |")
            continue
        rows.append(
            f"| {o.contestant.label} | {o.contestant.settings} | {_m(o.median(o.down))} |"
            f" {' '.join(_s(x) for x in o.down)} | {_m(o.median(o.up))} |"
            f" {' '.join(_s(x) for x in o.up)} | {o.failures} | {o.stats.empty} |"
            f" {o.stats.timeouts} / {o.stats.queries} |")
    return rows


def bar_rows(outcomes: list[Outcome]) -> tuple[list[str], bool | None]:
    rows = ["| bar | measured | met |", "|---|---:|---|"]
    verdict: bool | None = None
    for o in outcomes:
        bar = o.contestant.bar
        if bar is None:
            continue
        med = o.median(o.down)
        ok = not o.error and med <= bar and o.stats.empty == 0
        verdict = ok if verdict is None else verdict and ok
        rows.append(f"| dnsserve {o.contestant.settings.split(', timeout')[0]}, fall = 2:"
                    f" median time to leave the answer ≤ {bar} s, no empty answer |"
                    f" {_m(med)} s | {'yes' if ok else 'NO'} |")
    return rows, verdict


def render(argv: list[str], when: str, outcomes: list[Outcome], trials: int,
           machine: list[str], load: tuple[str, str]) -> str:
    bars, verdict = bar_rows(outcomes)
    verdict_text = {True: "**met**", False: "**NOT met**", None: "not evaluated"}[verdict]
    return "\n".join([
        "### Failover time (`python -m benchmarks.bench_failover`)",
        "",
        f"Run {when}; machine: {'; '.join(machine)}; load average at start / end:"
        f" {load[0]} / {load[1]}.",
        "",
        "Command:",
        "",
        "```",
        shlex.join(argv),
        "```",
        "",
        "Three HTTP backends (`testkit/backend_process.py`, one Python process each,"
        f" `GET /health` -> 200) on {', '.join(ADDRESSES)}, one shared port; each server answers"
        f" `{POOL_NAME} A` with the healthy ones. Per server, {trials} trials, the victim"
        " rotating over the three: wait a random phase (0.5 s + up to one check interval,"
        " seeded), SIGKILL the backend, poll the server every 10 ms (one dnspython UDP query,"
        " 0.5 s timeout) and take the seconds from the kill to the first answer without the"
        " address (**leave**); wait another random phase, start the backend again and take"
        " the seconds from the moment it listens to the first answer with the address"
        f" (**return**). A trial over {TRIAL_LIMIT:.0f} s is a failure (infinitely slow in the"
        " median). The servers ran one after another in this one run, each over fresh"
        " backends.",
        "",
        *results_rows(outcomes),
        "",
        "What each needs to take a dead member out: dnsserve `fall` failed checks `interval`"
        " apart (expected ≈ (fall − 0.5) × interval after a kill, plus the check's own time);"
        " gdnsd one failed check (`down_thresh = 1`) at its shortest interval, 2 s; PowerDNS"
        " one failed check at `lua-health-checks-interval=1`, with no hysteresis at all. Back"
        " in: dnsserve `rise` passes, gdnsd and PowerDNS one. PowerDNS's packet and query"
        " caches were switched off (`cache-ttl=0`, `query-cache-ttl=0`), which otherwise"
        " delay a LUA answer's change by up to their TTL.",
        "",
        "Bars (issue 3):",
        "",
        *bars,
        "",
        f"Verdict: {verdict_text}.",
        "",
        "Server commands (configs generated into the run's temp dir, `$WORK`):",
        "",
        "```",
        *(o.command for o in outcomes if o.command),
        "```",
        "",
        "Health configuration, as generated (`BACKEND_PORT`: the backends' port, `PORT`:"
        " a free port):",
        "",
        *config_examples(),
    ])


def config_examples() -> list[str]:
    def generic(text: str) -> list[str]:
        text = text.replace("54321", "PORT").replace("54329", "BACKEND_PORT")
        return text.replace("54322", "PORT").strip().splitlines()

    work = Path("$WORK")
    return [
        "```toml",
        "# dnsserve: $WORK/dnsserve.toml (second run: interval = 0.25, timeout = 0.2)",
        *generic(dnsserve_config(54321, 54322, 54329, interval=1.0, timeout=0.5, rise=2,
                                 fall=2))[1:],
        "```",
        "",
        "```",
        "# gdnsd: $WORK/config; zone $WORK/zones/example.com has: www 20 IN DYNA multifo!www",
        *generic(gdnsd_config(work, 54321, 54329))[1:],
        "```",
        "",
        "```",
        "# PowerDNS: $WORK/pdns.conf; $WORK/named.conf lists $WORK/example.com.zone, which has:",
        f'# www 20 IN LUA A "{pdns_lua(54329)}"'.replace("54329", "BACKEND_PORT"),
        *generic(pdns_config(work, 54321))[1:],
        "```",
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5, help="trials per server (5)")
    ap.add_argument("--servers", default="dnsserve,gdnsd,powerdns",
                    help="comma-separated subset of dnsserve,gdnsd,powerdns")
    ap.add_argument("--seed", type=int, default=3, help="seed of the random phases (3)")
    add_report_options(ap)
    return ap.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    names = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(names) - {"dnsserve", "gdnsd", "powerdns"}
    if unknown or args.trials < 1:
        print(f"bad arguments: {', '.join(sorted(unknown)) or '--trials'}", file=sys.stderr)
        return 2
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = loadavg()
    rng = random.Random(args.seed)
    with workdir("dnsserve-failover-", args.keep) as tmp:
        outcomes = [run_contestant(c, args.trials, tmp, rng) for c in contestants(names)]
        for o in outcomes:
            o.command = o.command.replace(str(tmp), "$WORK").replace(f"{ROOT}/", "")
    print("", *results_rows(outcomes), "", *bar_rows(outcomes)[0], sep="\n")
    if not args.no_report:
        text = render(shown_argv("bench_failover", argv), when, outcomes, args.trials,
                      machine_lines(sys.executable), (load_start, loadavg()))
        write_section("failover", text, args.out)
        print(f"\nwrote {args.out}")
    _, verdict = bar_rows(outcomes)
    if any(o.error for o in outcomes):
        return 1
    return 1 if args.check and verdict is False else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
