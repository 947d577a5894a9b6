"""Big seeded zones for the parse and scale benchmarks: 100k to millions of records.

Owns the shape of a large realistic zone and nothing else: it writes one zone
file and never starts a server or touches the network. The same arguments
give byte-identical files. The zone holds exactly ``records`` records (at
least 6): one SOA and two apex NS (with their glue), then groups of

    hosts        one or two A                         ~45 % of groups
    dual stack   A and AAAA                           ~20 %
    mail         MX to an in-zone mail host, plus A   ~7 %
    TXT          one or two strings, plus A           ~8 %
    CNAME        to an earlier host                   ~10 %
    SRV          _service._tcp, to an earlier host    ~5 %
    delegation   two NS below it and their glue A     ~5 %

Owner labels are 3 to 20 characters (words, a dash, a number), some two
labels deep, so names look like production names rather than ``r123``. The
file is one record per line, with relative owners, the class written, an
explicit TTL on some records: the form NSD, Knot DNS and BIND all accept.
It is written in chunks, so a zone of millions of records needs little memory.

Command line: ``python -m testkit.biggen --records N --origin big.example. OUT``.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

_WORDS = (
    "www", "api", "app", "cdn", "db", "mail", "vpn", "host", "img", "static", "edge", "node",
    "svc", "auth", "login", "shop", "blog", "docs", "status", "metrics", "gateway", "cache",
    "storage", "backup", "internal", "prod", "staging", "eu-west", "us-east", "ap-south",
    "worker", "queue", "search", "media", "assets", "portal", "billing", "support", "git",
)
_ZONES = ("east", "west", "north", "south", "core", "dc1", "dc2", "lab", "corp", "int")
_SERVICES = ("_sip._tcp", "_xmpp-server._tcp", "_ldap._tcp", "_imaps._tcp", "_http._tcp")
_TTLS = ("300", "600", "3600", "86400")
_CHUNK = 20_000


def _v4(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _v6(i: int) -> str:
    return f"2001:db8:{(i >> 32) & 0xFFFF:x}:{(i >> 16) & 0xFFFF:x}::{i & 0xFFFF:x}"


def _owner(rng: random.Random, i: int) -> str:
    word = rng.choice(_WORDS)
    label = f"{word}-{i:x}" if rng.random() < 0.7 else f"{word}{i}"
    if rng.random() < 0.25:
        return f"{label}.{rng.choice(_ZONES)}"
    return label


def _ttl(rng: random.Random) -> str:
    return f"{rng.choice(_TTLS)} " if rng.random() < 0.2 else ""


def _group(rng: random.Random, i: int, hosts: list[str]) -> list[str]:
    """The lines of one group of records (one owner, or one delegation)."""
    owner = _owner(rng, i)
    ttl = _ttl(rng)  # one per group: the records of an RRset share their TTL
    r = rng.random()
    if r < 0.45 or not hosts:
        lines = [f"{owner} {ttl}IN A {_v4(i)}"]
        if rng.random() < 0.3:
            lines.append(f"{owner} {ttl}IN A {_v4(i + 7_000_000)}")
        hosts.append(owner)
        return lines
    if r < 0.65:
        hosts.append(owner)
        return [f"{owner} IN A {_v4(i)}", f"{owner} IN AAAA {_v6(i)}"]
    if r < 0.72:
        mail = rng.choice(hosts)
        return [f"{owner} IN A {_v4(i)}", f"{owner} IN MX 10 {mail}"]
    if r < 0.80:
        text = f'"site-verification={rng.getrandbits(64):016x}"'
        if rng.random() < 0.3:
            text = f'"v=spf1 ip4:{_v4(i)}/32 include:_spf.{rng.choice(_WORDS)}.example" "-all"'
        return [f"{owner} {ttl}IN TXT {text}", f"{owner} IN A {_v4(i)}"]
    if r < 0.90:
        return [f"{owner} IN CNAME {rng.choice(hosts)}"]
    if r < 0.95:
        service = rng.choice(_SERVICES)
        port = rng.choice((443, 389, 993, 5060, 5269))
        return [f"{service}.{owner} IN SRV {rng.randint(0, 20)} {rng.randint(0, 100)} "
                f"{port} {rng.choice(hosts)}"]
    return [
        f"{owner} 86400 IN NS ns1.{owner}",
        f"{owner} 86400 IN NS ns2.{owner}",
        f"ns1.{owner} 86400 IN A {_v4(i)}",
        f"ns2.{owner} 86400 IN A {_v4(i + 7_000_000)}",
    ]


def write_big_zone(path: Path, origin: str, records: int, seed: int = 1) -> None:
    """Write a zone of exactly ``records`` records (at least 6) for ``origin`` to ``path``."""
    if records < 6:
        raise ValueError("a big zone has at least 6 records (SOA, 2 NS, 2 glue A, 1 host)")
    if not origin.endswith("."):
        origin += "."
    rng = random.Random(seed)
    head = [
        f"$ORIGIN {origin}",
        "$TTL 3600",
        "@ IN SOA ns1 hostmaster 2026120101 7200 3600 1209600 300",
        "@ IN NS ns1",
        "@ IN NS ns2",
        "ns1 IN A 192.0.2.1",
        "ns2 IN A 192.0.2.2",
    ]
    left = records - 5
    hosts: list[str] = []
    with path.open("w", encoding="ascii") as out:
        out.write("\n".join(head) + "\n")
        chunk: list[str] = []
        i = 0
        while left > 0:
            i += 1
            lines = _group(rng, i, hosts)
            if len(lines) > left:
                lines = [f"{_owner(rng, i)} IN A {_v4(i)}"]
            left -= len(lines)
            chunk.extend(lines)
            if len(hosts) > 1000:
                del hosts[:500]
            if len(chunk) >= _CHUNK:
                out.write("\n".join(chunk) + "\n")
                chunk.clear()
        if chunk:
            out.write("\n".join(chunk) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, required=True, help="number of records")
    ap.add_argument("--origin", default="big.example.", help="zone origin")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out", type=Path, help="the zone file to write")
    args = ap.parse_args(argv)
    write_big_zone(args.out, args.origin, args.records, args.seed)
    print(f"{args.out}: {args.records} records for {args.origin}")


if __name__ == "__main__":
    main()
