"""Sign time of a 100k-record zone: dnsserve's online signing beside dnssec-signzone and Knot.

Owns measuring what online signing costs (issue 8's benchmark): one zone of
about 100,000 records (``testkit.zonegen``, ``--names`` owners, same seed as
the other benchmarks), one KSK and one ZSK of one algorithm (ECDSAP256SHA256;
and Ed25519, each in turn), and three signers:

- dnsserve: in this process, the pure sign phase (``zones.rrsign.sign_records``
  on the records as read) and a whole load (read, sign, compile: what a start
  does); then ``dnsserve serve`` started with ``[[zone]] dnssec``, from its
  start until the zone's SOA comes back with an RRSIG (DO set), and a reload
  (SIGHUP) after one record changed, until that record is answered signed;
- ``dnssec-signzone`` with the same key files (one thread, ``-n 1``; and its
  default threads with the post-signing verification), then again on its
  own output with that one record changed (it keeps signatures still valid);
- ``knotd`` with ``dnssec-signing: on`` (a policy of the same algorithm, its
  own keys, one signing thread, loopback only), from its start until the SOA
  is answered with an RRSIG, then a reload (``knotc zone-reload``) after the
  same change, until the record is answered signed.

CPU time is the processes' own (user+sys; for servers, their process tree
from /proc, reaped children included), best of ``--repeats``: the machine may
be shared. Wall time is shown beside it. Every process started here is
stopped by PID; traffic only to 127.0.0.1. Section "dnssec-sign" of
benchmarks/RESULTS.md.

    .venv/bin/python -m benchmarks.bench_dnssec_sign                 # writes RESULTS.md
    .venv/bin/python -m benchmarks.bench_dnssec_sign --names 2000 --no-report
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype

from benchmarks.report import add_report_options, machine_info, shown_argv, workdir, write_section
from dnsserve.zones.dnskeys import generate, read_keys
from dnsserve.zones.load import load_zones
from dnsserve.zones.online import Signing
from dnsserve.zones.parse import parse_zone_file
from dnsserve.zones.rrsign import sign_records
from testkit import zonegen
from testkit.cpu import cpu_seconds, loadavg, process_tree
from testkit.server import free_port

DAY = 86400
VALIDITY, REFRESH = 14 * DAY, 7 * DAY  # dnsserve's defaults; Knot's rrsig-lifetime 14 days
NAMES = 62_500  # zonegen owners giving about 100,000 records
READY_SECONDS = 600.0
POLL = 0.02
CHANGED = "www-0000"  # zonegen's first owner: an A record changed by the reload
ALGORITHMS = {"ECDSAP256SHA256": "ecdsap256sha256", "ED25519": "ed25519"}  # ours: Knot's


@dataclass
class Timing:
    cpu: float  # seconds of CPU, best of the repeats
    wall: float  # seconds, the same run
    note: str = ""


def best(runs: list[Timing]) -> Timing:
    return min(runs, key=lambda t: t.cpu)


# -- dnsserve in this process ---------------------------------------------------------


def inprocess(zone_dir: Path, zone: Path, origin: dns.name.Name, keys: Path,
              repeats: int, algorithm: str) -> dict[str, Timing]:
    found = read_keys(keys, origin, algorithm)
    parsed = parse_zone_file(zone, origin, include_dir=zone_dir)
    out: dict[str, Timing] = {}
    runs = []
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        signed = sign_records(parsed, found, origin, now=time.time(), validity=VALIDITY,
                              refresh=REFRESH)
        runs.append(Timing(time.process_time() - cpu, time.perf_counter() - wall,
                           f"{signed.signed} signatures"))
    out["sign phase"] = best(runs)
    signing = {origin: Signing(str(keys), VALIDITY, REFRESH, algorithm)}
    runs = []
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        loaded = load_zones(zone_dir, log_problems=False, signing=signing)
        runs.append(Timing(time.process_time() - cpu, time.perf_counter() - wall))
    assert origin in loaded.tables, loaded.problems[:3]
    out["load (read, sign, compile)"] = best(runs)
    return out


# -- processes ----------------------------------------------------------------------


def signed_answer(port: int, name: str, rdtype: str, want: str | None = None) -> bool:
    """Whether ``name``/``rdtype`` is answered with its RRSIG (and ``want`` in the answer)."""
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    try:
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
    except (dns.exception.DNSException, OSError):
        return False
    if reply.flags & dns.flags.TC:
        try:
            reply = dns.query.tcp(query, "127.0.0.1", port=port, timeout=2.0)
        except (dns.exception.DNSException, OSError):
            return False
    types = {rrset.rdtype for rrset in reply.answer}
    text = " ".join(rrset.to_text() for rrset in reply.answer)
    return dns.rdatatype.RRSIG in types and (want is None or want in text)


def wait_signed(proc: subprocess.Popen[bytes], port: int, name: str, rdtype: str,
                want: str | None = None) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while not signed_answer(port, name, rdtype, want):
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no signed answer for {name} {rdtype} in {READY_SECONDS} s")
        time.sleep(POLL)


@contextlib.contextmanager
def started(cmd: list[str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


def serve_and_reload(cmd: list[str], work: Path, port: int, origin: str, zone: Path,
                     reload: Callable[[subprocess.Popen[bytes]], None]) -> tuple[Timing, Timing]:
    """(start to the signed SOA, reload of one changed record to it answered signed)."""
    text = zone.read_text()
    with started(cmd, work, work / "server.log") as proc:
        wall = time.perf_counter()
        wait_signed(proc, port, origin, "SOA")
        start = Timing(cpu_seconds({}, process_tree(proc.pid)), time.perf_counter() - wall)
        zone.write_text(changed_zone(text))
        before = process_tree(proc.pid)
        wall = time.perf_counter()
        reload(proc)
        wait_signed(proc, port, f"{CHANGED}.{origin}", "A", "10.255.255.254")
        again = Timing(cpu_seconds(before, process_tree(proc.pid)), time.perf_counter() - wall)
    zone.write_text(text)
    return start, again


def changed_zone(text: str) -> str:
    """The zone with its serial bumped and CHANGED's first A record changed."""
    out = []
    done = False
    for line in text.splitlines():
        if " SOA " in line and line.startswith("@"):
            words = line.split()
            at = words.index("SOA") + 3
            words[at] = str(int(words[at]) + 1)
            line = " ".join(words)
        elif not done and line.startswith(f"{CHANGED} ") and " A " in line:
            line = f"{CHANGED} IN A 10.255.255.254"
            done = True
        out.append(line)
    assert done, f"no A record of {CHANGED} in the zone"
    return "\n".join(out) + "\n"


def dnsserve_server(work: Path, wl: zonegen.Workload, keys: Path,
                    algorithm: str) -> tuple[Timing, Timing]:
    work.mkdir(parents=True, exist_ok=True)
    port = free_port("127.0.0.1")
    config = work / "dnsserve.toml"
    config.write_text(f'[[zone]]\nname = "{wl.origin}"\n'
                      f'dnssec = {{ keys = "{keys}", algorithm = "{algorithm}",'
                      f' validity = "14d", refresh = "7d" }}\n')
    cmd = [sys.executable, "-m", "dnsserve", "serve", "-c", str(config), "--zones",
           str(wl.zone_dir), "--listen", f"127.0.0.1:{port}", "--workers", "1",
           "--control", f"127.0.0.1:{free_port('127.0.0.1')}"]
    return serve_and_reload(cmd, work, port, wl.origin, wl.zone_file,
                            lambda proc: os.kill(proc.pid, signal.SIGHUP))


def knot_server(work: Path, wl: zonegen.Workload, algorithm: str) -> tuple[Timing, Timing]:
    work.mkdir(parents=True, exist_ok=True)
    port = free_port("127.0.0.1")
    storage = work / "storage"
    storage.mkdir(exist_ok=True)
    zone = work / wl.zone_file.name
    zone.write_text(wl.zone_file.read_text())
    conf = work / "knot.conf"
    conf.write_text(f"""# generated by benchmarks/bench_dnssec_sign.py: loopback only
server:
    rundir: "{work}"
    pidfile: "{work}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "{work}/knot.sock"
log:
  - target: stderr
    any: info
database:
    storage: "{storage}"
policy:
  - id: bench
    algorithm: {ALGORITHMS[algorithm]}
    signing-threads: 1
    rrsig-lifetime: 14d
    rrsig-refresh: 7d
template:
  - id: default
    storage: "{storage}"
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
    dnssec-signing: on
    dnssec-policy: bench
zone:
  - domain: "{wl.origin}"
    file: "{zone}"
""")
    knotc = shutil.which("knotc") or "/usr/sbin/knotc"

    def reload(_: subprocess.Popen[bytes]) -> None:
        subprocess.run([knotc, "-s", str(work / "knot.sock"), "zone-reload", wl.origin],
                       capture_output=True, timeout=60, check=True)

    knotd = shutil.which("knotd") or "/usr/sbin/knotd"
    return serve_and_reload([knotd, "-c", str(conf)], work, port, wl.origin, zone, reload)


# -- dnssec-signzone ----------------------------------------------------------------


def timed(cmd: list[str], cwd: Path) -> Timing:
    wall = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err[-500:]}")
    return Timing(usage.ru_utime + usage.ru_stime, time.perf_counter() - wall)


def signzone(work: Path, wl: zonegen.Workload, keys: Path, repeats: int) -> dict[str, Timing]:
    tool = shutil.which("dnssec-signzone") or "/usr/sbin/dnssec-signzone"
    work.mkdir(parents=True, exist_ok=True)
    includes = "".join(f"$INCLUDE {p}\n" for p in sorted(keys.glob("*.key")))
    unsigned = work / "zone.unsigned"
    unsigned.write_text(wl.zone_file.read_text() + includes)
    signed = work / "zone.signed"
    base = [tool, "-q", "-K", str(keys), "-o", wl.origin, "-e", f"+{VALIDITY}", "-f"]
    out: dict[str, Timing] = {}
    out["one thread, no verify (-n 1 -P)"] = best(
        [timed([*base, str(signed), "-n", "1", "-P", str(unsigned)], work)
         for _ in range(repeats)])
    out[f"default ({os.cpu_count()} threads, verify)"] = best(
        [timed([*base, str(signed), str(unsigned)], work) for _ in range(repeats)])
    again = work / "zone.changed"
    owner = f"{CHANGED}.{wl.origin}\t"
    lines = signed.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(owner) and "IN A\t" in line)
    lines[at] = f"{owner}3600\tIN A\t10.255.255.254"
    again.write_text("\n".join(lines) + "\n")
    out["one record changed, on its signed output (-n 1 -P -N increment)"] = best(
        [timed([*base, str(work / "zone.resigned"), "-n", "1", "-P", "-N", "increment",
                str(again)], work) for _ in range(repeats)])
    return out




# -- report -------------------------------------------------------------------------


# (what, dnsserve's row, the peer's row): the like-for-like ratios of the report
PAIRS = (
    ("sign the whole zone, one thread", "dnsserve: sign phase (in process)",
     "dnssec-signzone: one thread, no verify (-n 1 -P)"),
    ("start to the first signed answer", "dnsserve serve: start to signed SOA",
     "knotd: start to signed SOA"),
    ("one record changed", "dnsserve serve: reload, one record changed",
     "knotd: reload, one record changed"),
    ("one record changed", "dnsserve serve: reload, one record changed",
     "dnssec-signzone: one record changed, on its signed output (-n 1 -P -N increment)"),
)


def render(info: dict[str, str], argv: list[str], records: int,
           runs: dict[str, dict[str, Timing]], when: str, load: tuple[str, str]) -> str:
    lines = [
        "## DNSSEC: signing a 100k-record zone (dnsserve, dnssec-signzone, Knot)",
        "",
        f"Run {when} on {info['nproc']} CPUs ({info['cpu']}), load {load[0]} -> {load[1]};"
        f" Python {info['python']}, {info['knotd']}. Command:",
        "",
        f"    {' '.join(argv)}",
        "",
        f"Zone: testkit.zonegen, {records:,} records; one KSK and one ZSK; NSEC; signatures"
        " valid 14 days; the same key files for dnsserve and dnssec-signzone, Knot its own"
        " keys of the same algorithm (one signing thread). CPU seconds are the processes'"
        " own (user+sys; a server's whole process tree, its reload child included), best"
        " of the repeats." + (" The machine was shared with other work while measured (load"
                              " over 1 at the start): the figures are noisy."
                              if float(load[0].split()[0]) > 1.0 else ""),
        "",
    ]
    for algorithm, results in runs.items():
        lines += [f"### {algorithm}", "",
                  "| what | dnsserve CPU s | peer | peer CPU s | dnsserve / peer |",
                  "|---|---:|---|---:|---:|"]
        for what, ours, theirs in PAIRS:
            if ours in results and theirs in results:
                a, b = results[ours].cpu, results[theirs].cpu
                ratio = f"{a / b:.2f}x" if b > 0 else "- (peer under a clock tick)"
                lines.append(f"| {what} | {a:.2f} | {theirs.split(':')[0]} | {b:.2f} |"
                             f" {ratio} |")
        lines += ["", "| every timing | CPU s | wall s | note |", "|---|---:|---:|---|"]
        lines += [f"| {name} | {t.cpu:.2f} | {t.wall:.2f} | {t.note} |"
                  for name, t in results.items()]
        lines.append("")
    lines += [
        "Where dnsserve's time goes (cProfile of the ECDSA sign phase, 2026-12-02): about"
        " three quarters in OpenSSL's signing (25-35 µs a signature, deterministic ECDSA"
        " as dnspython signs), the rest building the records in Python. A start adds"
        " reading (0.2 s) and compiling (1.4 s) the signed zone. A one-record reload signs"
        " two RRsets (the record's and the SOA) and keeps the other 148,000 signatures;"
        " its time is reading, reusing (hashing every RRset), compiling and comparing"
        " the whole zone again. What more could be done: sign in several processes (the"
        " signatures are independent; on two cores about half the wall time); an"
        " incremental reload (sign and compile only the changed names, as Knot does with"
        " its journal); jitter in the expirations, so that re-signing at `refresh` is"
        " spread instead of whole.",
        "",
    ]
    return "\n".join(lines)


def measure(tmp: Path, wl: zonegen.Workload, algorithm: str,
            args: argparse.Namespace) -> dict[str, Timing]:
    origin = dns.name.from_text(wl.origin)
    keys = tmp / "keys"
    generate(origin, algorithm, keys)
    results: dict[str, Timing] = {}
    for name, t in inprocess(wl.zone_dir, wl.zone_file, origin, keys, args.repeats,
                             algorithm).items():
        results[f"dnsserve: {name} (in process)"] = t
        print(algorithm, name, t, flush=True)
    if "serve" not in args.skip:
        runs = [dnsserve_server(tmp / "serve", wl, keys, algorithm)
                for _ in range(args.repeats)]
        results["dnsserve serve: start to signed SOA"] = best([r[0] for r in runs])
        results["dnsserve serve: reload, one record changed"] = best([r[1] for r in runs])
        print(algorithm, "serve", results["dnsserve serve: start to signed SOA"], flush=True)
    if "signzone" not in args.skip:
        for name, t in signzone(tmp / "signzone", wl, keys, args.repeats).items():
            results[f"dnssec-signzone: {name}"] = t
            print(algorithm, name, t, flush=True)
    if "knot" not in args.skip:
        runs = [knot_server(tmp / f"knot{i}", wl, algorithm) for i in range(args.repeats)]
        results["knotd: start to signed SOA"] = best([r[0] for r in runs])
        results["knotd: reload, one record changed"] = best([r[1] for r in runs])
        print(algorithm, "knot", results["knotd: start to signed SOA"], flush=True)
    return results


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=NAMES, help=f"zonegen owners ({NAMES})")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of each timing (3)")
    ap.add_argument("--algorithm", choices=sorted(ALGORITHMS), action="append",
                    help="ECDSAP256SHA256 and ED25519 unless given (repeatable)")
    ap.add_argument("--skip", action="append", default=[], choices=["knot", "signzone", "serve"],
                    help="leave a signer out (repeatable)")
    add_report_options(ap)
    args = ap.parse_args(argv)
    algorithms = args.algorithm or ["ECDSAP256SHA256", "ED25519"]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = loadavg()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with workdir("dnsserve-bench-sign-", args.keep) as tmp:
        wl = zonegen.generate(tmp, names=args.names, queries=10)
        records = sum(1 for line in wl.zone_file.read_text().splitlines()
                      if line and not line.startswith("$"))
        runs = {a: measure(tmp / a, wl, a, args) for a in algorithms}
        report = render(machine_info(sys.executable), shown_argv("bench_dnssec_sign", argv),
                        records, runs, when, (load_start, loadavg()))
        print(report)
        if not args.no_report:
            write_section("dnssec-sign", report, args.out)
            print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
