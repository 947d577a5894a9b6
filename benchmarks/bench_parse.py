"""Zone-file parsing: dnsserve's fast parser vs its dnspython path, NSD and Knot DNS.

Zones of 100,000 and 1,000,000 records from ``testkit.biggen`` (A, AAAA, MX,
TXT, CNAME, SRV, delegations with glue) are read, each in a fresh process:

- ``zones.parse.parse_zone_file`` (the fast path): CPU seconds of the parse
  alone, and the process's peak RSS (``ru_maxrss``: Python, dnspython and the
  parsed columns);
- ``zones.parse_reference.parse_zone_file_dnspython`` (what ``zones.load``
  did: dnspython reads every record) on the 100k zone only (at 1M it takes
  minutes);
- ``nsd-checkzone`` and Knot's checker (``kzonecheck``, or ``knotc
  zone-check`` where the Debian package lacks it) on the same file, for
  reference: CPU and peak RSS of the checker process (they parse and run
  their semantic checks; parsing alone is most of it).

The machine's load average is shown with each run: on a shared machine the
CPU seconds are noisy, the ratios less so. Writes the "parse" section of
benchmarks/RESULTS.md.

    .venv/bin/python -m benchmarks.bench_parse            # 100k and 1M
    .venv/bin/python -m benchmarks.bench_parse --quick    # 100k only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import RESULTS, machine_info, shown_argv, workdir, write_section
from testkit import ROOT
from testkit.biggen import write_big_zone

ORIGIN = "big.example."
TIMEOUT = 1800


def child(mode: str, path: Path) -> None:
    """In a fresh process: parse ``path`` one way; print CPU, RSS and the record count."""
    import dns.name

    from dnsserve.zones.parse import parse_zone_file
    from dnsserve.zones.parse_reference import parse_zone_file_dnspython

    parse = parse_zone_file if mode == "fast" else parse_zone_file_dnspython
    origin = dns.name.from_text(ORIGIN)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    records = parse(path, origin, include_dir=path.parent)
    cpu = time.process_time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"cpu": cpu, "rss_mb": peak / 1024, "base_mb": base / 1024,
                      "records": len(records)}))


@dataclass(frozen=True)
class Row:
    records: int
    file_mb: float
    who: str
    cpu: float
    rss_mb: float
    base_mb: float | None
    load: str


def run_child(mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_parse", "--child", mode, str(path)],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=TIMEOUT,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure_command(cmd: list[str]) -> dict[str, float] | None:
    """CPU and peak RSS of ``cmd`` (run by a fresh Python, so the rusage is its alone)."""
    if shutil.which(cmd[0]) is None:
        return None
    probe = (
        "import json, resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'cpu': r.ru_utime + r.ru_stime, 'rss_mb': r.ru_maxrss / 1024,"
        " 'rc': p.returncode, 'err': p.stderr[-300:]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True,
        timeout=TIMEOUT,
    )
    result = dict(json.loads(out.stdout))
    if result["rc"] != 0:
        print(f"{cmd[0]} failed: {result['err']}", file=sys.stderr)
    return result


def knot_check(path: Path, tmp: Path) -> tuple[str, list[str]] | None:
    if shutil.which("kzonecheck"):
        return "kzonecheck", ["kzonecheck", "-o", ORIGIN, str(path)]
    if shutil.which("knotc") is None:
        return None
    conf = tmp / f"knot-{path.stem}.conf"
    conf.write_text(
        f"server:\n    rundir: {tmp}\n"
        f"template:\n  - id: default\n    storage: {path.parent}\n"
        f"zone:\n  - domain: {ORIGIN}\n    file: {path.name}\n"
    )
    return "knotc zone-check", ["knotc", "-c", str(conf), "zone-check", ORIGIN]


def load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def bench(sizes: list[int], dnspython_size: int, tmp: Path) -> list[Row]:
    rows: list[Row] = []
    for size in sizes:
        directory = tmp / f"z{size}"
        directory.mkdir()
        path = directory / f"{ORIGIN.rstrip('.')}.zone"
        write_big_zone(path, ORIGIN, size, seed=1)
        mb = path.stat().st_size / 1e6
        runs: list[tuple[str, dict[str, float] | None]] = []
        before = load()
        runs.append(("dnsserve fast parser", run_child("fast", path)))
        if size <= dnspython_size:
            runs.append(("dnsserve dnspython path", run_child("dnspython", path)))
        runs.append(("nsd-checkzone", measure_command(["nsd-checkzone", ORIGIN, str(path)])))
        knot = knot_check(path, tmp)
        if knot is not None:
            runs.append((knot[0], measure_command(knot[1])))
        after = load()
        for name, result in runs:
            if result is None:
                continue
            base = result.get("base_mb")
            row = Row(size, mb, name, float(result["cpu"]), float(result["rss_mb"]),
                      None if base is None else float(base), f"{before} → {after}")
            rows.append(row)
            print(f"{size:>9,} {name:<26} {row.cpu:7.2f} CPU-s "
                  f"{row.rss_mb:7.0f} MB peak RSS   (load {row.load})", flush=True)
    return rows


def report(rows: list[Row], argv: list[str]) -> str:
    info = machine_info(sys.executable)
    lines = [
        "## Zone-file parsing (dnsserve fast parser, dnspython path, NSD, Knot DNS)",
        "",
        f"`{' '.join(shown_argv('bench_parse', argv))}` on {info['cpu']} ({info['nproc']} "
        f"cores, shared with other work: the load average is shown per zone), Python "
        f"{info['python']}, {info['nsd']}, {info['knotd']}. Zones from `testkit.biggen` "
        "(seed 1: A, AAAA, MX, TXT, CNAME, SRV, NS delegations with glue). Each parse in a "
        "fresh process; CPU is the parse alone for dnsserve (`time.process_time`), the "
        "whole checker process for NSD and Knot (they run their semantic checks too); peak "
        "RSS is `ru_maxrss` of that process (dnsserve's includes Python and dnspython: the "
        "base in brackets is before the parse). The dnspython path (what `zones.load` did) "
        "runs on the 100k zone only; at 1M it takes minutes. Knot's checker is `knotc "
        "zone-check` where the Debian package has no `kzonecheck`.",
        "",
        "| records | file | reader | CPU s | peak RSS MB | CPU vs fast parser | load avg |",
        "|---:|---:|---|---:|---:|---:|---|",
    ]
    fast = {r.records: r.cpu for r in rows if r.who == "dnsserve fast parser"}
    for r in rows:
        ratio = f"{r.cpu / fast[r.records]:.2f}×" if fast.get(r.records) else "–"
        base = f" ({r.base_mb:.0f})" if r.base_mb is not None else ""
        lines.append(
            f"| {r.records:,} | {r.file_mb:.1f} MB | {r.who} | {r.cpu:.2f} | "
            f"{r.rss_mb:.0f}{base} | {ratio} | {r.load} |"
        )
    loads = [float(x) for r in rows for x in r.load.split(" → ") if x != "?"]
    if loads and max(loads) > (os.cpu_count() or 1) / 2:
        lines += [
            "",
            f"**The machine was loaded** (load average up to {max(loads):.1f} on "
            f"{os.cpu_count()} cores, other engineers' tests and benchmarks): CPU seconds "
            "vary by about a third between runs; the ratios, measured minutes apart, less.",
        ]
    lines += [
        "",
        "Bars (issue #10, shared with the table builder, which adds its own time and "
        "memory): 1M records ready to answer in ≤ 20 s with peak RSS ≤ 600 MB, 100k in "
        "≤ 2 s. Parsing is the part measured here.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args_list = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the 100k zone only")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-report", action="store_true", help="print only")
    ap.add_argument("--keep", action="store_true", help="keep the zone files")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(args_list)
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    with workdir("bench-parse-", args.keep) as tmp:
        rows = bench(sizes, 100_000, tmp)
    text = report(rows, args_list)
    print(text)
    if not args.no_report:
        write_section("parse", text, args.out)


if __name__ == "__main__":
    main()
