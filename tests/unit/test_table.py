"""zones.table's lookup sequence on edge cases the shipped zones do not reach.

Run through the engine (no sockets) over the edge zones in
``tests/data/zones_edge/`` (``main/``: several zones served together;
``root/``: a small root zone), with dnspython parsing our bytes: zone cuts and
glue, DNAME, wildcards, CNAME chains, the additional section, the root zone.
Knot DNS answers the same zones in tests/integration/test_differential_knot_edge.py.

A test headed "Regression (a fixed bug)" reproduced a bug before its fix; the
comment names the RFC rule it holds the lookup to.

Judgment calls, with the rule applied (Knot 3.2 compared by hand and, where
marked, by ``test_same_as_knot``):

- CNAME chains stop after ``MAX_CHAIN`` steps with NOERROR and the CNAMEs so far
  (Knot stops earlier, after 5); a loop stops when a name repeats.
- A DNAME substitution longer than 255 octets is YXDOMAIN with the DNAME in the
  answer (RFC 6672 §2.2). Knot 3.2 answers NXDOMAIN there; we follow the RFC.
"""

from __future__ import annotations

from pathlib import Path

import dns.rcode
import pytest

from dnsserve.answer.engine import Engine
from dnsserve.zones.table import MAX_CHAIN
from testkit.answers import (
    EDGE_MAIN,
    EDGE_ROOT,
    aa,
    addresses,
    ask,
    build_engine,
    lines,
    order,
)

NOERROR = dns.rcode.NOERROR
NXDOMAIN = dns.rcode.NXDOMAIN

RV_NEG = "rv.example. 300 in soa ns1.rv.example. hostmaster.rv.example. 1 7200 3600 1209600 300"


ROOT_NEG = ". 86400 in soa a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400"


NS1_ADDR = {"ns1.rv.example. 3600 in a 192.0.2.53", "ns1.rv.example. 3600 in aaaa 2001:db8::53"}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(EDGE_MAIN)


@pytest.fixture(scope="module")
def root_engine() -> Engine:
    return build_engine(EDGE_ROOT)


# --- zone cuts --------------------------------------------------------------------------------


@pytest.mark.parametrize("qtype", ["A", "AAAA", "MX"])
def test_glue_name_queried_directly_is_a_referral(engine: Engine, qtype: str) -> None:
    # RFC 1034 §4.3.2 step 3b: glue is not authoritative data; AAAA-only glue is sent.
    r = ask(engine, "ns.v6only.rv.example.", qtype)
    assert r.rcode() == NOERROR and not aa(r) and not r.answer
    assert lines(r.authority) == {"v6only.rv.example. 3600 in ns ns.v6only.rv.example."}
    assert lines(r.additional) == {"ns.v6only.rv.example. 3600 in aaaa 2001:db8::66"}


def test_any_at_a_delegation_is_a_referral(engine: Engine) -> None:
    r = ask(engine, "glued.rv.example.", "ANY")
    assert not aa(r) and not r.answer
    assert order(r.authority) == [("glued.rv.example.", "NS")]


def test_ds_at_a_cut_without_ds_is_nodata_from_the_parent(engine: Engine) -> None:
    # RFC 4035 §3.1.4.1: the parent answers DS, authoritatively, even when it has none.
    r = ask(engine, "trunc.rv.example.", "DS")
    assert r.rcode() == NOERROR and aa(r) and not r.answer
    assert lines(r.authority) == {RV_NEG}


def test_ds_for_a_served_child_comes_from_the_served_parent(engine: Engine) -> None:
    r = ask(engine, "kid.par.example.", "DS")
    assert aa(r) and order(r.answer) == [("kid.par.example.", "DS")]
    # Any other type at the child apex: the child zone answers.
    r = ask(engine, "kid.par.example.", "NS")
    assert aa(r) and order(r.answer) == [("kid.par.example.", "NS")]
    assert lines(r.additional) == {"ns.kid.par.example. 3600 in a 192.0.2.11"}


def test_referral_to_servers_in_another_served_zone_has_no_glue(engine: Engine) -> None:
    r = ask(engine, "x.other.rv.example.", "A")
    assert not aa(r) and lines(r.authority) == {"other.rv.example. 3600 in ns ns1.rv2.example."}
    assert not r.additional


@pytest.mark.parametrize("qtype", ["A", "DS"])
def test_cname_into_a_cut_of_the_same_zone(engine: Engine, qtype: str) -> None:
    # The chain reaches a delegation: the CNAME (AA: the answer began
    # authoritatively) and then the referral, as Knot and BIND do. DS for the
    # target is below the cut, so it is a referral too.
    r = ask(engine, "tocut.rv.example.", qtype)
    assert r.rcode() == NOERROR and aa(r)
    assert lines(r.answer) == {"tocut.rv.example. 3600 in cname host.v6only.rv.example."}
    assert order(r.authority) == [("v6only.rv.example.", "NS")]
    assert lines(r.additional) == {"ns.v6only.rv.example. 3600 in aaaa 2001:db8::66"}


def test_cname_into_a_served_child_stays_in_the_query_zone(engine: Engine) -> None:
    # issue 2: chains are followed inside the query's zone; at the cut the parent refers.
    r = ask(engine, "cn.par.example.", "A")
    assert aa(r) and order(r.answer) == [("cn.par.example.", "CNAME")]
    assert order(r.authority) == [("kid.par.example.", "NS")]
    r = ask(engine, "www.kid.par.example.", "A")
    assert aa(r) and lines(r.answer) == {"www.kid.par.example. 3600 in a 192.0.2.12"}


# Regression (a fixed bug): ZoneTable._addresses skips every target below a cut,
# also the apex's own NS targets whose addresses the zone holds as glue (zones.compile allows
# them); Knot, NSD and the root servers send them (RFC 9609 priming, RFC 1034 §4.3.2 step 6)
def test_apex_ns_answer_carries_addresses_of_targets_below_a_cut(engine: Engine) -> None:
    r = ask(engine, "rv.example.", "NS")
    assert addresses(r.additional) == {"ns.glued.rv.example. 3600 in a 192.0.2.55", *NS1_ADDR}


# Regression (a fixed bug): referrals leave out sibling glue (an NS target below
# another cut of the same zone); RFC 9471 §2.3 leaves it optional, but Knot and NSD send it
# and without it a root-zone referral to com. carries no address at all
def test_referral_carries_sibling_glue(engine: Engine) -> None:
    r = ask(engine, "sibling.rv.example.", "A")
    assert lines(r.additional) == {"ns.v6only.rv.example. 3600 in aaaa 2001:db8::66"}


# --- DNAME ------------------------------------------------------------------------------------


# Regression (a fixed bug): ZoneTable._step starts its walk one label below the
# origin, so a DNAME at the apex is never applied and names below it are NXDOMAIN (RFC 6672
# §2.3 allows a DNAME at the apex; Knot applies it). Fix: check _dnames from k = len(origin).
@pytest.mark.parametrize("label", ["x", "ns1"])
def test_dname_at_the_apex(engine: Engine, label: str) -> None:
    r = ask(engine, f"{label}.apexdname.example.", "A")
    assert r.rcode() == NOERROR and aa(r)
    assert lines(r.answer) == {
        "apexdname.example. 3600 in dname rv.example.",
        f"{label}.apexdname.example. 3600 in cname {label}.rv.example.",
    }


def test_dname_apex_owner_itself(engine: Engine) -> None:
    r = ask(engine, "apexdname.example.", "DNAME")
    assert lines(r.answer) == {"apexdname.example. 3600 in dname rv.example."}
    r = ask(engine, "apexdname.example.", "A")
    assert r.rcode() == NOERROR and not r.answer and order(r.authority)[0][1] == "SOA"


@pytest.mark.parametrize(
    ("qtype", "answer"),
    [
        ("DNAME", {"dl1.rv.example. 3600 in dname dl2.rv.example."}),
        ("ANY", {"dl1.rv.example. 3600 in dname dl2.rv.example."}),
        ("CNAME", set()),
        ("A", set()),
    ],
)
def test_qname_is_the_dname_owner(engine: Engine, qtype: str, answer: set[str]) -> None:
    # RFC 6672 §2.3: the owner itself is not redirected.
    r = ask(engine, "dl1.rv.example.", qtype)
    assert r.rcode() == NOERROR and aa(r) and lines(r.answer) == answer
    assert bool(r.authority) == (not answer)


def test_dname_loop_is_bounded(engine: Engine) -> None:
    r = ask(engine, "x.dl1.rv.example.", "A")
    assert r.rcode() == NOERROR and aa(r)
    assert order(r.answer) == [
        ("dl1.rv.example.", "DNAME"), ("x.dl1.rv.example.", "CNAME"),
        ("dl2.rv.example.", "DNAME"), ("x.dl2.rv.example.", "CNAME"),
    ]


def test_dname_into_the_same_zone_is_followed(engine: Engine) -> None:
    r = ask(engine, "x.din.rv.example.", "A")
    assert r.rcode() == NXDOMAIN and aa(r)  # x.target does not exist (RFC 6604)
    assert order(r.answer) == [("din.rv.example.", "DNAME"), ("x.din.rv.example.", "CNAME")]
    assert lines(r.authority) == {RV_NEG}


# Regression (a fixed bug): ZoneTable.lookup keeps following the CNAME synthesized
# from a DNAME when qtype is CNAME; the synthesized CNAME is the answer (RFC 1034 §4.3.2 step
# 3a, RFC 6672 §3.1), so rcode and answer depend on the target (NXDOMAIN here). Knot stops.
# Fix: in _step, return None after _dname when qtype == CNAME.
@pytest.mark.parametrize("qname", ["x.din.rv.example.", "x.dl1.rv.example."])
def test_cname_query_below_a_dname_is_answered_by_the_synthesized_cname(
    engine: Engine, qname: str
) -> None:
    r = ask(engine, qname, "CNAME")
    assert r.rcode() == NOERROR and aa(r) and not r.authority
    assert [t for _, t in order(r.answer)] == ["DNAME", "CNAME"]


def test_dname_substitution_too_long_is_yxdomain(engine: Engine) -> None:
    long_label = "x" * 60  # 61 + 204 octets of target > 255
    r = ask(engine, f"{long_label}.yx.rv.example.", "A")
    assert r.rcode() == dns.rcode.YXDOMAIN and aa(r)  # RFC 6672 §2.2
    assert order(r.answer) == [("yx.rv.example.", "DNAME")]
    fits = "x" * 32
    r = ask(engine, f"{fits}.yx.rv.example.", "A", tcp=True)
    assert r.rcode() == NXDOMAIN
    assert [t for _, t in order(r.answer)] == ["DNAME", "CNAME"]


# --- wildcards --------------------------------------------------------------------------------


def test_wildcard_cname_is_synthesized_and_followed(engine: Engine) -> None:
    r = ask(engine, "x.wc.rv.example.", "A")
    assert lines(r.answer) == {
        "x.wc.rv.example. 3600 in cname target.rv.example.",
        "target.rv.example. 3600 in a 192.0.2.80",
    }
    r = ask(engine, "x.wc.rv.example.", "CNAME")
    assert lines(r.answer) == {"x.wc.rv.example. 3600 in cname target.rv.example."}


def test_wildcard_name_queried_literally(engine: Engine) -> None:
    r = ask(engine, "*.wc.rv.example.", "A")
    assert order(r.answer) == [("*.wc.rv.example.", "CNAME"), ("target.rv.example.", "A")]
    # Below the wildcard name itself: its closest encloser is *.wc, no wildcard there.
    r = ask(engine, "a.*.wc.rv.example.", "A")
    assert r.rcode() == NXDOMAIN


def test_wildcard_below_the_apex(engine: Engine) -> None:
    r = ask(engine, "X.wildapex.example.", "MX")
    assert lines(r.answer) == {"x.wildapex.example. 3600 in mx 10 mx.wildapex.example."}
    assert lines(r.additional) == {"mx.wildapex.example. 3600 in a 192.0.2.91"}
    r = ask(engine, "a.b.wildapex.example.", "A")
    assert lines(r.answer) == {"a.b.wildapex.example. 3600 in a 192.0.2.90"}
    # The apex exists: NODATA, not the wildcard.
    r = ask(engine, "wildapex.example.", "A")
    assert r.rcode() == NOERROR and not r.answer
    # An existing name is not covered by the wildcard.
    r = ask(engine, "mx.wildapex.example.", "MX")
    assert r.rcode() == NOERROR and not r.answer


@pytest.mark.parametrize(
    ("qname", "rcode", "answer"),
    [
        ("x.enc.rv.example.", NOERROR, {"x.enc.rv.example. 3600 in a 192.0.2.82"}),
        ("x.y.enc.rv.example.", NOERROR, {"x.y.enc.rv.example. 3600 in a 192.0.2.82"}),
        # Closest encloser b.enc (an empty non-terminal) has no wildcard (RFC 4592 §3.3.1).
        ("x.b.enc.rv.example.", NXDOMAIN, set()),
        ("b.enc.rv.example.", NOERROR, set()),
    ],
)
def test_closest_encloser_with_an_empty_non_terminal(
    engine: Engine, qname: str, rcode: dns.rcode.Rcode, answer: set[str]
) -> None:
    r = ask(engine, qname, "A")
    assert r.rcode() == rcode and lines(r.answer) == answer


# Regression (a fixed bug): ZoneTable._step only synthesizes from a wildcard that
# owns data; *.went exists as an empty non-terminal (sub.*.went below it), so it is the
# source of synthesis and the answer is NODATA, not NXDOMAIN (RFC 4592 §2.2.2, §3.3.1; Knot
# agrees). Fix: test wild_owner(encloser) in self.names, then _at_node with its (maybe empty)
# node.
@pytest.mark.parametrize("qtype", ["A", "ANY"])
def test_empty_non_terminal_wildcard_is_nodata(engine: Engine, qtype: str) -> None:
    r = ask(engine, "x.went.rv.example.", qtype)
    assert r.rcode() == NOERROR and aa(r) and not r.answer
    assert lines(r.authority) == {RV_NEG}


def test_empty_non_terminal_wildcard_literal_and_below(engine: Engine) -> None:
    assert ask(engine, "*.went.rv.example.", "A").rcode() == NOERROR
    r = ask(engine, "sub.*.went.rv.example.", "A")
    assert lines(r.answer) == {"sub.*.went.rv.example. 3600 in a 192.0.2.81"}


def test_literal_wildcard_owning_ns_is_a_referral(engine: Engine) -> None:
    r = ask(engine, "*.wildns.example.", "A")
    assert not aa(r) and order(r.authority) == [("*.wildns.example.", "NS")]


# Regression (a fixed bug): a wildcard owning NS (RFC 4592 §4.2: undefined) is a
# cut for the literal name but is served as authoritative data for names it matches (AA
# NODATA, AA NS answer). Knot refers for both. Fix: in ZoneTable._step, when
# wild_owner(encloser) is in _cuts, return _referral; or reject/warn in zones.compile.
@pytest.mark.parametrize("qtype", ["A", "NS"])
def test_names_matched_by_a_wildcard_ns_are_referred(engine: Engine, qtype: str) -> None:
    r = ask(engine, "x.wildns.example.", qtype)
    assert not aa(r) and not r.answer and order(r.authority) == [("*.wildns.example.", "NS")]


# --- CNAME chains -----------------------------------------------------------------------------


def test_cname_loop_stops(engine: Engine) -> None:
    r = ask(engine, "loop1.rv.example.", "A")
    assert r.rcode() == NOERROR and aa(r) and not r.authority
    assert order(r.answer) == [("loop1.rv.example.", "CNAME"), ("loop2.rv.example.", "CNAME")]


def test_long_chain_is_cut_at_max_chain(engine: Engine) -> None:
    r = ask(engine, "c1.rv.example.", "A")
    assert r.rcode() == NOERROR and aa(r)
    assert order(r.answer) == [(f"c{i}.rv.example.", "CNAME") for i in range(1, MAX_CHAIN + 1)]
    # A chain that fits is followed to the end.
    r = ask(engine, f"c{14 - MAX_CHAIN + 1}.rv.example.", "A")
    assert order(r.answer)[-1] == ("c14.rv.example.", "A")


def test_cname_to_the_apex(engine: Engine) -> None:
    r = ask(engine, "toapex.rv.example.", "MX")
    assert order(r.answer) == [("toapex.rv.example.", "CNAME"), ("rv.example.", "MX")]
    assert lines(r.additional) == NS1_ADDR


def test_chain_into_nxdomain_keeps_rcode_and_cname(engine: Engine) -> None:
    r = ask(engine, "tonx.rv.example.", "A")  # RFC 6604 §2
    assert r.rcode() == NXDOMAIN and aa(r)
    assert lines(r.answer) == {"tonx.rv.example. 3600 in cname missing.rv.example."}
    assert lines(r.authority) == {RV_NEG}


def test_chain_into_nodata(engine: Engine) -> None:
    r = ask(engine, "tonodata.rv.example.", "TXT")  # RFC 2308 §2.2
    assert r.rcode() == NOERROR and aa(r)
    assert order(r.answer) == [("tonodata.rv.example.", "CNAME")]
    assert lines(r.authority) == {RV_NEG}


# --- additional section -----------------------------------------------------------------------


def test_mx_target_that_is_a_cname_gets_no_additional(engine: Engine) -> None:
    r = ask(engine, "mxc.rv.example.", "MX")
    assert order(r.answer) == [("mxc.rv.example.", "MX")] and not r.additional


def test_srv_target_root_gets_no_additional(engine: Engine) -> None:
    r = ask(engine, "_x._tcp.rv.example.", "SRV")
    assert lines(r.answer) == {"_x._tcp.rv.example. 3600 in srv 0 0 0 ."} and not r.additional


def test_additional_addresses_are_not_repeated(engine: Engine) -> None:
    r = ask(engine, "mxdup.rv.example.", "MX")
    assert order(r.additional) == [("ns1.rv.example.", "A"), ("ns1.rv.example.", "AAAA")]


# --- the root zone ----------------------------------------------------------------------------


def test_root_zone(root_engine: Engine) -> None:
    r = ask(root_engine, ".", "SOA")
    assert aa(r) and order(r.answer) == [(".", "SOA")]
    r = ask(root_engine, "nonexist.", "A")
    assert r.rcode() == NXDOMAIN and lines(r.authority) == {ROOT_NEG}
    r = ask(root_engine, ".", "DS")
    assert r.rcode() == NOERROR and not r.answer and lines(r.authority) == {ROOT_NEG}
    r = ask(root_engine, "com.", "DS")
    assert aa(r) and order(r.answer) == [("com.", "DS")]
    r = ask(root_engine, "www.example.com.", "A")
    assert not aa(r) and order(r.authority) == [("com.", "NS")]
    r = ask(root_engine, "ns.org.", "A")
    assert not aa(r) and lines(r.additional) == {"ns.org. 86400 in a 192.0.2.200"}
    r = ask(root_engine, "org.", "DS")
    assert aa(r) and not r.answer and lines(r.authority) == {ROOT_NEG}


# Regression (a fixed bug): the priming answer '. NS' has no addresses: the root
# servers' names sit below the net. cut, and ZoneTable._addresses skips targets below a cut
# even for the apex NS (RFC 9609 §4: the additional section carries the root servers' A/AAAA;
# Knot sends them)
def test_root_priming_answer_has_addresses(root_engine: Engine) -> None:
    r = ask(root_engine, ".", "NS")
    assert addresses(r.additional) == {
        "a.root-servers.net. 86400 in a 198.41.0.4",
        "a.root-servers.net. 86400 in aaaa 2001:503:ba3e::2:30",
    }


# Regression (a fixed bug): root referral to com. has no glue for a.gtld-
# servers.net. (sibling glue below net.); optional by RFC 9471 §2.3, sent by Knot, NSD and
# the real root
def test_root_referral_has_sibling_glue(root_engine: Engine) -> None:
    r = ask(root_engine, "www.example.com.", "A")
    assert addresses(r.additional) == {"a.gtld-servers.net. 86400 in a 192.5.6.30"}


NSEC3_ZONE = """$ORIGIN n3.example.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
@ NSEC3PARAM 1 0 0 -
ns1 A 192.0.2.1
0123456789abcdefghijklmnopqrstuv NSEC3 1 0 0 - 0123456789ABCDEFGHIJKLMNOPQRSTUV A RRSIG
"""


@pytest.mark.parametrize("qtype", ["A", "NSEC3", "TXT"])
def test_an_nsec3_owner_name_does_not_exist(qtype: str, tmp_path: Path) -> None:
    """RFC 5155 §7.2.8: the owner of an NSEC3 record with nothing else there is
    answered as a name that does not exist (as Knot and NSD answer it)."""
    (tmp_path / "n3.example.zone").write_text(NSEC3_ZONE)
    engine = build_engine(tmp_path)
    r = ask(engine, "0123456789abcdefghijklmnopqrstuv.n3.example.", qtype)
    assert r.rcode() == NXDOMAIN and aa(r)
    assert ask(engine, "ns1.n3.example.", "A").rcode() == NOERROR
