"""answer.policies: every policy and all-down rule, overrides, the never-empty property.

Pure: explicit ``now``, no sockets, no sleeping.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from types import MappingProxyType

import dns.name
import dns.rdatatype
import pytest
from dns.rcode import Rcode
from hypothesis import given, settings
from hypothesis import strategies as st

from dnsserve.answer.policies import AllDown, Policy, Pool, PoolMember, Selection, select
from dnsserve.answer.prebuilt import Variants, empty
from dnsserve.health.model import (
    HealthView,
    MemberHealth,
    MemberId,
    Override,
    OverrideEntry,
    State,
)

NOW = 1_000_000.0
OWNER = dns.name.from_text("www.example.com.")
A = dns.rdatatype.A


def member(n: int, weight: int = 1, priority: int = 1) -> PoolMember:
    address = f"192.0.2.{n}"
    return PoolMember(address, MemberId("web", address), weight, priority)


def pool(*members: PoolMember, **kw: object) -> Pool:
    return Pool(owner=OWNER, rdtype=kw.pop("rdtype", A),  # type: ignore[arg-type]
                policy=kw.pop("policy", Policy.ALL), members=members, **kw)  # type: ignore[arg-type]


def view(down: tuple[int, ...] = (), overrides: dict[int, OverrideEntry] | None = None,
         suspect: bool = False) -> HealthView:
    members = {MemberId("web", f"192.0.2.{n}"): MemberHealth(State.DOWN, NOW - 10) for n in down}
    ov = {MemberId("web", f"192.0.2.{n}"): e for n, e in (overrides or {}).items()}
    return HealthView(MappingProxyType(members), MappingProxyType(ov), suspect=suspect)


def addr(*ns: int) -> tuple[str, ...]:
    return tuple(f"192.0.2.{n}" for n in ns)


def shares(sel: Selection) -> dict[str, Fraction]:
    """The exact share of answers each value leads, from the variants and cum table."""
    assert sel.cum_weights is not None
    total = sel.cum_weights[-1]
    out: Counter[str] = Counter()
    previous = 0
    for variant, cum in zip(sel.values_variants, sel.cum_weights, strict=True):
        out[variant[0]] += cum - previous
        previous = cum
    return {k: Fraction(v, total) for k, v in out.items()}


def picks(sel: Selection, n: int) -> list[tuple[str, ...]]:
    """The variants the server answers with over ``n`` queries: ``Variants.pick``
    over one prebuilt answer per variant, as the snapshot builds them."""
    prebuilt = tuple(empty(Rcode.NOERROR) for _ in sel.values_variants)
    values = {id(p): v for p, v in zip(prebuilt, sel.values_variants, strict=True)}
    variants = Variants(prebuilt, sel.cum_weights)
    return [values[id(variants.pick())] for _ in range(n)]


# -- policy "all" ----------------------------------------------------------------------


def test_all_rotates_healthy_members() -> None:
    sel = select(pool(member(1), member(2), member(3)), view(down=(2,)), NOW)
    assert sel.values_variants == (addr(1, 3), addr(3, 1))
    assert sel.cum_weights is None
    assert (sel.ttl, sel.all_down) == (20, False)
    drawn = picks(sel, 6)  # round-robin: each variant in turn
    assert sorted(drawn[:2]) == [addr(1, 3), addr(3, 1)]
    assert drawn == drawn[:2] * 3
    assert "2 of 3 members up" in sel.reason


def test_all_cut_to_max_answers() -> None:
    sel = select(pool(*(member(n) for n in range(1, 6)), max_answers=2), view(), NOW)
    assert sel.values_variants == (addr(1, 2), addr(2, 3), addr(3, 4), addr(4, 5), addr(5, 1))
    assert sel.values() == frozenset(addr(1, 2, 3, 4, 5))


def test_cname_pool_answers_one_target() -> None:
    members = tuple(
        PoolMember(f"lb{n}.example.net.", MemberId("web", f"192.0.2.{n}")) for n in (1, 2)
    )
    sel = select(pool(*members, rdtype=dns.rdatatype.CNAME), view(), NOW)
    assert sel.values_variants == (("lb1.example.net.",), ("lb2.example.net.",))


def test_ttl_is_the_pool_ttl() -> None:
    assert select(pool(member(1), ttl=7), view(), NOW).ttl == 7
    assert select(pool(member(1), ttl=7), view(down=(1,)), NOW).ttl == 7


# -- policy "weighted" -----------------------------------------------------------------


def test_weighted_shares_equal_the_weights() -> None:
    p = pool(member(1, 3), member(2, 1), member(3, 6), member(4, 2),
             policy=Policy.WEIGHTED, max_answers=2)
    sel = select(p, view(down=(4,)), NOW)
    assert shares(sel) == {addr(1)[0]: Fraction(3, 10), addr(2)[0]: Fraction(1, 10),
                           addr(3)[0]: Fraction(6, 10)}
    assert sel.values_variants == (addr(1, 2), addr(2, 3), addr(3, 1))
    assert sel.cum_weights == (3, 4, 10)
    # the server's draw leads with each value in proportion to its weight
    drawn = Counter(v[0] for v in picks(sel, 10_000))
    assert drawn[addr(1)[0]] == pytest.approx(3_000, abs=10)
    assert drawn[addr(2)[0]] == pytest.approx(1_000, abs=10)
    assert drawn[addr(3)[0]] == pytest.approx(6_000, abs=10)


def test_weighted_draw_three_to_one() -> None:
    sel = select(pool(member(1, 3), member(2, 1), policy=Policy.WEIGHTED), view(), NOW)
    for n in (100, 4_000):
        drawn = Counter(v[0] for v in picks(sel, n))
        assert drawn[addr(1)[0]] == pytest.approx(3 * n / 4, abs=2)
        assert drawn[addr(2)[0]] == pytest.approx(n / 4, abs=2)


def test_weight_zero_only_when_no_weighted_member_is_up() -> None:
    p = pool(member(1, 2), member(2, 0), member(3, 0), policy=Policy.WEIGHTED)
    sel = select(p, view(), NOW)
    assert sel.values() == frozenset(addr(1))
    sel = select(p, view(down=(1,)), NOW)
    assert not sel.all_down
    assert shares(sel) == {addr(2)[0]: Fraction(1, 2), addr(3)[0]: Fraction(1, 2)}
    assert "weight-0" in sel.reason


def test_weighted_all_down_all_keeps_weights() -> None:
    p = pool(member(1, 1), member(2, 3), policy=Policy.WEIGHTED)
    sel = select(p, view(down=(1, 2)), NOW)
    assert sel.all_down
    assert shares(sel) == {addr(1)[0]: Fraction(1, 4), addr(2)[0]: Fraction(3, 4)}


# -- policy "priority" -----------------------------------------------------------------


def test_priority_uses_lowest_tier_with_a_healthy_member() -> None:
    p = pool(member(1, priority=1), member(2, priority=1), member(3, priority=2),
             member(4, priority=2), member(5, priority=3), policy=Policy.PRIORITY)
    assert select(p, view(), NOW).values_variants == (addr(1, 2), addr(2, 1))
    assert select(p, view(down=(1,)), NOW).values_variants == (addr(2),)
    sel = select(p, view(down=(1, 2)), NOW)
    assert sel.values_variants == (addr(3, 4), addr(4, 3))
    assert "tier 2" in sel.reason
    assert select(p, view(down=(1, 2, 3, 4)), NOW).values_variants == (addr(5),)


def test_priority_tier_cut_to_max_answers() -> None:
    p = pool(member(1), member(2), member(3), member(4, priority=2),
             policy=Policy.PRIORITY, max_answers=2)
    assert select(p, view(), NOW).values_variants == (addr(1, 2), addr(2, 3), addr(3, 1))


# -- when_all_down ---------------------------------------------------------------------


def test_all_down_all_serves_every_member() -> None:
    sel = select(pool(member(1), member(2)), view(down=(1, 2)), NOW)
    assert sel.all_down
    assert sel.values_variants == (addr(1, 2), addr(2, 1))
    assert "serving every member" in sel.reason


def test_all_down_all_with_priority_serves_first_tier() -> None:
    p = pool(member(1, priority=2), member(2, priority=5), policy=Policy.PRIORITY)
    assert select(p, view(down=(1, 2)), NOW).values_variants == (addr(1),)


def test_all_down_fallback() -> None:
    p = pool(member(1), member(2), when_all_down=AllDown.FALLBACK,
             fallback=("198.51.100.1", "198.51.100.2"), max_answers=1)
    sel = select(p, view(down=(1, 2)), NOW)
    assert sel.all_down
    assert sel.values_variants == (("198.51.100.1",), ("198.51.100.2",))
    assert select(p, view(down=(1,)), NOW).values_variants == (addr(2),)


def test_all_down_hold_keeps_last_set() -> None:
    p = pool(member(1), member(2), member(3), when_all_down=AllDown.HOLD)
    first = select(p, view(down=(3,)), NOW)
    second = select(p, view(down=(1, 3)), NOW + 1, first)
    held = select(p, view(down=(1, 2, 3)), NOW + 2, second)
    assert held.all_down
    assert held.values_variants == second.values_variants == (addr(2),)
    # holding keeps holding
    assert select(p, view(down=(1, 2, 3)), NOW + 3, held).values_variants == (addr(2),)
    # without a previous answer: every member
    cold = select(p, view(down=(1, 2, 3)), NOW)
    assert cold.values() == frozenset(addr(1, 2, 3))
    # an empty previous (e.g. the pool was "nodata" before a reload) is not held
    empty = Selection((), None, 20, True, "")
    assert select(p, view(down=(1, 2, 3)), NOW, empty).values() == frozenset(addr(1, 2, 3))


def test_all_down_nodata_is_empty() -> None:
    p = pool(member(1), when_all_down=AllDown.NODATA)
    sel = select(p, view(down=(1,)), NOW)
    assert sel.empty and sel.all_down
    assert sel.values_variants == ()
    assert not select(p, view(), NOW).empty


# -- overrides -------------------------------------------------------------------------


def test_drain_with_expiry() -> None:
    p = pool(member(1), member(2))
    drained = view(overrides={1: OverrideEntry(Override.DRAIN, until=NOW + 60)})
    assert select(p, drained, NOW).values() == frozenset(addr(2))
    assert select(p, drained, NOW + 59.9).values() == frozenset(addr(2))
    assert select(p, drained, NOW + 60).values() == frozenset(addr(1, 2))


def test_force_up_with_expiry() -> None:
    p = pool(member(1), member(2), when_all_down=AllDown.NODATA)
    forced = view(down=(1, 2), overrides={2: OverrideEntry(Override.FORCE_UP, until=NOW + 5)})
    sel = select(p, forced, NOW)
    assert sel.values_variants == (addr(2),) and not sel.all_down
    assert select(p, forced, NOW + 5).empty


def test_drain_without_expiry_and_drain_all() -> None:
    p = pool(member(1), member(2))
    both = view(overrides={n: OverrideEntry(Override.DRAIN) for n in (1, 2)})
    sel = select(p, both, NOW + 10**9)
    assert sel.all_down and sel.values() == frozenset(addr(1, 2))


def test_suspicion_shows_in_reason() -> None:
    assert "suspects" in select(pool(member(1)), view(suspect=True), NOW).reason


def test_pool_invariants() -> None:
    with pytest.raises(ValueError):
        pool()
    with pytest.raises(ValueError):
        pool(member(1), when_all_down=AllDown.FALLBACK)
    with pytest.raises(ValueError):
        pool(member(1, weight=-1))


# -- answers_same: what a snapshot must rebuild ----------------------------------------


def test_answers_same_ignores_reason_and_all_down() -> None:
    p = pool(member(1), member(2))
    up = select(p, view(), NOW)
    assert select(p, view(suspect=True), NOW, up).answers_same(up)
    every = select(p, view(down=(1, 2)), NOW, up)  # all down, "all": every member again
    assert every.all_down and every != up and every.answers_same(up)


def test_answers_same_sees_values_weights_and_ttl() -> None:
    up = select(pool(member(1), member(2)), view(), NOW)
    assert not select(pool(member(1), member(2)), view(down=(2,)), NOW).answers_same(up)
    assert not select(pool(member(1), member(2), ttl=21), view(), NOW).answers_same(up)
    weighted = select(pool(member(1, 1), member(2, 2), policy=Policy.WEIGHTED), view(), NOW)
    heavier = select(pool(member(1, 1), member(2, 3), policy=Policy.WEIGHTED), view(), NOW)
    assert weighted.values_variants == heavier.values_variants
    assert not weighted.answers_same(heavier) and not weighted.answers_same(up)


def test_large_pool_rotations_are_cut() -> None:
    sel = select(pool(*(member(n) for n in range(1, 201)), max_answers=3), view(), NOW)
    assert len(sel.values_variants) == 200
    assert sel.values_variants[0] == addr(1, 2, 3)
    assert sel.values_variants[199] == addr(200, 1, 2)
    assert all(len(v) == 3 for v in sel.values_variants)


# -- the never-empty property ----------------------------------------------------------

members_st = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 3), st.booleans()),  # weight, priority, up
    min_size=1, max_size=12,
)


@settings(max_examples=3 * settings().max_examples, deadline=None)  # 300: thorough
@given(
    specs=members_st,
    policy=st.sampled_from(list(Policy)),
    mode=st.sampled_from([m for m in AllDown if m is not AllDown.NODATA]),
    max_answers=st.integers(1, 10),
    cname=st.booleans(),
    drained=st.sets(st.integers(0, 11)),
    with_previous=st.booleans(),
)
def test_never_empty_without_nodata(
    specs: list[tuple[int, int, bool]], policy: Policy, mode: AllDown, max_answers: int,
    cname: bool, drained: set[int], with_previous: bool,
) -> None:
    members = tuple(member(i + 1, w, p) for i, (w, p, _) in enumerate(specs))
    p = pool(*members, policy=policy, when_all_down=mode, max_answers=max_answers,
             fallback=("198.51.100.1",), rdtype=dns.rdatatype.CNAME if cname else A)
    health = view(
        down=tuple(i + 1 for i, (_, _, up) in enumerate(specs) if not up),
        overrides={i + 1: OverrideEntry(Override.DRAIN) for i in drained if i < len(specs)},
    )
    previous = select(p, view(), NOW) if with_previous else None
    sel = select(p, health, NOW, previous)
    limit = 1 if cname else max_answers
    assert sel.values_variants, sel.reason
    assert all(0 < len(v) <= limit for v in sel.values_variants)
    assert all(len(set(v)) == len(v) for v in sel.values_variants)
    if sel.cum_weights is not None:
        assert len(sel.cum_weights) == len(sel.values_variants)
        assert all(a < b for a, b in zip((0, *sel.cum_weights), sel.cum_weights, strict=False))
    up = {m.value for m in members if health.is_up(m.member, NOW)}
    if up:
        assert not sel.all_down and sel.values() <= up
    else:
        assert sel.all_down
