"""Micro-benchmark of RRL's cost per query: the guard with and without the rate limiter.

Owns timing ``answer.guard.Guard.respond_from`` on the dnsperf query mix of
the benchmark zone (zonegen, the seed bench_rrl.py uses), no sockets: the
engine alone, the guard with cookies (what answers with ``[rrl] enabled =
false``), and the guard with cookies and RRL at a rate nothing reaches (what
answers with RRL on and no client over its rate). The three are timed in
turns, on this thread's CPU time (``time.thread_time``: a busy machine's
waits do not count), best and median of the repeats. bench_rrl.py runs it
pinned beside its end-to-end runs; it must not change what it times.

    .venv/bin/python -m benchmarks.bench_guard           # table
    .venv/bin/python -m benchmarks.bench_guard --json    # for bench_rrl.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dns.flags
import dns.message

from dnsserve.answer.cookies import Cookies
from dnsserve.answer.guard import Guard
from dnsserve.answer.rrl import RateLimiter, RrlSettings
from testkit import zonegen
from testkit.answers import build_engine

MIX_LINES = 1000
NOTHING_LIMITED = 100_000  # a rate no bucket reaches (the most [rrl] rate takes)


def _packets(wl: zonegen.Workload) -> list[bytes]:
    out = []
    for i, line in enumerate(wl.query_file.read_text().splitlines()[:MIX_LINES]):
        qname, qtype = line.split()
        q = dns.message.make_query(qname, qtype, use_edns=False)
        q.id = i
        q.flags &= ~dns.flags.RD
        out.append(q.to_wire())
    return out


def run(rounds: int, repeats: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dnsserve-bench-guard-") as tmp:
        wl = zonegen.generate(Path(tmp))
        engine = build_engine(wl.zone_dir, chaos=True)
        packets = _packets(wl)
    cookies = Guard(engine, cookies=Cookies(bytes(16)))
    limited = Guard(engine, limiter=RateLimiter(RrlSettings(rate=NOTHING_LIMITED)),
                    cookies=Cookies(bytes(16)))
    clock = time.time

    def engine_only() -> None:
        for p in packets:
            engine.respond(p, tcp=False)

    def guard_cookies() -> None:
        for p in packets:
            cookies.respond_from(p, "127.0.0.1", clock(), False)

    def guard_rrl() -> None:
        for p in packets:
            limited.respond_from(p, "127.0.0.1", clock(), False)

    cases: dict[str, Callable[[], None]] = {
        "engine.respond": engine_only, "guard, RRL off": guard_cookies,
        "guard, RRL on": guard_rrl,
    }
    for f in cases.values():
        f()  # warm the miss cache, the prefix and zone caches
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, f in cases.items():
            t0 = time.thread_time_ns()
            for _ in range(rounds):
                f()
            times[name].append((time.thread_time_ns() - t0) / (rounds * len(packets)))
    return {
        "python": sys.version.split()[0], "queries": len(packets), "repeats": repeats,
        "cases": {name: {"ns": min(t), "median_ns": statistics.median(t)}
                  for name, t in times.items()},
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20, help="passes over the mix per repeat")
    ap.add_argument("--repeats", type=int, default=15, help="timed repeats per case")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)
    result = run(args.rounds, args.repeats)
    if args.json:
        print(json.dumps(result))
        return 0
    cases = result["cases"]
    assert isinstance(cases, dict)
    for name, c in cases.items():
        print(f"{name:16s} best {c['ns']:7.0f} ns  median {c['median_ns']:7.0f} ns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
