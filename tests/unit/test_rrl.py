"""Response rate limiting: answer.rrl's buckets and slip, answer.guard in front of the engine."""

from __future__ import annotations

import functools

import dns.edns
import dns.flags
import dns.message
import dns.rcode

from dnsserve.answer.cookies import OPTION_COOKIE, Cookies
from dnsserve.answer.engine import Engine
from dnsserve.answer.guard import Guard
from dnsserve.answer.rrl import RateLimiter, RrlSettings
from testkit.answers import EDGE_MAIN, build_engine

NOW = 1_700_000_000.25


@functools.cache
def _engine() -> Engine:
    return build_engine(EDGE_MAIN)


def _guard(**settings: object) -> Guard:
    return Guard(_engine(), limiter=RateLimiter(RrlSettings(**settings)))  # type: ignore[arg-type]


def _wire(qname: str = "par.example.", qtype: str = "SOA") -> bytes:
    return dns.message.make_query(qname, qtype).to_wire()


def _burst(guard: Guard, queries: list[bytes], client: str = "192.0.2.1", now: float = NOW,
           tcp: bool = False) -> tuple[int, int, int]:
    """(full, truncated, dropped) of ``queries`` sent at once."""
    full = truncated = dropped = 0
    for data in queries:
        out = guard.respond_from(data, client, now, tcp)
        if out is None:
            dropped += 1
        elif dns.message.from_wire(out).flags & dns.flags.TC:
            truncated += 1
        else:
            full += 1
    return full, truncated, dropped


def test_rate_per_second_then_every_slip_th_truncated() -> None:
    guard = _guard(rate=5, slip=2)
    assert _burst(guard, [_wire()] * 20) == (5, 7, 8)
    assert _burst(guard, [_wire()] * 20, now=NOW + 1) == (5, 7, 8)  # a new second
    assert guard.limiter is not None and guard.limiter.counts() == {
        "limited": 30, "slipped": 14, "dropped": 16}


def test_slip_one_truncates_all_and_zero_drops_all() -> None:
    assert _burst(_guard(rate=2, slip=1), [_wire()] * 6) == (2, 4, 0)
    assert _burst(_guard(rate=2, slip=0), [_wire()] * 6) == (2, 0, 4)


def test_a_slipped_answer_is_the_question_with_tc() -> None:
    guard = _guard(rate=1, slip=1)
    q = dns.message.make_query("PAR.example.", "SOA")
    guard.respond_from(q.to_wire(), "192.0.2.1", NOW, False)
    out = guard.respond_from(q.to_wire(), "192.0.2.1", NOW, False)
    assert out is not None
    r = dns.message.from_wire(out)
    assert r.id == q.id and r.flags & dns.flags.TC and r.question == q.question
    assert not r.answer and not r.authority and not r.additional


def test_buckets_by_prefix_kind_and_zone() -> None:
    guard = _guard(rate=3, slip=0, exempt=("198.51.100.0/24",))
    nxdomains = [_wire(f"nx{i}.{'x' * (i + 1)}.par.example.", "A") for i in range(10)]
    assert _burst(guard, nxdomains) == (3, 0, 7)  # random names of one zone: one bucket
    assert _burst(guard, [_wire()] * 4, client="192.0.2.200") == (3, 0, 1)  # answers: another
    assert _burst(guard, [_wire()] * 2, client="192.0.2.201") == (0, 0, 2)  # the same /24
    assert _burst(guard, [_wire()] * 4, client="192.0.3.1") == (3, 0, 1)  # another /24
    assert _burst(guard, [_wire()] * 4, client="198.51.100.7") == (4, 0, 0)  # exempt
    v6 = _guard(rate=3, slip=0)
    assert _burst(v6, [_wire()] * 2, client="2001:db8:0:1::1") == (2, 0, 0)
    assert _burst(v6, [_wire()] * 2, client="2001:db8:0:2::1") == (1, 0, 1)  # same /56
    assert _burst(v6, [_wire()] * 2, client="2001:db8:0:100::1") == (2, 0, 0)  # another /56


def test_tcp_and_valid_cookies_are_never_limited() -> None:
    cookies = Cookies(bytes(16))
    guard = Guard(_engine(), limiter=RateLimiter(RrlSettings(rate=1, slip=0)),
                  cookies=cookies)
    assert _burst(guard, [_wire()] * 5, tcp=True) == (5, 0, 0)
    hello = dns.message.make_query("par.example.", "SOA", use_edns=0, options=[
        dns.edns.GenericOption(OPTION_COOKIE, b"\x01" * 8)])
    out = guard.respond_from(hello.to_wire(), "192.0.2.9", NOW, False)
    assert out is not None and dns.message.from_wire(out).rcode() == dns.rcode.NOERROR
    (mine,) = (o.to_wire() for o in dns.message.from_wire(out).options if o.otype == 10)
    again = dns.message.make_query("par.example.", "SOA", use_edns=0, options=[
        dns.edns.GenericOption(OPTION_COOKIE, mine)])
    assert _burst(guard, [again.to_wire()] * 5, client="192.0.2.9") == (5, 0, 0)
    assert _burst(guard, [hello.to_wire()] * 3, client="192.0.2.9") == (0, 0, 3)
    assert cookies.accepted == 5


def test_the_table_is_fixed_size() -> None:
    limiter = RateLimiter(RrlSettings(rate=1, size=5))
    guard = Guard(_engine(), limiter=limiter)
    _burst(guard, [_wire(f"n{i}.par.example.", "A") for i in range(50)],
           client="192.0.2.1")
    assert len(limiter._counts) <= 5  # at most size buckets, whatever comes


def test_a_clock_that_goes_back_starts_a_new_window() -> None:
    guard = _guard(rate=2, slip=0)
    assert _burst(guard, [_wire()] * 3, now=NOW) == (2, 0, 1)
    assert _burst(guard, [_wire()] * 3, now=NOW - 3600) == (2, 0, 1)
    assert _burst(guard, [_wire()] * 3, now=NOW - 3600 + 0.5) == (0, 0, 3)  # the same second
