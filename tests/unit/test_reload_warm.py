"""Warming a reload's snapshot: the engine's hot keys, answered once from the new one.

A lazy zone's answers are built when first asked; ``Engine.hot_keys`` says
which names were asked lately (NOERROR only: a flood of random names is not
remembered) and ``reload.warm`` answers them from the next snapshot before
it is served, with the same bytes the engine would give.
"""

from __future__ import annotations

import asyncio
import weakref

import dns.message

from dnsserve.answer.engine import Engine
from dnsserve.answer.lookup import answer_key
from dnsserve.answer.snapshot import build_snapshot
from dnsserve.reload import release_steps, warm
from dnsserve.zones.load import load_zones
from dnsserve.zones.offload import compare
from dnsserve.zones.versions import ZoneContent, content_hash, diff
from testkit import SHIPPED_ZONES


def test_hot_keys_warm_the_next_snapshot() -> None:
    tables = load_zones(SHIPPED_ZONES, log_problems=False).tables
    old = Engine(build_snapshot(tables, lazy_rrsets=1))
    asked = [("www.example.com.", "A"), ("mail.example.com.", "MX"), ("nope.example.com.", "A")]
    for qname, qtype in asked:
        old.respond(dns.message.make_query(qname, qtype).to_wire(), tcp=False)
    hot = old.hot_keys()
    www = answer_key(dns.name.from_text("www.example.com."), dns.rdatatype.A, 1)
    nope = answer_key(dns.name.from_text("nope.example.com."), dns.rdatatype.A, 1)
    assert www in hot and nope not in hot  # NXDOMAIN is not remembered
    fresh = build_snapshot(tables, lazy_rrsets=1)
    assert fresh.misses is not None and fresh.misses.kept == 0
    assert asyncio.run(warm(fresh, hot, budget=10.0)) == len(hot)
    assert fresh.misses.kept >= 1
    query = dns.message.make_query("www.example.com.", "A").to_wire()
    assert Engine(fresh).respond(query, tcp=False) == old.respond(query, tcp=False)


class _Node:
    def __init__(self, items: object) -> None:
        self.items = items


def test_release_takes_apart_only_what_nothing_else_holds() -> None:
    shared = {i: _Node(i) for i in range(1000)}  # as a table the new zones kept
    alive = _Node(shared)
    mine = {i: _Node(i) for i in range(1000)}
    gone = weakref.ref(mine[5])
    roots: list[object] = [_Node((mine, tuple(range(2000)), alive, [_Node(1)] * 500))]
    del mine
    steps = list(release_steps(roots, slice_seconds=0.0))
    assert roots == [] and len(steps) >= 1
    assert gone() is None  # freed
    assert len(shared) == 1000 and alive.items is shared  # untouched


def test_the_childs_comparison_is_the_diff_and_the_hashes() -> None:
    def rr(i: int) -> bytes:  # owner ".", A, IN, TTL 60, 10.0.0.i
        return b"\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([10, 0, 0, i])

    old = ZoneContent(dns.name.root, (rr(1), rr(2), rr(3)))
    new = ZoneContent(old.origin, (rr(1), rr(3), rr(4)))
    compared = compare(old.to_wire(), new)
    assert (compared.removed, compared.added) == (diff(old, new).removed, diff(old, new).added)
    assert (compared.old_hash, compared.new_hash) == (content_hash(old), content_hash(new))
