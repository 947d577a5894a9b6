"""Micro-benchmark of snapshot building and pool flips: no sockets, no event loop.

Owns timing ``build_snapshot`` (startup and reload) and
``Snapshot.with_selections`` (one health change on the main loop) as the
number of pools grows. The zone is the benchmark zone (zonegen, same seed as
bench_core.py) plus, per pool, ``pool-N A`` (the pool's static records),
``alias-N CNAME pool-N`` and, for every tenth pool, ``mx-N MX 10 pool-N``: so
each pool has two or three prebuilt answers that use it. Each pool has three
members, policy "all", so three variants.

Timed, best of ``--repeat``:

- build: ``build_snapshot`` with every pool selected (all members up);
- flip: one pool loses a member (then gets it back), ``with_selections`` of
  that one pool;
- reason: one pool's selection changes only its reason (monitor suspicion),
  which must not rebuild anything.

After each flip the engine's answers for the flipped pool are checked (the
down member is never served), so a fast but wrong build cannot pass. It must
not change the engine or the snapshot module.

    .venv/bin/python -m benchmarks.bench_snapshot                    # 10/100/1000 pools
    .venv/bin/python -m benchmarks.bench_snapshot --pools 10,100 \\
        --snapshot /tmp/old/snapshot.py                              # another snapshot.py
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType, ModuleType

import dns.message
import dns.name
import dns.rdatatype

from dnsserve.answer.engine import Engine
from dnsserve.answer.policies import Policy, Pool, PoolMember, Selection, select
from dnsserve.health.model import HealthView, MemberHealth, MemberId, State
from dnsserve.zones.load import load_zones
from dnsserve.zones.table import ZoneTable
from testkit import zonegen

MEMBERS = 3
ORIGIN = dns.name.from_text(zonegen.ORIGIN)


def snapshot_module(path: str | None) -> ModuleType:
    """``dnsserve.answer.snapshot``, or the same module loaded from another file."""
    if path is None:
        from dnsserve.answer import snapshot

        return snapshot
    spec = importlib.util.spec_from_file_location("bench_snapshot_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


def _member_value(i: int, j: int) -> str:
    return f"10.{250 + j}.{(i >> 8) & 255}.{i & 255}"  # distinct for i < 65536


def write_zone(directory: Path, pools: int) -> Path:
    """The benchmark zone plus each pool's owner, an alias of it and some MX."""
    workload = zonegen.generate(directory, queries=10)
    lines = []
    for i in range(pools):
        lines.append(f"pool-{i:05d} IN A {_member_value(i, 0)}")
        lines.append(f"alias-{i:05d} IN CNAME pool-{i:05d}")
        if i % 10 == 0:
            lines.append(f"mx-{i:05d} IN MX 10 pool-{i:05d}")
    with workload.zone_file.open("a") as f:
        f.write("\n".join(lines) + "\n")
    return workload.zone_dir


def make_pools(count: int) -> list[Pool]:
    return [
        Pool(
            dns.name.from_text(f"pool-{i:05d}", ORIGIN),
            dns.rdatatype.A,
            Policy.ALL,
            tuple(
                PoolMember(_member_value(i, j), MemberId("bench", f"{i}/{j}"))
                for j in range(MEMBERS)
            ),
        )
        for i in range(count)
    ]


def down(*members: PoolMember) -> HealthView:
    states = {m.member: MemberHealth(State.DOWN, 0.0) for m in members}
    return HealthView(members=MappingProxyType(states))


def best(repeat: int, run: Callable[[], object]) -> tuple[float, object]:
    """The fastest of ``repeat`` runs (seconds) and the last result."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return min(times), out


def served(engine: Engine, qname: dns.name.Name, n: int) -> set[str]:
    out: set[str] = set()
    for _ in range(n):
        query = dns.message.make_query(qname, "A")
        response = dns.message.from_wire(engine.respond(query.to_wire(), tcp=False) or b"")
        out |= {rd.to_text() for rrset in response.answer for rd in rrset
                if rrset.rdtype == dns.rdatatype.A}
    return out


@dataclasses.dataclass
class Row:
    pools: int
    answers: int
    build: float
    flip: float
    reason: float


def measure(
    module: ModuleType, tables: dict[dns.name.Name, ZoneTable], count: int, repeat: int
) -> Row:
    pools = make_pools(count)
    up = HealthView()
    selections = {(p.owner, p.rdtype): select(p, up, 0.0) for p in pools}
    build, snap = best(max(1, repeat // 2) if count >= 1000 else repeat,
                       lambda: module.build_snapshot(tables, selections=selections))
    if not pools:
        return Row(0, len(snap.answers), build, 0.0, 0.0)  # type: ignore[attr-defined]
    pool = pools[0]
    key = (pool.owner, pool.rdtype)
    lost = select(pool, down(pool.members[0]), 1.0, selections[key])
    back = select(pool, up, 2.0, lost)
    flips: list[float] = []
    current = snap
    for step in range(2 * repeat):
        change = {key: lost if step % 2 == 0 else back}
        start = time.perf_counter()
        current = current.with_selections(change)  # type: ignore[attr-defined]
        flips.append(time.perf_counter() - start)
        if step % 2 == 0:  # the down member is never served, the others are
            engine = Engine(current)  # type: ignore[arg-type]
            for name in (pool.owner, dns.name.from_text("alias-00000", ORIGIN)):
                got = served(engine, name, 4)
                assert got == {m.value for m in pool.members[1:]}, (name, got)
    suspect = dataclasses.replace(up, suspect=True)
    noted: Selection = select(pool, suspect, 3.0, back)
    reason, _ = best(repeat, lambda: current.with_selections({key: noted}))  # type: ignore[attr-defined]
    return Row(count, len(snap.answers), build, min(flips), reason)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", default="0,10,100,1000",
                        help="comma-separated pool counts (default 0,10,100,1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    parser.add_argument("--snapshot", help="time this snapshot.py file instead of the package's")
    args = parser.parse_args()
    module = snapshot_module(args.snapshot)
    counts = [int(c) for c in args.pools.split(",")]
    print(f"snapshot module: {module.__file__}")
    print(f"{'pools':>6} {'answers':>8} {'build s':>9} {'flip ms':>9} {'reason ms':>10}")
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        for count in counts:
            zone_dir = write_zone(Path(tmp) / str(count), count)
            tables = dict(load_zones(zone_dir, log_problems=False).tables)
            row = measure(module, tables, count, args.repeat)
            print(f"{row.pools:>6} {row.answers:>8} {row.build:>9.3f} "
                  f"{1e3 * row.flip:>9.2f} {1e3 * row.reason:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
