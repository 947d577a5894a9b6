"""Flip-to-signed-answer time: what a health flip costs more in an online-signed zone.

In-process, no sockets: a zone with N pools (``pool-N A``, three members
each, policy "all", so three variants) is loaded twice, unsigned and signed
online (``[[zone]] dnssec``: keys made by ``zones.dnskeys.generate``, the
zone signed at load). One pool loses a member, then gets it back; timed per
flip, from the new selection to the first answer served with it:

- unsigned: ``Snapshot.with_selections`` + ``Engine.swap`` + the first
  answer of the pool's name (plain query);
- signed: ``PoolSigner.sign`` (the owner signs the pool's new variants) +
  the same + the first DO answer (its DO forms are built then, with the
  signatures the selection carries).

After each flip the DO answer is checked: the down member is not served and
an RRSIG is. Median and best of ``--repeat`` flips, at ``--pools`` (default
10 and 1,000).

    .venv/bin/python -m benchmarks.bench_dnssec_flip              # writes RESULTS.md
    .venv/bin/python -m benchmarks.bench_dnssec_flip --no-report --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype

from benchmarks.bench_snapshot import down, make_pools
from benchmarks.report import RESULTS, machine_info, shown_argv, write_section
from dnsserve.answer.engine import Engine
from dnsserve.answer.policies import select
from dnsserve.answer.snapshot import build_snapshot
from dnsserve.health.model import HealthView
from dnsserve.zones.dnskeys import generate
from dnsserve.zones.load import load_zones
from dnsserve.zones.online import Signing
from dnsserve.zones.poolsign import PoolSigner

ORIGIN = dns.name.from_text("bench.example.")
MEMBERS = 3


def write_zone(directory: Path, pools: int) -> Path:
    zones = directory / "zones"
    zones.mkdir(parents=True)
    lines = ["$TTL 300", "@ SOA ns1 hostmaster 1 7200 3600 1209600 300", "@ NS ns1",
             "ns1 A 192.0.2.1", "www A 192.0.2.2"]
    lines += [f"pool-{i:05d} A 10.{250 + j}.{(i >> 8) & 255}.{i & 255}"
              for i in range(pools) for j in range(MEMBERS)]
    (zones / "bench.example.zone").write_text("\n".join(lines) + "\n")
    return zones


def ask(engine: Engine, qname: dns.name.Name, do: bool) -> dns.message.Message:
    query = dns.message.make_query(qname, "A", want_dnssec=do)
    return dns.message.from_wire(engine.respond(query.to_wire(), tcp=False) or b"")


@dataclass
class Row:
    pools: int
    unsigned: list[float]
    signed: list[float]


def flips(count: int, repeat: int, work: Path) -> Row:
    zones = write_zone(work, count)
    keys = work / "keys"
    generate(ORIGIN, "ECDSAP256SHA256", keys)
    signing = {ORIGIN: Signing(str(keys), 14 * 86400, 7 * 86400)}
    tables = {
        "unsigned": dict(load_zones(zones, log_problems=False).tables),
        "signed": dict(load_zones(zones, log_problems=False, signing=signing).tables),
    }
    signer = PoolSigner.read(signing)
    # the bench_snapshot pools, in this zone
    pools = [p.__class__(dns.name.from_text(p.owner.labels[0].decode(), ORIGIN), p.rdtype,
                         p.policy, p.members) for p in make_pools(count)]
    up = HealthView()
    times: dict[str, list[float]] = {"unsigned": [], "signed": []}
    for kind, zone_tables in tables.items():
        sign = kind == "signed"
        selections = {(p.owner, p.rdtype): select(p, up, 0.0) for p in pools}
        if sign:
            selections = signer.sign(selections, {}, time.time())
        engine = Engine(build_snapshot(zone_tables, selections=selections))
        pool = pools[0]
        key = (pool.owner, pool.rdtype)
        previous = selections[key]
        for step in range(2 * repeat):
            view = down(pool.members[0]) if step % 2 == 0 else up
            chosen = select(pool, view, 1.0 + step, previous)
            start = time.perf_counter()
            change = {key: chosen}
            if sign:
                change = signer.sign(change, {key: previous}, time.time())
            engine.swap(engine.snapshot.with_selections(change))
            reply = ask(engine, pool.owner, do=sign)
            times[kind].append(time.perf_counter() - start)
            previous = change[key]
            got = {rd.to_text() for rrset in reply.answer for rd in rrset
                   if rrset.rdtype == dns.rdatatype.A}
            want = {m.value for m in pool.members[1:]} if step % 2 == 0 else {
                m.value for m in pool.members}
            assert got == want, (kind, step, got)
            assert not sign or any(r.rdtype == dns.rdatatype.RRSIG for r in reply.answer)
    return Row(count, times["unsigned"], times["signed"])


def render(rows: list[Row], argv: list[str], when: str) -> str:
    info = machine_info(sys.executable)
    out = [
        "## DNSSEC: flip to signed answer (online signing)", "",
        f"Run {when}; {info['cpu']}, {info['nproc']} CPUs (shared), Python {info['python']}.",
        f"Command: `{' '.join(argv)}`", "",
        "One pool of N loses a member (then gets it back), in-process: the new selection "
        "to the first answer served with it. Unsigned: with_selections + swap + first "
        "answer. Signed (ECDSA P-256, online-signed zone): the owner signs the pool's "
        "variants (3 RRSIGs) + the same + the first DO answer. Median (best) of the flips.",
        "",
        "| pools | unsigned ms | signed ms | added ms |", "|---:|---:|---:|---:|",
    ]
    for row in rows:
        u, s = statistics.median(row.unsigned), statistics.median(row.signed)
        out.append(f"| {row.pools:,} | {1e3 * u:.2f} ({1e3 * min(row.unsigned):.2f}) |"
                   f" {1e3 * s:.2f} ({1e3 * min(row.signed):.2f}) | {1e3 * (s - u):.2f} |")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pools", default="10,1000", help="comma-separated pool counts")
    ap.add_argument("--repeat", type=int, default=10, help="flips down and back up, each")
    ap.add_argument("--out", type=Path, default=RESULTS, help="report file")
    ap.add_argument("--no-report", action="store_true", help="print only")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-dnssec-flip-") as tmp:
        for count in (int(c) for c in args.pools.split(",")):
            rows.append(flips(count, args.repeat, Path(tmp) / str(count)))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report = render(rows, shown_argv("bench_dnssec_flip", argv), when)
    print(report)
    if not args.no_report:
        write_section("dnssec-flip", report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
