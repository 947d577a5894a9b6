"""Micro-benchmark of ``Engine.respond`` on fixed query packets: no sockets, no event loop.

Owns timing the answer engine alone. It builds the engine from the benchmark
zone (zonegen, same seed as bench_core.py) with the zone loader and ``build_snapshot``,
builds query packets once with dnspython, checks each packet's response once
(parses, expected rcode), then calls ``engine.respond(packet, tcp=False)`` in a
loop and reports nanoseconds per call (best of several repeats). Misses are
timed after the miss cache is warm. It must not change the engine.

    .venv/bin/python -m benchmarks.bench_engine            # table
    .venv/bin/python -m benchmarks.bench_engine --profile  # + cProfile of the query mix
    .venv/bin/python -m benchmarks.bench_engine --json     # for bench_core.py
    .venv/bin/python -m benchmarks.bench_engine --nsid ams-3  # an NSID configured (RFC 5001)

The "NSID asked" case carries an empty NSID option: with ``--nsid`` it is
answered, without it the option is ignored (the long OPT path either way).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rcode

from testkit import zonegen
from testkit.answers import build_engine

Respond = Callable[..., bytes | None]
MIX_LINES = 1000


def build_respond(zone_dir: Path, nsid: bytes = b"") -> Respond:
    return build_engine(zone_dir, chaos=True, nsid=nsid).respond


def _packet(qname: str, qtype: str, *, edns: bool, do: bool = False, qid: int = 0,
            nsid: bool = False) -> bytes:
    options = [dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")] if nsid else []
    q = dns.message.make_query(qname, qtype, use_edns=0 if edns else False,
                               payload=1232, want_dnssec=do, options=options)
    q.id = qid
    q.flags &= ~dns.flags.RD  # as dnsperf and stub-less probes send; RD is only copied
    return q.to_wire()


def _cases(wl: zonegen.Workload) -> dict[str, tuple[list[bytes], int]]:
    """name -> (packets, expected rcode)."""
    rng = random.Random(7)
    s = wl.samples
    lower = [(n.lower(), t) for n, t in s["a"]]
    mixed = [("".join(c.upper() if rng.random() < 0.5 else c for c in n), t) for n, t in lower]
    mix = [line.split() for line in wl.query_file.read_text().splitlines()[:MIX_LINES]]
    nx, ok = dns.rcode.NXDOMAIN, dns.rcode.NOERROR

    def pk(items: list[tuple[str, str]] | list[list[str]], **kw: bool) -> list[bytes]:
        return [_packet(n, t, qid=i, **kw) for i, (n, t) in enumerate(items)]

    return {
        "A hit, no EDNS": (pk(lower, edns=False), ok),
        "A hit, EDNS 1232": (pk(lower, edns=True), ok),
        "A hit, EDNS + DO": (pk(lower, edns=True, do=True), ok),
        "A hit, EDNS + NSID asked": (pk(lower, edns=True, nsid=True), ok),
        "A hit, 0x20 mixed case, EDNS": (pk(mixed, edns=True), ok),
        "AAAA hit, EDNS": (pk([(n.lower(), t) for n, t in s["aaaa"]], edns=True), ok),
        "A at CNAME (chain), EDNS": (pk([(n.lower(), t) for n, t in s["cname"]], edns=True), ok),
        "MX + additional, EDNS": (pk([(n.lower(), t) for n, t in s["mx"]], edns=True), ok),
        "TXT hit, EDNS": (pk([(n.lower(), t) for n, t in s["txt"]], edns=True), ok),
        "NODATA (AAAA on A-only), EDNS": (pk(s["nodata"], edns=True), ok),
        "NXDOMAIN, warm miss cache, EDNS": (pk(s["nxdomain"], edns=True), nx),
        f"dnsperf query mix ({MIX_LINES} lines, no EDNS)": (pk(mix, edns=False), -1),
    }


def _check(respond: Respond, packets: list[bytes], rcode: int) -> dict[str, int]:
    seen: dict[str, int] = {}
    for p in packets:
        out = respond(p, tcp=False)
        if out is None:
            raise SystemExit(f"engine dropped a valid query: {dns.message.from_wire(p).question}")
        r = dns.message.from_wire(out)
        name = dns.rcode.to_text(r.rcode())
        seen[name] = seen.get(name, 0) + 1
        if rcode >= 0 and r.rcode() != rcode:
            raise SystemExit(f"unexpected {name} for {r.question}: expected "
                             f"{dns.rcode.to_text(rcode)}")
    return seen


def _time(respond: Respond, packets: list[bytes], calls: int, repeats: int) -> list[float]:
    rounds = max(1, calls // len(packets))
    per_call: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(rounds):
            for p in packets:
                respond(p, tcp=False)
        per_call.append((time.perf_counter_ns() - t0) / (rounds * len(packets)))
    return per_call


def run(calls: int, repeats: int, profile: bool, nsid: bytes = b"") -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dnsserve-bench-engine-") as tmp:
        wl = zonegen.generate(Path(tmp))
        t0 = time.perf_counter()
        respond = build_respond(wl.zone_dir, nsid)
        build_s = time.perf_counter() - t0
        cases = _cases(wl)
    results: dict[str, dict[str, object]] = {}
    for name, (packets, rcode) in cases.items():
        rcodes = _check(respond, packets, rcode)  # also warms the miss cache
        times = _time(respond, packets, calls, repeats)
        results[name] = {"ns": min(times), "median_ns": statistics.median(times),
                         "calls": max(1, calls // len(packets)) * len(packets) * repeats,
                         "packets": len(packets), "rcodes": rcodes}
    out: dict[str, object] = {"python": sys.version.split()[0], "build_seconds": build_s,
                              "cases": results}
    if profile:
        packets = cases[f"dnsperf query mix ({MIX_LINES} lines, no EDNS)"][0]
        prof = cProfile.Profile()
        prof.enable()
        _time(respond, packets, calls, 1)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
        out["profile"] = buf.getvalue()
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100_000, help="calls per repeat per case")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="10,000 calls, 3 repeats")
    ap.add_argument("--json", action="store_true", help="print JSON (for bench_core.py)")
    ap.add_argument("--profile", action="store_true", help="cProfile the query mix")
    ap.add_argument("--nsid", default="", help="the engine's NSID (text); default: none")
    args = ap.parse_args(argv)
    if args.quick:
        args.calls, args.repeats = 10_000, 3
    out = run(args.calls, args.repeats, args.profile, args.nsid.encode())
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"engine built in {out['build_seconds']:.2f} s (python {out['python']})")
    print(f"{'packets':46} {'ns/call':>9} {'median':>9}  rcodes")
    cases = out["cases"]
    assert isinstance(cases, dict)
    for name, c in cases.items():
        print(f"{name:46} {c['ns']:9,.0f} {c['median_ns']:9,.0f}  {c['rcodes']}")
    if "profile" in out:
        print(out["profile"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
