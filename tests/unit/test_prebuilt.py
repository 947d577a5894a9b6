"""answer.prebuilt on the edge zones: the client's question in front, cut to its UDP limit.

A prebuilt answer is rendered once; the engine puts the client's question bytes
(case kept) in front of it and cuts it at an rrset boundary when the client's
UDP limit is smaller. Run through the engine (no sockets) over
``tests/data/zones_edge/main``, whose b512/b513/bigtxt/mxbig records make
answers of known sizes, with dnspython parsing our bytes.

A test headed "Regression (a fixed bug)" reproduced a bug before its fix; the
comment names the RFC rule it holds the engine to.
"""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.name
import dns.rcode
import pytest

from dnsserve.answer.engine import Engine
from testkit.answers import EDGE_MAIN, aa, ask, build_engine, exchange, lines, order, query, tc

NOERROR = dns.rcode.NOERROR


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(EDGE_MAIN)


# --- truncation -------------------------------------------------------------------------------


def test_additional_that_does_not_fit_is_left_out_without_tc(engine: Engine) -> None:
    r = ask(engine, "mxbig.rv.example.", "MX")  # 30 A records of the target: > 512
    assert not tc(r) and order(r.answer) == [("mxbig.rv.example.", "MX")] and not r.additional
    r = ask(engine, "mxbig.rv.example.", "MX", use_edns=0, payload=1232)
    assert not tc(r) and len(r.additional[0]) == 30


# Regression (a fixed bug): Prebuilt.cut stops at the first rrset that does not
# fit; when that one is optional (an in-zone, non-glue NS target's addresses) the in-
# bailiwick glue after it is dropped without TC. RFC 9471 §3: all in-domain glue, or TC=1.
# Fix: in cut(), on a non-essential chunk keep scanning and set TC if any later chunk is
# essential; and/or put glue first in ZoneTable._referral (Knot does).
@pytest.mark.parametrize("edns", [None, 512])
def test_referral_glue_that_does_not_fit_sets_tc(engine: Engine, edns: int | None) -> None:
    kw: dict[str, object] = {} if edns is None else {"use_edns": 0, "payload": edns}
    r = ask(engine, "x.trunc.rv.example.", "A", **kw)
    glue = "ns.trunc.rv.example. 3600 in a 192.0.2.77"
    assert tc(r) or glue in lines(r.additional)


def test_udp_limit_512_without_edns_is_inclusive(engine: Engine) -> None:
    out = exchange(engine, query("b512.rv.example.", "TXT").to_wire())
    assert len(out) == 512 and not tc(dns.message.from_wire(out))
    r = ask(engine, "b513.rv.example.", "TXT")
    assert tc(r) and not r.answer and r.rcode() == NOERROR and aa(r)
    # The same over TCP: complete, 513 octets.
    assert len(exchange(engine, query("b513.rv.example.", "TXT").to_wire(), tcp=True)) == 513


def test_edns_limit_boundary_keeps_opt_and_do(engine: Engine) -> None:
    full = exchange(engine, query("bigtxt.rv.example.", "TXT", use_edns=0).to_wire(), tcp=True)
    size = len(full)
    assert 512 < size < 1232
    r = ask(engine, "bigtxt.rv.example.", "TXT", use_edns=0, payload=size, want_dnssec=True)
    assert not tc(r) and len(r.answer[0]) == 2
    r = ask(engine, "bigtxt.rv.example.", "TXT", use_edns=0, payload=size - 1, want_dnssec=True)
    assert tc(r) and not r.answer and r.rcode() == NOERROR
    assert r.edns == 0 and r.payload == 1232 and r.ednsflags & dns.flags.DO  # RFC 6891 §7


def test_additional_cut_at_the_exact_boundary(engine: Engine) -> None:
    wire = query("mxbig.rv.example.", "MX", use_edns=0).to_wire()
    size = len(exchange(engine, wire, tcp=True))
    r = ask(engine, "mxbig.rv.example.", "MX", use_edns=0, payload=size)
    assert not tc(r) and len(r.additional[0]) == 30
    r = ask(engine, "mxbig.rv.example.", "MX", use_edns=0, payload=size - 1)
    assert not tc(r) and r.answer and not r.additional and r.edns == 0


def test_payload_below_512_counts_as_512(engine: Engine) -> None:
    r = ask(engine, "mxdup.rv.example.", "MX", use_edns=0, payload=100)
    assert not tc(r) and r.answer and r.additional  # ~140 octets: fits in 512
    r = ask(engine, "b512.rv.example.", "TXT", use_edns=0, payload=100)
    assert tc(r) and r.edns == 0  # 512 + OPT does not


def test_wire_sizes_used_above() -> None:
    """The b512/b513 zone records make exactly 512- and 513-octet answers (guard the zone)."""
    header = struct.calcsize("!HHHHHH")
    question = len(dns.name.from_text("b512.rv.example.").to_wire()) + 4
    rr = 2 + 10 + (1 + 255) + (1 + 210)
    assert header + question + rr == 512


# --- the client's case ------------------------------------------------------------------------


def _suffix_case_kept(owner: dns.name.Name, qname: dns.name.Name) -> bool:
    """The labels ``owner`` shares with ``qname`` (from the root up) are in qname's case."""
    shared = 0
    for x, y in zip(reversed(owner.labels), reversed(qname.labels), strict=False):
        if x.lower() != y.lower():
            break
        shared += 1
    return owner.labels[len(owner) - shared:] == qname.labels[len(qname) - shared:]


@pytest.mark.parametrize(
    ("qname", "qtype"),
    [
        ("Ns1.Rv.ExAmPlE.", "A"),  # prebuilt
        ("NoPe.rV.eXaMpLe.", "A"),  # miss: NXDOMAIN
        ("FoO.Wc.Rv.ExAmPlE.", "A"),  # miss: wildcard CNAME, followed
        ("X.DiN.rv.example.", "A"),  # miss: DNAME
        ("ToCuT.rV.example.", "A"),  # CNAME into a referral
    ],
)
def test_0x20_case_is_kept_and_compressed_names_follow_it(
    engine: Engine, qname: str, qtype: str
) -> None:
    lower = ask(engine, qname.lower(), qtype)
    mixed = ask(engine, qname, qtype)
    asked = dns.name.from_text(qname)
    assert mixed.question[0].name.to_text() == qname
    for section in ("answer", "authority", "additional"):
        assert lines(getattr(mixed, section)) == lines(getattr(lower, section))
        for rrset in getattr(mixed, section):
            assert _suffix_case_kept(rrset.name, asked), (section, rrset.name)


def test_case_does_not_change_the_size(engine: Engine) -> None:
    a = exchange(engine, query("b512.rv.example.", "TXT").to_wire())
    b = exchange(engine, query("B512.RV.EXAMPLE.", "TXT").to_wire())
    assert len(a) == len(b) == 512 and a[12:].lower() == b[12:].lower()
