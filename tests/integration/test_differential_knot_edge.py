"""Differential test on the edge zones: dnsserve's engine against Knot DNS, case by case.

Owns the cases where the RFCs leave room and Knot DNS is the reference
(DESIGN.md, issue 2), over the edge zones in ``tests/data/zones_edge/main``
(the unit tests in test_table.py, test_prebuilt.py and test_wire.py state the
expected answers by hand). Each case is asked of the engine directly (no
sockets on our side) and of knotd over UDP on loopback; ``normalise()`` says
what must agree: rcode, AA, TC, the answer and authority sections as sets,
the A/AAAA records of the additional section; a truncated answer on rcode and
TC only.

Must not: edit zones, talk to anything but loopback, leave knotd running.
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.message
import dns.query
import pytest

from dnsserve.answer.engine import Engine
from testkit.answers import EDGE_MAIN, aa, addresses, ask, build_engine, exchange, lines, query, tc
from testkit.peers import Peer, start_knot


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(EDGE_MAIN)


# (qname, qtype, EDNS payload or None); Knot's answer is the oracle for these.
KNOT_CASES = [
    ("x.apexdname.example.", "A", None),
    ("apexdname.example.", "DNAME", None),
    ("x.went.rv.example.", "A", None),
    ("*.went.rv.example.", "A", None),
    ("x.enc.rv.example.", "A", None),
    ("x.b.enc.rv.example.", "A", None),
    ("x.y.enc.rv.example.", "A", None),
    ("x.wc.rv.example.", "A", None),
    ("*.wc.rv.example.", "A", None),
    ("x.wildapex.example.", "MX", None),
    ("*.wildns.example.", "A", None),
    ("x.wildns.example.", "A", None),
    ("x.din.rv.example.", "A", None),
    ("x.din.rv.example.", "CNAME", None),
    ("x.dl1.rv.example.", "A", None),
    ("dl1.rv.example.", "CNAME", None),
    ("tocut.rv.example.", "A", None),
    ("tocut.rv.example.", "DS", None),
    ("loop1.rv.example.", "A", None),
    ("toapex.rv.example.", "MX", None),
    ("tonx.rv.example.", "A", None),
    ("tonodata.rv.example.", "TXT", None),
    ("mxbig.rv.example.", "MX", None),
    ("mxbig.rv.example.", "MX", 1232),
    ("mxc.rv.example.", "MX", None),
    ("mxdup.rv.example.", "MX", None),
    ("_x._tcp.rv.example.", "SRV", None),
    ("ns.v6only.rv.example.", "A", None),
    ("other.rv.example.", "NS", None),
    ("glued.rv.example.", "ANY", None),
    ("trunc.rv.example.", "DS", None),
    ("x.trunc.rv.example.", "A", None),
    ("x.trunc.rv.example.", "A", 512),
    ("x.trunc.rv.example.", "A", 1232),
    ("rv.example.", "NS", None),
    ("sibling.rv.example.", "A", None),
    ("cn.par.example.", "A", None),
    ("kid.par.example.", "DS", None),
    ("kid.par.example.", "NS", None),
    ("b512.rv.example.", "TXT", None),
    ("b513.rv.example.", "TXT", None),
    ("bigtxt.rv.example.", "TXT", 512),
]


@pytest.fixture(scope="module")
def knot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    zones = {p.name.removesuffix(".zone") + ".": p for p in sorted(EDGE_MAIN.glob("*.zone"))}
    peer = start_knot(zones, tmp_path_factory.mktemp("knot-edge"))
    try:
        yield peer
    finally:
        peer.stop()


Norm = tuple[int, bool, bool, frozenset[str], frozenset[str], frozenset[str]]


def normalise(r: dns.message.Message) -> Norm:
    """rcode, AA, TC, answer, authority, additional A/AAAA; a truncated answer: rcode/TC."""
    if tc(r):
        return (r.rcode(), aa(r), True, frozenset(), frozenset(), frozenset())
    return (r.rcode(), aa(r), False, frozenset(lines(r.answer)),
            frozenset(lines(r.authority)), frozenset(addresses(r.additional)))


@pytest.mark.parametrize(("qname", "qtype", "payload"), KNOT_CASES)
def test_same_as_knot(
    engine: Engine, knot: Peer, qname: str, qtype: str, payload: int | None
) -> None:
    kw: dict[str, object] = {} if payload is None else {"use_edns": 0, "payload": payload}
    q = query(qname, qtype, **kw)
    ours = dns.message.from_wire(exchange(engine, q.to_wire()))
    theirs = dns.query.udp(q, knot.host, port=knot.port, timeout=3.0)
    assert normalise(ours) == normalise(theirs)


def test_knot_parity_compares_something(engine: Engine) -> None:
    """normalise() must tell a referral from an answer, or the parity test cannot fail."""
    a = normalise(ask(engine, "x.trunc.rv.example.", "A", use_edns=0, payload=1232))
    b = normalise(ask(engine, "ns1.rv.example.", "A"))
    assert a != b and a[3] != b[3] and a[4] != b[4]
