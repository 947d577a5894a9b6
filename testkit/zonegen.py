"""Benchmark inputs: one seeded zone of ~1,000 names and a dnsperf query file.

Owns the shape of the benchmark workload and nothing else: it writes files into
a directory it is given and never starts a server or touches the network. The
same seed gives byte-identical files, so runs on different days compare.

Query mix (per line of the dnsperf file, before 0x20 case mixing):

    A      hit on a name with A records          52 %
    AAAA   hit on a name with AAAA records       18 %
    A      on a CNAME (chain inside the zone)     6 %
    MX     on a name with MX (additional A)       4 %
    TXT    hit                                    3 %
    AAAA   on an A-only name (NODATA)             2 %
    A/AAAA NXDOMAIN (pool of 1,000 absent names) 15 %

10 % of query names have their letters' case randomised, as resolvers that use
0x20 do. The NXDOMAIN names come from a fixed pool, so a server that caches
misses warms up the way it does under ordinary traffic (not a random-subdomain
flood, which is a different benchmark).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

ORIGIN = "bench.example."
SEED = 20251126

_PREFIXES = ("www", "api", "app", "cdn", "db", "host", "img", "edge", "node", "svc")
_MIX: tuple[tuple[str, float], ...] = (
    ("a", 0.52),
    ("aaaa", 0.18),
    ("cname", 0.06),
    ("mx", 0.04),
    ("txt", 0.03),
    ("nodata", 0.02),
    ("nxdomain", 0.15),
)


@dataclass(frozen=True)
class Workload:
    """Where the files went and what they hold."""

    zone_dir: Path
    zone_file: Path
    query_file: Path
    origin: str
    names: int
    queries: int
    # Per-kind lists of (qname, qtype) for the engine micro-benchmark.
    samples: dict[str, list[tuple[str, str]]]


def _v4(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _v6(i: int) -> str:
    return f"2001:db8:{(i >> 16) & 0xFFFF:x}::{i & 0xFFFF:x}"


def _mix_case(rng: random.Random, name: str) -> str:
    return "".join(c.upper() if c.isalpha() and rng.random() < 0.5 else c for c in name)


def _zone_text(rng: random.Random, names: int) -> tuple[str, dict[str, list[str]]]:
    """The zone text and, per kind, the owner names (relative) usable for queries."""
    lines = [
        f"$ORIGIN {ORIGIN}",
        "$TTL 3600",
        "@ IN SOA ns1 hostmaster 2025112601 7200 3600 1209600 300",
        "@ IN NS ns1",
        "@ IN NS ns2",
        "@ IN A 192.0.2.10",
        "@ IN MX 10 mail1",
        "@ IN MX 20 mail2",
        '@ IN TXT "v=spf1 mx -all"',
        "ns1 IN A 192.0.2.1",
        "ns2 IN A 192.0.2.2",
        "mail1 IN A 192.0.2.25",
        "mail2 IN A 192.0.2.26",
        "mail2 IN AAAA 2001:db8::26",
    ]
    kinds: dict[str, list[str]] = {"a": [], "aaaa": [], "cname": [], "mx": [], "txt": []}
    kinds["a_only"] = []
    targets: list[str] = []
    for i in range(names):
        owner = f"{_PREFIXES[i % len(_PREFIXES)]}-{i:04d}"
        r = rng.random()
        if r < 0.55:  # A only, sometimes two addresses
            lines.append(f"{owner} IN A {_v4(i)}")
            if rng.random() < 0.3:
                lines.append(f"{owner} IN A {_v4(i + 100_000)}")
            kinds["a"].append(owner)
            kinds["a_only"].append(owner)
            targets.append(owner)
        elif r < 0.80:  # dual stack
            lines.append(f"{owner} IN A {_v4(i)}")
            lines.append(f"{owner} IN AAAA {_v6(i)}")
            kinds["a"].append(owner)
            kinds["aaaa"].append(owner)
            targets.append(owner)
        elif r < 0.88 and targets:  # CNAME to an earlier in-zone name
            lines.append(f"{owner} IN CNAME {rng.choice(targets)}")
            kinds["cname"].append(owner)
        elif r < 0.94:  # MX to the in-zone mail hosts, plus an A
            lines.append(f"{owner} IN A {_v4(i)}")
            lines.append(f"{owner} IN MX 10 mail1")
            lines.append(f"{owner} IN MX 20 mail2")
            kinds["mx"].append(owner)
            kinds["a"].append(owner)
            kinds["a_only"].append(owner)
        else:  # TXT
            lines.append(f'{owner} IN TXT "site-verification={rng.getrandbits(64):016x}"')
            lines.append(f"{owner} IN A {_v4(i)}")
            kinds["txt"].append(owner)
            kinds["a"].append(owner)
    return "\n".join(lines) + "\n", kinds


def _nx_pool(rng: random.Random, kinds: dict[str, list[str]], size: int) -> list[str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    pool: list[str] = []
    for j in range(size):
        label = "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 12)))
        if j % 4 == 3:  # below an existing name: still NXDOMAIN
            pool.append(f"{label}.{rng.choice(kinds['a'])}")
        else:
            pool.append(label)
    return pool


def _pick(rng: random.Random, kind: str, kinds: dict[str, list[str]], nx: list[str]) -> tuple[
    str, str
]:
    if kind == "a":
        return rng.choice(kinds["a"]), "A"
    if kind == "aaaa":
        return rng.choice(kinds["aaaa"]), "AAAA"
    if kind == "cname":
        return rng.choice(kinds["cname"]), "A"
    if kind == "mx":
        return rng.choice(kinds["mx"]), "MX"
    if kind == "txt":
        return rng.choice(kinds["txt"]), "TXT"
    if kind == "nodata":
        return rng.choice(kinds["a_only"]), "AAAA"
    return rng.choice(nx), rng.choice(("A", "AAAA"))


def generate(directory: Path, *, names: int = 1000, queries: int = 20_000,
             seed: int = SEED) -> Workload:
    """Write ``<origin>.zone`` and ``queries.txt`` into ``directory``."""
    rng = random.Random(seed)
    zone_dir = directory / "zones"
    zone_dir.mkdir(parents=True, exist_ok=True)
    text, kinds = _zone_text(rng, names)
    zone_file = zone_dir / f"{ORIGIN.rstrip('.')}.zone"
    zone_file.write_text(text)

    nx = _nx_pool(rng, kinds, 1000)
    weights = [w for _, w in _MIX]
    labels = [k for k, _ in _MIX]
    out: list[str] = []
    samples: dict[str, list[tuple[str, str]]] = {k: [] for k in labels}
    for _ in range(queries):
        kind = rng.choices(labels, weights)[0]
        rel, qtype = _pick(rng, kind, kinds, nx)
        qname = f"{rel}.{ORIGIN}"
        if rng.random() < 0.10:
            qname = _mix_case(rng, qname)
        out.append(f"{qname} {qtype}")
        if len(samples[kind]) < 64:
            samples[kind].append((qname, qtype))
    query_file = directory / "queries.txt"
    query_file.write_text("\n".join(out) + "\n")
    return Workload(zone_dir, zone_file, query_file, ORIGIN, names, queries, samples)


if __name__ == "__main__":
    import sys

    w = generate(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out"))
    print(f"zone {w.zone_file} ({w.names} names), queries {w.query_file} ({w.queries})")
