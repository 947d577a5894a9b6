"""Zone transfers out and publish mode: dnsserve side by side with Knot DNS and NSD.

Owns two measurements and their sections of benchmarks/RESULTS.md:

- "xfr": one generated zone of ``--records`` records (100,000 by default,
  seeded) served by dnsserve, Knot and NSD in turn, each AXFR'd ``--reps``
  times over loopback TCP by a raw client that reads the framed messages
  and counts answer records until the transfer is whole (no parsing: the
  client costs next to nothing). Reported: wall time (median), the server's
  CPU time per AXFR (its process tree, /proc), messages and bytes, and the
  server's resident memory before the transfers and its peak (VmHWM) after.
  Then one record of the zone changes (a new serial): dnsserve reloads
  (SIGHUP), Knot reloads the file (``zonefile-load: difference``), and the
  size of each one's IXFR answer from the old serial is reported (NSD 4.6
  keeps no differences of zone files: not measured).
- "publish": a pool of two members behind a TCP check (interval 0.25 s,
  fall 1) with ``publish = true`` (``publish_min_interval`` 0.5 s) and a Knot
  secondary (TSIG); a member's listener is closed and the time until
  dnsserve's own answer changes and until Knot's does is measured, over
  ``--cycles`` down/up cycles (both directions).

Every process it starts is stopped by PID; all traffic stays on 127.0.0.1.

    .venv/bin/python -m benchmarks.bench_xfr            # both sections
    .venv/bin/python -m benchmarks.bench_xfr --quick    # 10,000 records, fewer repeats
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import dns.rrset

from benchmarks.report import add_report_options, machine_info, shown_argv, workdir, write_section
from testkit.backends import TcpListener
from testkit.cpu import cpu_seconds, loadavg, process_tree
from testkit.peers import Peer, find_binary, wait_zones
from testkit.ports import common_port, free_port
from testkit.secondaries import Primary, knot_primary, knot_secondary, nsd_primary, wait_serving
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

ORIGIN = "bench.example."
PUB_ORIGIN = "pub.example."
SECRET = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
MEMBERS = ("127.0.0.31", "127.0.0.32")


# -- the zone ---------------------------------------------------------------------


def zone_text(records: int, serial: int, seed: int = 7, changed: bool = False) -> str:
    """A zone of about ``records`` records: SOA, NS, then A/AAAA/TXT/MX on two-record names."""
    rng = random.Random(seed)
    lines = [f"$ORIGIN {ORIGIN}", "$TTL 3600",
             f"@ SOA ns1 hostmaster {serial} 3600 600 86400 300", "@ NS ns1", "ns1 A 127.0.0.1"]
    for i in range(records - 3):
        name = f"n{i // 2}"
        kind = i % 4
        if kind == 0:
            last = rng.randrange(1, 255)
            if changed and i == 0:
                last = 255  # the one change (randrange never gives 255)
            lines.append(f"{name} A 10.{rng.randrange(256)}.{rng.randrange(256)}.{last}")
        elif kind == 1:
            word = rng.randrange(1 << 16)
            lines.append(f"{name} AAAA 2001:db8::{word:x}:{i & 0xFFFF:x}:{i >> 16:x}")
        elif kind == 2:
            lines.append(f'{name} TXT "v={rng.randrange(1 << 30):x}"')
        else:
            # an existing name with an A record (names n0, n2, n4, ... have one)
            lines.append(f"{name} MX 10 n{2 * rng.randrange(max(1, i // 4))}.{ORIGIN}")
    return "\n".join(lines) + "\n"


# -- a raw AXFR client --------------------------------------------------------------


def _recv(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("the server closed the connection")
        data += chunk
    return bytes(data)


@dataclass
class Axfr:
    seconds: float
    messages: int
    octets: int


def axfr(port: int, records: int) -> Axfr:
    """AXFR ``ORIGIN`` from 127.0.0.1:port; done when ``records`` + 1 answers arrived."""
    q = dns.message.make_query(ORIGIN, "AXFR").to_wire()
    start = time.perf_counter()
    messages = octets = seen = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(len(q).to_bytes(2, "big") + q)
        while seen < records + 1 and messages < 1_000_000:
            size = int.from_bytes(_recv(sock, 2), "big")
            message = _recv(sock, size)
            if message[3] & 0x0F:
                raise RuntimeError(f"AXFR answered rcode {message[3] & 0x0F}")
            seen += int.from_bytes(message[6:8], "big")
            messages += 1
            octets += size + 2
    return Axfr(time.perf_counter() - start, messages, octets)


def ixfr_size(port: int, serial: int) -> tuple[int, int]:
    """(octets, answer records) of the IXFR answer from ``serial`` (one message expected)."""
    q = dns.message.make_query(ORIGIN, "IXFR")
    q.authority.append(dns.rrset.from_text(ORIGIN, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
    wire = q.to_wire()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        message = _recv(sock, int.from_bytes(_recv(sock, 2), "big"))
    return len(message), int.from_bytes(message[6:8], "big")


def soa_serial(port: int, origin: str = ORIGIN) -> int | None:
    try:
        r = dns.query.udp(dns.message.make_query(origin, "SOA"), "127.0.0.1", port=port,
                          timeout=0.5)
    except Exception:
        return None
    return r.answer[0][0].serial if r.answer else None


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB of ``pid``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


@dataclass
class XfrRow:
    name: str
    load_seconds: float
    runs: list[Axfr]
    cpu: float  # seconds per AXFR
    rss_before: int
    peak: int
    ixfr: tuple[int, int] | None = None
    note: str = ""


def measure(name: str, pid: int, port: int, records: int, reps: int) -> tuple[list[Axfr], float]:
    before = process_tree(pid)
    runs = [axfr(port, records) for _ in range(reps)]
    return runs, cpu_seconds(before, process_tree(pid)) / reps


def bench_dnsserve(tmp: Path, zone: Path, records: int, reps: int) -> XfrRow:
    work = tmp / "dnsserve"
    (work / "zones").mkdir(parents=True)
    (work / "zones" / f"{ORIGIN}zone").write_text(zone.read_text())
    config = work / "dnsserve.toml"
    config.write_text(f'[server]\nzones = "zones"\nstate = "state.db"\nreload_timeout = 1800.0\n'
                      f'\n[[zone]]\n'
                      f'name = "{ORIGIN}"\nallow_transfer = ["127.0.0.1/32"]\n')
    started = time.perf_counter()
    server = start_server(work, "-c", str(config), zones=None, ready_seconds=1800)
    try:
        wait_for("dnsserve to serve the zone", lambda: soa_serial(server.port), seconds=600,
                 poll=0.3)
        load = time.perf_counter() - started
        rss, _ = memory_kb(server.proc.pid)
        runs, cpu = measure("dnsserve", server.proc.pid, server.port, records, reps)
        _, peak = memory_kb(server.proc.pid)
        (work / "zones" / f"{ORIGIN}zone").write_text(zone_text(records, 2, changed=True))
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for("dnsserve to serve serial 2", lambda: soa_serial(server.port),
                 lambda s: s == 2, seconds=1800, poll=1.0)
        return XfrRow("dnsserve", load, runs, cpu, rss, peak, ixfr_size(server.port, 1))
    finally:
        server.stop()


def bench_peer(name: str, tmp: Path, zone: Path, records: int, reps: int) -> XfrRow:
    work = tmp / name
    work.mkdir()
    local = work / f"{ORIGIN}zone"
    local.write_text(zone.read_text())
    start = knot_primary if name == "knot" else nsd_primary
    started = time.perf_counter()
    peer = start(work, {ORIGIN: local})
    try:
        wait_zones(peer, [ORIGIN], seconds=300)
        load = time.perf_counter() - started
        rss, _ = memory_kb(peer.proc.pid)
        runs, cpu = measure(name, peer.proc.pid, peer.port, records, reps)
        _, peak = memory_kb(peer.proc.pid)
        row = XfrRow(name, load, runs, cpu, rss, peak)
        if name == "knot":
            local.write_text(zone_text(records, 2, changed=True))
            knotc = find_binary("knotc")
            if knotc is not None:
                subprocess.run([knotc, "-c", str(peer.config), "zone-reload", ORIGIN],
                               capture_output=True, timeout=120, check=False)
                wait_for("knot to serve serial 2", lambda: soa_serial(peer.port),
                         lambda s: s == 2, seconds=1800, poll=1.0)
                row.ixfr = ixfr_size(peer.port, 1)
        else:
            row.note = "NSD 4.6 keeps no differences of zone files: no IXFR"
        return row
    finally:
        peer.stop()


def xfr_report(rows: list[XfrRow], records: int, reps: int, argv: list[str],
               load: tuple[str, str]) -> str:
    info = machine_info(sys.executable)
    out = [
        "## Zone transfers out (AXFR, IXFR)", "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with "
        f"`{shlex.join(argv)}` on {info['nproc']} CPUs ({info['cpu']}); {info['knotd']}, "
        f"{info['nsd']}. Load average at start / end: {load[0]} / {load[1]} "
        "(the machine is shared with other engineers' work: other processes' load shows there; "
        "times are noisy).", "",
        f"One generated zone of {records:,} records, AXFR'd {reps} time(s) from each server "
        "over loopback TCP by a raw client (messages counted, not parsed). CPU is the "
        "server's process tree per AXFR. Memory: resident before the transfers, and the "
        "process's peak (VmHWM) after them.", "",
        "| server | zone load s | AXFR s (median) | vs Knot | server CPU s/AXFR | messages "
        "| MB | RSS MB before | peak MB | IXFR after 1 change |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    knot = next((r for r in rows if r.name == "knot"), None)
    knot_t = statistics.median(x.seconds for x in knot.runs) if knot else None
    for r in rows:
        t = statistics.median(x.seconds for x in r.runs)
        ratio = f"{t / knot_t:.1f}x" if knot_t else "-"
        ixfr = f"{r.ixfr[0]} B, {r.ixfr[1]} records" if r.ixfr else (r.note or "-")
        out.append(
            f"| {r.name} | {r.load_seconds:.1f} | {t:.3f} | {ratio} | {r.cpu:.3f} | "
            f"{r.runs[0].messages} | {r.runs[0].octets / 1e6:.2f} | {r.rss_before / 1024:.0f} "
            f"| {r.peak / 1024:.0f} | {ixfr} |"
        )
    out += ["", "The IXFR after one changed A record (and the new serial) carries the "
            "four-part difference sequence: new SOA, old SOA, the removed A, new SOA, the "
            "added A, new SOA."]
    return "\n".join(out) + "\n"


# -- publish mode --------------------------------------------------------------------


def a_set(port: int) -> frozenset[str]:
    try:
        r = dns.query.udp(dns.message.make_query(f"www.{PUB_ORIGIN}", "A"), "127.0.0.1",
                          port=port, timeout=0.3)
    except Exception:
        return frozenset()
    return frozenset(rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.A
                     for rd in rrset)


def time_until(cond: Callable[[], bool], limit: float = 60.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if cond():
            return time.perf_counter() - start
        time.sleep(0.005)
    raise TimeoutError("no change within the limit")


def bench_publish(tmp: Path, cycles: int) -> list[tuple[str, float, float]]:
    work = tmp / "publish"
    (work / "zones").mkdir(parents=True)
    (work / "zones" / f"{PUB_ORIGIN}zone").write_text(
        f"$ORIGIN {PUB_ORIGIN}\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\n"
        f"ns1 A 127.0.0.1\nwww A {MEMBERS[0]}\nwww A {MEMBERS[1]}\n")
    check_port = common_port(MEMBERS)
    knot_port = free_port()
    config = work / "dnsserve.toml"
    config.write_text(f"""[server]
zones = "zones"
state = "state.db"

[[monitor]]
name = "tcp"
kind = "tcp"
port = {check_port}
interval = 0.25
timeout = 0.2
rise = 1
fall = 1

[[pool]]
owner = "www.{PUB_ORIGIN}"
type = "A"
monitor = "tcp"
publish = true
members = [{{ address = "{MEMBERS[0]}" }}, {{ address = "{MEMBERS[1]}" }}]

[[key]]
name = "xfr-key"
secret = "{SECRET}"

[[zone]]
name = "{PUB_ORIGIN}"
transfer_keys = ["xfr-key"]
notify = ["127.0.0.1:{knot_port}"]
publish_min_interval = 0.5
""")
    listeners = [TcpListener(m, check_port).open() for m in MEMBERS]
    server: ServerProc | None = None
    knot: Peer | None = None
    rows = []
    both, one = frozenset(MEMBERS), frozenset(MEMBERS[:1])
    try:
        server = start_server(work, "-c", str(config), zones=None)
        knot = knot_secondary(work / "knot", [PUB_ORIGIN],
                              Primary("127.0.0.1", server.port, "xfr-key", "hmac-sha256", SECRET),
                              port=knot_port)
        wait_serving(knot, [PUB_ORIGIN])
        ours, theirs = server.port, knot.port
        wait_for("knot to serve both", lambda: a_set(theirs), lambda s: s == both, seconds=30)
        for _ in range(cycles):
            for what, act, want in (("down", listeners[1].close, one),
                                    ("up", listeners[1].open, both)):
                time.sleep(1.0)  # past publish_min_interval: no coalescing delay
                start = time.perf_counter()
                act()
                t_ours = time_until(lambda want=want: a_set(ours) == want)
                time_until(lambda want=want: a_set(theirs) == want)
                rows.append((what, t_ours, time.perf_counter() - start))
    finally:
        if knot is not None:
            knot.stop()
        if server is not None:
            server.stop()
        for listener in listeners:
            listener.close()
    return rows


def publish_report(rows: list[tuple[str, float, float]], argv: list[str],
                   load: tuple[str, str]) -> str:
    info = machine_info(sys.executable)
    ours = [r[1] for r in rows]
    knot = [r[2] for r in rows]
    lines = [
        "## Publish mode: a member's change to a Knot secondary's answer", "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{shlex.join(argv)}`; "
        f"{info['knotd']}. Load average at start / end: {load[0]} / {load[1]} (a shared "
        "machine: noisy).", "",
        "A two-member A pool with `publish = true` behind a TCP check (interval 0.25 s, "
        "timeout 0.2 s, fall 1, rise 1; `publish_min_interval` 0.5 s, and each change comes "
        "1 s after the last, so nothing waits for coalescing); a Knot secondary with TSIG, "
        "NOTIFY from dnsserve. Time from closing (or reopening) a member's listener until "
        "dnsserve's own answer changes, and until Knot's does (NOTIFY, Knot's signed SOA "
        "check, IXFR), polled every 5 ms.", "",
        "| | changes | median s | max s |", "|---|---|---|---|",
        f"| dnsserve answers the new set | {len(ours)} | {statistics.median(ours):.2f} "
        f"| {max(ours):.2f} |",
        f"| Knot secondary answers it | {len(knot)} | {statistics.median(knot):.2f} "
        f"| {max(knot):.2f} |",
        "", "Detection (one failed check, up to one interval plus the timeout) dominates; "
        "publishing, NOTIFY and Knot's IXFR add the difference between the two rows.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10,000 records, 1 AXFR, 2 cycles")
    ap.add_argument("--records", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--cycles", type=int, default=None)
    ap.add_argument("--only", choices=("xfr", "publish"), default=None)
    add_report_options(ap)
    args = ap.parse_args(argv)
    shown = shown_argv("bench_xfr", sys.argv[1:] if argv is None else argv)
    records = args.records or (10_000 if args.quick else 100_000)
    reps = args.reps or (1 if args.quick else 3)
    cycles = args.cycles or (2 if args.quick else 5)
    with workdir("bench-xfr-", args.keep) as tmp:
        if args.only in (None, "xfr"):
            zone = tmp / "zone.txt"
            zone.write_text(zone_text(records, 1))
            load_start = loadavg()
            rows = [bench_dnsserve(tmp, zone, records, reps)]
            for name, binary in (("knot", "knotd"), ("nsd", "nsd")):
                if find_binary(binary):
                    rows.append(bench_peer(name, tmp, zone, records, reps))
            report = xfr_report(rows, records, reps, shown, (load_start, loadavg()))
            print(report)
            if not args.no_report:
                write_section("xfr", report, args.out)
        if args.only in (None, "publish"):
            load_start = loadavg()
            prow = bench_publish(tmp, cycles)
            report = publish_report(prow, shown, (load_start, loadavg()))
            print(report)
            if not args.no_report:
                write_section("publish", report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
