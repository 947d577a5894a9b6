"""Unique random names, every kind of miss: the running server against Knot DNS.

Owns the differential check of the miss index (``answer.misses``) end to
end: dnsserve started on a loopback port over the edge zones
(``tests/data/zones_edge/main``) and knotd over the same zones, both asked,
over UDP, the same fresh random names below every name those zones hold
(NXDOMAIN, NODATA at empty non-terminals, referrals with glue, wildcards
with and without CNAME, DNAME, DS below cuts, names in other zones we serve)
in 0x20 mixed case. Answers must agree after ``normalise`` (the one of
test_differential_knot_edge). Then a generated zone large enough to be
lazy (``answer.snapshot.LAZY_RRSETS``): its answers, built when first asked,
against Knot's. The unit tests (test_misses.py) check the same
names byte for byte against our slow path.

Must not: talk to anything but loopback, leave a server running.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.query
import pytest

from dnsserve.answer.snapshot import build_snapshot
from dnsserve.zones.load import load_zones
from testkit import zonegen
from testkit.answers import EDGE_MAIN, aa, addresses, lines, query, tc
from testkit.peers import Peer, start_knot
from testkit.server import ServerProc, start_server

# Types both servers treat alike (no transfers, no meta types; QCLASS IN only).
QTYPES = ("A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "SRV", "DS", "PTR", "TYPE4000")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProc, Peer]]:
    tmp = tmp_path_factory.mktemp("flood-knot")
    zones = {p.name.removesuffix(".zone") + ".": p for p in sorted(EDGE_MAIN.glob("*.zone"))}
    knot = start_knot(zones, tmp / "knot")
    try:
        ours = start_server(tmp, zones=EDGE_MAIN)
        try:
            yield ours, knot
        finally:
            ours.stop()
    finally:
        knot.stop()


def normalise(r: dns.message.Message) -> tuple[object, ...]:
    if tc(r):
        return (r.rcode(), aa(r), True)
    return (r.rcode(), aa(r), False, frozenset(lines(r.answer)),
            frozenset(lines(r.authority)), frozenset(addresses(r.additional)))


def names_below(directory: Path) -> list[str]:
    names: set[dns.name.Name] = set()
    for origin, table in load_zones(directory, log_problems=False).tables.items():
        for owner, _ in table.rrset_keys():
            while owner.is_subdomain(origin) and owner not in names:
                names.add(owner)
                if owner == origin:
                    break
                owner = owner.parent()
    return sorted(n.to_text() for n in names)


def random_name(rng: random.Random, below: str) -> str:
    label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                    for _ in range(rng.randint(3, 12)))
    name = f"{label}.{below}"
    return "".join(c.upper() if rng.random() < 0.3 else c for c in name)


def test_random_names_below_every_name_as_knot(servers: tuple[ServerProc, Peer]) -> None:
    ours, knot = servers
    rng = random.Random(20261202)
    compared = 0
    for below in names_below(EDGE_MAIN):
        for _ in range(3):
            q = query(random_name(rng, below), rng.choice(QTYPES), use_edns=0, payload=1232)
            mine = dns.query.udp(q, ours.host, port=ours.port, timeout=3.0)
            theirs = dns.query.udp(q, knot.host, port=knot.port, timeout=3.0)
            assert normalise(mine) == normalise(theirs), q.question
            compared += 1
    assert compared > 150


def test_a_lazy_zone_answers_as_knot(tmp_path: Path) -> None:
    """A generated zone of over 2,000 RRsets (answers built when first asked), asked twice."""
    wl = zonegen.generate(tmp_path / "gen", names=2_500, queries=600)
    assert build_snapshot(load_zones(wl.zone_dir, log_problems=False).tables).lazy
    knot = start_knot({wl.origin: wl.zone_file}, tmp_path / "knot")
    try:
        ours = start_server(tmp_path, zones=wl.zone_dir)
        try:
            rng = random.Random(7)
            lines = wl.query_file.read_text().split("\n")[:-1]
            asked = [line.split() for line in lines]
            asked += [[random_name(rng, wl.origin), rng.choice(QTYPES)] for _ in range(100)]
            for qname, qtype in asked + asked[:100]:  # the second time from kept answers
                q = query(qname, qtype, use_edns=0, payload=1232)
                mine = dns.query.udp(q, ours.host, port=ours.port, timeout=3.0)
                theirs = dns.query.udp(q, knot.host, port=knot.port, timeout=3.0)
                assert normalise(mine) == normalise(theirs), q.question
        finally:
            ours.stop()
    finally:
        knot.stop()
