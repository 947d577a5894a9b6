"""benchmarks.bench_flood: its workload (unique names that do not exist) and its verdict."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from benchmarks import bench_flood
from testkit import zonegen
from testkit.dnsperf import Run


def test_flood_names_are_unique_and_absent(tmp_path: Path) -> None:
    wl = zonegen.generate(tmp_path, queries=2_000)
    files = bench_flood.write_files(tmp_path, wl, 5_000)
    owners = bench_flood.zone_owners(wl.zone_file)
    assert {"@", "ns1", "mail2", "www-0000"} <= owners
    lines = files.random.read_text().split("\n")[:-1]
    warm = files.warmup.read_text().split("\n")[:-1]
    assert len(lines) == files.random_count == 5_000 and len(warm) == 500
    names = [line.split()[0].lower() for line in lines + warm]
    assert len(set(names)) == len(names)
    for name in names:
        assert name.endswith("." + wl.origin)
        assert name.removesuffix("." + wl.origin) not in owners
    assert {line.split()[1] for line in lines} == {"A", "AAAA"}
    assert any(line != line.lower() for line in lines)  # some in 0x20 mixed case


def test_existing_lines_drop_the_nxdomain_queries(tmp_path: Path) -> None:
    wl = zonegen.generate(tmp_path, queries=2_000)
    owners = bench_flood.zone_owners(wl.zone_file)
    kept = bench_flood.existing_lines(wl.query_file, wl.origin, owners)
    total = len(wl.query_file.read_text().splitlines())
    assert 0.75 * total < len(kept) < 0.92 * total  # ~15 % of the core mix is NXDOMAIN
    nx = {f"{q.lower()} {t}" for q, t in wl.samples["nxdomain"]}
    assert not nx & {line.lower() for line in kept}


def test_random_names_avoid_taken_labels() -> None:
    rng = random.Random(1)
    lines = bench_flood.random_names(rng, "z.example.", 200, {"taken"})
    assert len(lines) == 200 and all(" " in line for line in lines)


def _run(mode: str, completed: int, cpu: float, qps: float = 20_000.0) -> Run:
    return Run(mode, [], sent=completed, completed=completed, qps=qps, runtime=1.0, cpu=cpu)


def _result(name: str, miss_cpu: float, hit_cpu: float) -> bench_flood.Result:
    res = bench_flood.Result(name)
    res.runs = {
        "random, fixed rate": _run("random, fixed rate", 100_000, miss_cpu),
        "random, unthrottled": _run("random, unthrottled", 100_000, miss_cpu, qps=50_000),
        "existing, fixed rate": _run("existing, fixed rate", 100_000, hit_cpu),
    }
    return res


def test_the_bar_is_misses_against_the_servers_own_hits() -> None:
    rows, verdict = bench_flood.ratios([_result("dnsserve", 1.4, 1.0), _result("nsd", 1.0, 1.0)])
    assert verdict is True
    assert any("1.40×" in row for row in rows)
    _, verdict = bench_flood.ratios([_result("dnsserve", 1.6, 1.0)])
    assert verdict is False
    _, verdict = bench_flood.ratios([_result("nsd", 1.0, 1.0)])
    assert verdict is None


def test_report_says_when_the_machine_was_loaded(tmp_path: Path) -> None:
    wl = zonegen.generate(tmp_path, queries=500)
    files = bench_flood.write_files(tmp_path, wl, 100)
    args = argparse.Namespace(
        quick=False, server_cpu=0, client_cpu=1, warmup=2, seconds=10, rate=20_000,
        unthrottled_seconds=10, clients=4, outstanding=100, flood_rate=20_000, real_rate=2_000)
    results = [_result("dnsserve", 1.0, 1.0)]
    text = bench_flood.render({"cpu": "x"}, ["python", "-m", "benchmarks.bench_flood"], args,
                              results, wl, files, "2.50 2.00 1.00", "0.10 0.10 0.10", "now")
    assert "The machine was loaded" in text and "Verdict: **met**" in text
    quiet = bench_flood.render({"cpu": "x"}, [], args, results, wl, files,
                               "0.10 0.10 0.10", "0.20 0.10 0.10", "now")
    assert "The machine was loaded" not in quiet
