"""DNSSEC benchmark: CPU per query with DO and without, dnsserve beside NSD on one signed zone.

Owns measuring what serving a pre-signed zone costs (issue 8 §1): the
benchmark zone of bench_core (zonegen, same seed) is signed with
``dnssec-signzone`` (NSEC, or NSEC3 with ``--nsec3``), each server in turn
(dnsserve one process, NSD one server process) is pinned to one CPU and
driven from the other by dnsperf at a fixed rate, with EDNS and the DO bit
(``dnsperf -D``) and with EDNS alone (``-e``), on two query files: hits
only (names and types that exist: the prebuilt answers) and bench_core's
mix (~15% NXDOMAIN over 1,000 names, 2% NODATA). The server's own CPU time
(/proc, its process tree) over queries answered is the cost of one answer.
The bar: dnsserve's CPU per DO hit within 1.2x of its non-DO hit. Also, in
this process, ``Engine.respond`` timed on the same hit packets with and
without DO (best of repeats), the same ratio without sockets.

It stops every process it started, by PID, even on error; all traffic goes
to 127.0.0.1. Section "dnssec" of benchmarks/RESULTS.md.

    .venv/bin/python -m benchmarks.bench_dnssec            # 10 s runs, writes RESULTS.md
    .venv/bin/python -m benchmarks.bench_dnssec --quick    # 2 s runs, no report
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype
import dns.zone

from benchmarks.report import RESULTS, machine_info, shown_argv, write_section
from dnsserve.answer.engine import Engine
from dnsserve.answer.snapshot import build_snapshot
from dnsserve.zones.load import load_zones
from testkit import zonegen
from testkit.cpu import WatchedServer, loadavg, pick_cpus, start_watched
from testkit.dnsperf import Run, dnsperf_cmd, measure
from testkit.signing import sign_zone

BAR = 1.2  # dnsserve's CPU per DO hit <= 1.2 x its CPU per non-DO hit
MODES = (("hits", "-e"), ("hits", "-D"), ("mix", "-e"), ("mix", "-D"))
ENGINE_CALLS = 20_000
FLOOD_NAMES = 2000


def hits_file(wl: zonegen.Workload, out: Path) -> Path:
    """The lines of the query file whose name and type exist (or are a CNAME) in the zone."""
    zone = dns.zone.from_file(str(wl.zone_file), wl.origin, relativize=False)
    kept = []
    for line in wl.query_file.read_text().splitlines():
        name, rdtype = line.split()
        node = zone.get_node(dns.name.from_text(name))
        if node is not None and any(rds.rdtype in (dns.rdatatype.from_text(rdtype),
                                                   dns.rdatatype.CNAME) for rds in node):
            kept.append(line)
    out.write_text("\n".join(kept) + "\n")
    return out


def bench_server(name: str, zone: Path, origin: str, files: dict[str, Path],
                 args: argparse.Namespace, work: Path) -> tuple[dict[str, Run], str]:
    runs: dict[str, Run] = {}
    srv: WatchedServer | None = None
    try:
        srv = start_watched(name, zone, origin, work / name, args.server_cpu)
        cpu = None if args.client_cpu is None else str(args.client_cpu)
        port = srv.port
        for kind, flag in MODES:
            def cmd(seconds: int, kind: str = kind, flag: str = flag) -> list[str]:
                base = dnsperf_cmd(port, files[kind], seconds, rate=args.rate,
                                   clients=1, outstanding=100, client_cpu=cpu)
                at = base.index("dnsperf") + 1
                return [*base[:at], flag, *base[at:]]
            label = f"{kind} {'DO' if flag == '-D' else 'no DO'}"
            if args.warmup:  # every query of the file once: each DO form is built
                once = cmd(args.warmup)
                at = once.index("-l")
                once[at : at + 2] = ["-n", "1"]
                measure(srv, "warmup", once, args.warmup * 30)
            print(f"  {name} {label}: {shlex.join(cmd(args.seconds))}", flush=True)
            runs[label] = measure(srv, label, cmd(args.seconds), args.seconds)
        return runs, ""
    except Exception as exc:
        print(f"  {name} FAILED: {exc}", file=sys.stderr, flush=True)
        return runs, str(exc)
    finally:
        if srv is not None:
            srv.stop()


def engine_timing(zones: Path, hits: Path, repeats: int) -> dict[str, float]:
    """ns per ``Engine.respond`` on the hit packets, with EDNS and with EDNS + DO."""
    engine = Engine(build_snapshot(load_zones(zones, log_problems=False).tables))
    lines = hits.read_text().splitlines()[:1000]
    out = {}
    for label, do in (("no DO", False), ("DO", True)):
        packets = [dns.message.make_query(n, t, use_edns=0, want_dnssec=do).to_wire()
                   for n, t in (line.split() for line in lines)]
        for p in packets:  # every DO form built, checked once
            assert engine.respond(p, tcp=False)
        best = float("inf")
        respond = engine.respond
        for _ in range(repeats):
            start = time.perf_counter_ns()
            for _ in range(ENGINE_CALLS // len(packets)):
                for p in packets:
                    respond(p, tcp=False)
            calls = (ENGINE_CALLS // len(packets)) * len(packets)
            best = min(best, (time.perf_counter_ns() - start) / calls)
        out[label] = best
    # names that do not exist, each asked once (a random-name flood): with DO the
    # denial is built per name (the NSEC/NSEC3 covering it), without DO the
    # miss index answers
    # (a first round renders the zone's NSEC pieces once; the second round's names are
    # new too, and that is what a flood costs from then on)
    for label, do in (("flood no DO", False), ("flood DO", True)):
        for round_ in range(2):
            packets = [dns.message.make_query(f"rnd{do:d}{round_}-{i}.{zonegen.ORIGIN}", "A",
                                              use_edns=0, want_dnssec=do).to_wire()
                       for i in range(FLOOD_NAMES)]
            start = time.perf_counter_ns()
            for p in packets:
                respond(p, tcp=False)
            out[label] = (time.perf_counter_ns() - start) / len(packets)
    return out


def render(info: dict[str, str], argv: list[str], args: argparse.Namespace,
           results: dict[str, tuple[dict[str, Run], str]], eng: dict[str, float],
           counts: dict[str, int], loads: tuple[str, str], when: str) -> str:
    rows = ["| server | queries | DO | sent | completed | lost % | server CPU s |"
            " µs CPU/query | load avg after |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for name, (runs, error) in results.items():
        if error:
            rows.append(f"| {name} | FAILED | | | | | | {error.splitlines()[0][:80]} | |")
        for label, run in runs.items():
            kind, do = label.split(" ", 1)
            rows.append(f"| {name} | {kind} | {do} | {run.sent:,} | {run.completed:,} |"
                        f" {run.loss_pct:.2f} | {run.cpu:.2f} | {run.us_per_query:.2f} |"
                        f" {run.load.split()[0] if run.load else ''} |")

    def us(name: str, label: str) -> float:
        run = results.get(name, ({}, ""))[0].get(label)
        return run.us_per_query if run is not None else float("nan")

    hit_ratio = us("dnsserve", "hits DO") / us("dnsserve", "hits no DO")
    met = hit_ratio <= BAR
    ratio_rows = [
        "| comparison | value | bar | met |", "|---|---:|---|---|",
        f"| dnsserve CPU per hit, DO / no DO | {hit_ratio:.2f}× | ≤ {BAR}× |"
        f" {'yes' if met else 'NO'} |",
        f"| dnsserve CPU per query of the mix, DO / no DO |"
        f" {us('dnsserve', 'mix DO') / us('dnsserve', 'mix no DO'):.2f}× | (info) | |",
        f"| NSD CPU per hit, DO / no DO | {us('nsd', 'hits DO') / us('nsd', 'hits no DO'):.2f}× |"
        " (info) | |",
        f"| CPU per DO hit, dnsserve / NSD |"
        f" {us('dnsserve', 'hits DO') / us('nsd', 'hits DO'):.2f}× | (info) | |",
        f"| CPU per DO query of the mix, dnsserve / NSD |"
        f" {us('dnsserve', 'mix DO') / us('nsd', 'mix DO'):.2f}× | (info) | |",
        f"| `Engine.respond` per hit, DO / no DO ({eng['DO']:,.0f} / {eng['no DO']:,.0f} ns) |"
        f" {eng['DO'] / eng['no DO']:.2f}× | (info) | |",
        f"| `Engine.respond` per name never asked before (NXDOMAIN), DO / no DO"
        f" ({eng['flood DO']:,.0f} / {eng['flood no DO']:,.0f} ns) |"
        f" {eng['flood DO'] / eng['flood no DO']:.2f}× | (info) | |",
    ]
    return "\n".join([
        "## DNSSEC benchmark: pre-signed zone, DO vs no DO, dnsserve vs NSD",
        "",
        f"Run {when}{' (QUICK smoke run: numbers are not representative)' if args.quick else ''}"
        f". Load average at start / end: {loads[0]} / {loads[1]} (2 CPUs shared with other"
        " work: absolute figures are noisy; ratios from one run are steadier).",
        "",
        "```",
        shlex.join(argv),
        "```",
        "",
        f"- Zone `{zonegen.ORIGIN}`: bench_core's ({counts['names']} generated names, seed"
        f" {zonegen.SEED}) signed with `dnssec-signzone` ({'NSEC3' if args.nsec3 else 'NSEC'},"
        " ECDSA P-256, a KSK and a ZSK).",
        f"- Query files: hits only ({counts['hits']:,} lines: names and types that exist,"
        f" CNAMEs followed) and bench_core's mix ({counts['mix']:,} lines, ~15% NXDOMAIN over"
        " 1,000 names, 2% NODATA). dnsperf `-e` (EDNS, no DO) or `-D` (EDNS and DO).",
        f"- Each server alone, pinned to CPU {args.server_cpu}; dnsperf on CPU"
        f" {args.client_cpu}. Warm-up: the query file sent once per mode (not counted: dnsserve"
        f" builds the DO form of an answer the first time it is asked), then {args.seconds} s at"
        f" `-Q {args.rate}`. CPU = utime+stime of the server's process tree (/proc).",
        f"- dnsserve {info.get('dnsserve', '')}; {info.get('nsd', '')}.",
        "",
        *rows,
        "",
        *ratio_rows,
        "",
        "The signed zone has more than 2,000 RRsets, so it is answered lazily"
        " (answer/snapshot.py `LAZY_RRSETS`): a plain answer comes through the miss index,"
        " a DO form from one dict once built, which is why a DO hit can cost less than a"
        " plain one here.",
        "",
        f"Verdict (issue 8: DO hits within {BAR}× of non-DO hits): "
        f"{'**met**' if met else '**NOT met**'}.",
        "",
    ])


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10, help="fixed-rate run per mode (10)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="warm-up per mode: the query file once, not counted (0: none)")
    ap.add_argument("--rate", type=int, default=20_000, help="fixed rate, q/s (20000)")
    ap.add_argument("--nsec3", action="store_true", help="sign with NSEC3 (salt aabbcc)")
    ap.add_argument("--repeats", type=int, default=7, help="engine timing repeats (7)")
    ap.add_argument("--quick", action="store_true", help="2 s runs; RESULTS.md only with --out")
    ap.add_argument("--out", type=Path, default=None, help="report (default RESULTS.md)")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.repeats = 2, 2
    elif args.out is None:
        args.out = RESULTS
    return pick_cpus(args)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for tool in ("dnsperf", "taskset", "nsd", "dnssec-signzone"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"missing tool: {tool}", file=sys.stderr)
            return 2
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = machine_info(sys.executable)
    load_start = loadavg()
    tmp = Path(tempfile.mkdtemp(prefix="dnsserve-bench-dnssec-"))
    try:
        wl = zonegen.generate(tmp)
        signed = sign_zone(tmp / "signed", wl.zone_file.read_text(), wl.origin,
                           nsec3_salt="aabbcc" if args.nsec3 else None)
        files = {"hits": hits_file(wl, tmp / "hits.txt"), "mix": wl.query_file}
        counts = {"names": wl.names, "mix": wl.queries,
                  "hits": len(files["hits"].read_text().splitlines())}
        results = {}
        for name in ("dnsserve", "nsd"):
            print(f"{name}:", flush=True)
            results[name] = bench_server(name, signed.path, wl.origin, files, args, tmp)
        eng = engine_timing(signed.path.parent, files["hits"], args.repeats)
        report = render(info, shown_argv("bench_dnssec", argv), args, results, eng, counts,
                        (load_start, loadavg()), when)
        print(report)
        if args.out is not None:
            write_section("dnssec", report, args.out)
            print(f"wrote {args.out}")
        return 1 if any(error for _, error in results.values()) else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
