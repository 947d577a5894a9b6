"""RRL benchmark: a reflection flood against dnsserve, NSD and Knot DNS, and RRL's CPU cost.

Owns two measurements, written as the "rrl" section of benchmarks/RESULTS.md:

1. The flood (issue 11 §6): each server in turn, one server thread pinned to
   CPU 0, with the same response rate limiting (``--rate``, ``--slip``; NSD
   ``rrl-ratelimit``/``rrl-slip``, Knot ``mod-rrl`` ``rate-limit``/``slip``,
   dnsserve ``[rrl]``), gets ``--count`` identical queries (one TXT name of
   the generated zone, EDNS 1232) from one UDP socket on 127.0.0.1, paced
   over ``--flood-seconds`` from CPU 1. Every answer that comes back is
   counted as full or truncated (TC); the rest were dropped. The
   amplification factor is UDP payload bytes received / bytes sent.
   Then the same flood again, each server restarted with DNS Cookies on and
   one shared secret (NSD ``answer-cookie``/``cookie-secret``, Knot
   ``mod-cookies`` before ``mod-rrl``, dnsserve ``[cookies] secret``), every
   query carrying the server cookie a first query with a client cookie got
   back: a client with a valid server cookie is not a spoofed one, so RRL
   should let every answer through whole (dnsserve does; the report shows
   what NSD and Knot do). And, on fresh servers again, with a client cookie
   only and with a forged server cookie (made with another secret): those
   must be limited as if they had none.
2. RRL's cost when no client is over its rate: dnsserve with RRL off and on
   (``rate`` so high that nothing is limited, so every answer takes the whole
   bucket path), alternately, each under dnsperf at a fixed ``-Q`` on the
   generated zone's query mix; CPU per query from /proc (``testkit.cpu``).
   Bar: on / off <= 1.1.

It stops every process it started, by PID, even on error, and sends only to
127.0.0.1. The servers run as the tests run them (testkit.server, testkit.peers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rcode

from benchmarks.bench_guard import COOKIE_CASES
from benchmarks.report import RESULTS, machine_info, shown_argv, write_section
from dnsserve.answer.cookies import Cookies
from testkit import ROOT, peers, zonegen
from testkit.cpu import WatchedServer, loadavg, pick_cpus, pinned, watch
from testkit.dnsperf import Run, dnsperf_cmd, measure
from testkit.server import start_server

CPU_BAR = 1.1  # RRL on / off, CPU per query
NOTHING_LIMITED = 100_000  # a rate no bucket reaches (the most [rrl] rate takes)
COOKIE_SECRET = "6b6f6f6b6965732d62656e6368202020"  # every server's, in the cookie floods
CLIENT_COOKIE = bytes.fromhex("c0ffee0123456789")
COOKIE_KINDS = {  # what the queries of a cookie flood carry
    "valid": "our valid server cookie",
    "client": "a client cookie only",
    "forged": "a forged server cookie",
}


@dataclass
class Flood:
    name: str
    sent: int = 0
    full: int = 0
    truncated: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    error: str = ""
    command: list[str] = field(default_factory=list)
    not_noerror: int = 0  # answers whose header RCODE is not NOERROR
    not_noerror_tc: int = 0  # of them, with TC
    odd_rcode: str = ""  # the (extended) RCODE of the first of those
    cookie: str = ""  # the COOKIE option every query carried (hex), cookie floods only
    kind: str = ""  # a COOKIE_KINDS key, cookie floods only
    interop: str = ""  # what the server did with a server cookie dnsserve's code made

    @property
    def dropped(self) -> int:
        return self.sent - self.full - self.truncated

    @property
    def amplification(self) -> float:
        return self.bytes_out / self.bytes_in if self.bytes_in else float("nan")


def _dnsserve_config(work: Path, rrl: str, cookie_secret: str | None = None) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    path = work / "dnsserve.toml"
    cookies = "" if cookie_secret is None else f'\n[cookies]\nsecret = "{cookie_secret}"\n'
    path.write_text(f"[rrl]\n{rrl}\n{cookies}")
    return path


def start(name: str, wl: zonegen.Workload, work: Path, cpu: int | None,
          rrl: tuple[int, int] | None, dnsserve_rrl: str = "",
          cookie_secret: str | None = None) -> WatchedServer:
    """``name`` serving the generated zone, one server thread on ``cpu``; with
    ``cookie_secret``, DNS Cookies on with that secret (dnsserve has them on anyway)."""
    work.mkdir(parents=True, exist_ok=True)
    with pinned(cpu):
        if name == "dnsserve":
            text = dnsserve_rrl or (f"enabled = true\nrate = {rrl[0]}\nslip = {rrl[1]}"
                                    if rrl else "enabled = false")
            cfg = _dnsserve_config(work, text, cookie_secret)
            handle: peers.Peer | object = start_server(
                work, "-c", str(cfg), zones=wl.zone_file.parent, cwd=work)
        elif name == "nsd":
            handle = peers.start_nsd({wl.origin: wl.zone_file}, work, threads=1, rrl=rrl,
                                     cookie_secret=cookie_secret)
        elif name == "knot":
            handle = peers.start_knot({wl.origin: wl.zone_file}, work, threads=1, rrl=rrl,
                                      cookie_secret=cookie_secret)
        else:
            raise ValueError(name)
    return watch(name, handle, wl.origin)  # type: ignore[arg-type]


def flood(port: int, query: bytes, count: int, seconds: float, cpu: int | None) -> Flood:
    """Send ``count`` copies of ``query`` paced over ``seconds``; count what comes back."""
    result = Flood("")
    done = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.settimeout(0.5)

        def receive() -> None:
            for _ in range(count):  # at most one answer per query
                try:
                    data = sock.recv(65535)
                except TimeoutError:
                    if done.is_set():
                        return
                    continue
                result.bytes_out += len(data)
                if data[3] & 0x0F:
                    result.not_noerror += 1
                    result.not_noerror_tc += bool(data[2] & (dns.flags.TC >> 8))
                    if not result.odd_rcode:
                        try:
                            result.odd_rcode = dns.rcode.to_text(
                                dns.message.from_wire(data).rcode())  # with OPT's upper bits
                        except Exception as exc:  # a report, not a check
                            result.odd_rcode = f"unparsed ({exc})"
                if data[2] & (dns.flags.TC >> 8):
                    result.truncated += 1
                else:
                    result.full += 1

        reader = threading.Thread(target=receive, daemon=True)
        with pinned(cpu):
            reader.start()
            batch = max(1, count // int(seconds * 200))  # 200 batches a second
            started = time.monotonic()
            step = seconds * batch / count
            sent = 0
            while sent < count:
                due = started + (sent // batch) * step
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                for _ in range(min(batch, count - sent)):
                    sock.sendto(query, ("127.0.0.1", port))
                    sent += 1
            result.seconds = time.monotonic() - started
            time.sleep(1.0)  # stragglers
            done.set()
            reader.join(timeout=10)
    result.sent = count
    result.bytes_in = count * len(query)
    return result


def _cookie_query(qname: str, qtype: str, cookie: bytes) -> dns.message.Message:
    return dns.message.make_query(qname, qtype, use_edns=0, payload=1232, options=[
        dns.edns.GenericOption(dns.edns.OptionType.COOKIE, cookie)])


def server_cookie(port: int, qname: str, qtype: str) -> bytes:
    """Client cookie | server cookie: what a query with a client cookie only gets back."""
    query = _cookie_query(qname, qtype, CLIENT_COOKIE)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2.0)
        for _ in range(3):
            sock.sendto(query.to_wire(), ("127.0.0.1", port))
            try:
                answer = dns.message.from_wire(sock.recv(65535))
            except TimeoutError:
                continue
            for option in answer.options:
                value = option.to_wire() or b""
                if option.otype == dns.edns.OptionType.COOKIE and len(value) > 8:
                    if value[:8] != CLIENT_COOKIE:
                        raise RuntimeError(f"COOKIE answered for another client: {value.hex()}")
                    return value
            rcode = dns.rcode.to_text(answer.rcode())
            raise RuntimeError(f"no server cookie in the answer ({rcode})")
    raise RuntimeError("no answer to the query with a client cookie")


def interop(port: int, qname: str, qtype: str) -> str:
    """Whether the server accepts a server cookie ``answer.cookies`` made with the shared
    secret (RFC 9018's point): "accepted" when echoed with NOERROR, else what came back."""
    ours = Cookies(bytes.fromhex(COOKIE_SECRET)).make(
        CLIENT_COOKIE, ipaddress.ip_address("127.0.0.1").packed, int(time.time()) - 1)
    query = _cookie_query(qname, qtype, ours)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2.0)
        sock.sendto(query.to_wire(), ("127.0.0.1", port))
        try:
            answer = dns.message.from_wire(sock.recv(65535))
        except TimeoutError:
            return "no answer"
    back = [o.to_wire() for o in answer.options if o.otype == dns.edns.OptionType.COOKIE]
    rcode = dns.rcode.to_text(answer.rcode())
    if back == [ours] and rcode == "NOERROR":
        return "accepted"
    return f"{rcode}, {'a new server cookie' if back else 'no cookie'}"


def forged_cookie() -> bytes:
    """Client cookie | a server cookie in RFC 9018's layout, now, under another secret."""
    return Cookies(bytes(16)).make(CLIENT_COOKIE, ipaddress.ip_address("127.0.0.1").packed,
                                   int(time.time()))


def run_floods(args: argparse.Namespace, wl: zonegen.Workload, work: Path,
               cookies: str = "") -> list[Flood]:
    """The flood at each server (each started afresh); with ``cookies`` (a COOKIE_KINDS
    key), cookies on at every server and that COOKIE option in every query."""
    qname, qtype = wl.samples["txt"][0]
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232).to_wire()
    out = []
    kind = f"cookie-{cookies}" if cookies else "flood"
    for name in args.servers:
        srv = None
        try:
            srv = start(name, wl, work / f"{kind}-{name}", args.server_cpu, (args.rate, args.slip),
                        cookie_secret=COOKIE_SECRET if cookies else None)
            cookie = b""
            made = ""
            if cookies == "valid":
                cookie = server_cookie(srv.port, qname, qtype)
                made = interop(srv.port, qname, qtype)
            elif cookies == "client":
                cookie = CLIENT_COOKIE
            elif cookies == "forged":
                cookie = forged_cookie()
            if cookie:
                query = _cookie_query(qname, qtype, cookie).to_wire()
            print(f"  {kind} {name} ({args.count} x {qname} {qtype})", flush=True)
            result = flood(srv.port, query, args.count, args.flood_seconds, args.client_cpu)
            result.name, result.command, result.cookie = name, srv.command, cookie.hex()
            result.kind, result.interop = cookies, made
        except Exception as exc:
            result = Flood(name, error=str(exc), kind=cookies)
            print(f"  {name} FAILED: {exc}", file=sys.stderr, flush=True)
        finally:
            if srv is not None:
                srv.stop()
        out.append(result)
    return out


def run_cpu(args: argparse.Namespace, wl: zonegen.Workload, work: Path) -> dict[str, list[Run]]:
    """dnsserve with RRL off and on, alternately, ``--repeats`` times each."""
    runs: dict[str, list[Run]] = {"off": [], "on": []}
    modes = {"off": "enabled = false",
             "on": f"enabled = true\nrate = {NOTHING_LIMITED}\nslip = {args.slip}"}
    for i in range(args.repeats):
        for mode, text in modes.items():
            srv = start("dnsserve", wl, work / f"cpu-{mode}-{i}", args.server_cpu, None, text)
            try:
                kw = {"clients": 1, "outstanding": 100,
                      "client_cpu": None if args.client_cpu is None else str(args.client_cpu)}
                if args.warmup:
                    measure(srv, "warmup", dnsperf_cmd(srv.port, wl.query_file, args.warmup,
                                                       rate=args.qps, **kw), args.warmup)
                # -q: enough queries in flight that a busy machine's latency never
                # holds dnsperf below the rate (the default 100 did: fewer answers
                # per wake-up, more CPU per answer, whatever RRL costs)
                cmd = [*dnsperf_cmd(srv.port, wl.query_file, args.seconds, rate=args.qps, **kw),
                       "-q", str(args.outstanding)]
                print(f"  rrl {mode} #{i + 1}: {shlex.join(cmd)}", flush=True)
                runs[mode].append(measure(srv, f"rrl {mode}", cmd, args.seconds))
            finally:
                srv.stop()
    return runs


def guard_bench(args: argparse.Namespace) -> dict[str, object]:
    """bench_guard.py pinned to the server CPU: RRL's cost per query without sockets."""
    cmd = [sys.executable, "-m", "benchmarks.bench_guard", "--json"]
    if args.server_cpu is not None:
        cmd = ["taskset", "-c", str(args.server_cpu), *cmd]
    print(f"  guard: {shlex.join(cmd)}", flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)
    if p.returncode != 0:
        return {"error": (p.stdout + p.stderr).strip()[-2000:]}
    return dict(json.loads(p.stdout))


def _us(runs: list[Run]) -> float:
    """CPU per query over all runs of one mode (their CPU summed / their answers summed)."""
    done = sum(r.completed for r in runs)
    return 1e6 * sum(r.cpu for r in runs) / done if done else float("nan")


def guard_lines(guard: dict[str, object], off_us: float | None) -> list[str]:
    if "error" in guard:
        return ["bench_guard failed:", "", "```", str(guard["error"]), "```", ""]
    cases = dict(guard["cases"])  # type: ignore[call-overload]
    cookie_cases = {name: cases.pop(name) for name in COOKIE_CASES if name in cases}
    lines = [
        "Without sockets (`benchmarks/bench_guard.py`, pinned to the server CPU): the same"
        f" query mix ({guard['queries']} queries) through the engine alone, the guard with RRL"
        " off (cookies on) and the guard with RRL on, timed in turns on the thread's CPU"
        f" time (a busy machine's waits do not count), {guard['repeats']} repeats (the"
        " cookie cases below were timed in the same turns):",
        "",
        "| path | ns CPU per query, best | median |",
        "|---|---:|---:|",
        *(f"| {name} | {c['ns']:,.0f} | {c['median_ns']:,.0f} |" for name, c in cases.items()),
        "",
    ]
    added = cases["guard, RRL on"]["ns"] - cases["guard, RRL off"]["ns"]
    added_median = cases["guard, RRL on"]["median_ns"] - cases["guard, RRL off"]["median_ns"]
    lines.append(f"RRL adds {added:,.0f} ns per query (best; {added_median:,.0f} ns by the"
                 " medians).")
    if off_us:
        lines[-1] += (f" Against the {off_us:.2f} µs of CPU a query costs the whole server with"
                      f" RRL off (above), that is **{(off_us + added / 1000) / off_us:.3f}×**"
                      f" ({(off_us + added_median / 1000) / off_us:.3f}× by the medians): the"
                      " bar's ratio without the machine's noise.")
    return [*lines, "", *cookie_guard_lines(cookie_cases)]


def cookie_guard_lines(cases: dict[str, dict[str, float]]) -> list[str]:
    """bench_guard's cookie cases: the mix with EDNS and a COOKIE option, RRL off."""
    if not cases:
        return []
    base = cases.get(COOKIE_CASES[0])
    what = {
        COOKIE_CASES[0]: "the same mix with EDNS (1232), no COOKIE option",
        COOKIE_CASES[1]: "a client cookie only, not seen before: we make a server cookie"
                         " (one SipHash-2-4)",
        COOKIE_CASES[2]: "our valid server cookie, checked before: a dict lookup, echoed",
        COOKIE_CASES[3]: "our valid server cookie, not seen before (the cache of checked"
                         " cookies emptied each pass): one SipHash-2-4 to verify it",
        COOKIE_CASES[4]: "our valid server cookie, seen before, with RRL on (rate 100,000):"
                         " a valid cookie skips the limiter",
        COOKIE_CASES[5]: "a client cookie only, again from the same address within 5 minutes:"
                         " the server cookie made then (a dict lookup)",
    }
    lines = [
        "DNS Cookies' cost, the same way (the guard with RRL off unless said; the mix's"
        " 1,000 queries each with its own client cookie; the server cookies made by"
        " `answer.cookies` for 127.0.0.1 when the run starts; SipHash-2-4 is pure Python,"
        " `answer/siphash.py`):",
        "",
        "| query carries | ns CPU per query, best | median | best − no cookie |",
        "|---|---:|---:|---:|",
    ]
    for name, c in cases.items():
        added = "" if base is None or name == COOKIE_CASES[0] else f"{c['ns'] - base['ns']:+,.0f}"
        lines.append(f"| {what.get(name, name)} | {c['ns']:,.0f} | {c['median_ns']:,.0f} |"
                     f" {added} |")
    return [*lines, ""]


def cookie_lines(args: argparse.Namespace, floods: list[Flood]) -> list[str]:
    client = ipaddress.ip_address("127.0.0.1").packed.hex()
    lines = [
        "### The flood with DNS Cookies",
        "",
        "The same flood, each server started afresh for each row with the same limits and"
        f" DNS Cookies on, one secret for all three (`{COOKIE_SECRET}`: NSD"
        " `answer-cookie: yes`, `cookie-secret`; Knot `mod-cookies` `secret`, listed before"
        " `mod-rrl` in `global-module`; dnsserve `[cookies] secret`), every query carrying"
        f" one COOKIE option: *valid*: the client cookie `{CLIENT_COOKIE.hex()}` and the"
        " server cookie a first query with that client cookie only got back from that server"
        " (RFC 9018: version 1, timestamp, SipHash-2-4 over client cookie, version,"
        f" timestamp and client address `{client}`); *client*: the client cookie only;"
        " *forged*: the client cookie and a server cookie in RFC 9018's layout made now"
        " with another secret. A valid server cookie proves the source address is the"
        " client's own, so it should not be rate limited (every answer full); the others"
        " should be limited as the flood above. Full answers: without TC, NOERROR;"
        " other RCODE: without TC and not NOERROR (the first such answer's extended RCODE"
        " in brackets, whether with TC or not); truncated: with TC (of which not NOERROR);"
        " amplification counts the COOKIE option in the bytes in.",
        "",
        "| server | cookie | sent | full answers | other RCODE | truncated (not NOERROR) |"
        " dropped | bytes out | amplification |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in floods:
        if f.error:
            lines.append(f"| {f.name} | {f.kind} | FAILED: {f.error.splitlines()[0][:80]}"
                         " | | | | | | |")
            continue
        odd = f" ({f.odd_rcode})" if f.odd_rcode else ""
        other = f.not_noerror - f.not_noerror_tc
        lines.append(f"| {f.name} | {f.kind} | {f.sent:,} | {f.full - other:,} |"
                     f" {other:,}{odd} | {f.truncated:,} ({f.not_noerror_tc:,}) |"
                     f" {f.dropped:,} | {f.bytes_out:,} | {f.amplification:.3f} |")
    valid = [f for f in floods if f.kind == "valid" and f.cookie]
    if valid:
        lines += ["", "The valid server cookies sent (after the client cookie): "
                  + "; ".join(f"{f.name} `{f.cookie[16:]}`" for f in valid) + ".",
                  "", "Interop (RFC 9018: servers sharing a secret accept each other's"
                  " cookies): a server cookie made by dnsserve's `answer.cookies` with the"
                  " shared secret, a second old, sent once before the flood: "
                  + "; ".join(f"{f.name} {f.interop}" for f in valid) + "."]
    return [*lines, "", "Server commands:", "", "```",
            *(shlex.join(f.command) for f in floods if f.command), "```", ""]


def render(args: argparse.Namespace, argv: list[str], info: dict[str, str],
           floods: list[Flood], runs: dict[str, list[Run]], loads: tuple[str, str],
           when: str, qname: str, guard: dict[str, object] | None,
           cookie_floods: list[Flood] | None = None) -> tuple[str, float | None]:
    lines = [
        "## RRL: a reflection flood, and the cost of rate limiting",
        "",
        f"Run {when}; load average at start / end {loads[0]} / {loads[1]} (a 2-core machine"
        " shared with other work: figures are noisy, ratios from one run steadier).",
        "",
        "Command:",
        "",
        "```",
        shlex.join(argv),
        "```",
        "",
        f"Machine: {info.get('cpu', '?')}; dnsserve {info.get('dnsserve', '?')},"
        f" NSD {info.get('nsd', '?')}, Knot {info.get('knotd', '?')}.",
        "",
        "### The flood",
        "",
        f"{args.count:,} identical queries (`{qname}` TXT, EDNS 1232) from one UDP socket on"
        f" 127.0.0.1, paced over {args.flood_seconds:g} s, against each server with one"
        f" server thread pinned to CPU {args.server_cpu} and the same limits: rate"
        f" {args.rate}/s, slip {args.slip} (NSD `rrl-ratelimit: {args.rate}`,"
        f" `rrl-slip: {args.slip}`; Knot `mod-rrl` `rate-limit: {args.rate}`,"
        f" `slip: {args.slip}`; dnsserve `[rrl] rate = {args.rate}, slip = {args.slip}`)."
        " Full = answers without TC; truncated = TC answers (the slip); dropped = no"
        " answer. Amplification = UDP payload bytes out / bytes in.",
        "",
        "| server | sent | full answers | truncated | dropped | bytes in | bytes out |"
        " amplification | send time s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in floods:
        if f.error:
            lines.append(f"| {f.name} | FAILED: {f.error.splitlines()[0][:80]} | | | | | | | |")
            continue
        lines.append(f"| {f.name} | {f.sent:,} | {f.full:,} | {f.truncated:,} | {f.dropped:,} |"
                     f" {f.bytes_in:,} | {f.bytes_out:,} | {f.amplification:.3f} |"
                     f" {f.seconds:.2f} |")
    lines += ["", "Server commands:", "", "```",
              *(shlex.join(f.command) for f in floods if f.command), "```", ""]
    if cookie_floods:
        lines += cookie_lines(args, cookie_floods)
    ratio: float | None = None
    if runs["off"] and runs["on"]:
        off, on = _us(runs["off"]), _us(runs["on"])
        ratio = on / off
        met = "met" if ratio <= CPU_BAR else "NOT met"
        lines += [
            "### CPU per query, RRL on vs off",
            "",
            f"Bar: CPU per query with RRL on ≤ {CPU_BAR}× with RRL off, no client over its"
            " rate.",
            "",
            f"dnsserve (one process, pinned to CPU {args.server_cpu}) under dnsperf at"
            f" `-Q {args.qps}` on the generated zone's query mix (1,000 names, ~15 % NXDOMAIN,"
            " 20,000 query lines), RRL off"
            f" (`enabled = false`) and on with `rate = {NOTHING_LIMITED:,}` (no bucket"
            " reaches it: every answer pays for its bucket, none is limited), alternately,"
            f" {args.repeats} × {args.seconds} s each after a {args.warmup} s warm-up."
            " Cookies on (the default) in both; dnsperf sends none.",
            "",
            "| RRL | run | completed | lost % | server CPU s | µs CPU/query |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for mode in ("off", "on"):
            for i, r in enumerate(runs[mode], 1):
                lines.append(f"| {mode} | {i} | {r.completed:,} | {r.loss_pct:.2f} | {r.cpu:.2f} |"
                             f" {r.us_per_query:.2f} |")
        spread = [r.us_per_query for r in runs["on"] + runs["off"]]
        pairs = [b.us_per_query / a.us_per_query for a, b in zip(runs["off"], runs["on"],
                                                                   strict=False)]
        lines += [
            "",
            f"CPU per query over all runs: off {off:.2f} µs, on {on:.2f} µs: **on / off ="
            f" {ratio:.3f}×** (bar ≤ {CPU_BAR}×: {met}); the median of the {len(pairs)}"
            f" back-to-back pairs' ratios {statistics.median(pairs):.3f}× (each from"
            f" {min(pairs):.3f}× to {max(pairs):.3f}×; per-run spread"
            f" {min(spread):.2f}–{max(spread):.2f} µs: the machine's noise).",
            "",
        ]
    if guard is not None:
        lines += guard_lines(guard, _us(runs["off"]) if runs["off"] else None)
    return "\n".join(lines), ratio


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50_000, help="flood queries (50000)")
    ap.add_argument("--flood-seconds", type=float, default=5.0, help="flood length (5)")
    ap.add_argument("--rate", type=int, default=20, help="RRL rate, responses/s (20)")
    ap.add_argument("--slip", type=int, default=2, help="RRL slip (2)")
    ap.add_argument("--qps", type=int, default=20_000, help="dnsperf -Q for the CPU runs")
    ap.add_argument("--seconds", type=int, default=8, help="each CPU run (8)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up before each CPU run (2)")
    ap.add_argument("--repeats", type=int, default=5, help="CPU runs per mode (5)")
    ap.add_argument("--outstanding", type=int, default=2000, help="dnsperf -q, CPU runs (2000)")
    ap.add_argument("--servers", default="dnsserve,nsd,knot", help="flood these")
    ap.add_argument("--no-cpu", action="store_true", help="skip the RRL on/off CPU runs")
    ap.add_argument("--no-flood", action="store_true", help="skip the floods")
    ap.add_argument("--cookie-floods", default=",".join(COOKIE_KINDS),
                    help="floods with DNS Cookies: valid,client,forged ('' for none)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="report file")
    ap.add_argument("--no-report", action="store_true", help="print only")
    args = ap.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.cookie_floods = [k.strip() for k in args.cookie_floods.split(",") if k.strip()]
    unknown = set(args.cookie_floods) - set(COOKIE_KINDS)
    if unknown:
        ap.error(f"--cookie-floods: unknown {', '.join(sorted(unknown))}")
    return pick_cpus(args)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for tool in ("dnsperf", "taskset", "nsd", "knotd"):
        if shutil.which(tool) is None:
            print(f"missing tool: {tool} (apt-get install dnsperf nsd knot)", file=sys.stderr)
            return 2
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = machine_info(sys.executable)
    load_start = loadavg()
    tmp = Path(tempfile.mkdtemp(prefix="dnsserve-bench-rrl-"))
    try:
        wl = zonegen.generate(tmp)
        floods = [] if args.no_flood else run_floods(args, wl, tmp)
        cookie_floods = [] if args.no_flood else [
            f for kind in args.cookie_floods for f in run_floods(args, wl, tmp, kind)]
        runs = {"off": [], "on": []} if args.no_cpu else run_cpu(args, wl, tmp)
        guard = None if args.no_cpu else guard_bench(args)
        text, _ = render(args, shown_argv("bench_rrl", argv), info, floods, runs,
                         (load_start, loadavg()), when, wl.samples["txt"][0][0], guard,
                         cookie_floods)
        text = text.replace(str(tmp), "$BENCH_DIR")
        print(text)
        if not args.no_report:
            write_section("rrl", text, args.out)
            print(f"\nwrote {args.out}")
        return 1 if any(f.error for f in floods + cookie_floods) else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
