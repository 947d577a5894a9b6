"""CPU cost of the worst query packets we can build, through ``Engine.respond``.

Owns this measurement and its section of benchmarks/RESULTS.md. The engine
serves the shipped zones (``zones/``, no sockets, no event loop); each packet
is answered once and its rcode shown, then answered in a loop and its cost
taken as process CPU time per call (``time.process_time_ns``, best of several
repeats), next to a normal query's. A packet's cost is what it takes from
every other query on the loop: the bound of issue "Survive faults" item 7 is
that no packet costs more than a few normal queries, whatever it holds.

The packets: a normal query with and without EDNS (the baseline); 5,444
additional records whose owners are 64-hop compression-pointer chains (the
65 KB datagram that once took 47 ms); a question of 32,000 one-byte labels;
the longest walk the bounds allow (a NOTIFY whose question and
``wire.MAX_RECORDS`` records all have 255-octet names of one-byte labels);
as many additional records that are not OPT or TSIG; an OPT carrying 65,000
bytes of options; a TSIG record with a key we do not have (the slow path:
NOTAUTH, BADKEY); random bytes after a header; and, for scale, a 255-octet
name in a served zone that is new every time (not parsing: the lookup the
miss index answers as any other name of its shape, which a random-subdomain
flood pays).

Must not: open a socket, or change the engine.

    .venv/bin/python -m benchmarks.bench_hostile               # table + RESULTS.md section
    .venv/bin/python -m benchmarks.bench_hostile --no-report   # table only
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import random
import shlex
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.tsig
import dns.tsigkeyring

from benchmarks.report import RESULTS, machine_info, shown_argv, write_section
from dnsserve import wire
from dnsserve.answer.engine import Engine
from testkit import SHIPPED_ZONES
from testkit.answers import build_engine

UDP_MAX = 65_507  # the largest IPv4 UDP payload


def name_wire(text: str) -> bytes:
    wire_ = dns.name.from_text(text).to_wire()
    assert wire_ is not None  # None only when writing to a file
    return wire_


QUESTION = name_wire("www.example.com.") + struct.pack("!HH", 1, 1)
RR_TAIL = struct.pack("!HHIH", 1, 1, 0, 0)  # type A, class IN, TTL 0, no rdata


@dataclass(frozen=True)
class Case:
    name: str
    packets: Callable[[int], list[bytes]]  # n -> packets answered in turn (one, or n new ones)


def header(*, qd: int = 1, ar: int = 0, flags: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 0xBEEF, flags, qd, 0, 0, ar)


def normal(edns: bool) -> bytes:
    q = dns.message.make_query("www.example.com.", "A", use_edns=0 if edns else False)
    q.flags = 0
    q.id = 0xBEEF
    return q.to_wire()


def pointer_chains(records: int = 5444, hops: int = 64) -> bytes:
    """``records`` additional records: the first owner the root, then each a pointer to
    the one before, ``hops`` deep at most (the packet of test_malformed.py)."""
    start = 12 + len(QUESTION)
    body = bytearray()
    owners: list[int] = []
    for i in range(records):
        owners.append(start + len(body))
        owner = b"\x00" if i == 0 else struct.pack("!H", 0xC000 | owners[min(i, hops) - 1])
        body += owner + RR_TAIL
    return header(ar=records) + QUESTION + bytes(body)


def one_byte_labels(total: int) -> bytes:
    """A name of ``total`` wire octets (odd: labels of one byte, then the root)."""
    assert total % 2 == 1
    return b"\x01a" * (total // 2) + b"\x00"


def long_owners() -> bytes:
    """A NOTIFY whose question and ``wire.MAX_RECORDS`` answer records all have 255-octet
    names of one-byte labels: the longest walk the bounds allow (answered NOTIMP)."""
    records = wire.MAX_RECORDS
    body = (one_byte_labels(255) + RR_TAIL) * records
    question = one_byte_labels(255) + struct.pack("!HH", 1, 1)
    return struct.pack("!HHHHHH", 0xBEEF, wire.OPCODE_NOTIFY, 1, records, 0, 0) + question + body


def long_first_additional() -> bytes:
    """``wire.MAX_RECORDS`` additional records with 255-octet owners; the first is not an OPT
    or a TSIG (FORMERR once its owner is skipped)."""
    records = wire.MAX_RECORDS
    return header(ar=records) + QUESTION + (one_byte_labels(255) + RR_TAIL) * records


def big_opt() -> bytes:
    options = struct.pack("!HH", 65001, 65_000 - 4) + bytes(65_000 - 4)
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(options)) + options
    return header(ar=1) + QUESTION + opt


def unknown_tsig() -> bytes:
    keyring = dns.tsigkeyring.from_text({"unknown-key.": "c2VjcmV0c2VjcmV0c2VjcmV0"})
    q = dns.message.make_query("www.example.com.", "A", use_edns=0)
    q.use_tsig(keyring, "unknown-key.", algorithm=dns.tsig.HMAC_SHA256)
    return q.to_wire()


def header_then_garbage() -> bytes:
    return header() + random.Random(2).randbytes(65_535 - 12)


_LETTERS = bytes.maketrans(bytes(range(256)), bytes(b"abcdefghijklmnopqrstuvwxyz"[i % 26]
                                                    for i in range(256)))
_BATCH = itertools.count()


def fresh_long_names(n: int) -> list[bytes]:
    """``n`` 255-octet names under example.com. never asked before (NXDOMAIN, each a miss)."""
    rng = random.Random(next(_BATCH))
    tail = name_wire("example.com.")
    out = []
    for _ in range(n):
        labels = b"".join(b"\x3f" + rng.randbytes(63).translate(_LETTERS) for _ in range(3))
        rest = 255 - len(tail) - len(labels) - 1
        labels += bytes([rest]) + rng.randbytes(rest).translate(_LETTERS)
        out.append(header() + labels + tail + struct.pack("!HH", 1, 1))
    return out


def cases() -> list[Case]:
    def same(packet: bytes) -> Callable[[int], list[bytes]]:
        return lambda n: [packet]

    return [
        Case("www.example.com. A, EDNS (baseline)", same(normal(True))),
        Case("www.example.com. A, no EDNS", same(normal(False))),
        Case("5,444 additional records, 64-hop pointer chains (65,360 B)",
             same(pointer_chains())),
        Case("question of 32,000 one-byte labels (64,017 B)",
             same(header() + b"\x01a" * 32_000 + b"\x00" + struct.pack("!HH", 1, 1))),
        Case(f"NOTIFY: question and {wire.MAX_RECORDS} records, 255-octet names of"
             " one-byte labels", same(long_owners())),
        Case(f"{wire.MAX_RECORDS} additional records, 255-octet owners, not OPT/TSIG",
             same(long_first_additional())),
        Case("OPT with 65,000 bytes of options", same(big_opt())),
        Case("TSIG with a key we do not have", same(unknown_tsig())),
        Case("header + 65,523 random bytes (TCP)", same(header_then_garbage())),
        Case("255-octet name in a zone, new each time (miss)", fresh_long_names),
    ]


def rcode_of(out: bytes | None) -> str:
    if out is None:
        return "dropped"
    return dns.rcode.to_text(dns.rcode.from_flags(struct.unpack("!H", out[2:4])[0], 0))


def cost_us(engine: Engine, case: Case, calls: int, repeats: int) -> float:
    """Best-of-``repeats`` process CPU µs per ``respond`` over ``calls`` calls.

    Each repeat takes its packets anew (a case of new names gets names never
    asked before); making them is not timed.
    """
    best = float("inf")
    for _ in range(repeats):
        packets = [(p, len(p) > UDP_MAX) for p in case.packets(calls)]
        rounds = max(1, calls // len(packets))
        t0 = time.process_time_ns()
        for _ in range(rounds):
            for packet, tcp in packets:
                engine.respond(packet, tcp=tcp)
        best = min(best, (time.process_time_ns() - t0) / (rounds * len(packets)) / 1000)
    return best


def calls_for(engine: Engine, case: Case, budget_s: float) -> int:
    """A call count that takes about ``budget_s`` of CPU per repeat."""
    probe = case.packets(16)
    t0 = time.process_time()
    for _ in range(max(1, 16 // len(probe))):
        for p in probe:
            engine.respond(p, tcp=len(p) > UDP_MAX)
    each = max((time.process_time() - t0) / 16, 1e-7)
    return max(16, min(200_000, int(budget_s / each)))


def run(repeats: int, budget_s: float) -> list[tuple[str, int, str, float]]:
    engine = build_engine(SHIPPED_ZONES)
    rows = []
    for case in cases():
        first = case.packets(1)[0]
        rcode = rcode_of(engine.respond(first, tcp=len(first) > UDP_MAX))
        calls = calls_for(engine, case, budget_s)
        rows.append((case.name, len(first), rcode, cost_us(engine, case, calls, repeats)))
    return rows


def table(rows: list[tuple[str, int, str, float]]) -> str:
    base = rows[0][3]
    out = ["| packet | bytes | answer | µs CPU / packet | × baseline |",
           "|---|---:|---|---:|---:|"]
    for name, size, rcode, us in rows:
        out.append(f"| {name} | {size:,} | {rcode} | {us:,.1f} | {us / base:,.1f} |")
    return "\n".join(out)


def report(rows: list[tuple[str, int, str, float]], argv: list[str]) -> str:
    info = machine_info(sys.executable)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        "## Hostile packets: CPU per packet through Engine.respond",
        "",
        f"Run {when}, python {info['python']}, {info['cpu']} ({info['nproc']} CPUs, shared"
        " with other work: absolute figures are noisy, ratios less so).",
        "",
        "Command:",
        "",
        "```",
        shlex.join(shown_argv("bench_hostile", argv)),
        "```",
        "",
        "The engine serves the shipped zones, no sockets. Each packet is answered in a"
        " loop; cost = process CPU time per call, best of the repeats. Packets over"
        f" {UDP_MAX:,} bytes go in as TCP (`tcp=True`), the rest as UDP. The last row is"
        " a lookup, not parsing: a name never asked before, what each query of a"
        " random-subdomain flood costs (answered by the miss index, `answer/misses.py`,"
        " with a body shared by every name of its shape; 663 µs before the index).",
        "",
        table(rows),
        "",
    ])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.2, help="CPU seconds per repeat per case")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-report", action="store_true", help="print only")
    args = ap.parse_args(argv)
    rows = run(args.repeats, args.budget)
    print(table(rows))
    if not args.no_report:
        write_section("hostile", report(rows, argv), args.out)
        print(f"wrote the hostile section of {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
