"""Micro-benchmark of RRL's and DNS Cookies' cost per query: the guard, no sockets.

Owns timing ``answer.guard.Guard.respond_from`` on the dnsperf query mix of
the benchmark zone (zonegen, the seed bench_rrl.py uses), no sockets: the
engine alone, the guard with cookies (what answers with ``[rrl] enabled =
false``), and the guard with cookies and RRL at a rate nothing reaches (what
answers with RRL on and no client over its rate), on the mix as dnsperf
sends it (no EDNS). Then the cookie cases, the same mix with EDNS through
the guard with RRL off: no COOKIE option; a client cookie only, not seen
before (we make a server cookie: one SipHash-2-4), and again (the cookie
made for it in the last five minutes: a dict lookup); our valid server cookie, seen before (the
cache of checked cookies: a dict lookup); our valid server cookie, first
seen (the cache emptied before each pass: one SipHash to verify it); and our
valid server cookie with RRL on (a valid cookie skips the limiter). All are
timed in turns, on this thread's CPU time (``time.thread_time``: a busy
machine's waits do not count), best and median of the repeats. bench_rrl.py
runs it pinned beside its end-to-end runs; it must not change what it times.

    .venv/bin/python -m benchmarks.bench_guard           # table
    .venv/bin/python -m benchmarks.bench_guard --json    # for bench_rrl.py
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dns.edns
import dns.flags
import dns.message

from dnsserve.answer.cookies import CLIENT_SIZE, OPTION_COOKIE, Cookies
from dnsserve.answer.guard import Guard
from dnsserve.answer.rrl import RateLimiter, RrlSettings
from testkit import zonegen
from testkit.answers import build_engine

MIX_LINES = 1000
NOTHING_LIMITED = 100_000  # a rate no bucket reaches (the most [rrl] rate takes)


CLIENT = "127.0.0.1"
COOKIE_CASES = ("EDNS, no cookie", "client cookie only", "our cookie, seen before",
                "our cookie, first seen", "our cookie, RRL on", "client cookie again")


def _packets(wl: zonegen.Workload, cookie: Callable[[int], bytes | None] | None = None
             ) -> list[bytes]:
    """The mix; with ``cookie``, EDNS (1232) and ``cookie(i)`` as the i-th COOKIE option."""
    out = []
    for i, line in enumerate(wl.query_file.read_text().splitlines()[:MIX_LINES]):
        qname, qtype = line.split()
        if cookie is None:
            q = dns.message.make_query(qname, qtype, use_edns=False)
        else:
            value = cookie(i)
            options: list[dns.edns.Option] = [] if value is None else [
                dns.edns.GenericOption(dns.edns.OptionType.COOKIE, value)]
            q = dns.message.make_query(qname, qtype, use_edns=0, payload=1232, options=options)
        q.id = i
        q.flags &= ~dns.flags.RD
        out.append(q.to_wire())
    return out


def _client_cookie(i: int) -> bytes:
    return (0x5EED0000_00000000 + i).to_bytes(CLIENT_SIZE, "big")


def run(rounds: int, repeats: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dnsserve-bench-guard-") as tmp:
        wl = zonegen.generate(Path(tmp))
        engine = build_engine(wl.zone_dir, chaos=True)
        packets = _packets(wl)
        # one Cookies for every guard: the engine asks the last guard's (Guard sets it)
        jar = Cookies(bytes(16))
        client = ipaddress.ip_address(CLIENT).packed
        minted = int(time.time())  # echoed as it is for 30 minutes (cookies.REFRESH_AFTER)
        edns = _packets(wl, lambda i: None)
        client_only = _packets(wl, _client_cookie)
        ours = _packets(wl, lambda i: jar.make(_client_cookie(i), client, minted))
    cookies = Guard(engine, cookies=jar)
    limited = Guard(engine, limiter=RateLimiter(RrlSettings(rate=NOTHING_LIMITED)), cookies=jar)
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

    def through(guard: Guard, batch: list[bytes], forget: Callable[[], None] | None = None
                ) -> Callable[[], None]:
        def case() -> None:
            if forget is not None:  # every cookie made or verified again (~1,000 entries a pass)
                forget()
            for p in batch:
                guard.respond_from(p, CLIENT, clock(), False)
        return case

    cases: dict[str, Callable[[], None]] = {
        "engine.respond": engine_only, "guard, RRL off": guard_cookies,
        "guard, RRL on": guard_rrl,
        COOKIE_CASES[0]: through(cookies, edns),
        COOKIE_CASES[1]: through(cookies, client_only, forget=jar._made.clear),
        COOKIE_CASES[2]: through(cookies, ours),
        COOKIE_CASES[3]: through(cookies, ours, forget=jar._checked.clear),
        COOKIE_CASES[4]: through(limited, ours),
        COOKIE_CASES[5]: through(cookies, client_only),
    }
    for f in cases.values():
        f()  # warm the miss cache, the prefix and zone caches
    # what each cookie case answers: a server cookie, and ours accepted where it should be
    accepted = jar.accepted
    answer = dns.message.from_wire(cookies.respond_from(ours[0], CLIENT, clock(), False) or b"")
    assert jar.accepted == accepted + 1 and any(
        o.otype == OPTION_COOKIE and len(o.to_wire()) == 24 for o in answer.options), answer
    answer = dns.message.from_wire(
        cookies.respond_from(client_only[0], CLIENT, clock(), False) or b"")
    assert any(o.otype == OPTION_COOKIE and len(o.to_wire()) == 24 for o in answer.options)
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
        print(f"{name:24s} best {c['ns']:7.0f} ns  median {c['median_ns']:7.0f} ns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
