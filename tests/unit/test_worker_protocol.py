"""The owner <-> worker messages: frames, what a worker is told, and what it then serves.

No sockets and no processes: the owner's side is ``changes``, the worker's
``apply``, and a worker must end up answering exactly as the owner does.
"""

from __future__ import annotations

from types import MappingProxyType

import dns.message
import dns.name
import pytest
from dns.rdatatype import RdataType

from dnsserve import worker_protocol as wp
from dnsserve.answer.engine import Engine
from dnsserve.answer.lookup import answer_key
from dnsserve.answer.policies import Policy, Pool, PoolMember, select
from dnsserve.answer.snapshot import Snapshot, build_snapshot
from dnsserve.config_schema import worker_count
from dnsserve.health.model import HealthView, MemberHealth, MemberId, State
from dnsserve.zones.load import load_zones
from testkit import SHIPPED_ZONES

WWW = dns.name.from_text("www.example.com.")
KEY = (WWW, RdataType.A)
MEMBERS = tuple(
    PoolMember(f"127.0.0.{11 + i}", MemberId("web", f"127.0.0.{11 + i}")) for i in range(3)
)
POOL = Pool(WWW, RdataType.A, Policy.ALL, MEMBERS)


def down(*addresses: str) -> HealthView:
    return HealthView(members=MappingProxyType(
        {MemberId("web", a): MemberHealth(State.DOWN, 0.0) for a in addresses}
    ))


@pytest.fixture(scope="module")
def first() -> Snapshot:
    tables = load_zones(SHIPPED_ZONES).tables
    return build_snapshot(tables, selections={KEY: select(POOL, HealthView(), 0.0)})


def www(engine: Engine) -> set[str]:
    out: set[str] = set()
    for _ in range(3):  # every rotation
        wire = engine.respond(dns.message.make_query("www.example.com.", "A").to_wire(), tcp=False)
        msg = dns.message.from_wire(wire or b"")
        out |= {rd.to_text() for rrset in msg.answer for rd in rrset}
    return out


def test_a_flip_crosses_as_the_changed_selection_and_the_worker_answers_as_the_owner(
    first: Snapshot,
) -> None:
    view = down("127.0.0.12")
    owner = first.with_selections({KEY: select(POOL, view, 1.0)}, health=view, generation=7)
    change = wp.changes(first, owner, 123.0)
    assert isinstance(change, wp.Select)
    assert dict(change.changed) == {KEY: owner.selections[KEY]}
    assert change.generation == 7 and change.sent_at == 123.0
    # Across the channel and back: the worker builds the owner's snapshot.
    message = wp.from_payload(wp.to_frame(change)[wp.HEADER.size:])
    assert isinstance(message, wp.Select)
    worker = wp.apply(first, message)
    assert worker.generation == 7 and worker.health == view
    assert www(Engine(worker)) == www(Engine(owner)) == {"127.0.0.11", "127.0.0.13"}


def test_new_zones_are_whole_and_nothing_new_is_nothing(first: Snapshot) -> None:
    assert isinstance(wp.changes(None, first, 0.0), wp.Whole)
    reloaded = build_snapshot(dict(first.base), selections=dict(first.selections))
    change = wp.changes(first, reloaded, 0.0)
    assert isinstance(change, wp.Whole) and change.snapshot is reloaded
    assert wp.changes(first, first, 0.0) is None


def test_a_secondary_zone_expiring_or_recovering_is_whole(first: Snapshot) -> None:
    """Expiry changes answers (SERVFAIL) without new zones: workers take it whole."""
    expired = first.with_expired(frozenset({dns.name.from_text("example.com.")}))
    change = wp.changes(first, expired, 0.0)
    assert isinstance(change, wp.Whole) and change.snapshot is expired
    back = wp.changes(expired, expired.with_expired(frozenset()), 0.0)
    assert isinstance(back, wp.Whole)


def test_a_hand_off_and_its_reply_cross_whole() -> None:
    request = wp.HandOffRequest(3, b"\x12\x34axfr", ("127.0.0.1", 5353), True)
    reply = wp.HandOffReply(3, (b"one", b"two"))
    for message in (request, reply):
        assert wp.from_payload(wp.to_frame(message)[wp.HEADER.size:]) == message


def test_changes_in_a_row_reach_the_same_answers(first: Snapshot) -> None:
    owner, worker = first, first
    for at, view in enumerate([down("127.0.0.11"), down("127.0.0.11", "127.0.0.13"), down()]):
        fresh = owner.with_selections({KEY: select(POOL, view, float(at))}, health=view,
                                      generation=at + 2)
        change = wp.changes(owner, fresh, 0.0)
        assert isinstance(change, wp.Select)
        owner, worker = fresh, wp.apply(worker, change)
        assert www(Engine(worker)) == www(Engine(owner))
    assert www(Engine(worker)) == {"127.0.0.11", "127.0.0.12", "127.0.0.13"}


def test_frames_carry_their_length_and_refuse_what_is_not_a_message() -> None:
    stats = wp.Stats(index=1, answered={5: 2}, truncated=0, formerr=1, servfails=0,
                     net={"udp_queries": 3}, generation=4)
    frame = wp.to_frame(stats)
    assert wp.frame_length(frame[:wp.HEADER.size]) == len(frame) - wp.HEADER.size
    assert wp.from_payload(frame[wp.HEADER.size:]) == stats
    with pytest.raises(wp.ProtocolError, match="holds no message"):
        wp.from_payload(wp.to_frame(wp.Ready(0, 1))[wp.HEADER.size:].replace(b"Ready", b"Whole"))
    with pytest.raises(wp.ProtocolError, match="does not decode"):
        wp.from_payload(b"not a pickle")


@pytest.mark.parametrize(
    ("configured", "cpus", "expected"),
    [(None, 1, 1), (None, 2, 2), (None, 32, 8), (None, 0, 1), (1, 32, 1), (12, 2, 12)],
)
def test_worker_count_defaults_to_the_cpus_at_most_8(
    configured: int | None, cpus: int, expected: int
) -> None:
    assert worker_count(configured, cpus) == expected


def _round_trip(message: wp.Message) -> wp.Message:
    frame = wp.to_frame(message)
    assert wp.frame_length(frame[:wp.HEADER.size]) == len(frame) - wp.HEADER.size
    return wp.from_payload(frame[wp.HEADER.size:])


def test_a_hand_off_request_and_its_reply_cross_whole() -> None:
    request = wp.HandOffRequest(7, b"\x12\x34query", ("127.0.0.1", 5353), True)
    assert _round_trip(request) == request
    reply = wp.HandOffReply(7, (b"one", b"two"), last=False)
    assert _round_trip(reply) == reply


def test_a_big_reply_is_split_within_the_limit_and_joined_in_order() -> None:
    messages = [bytes([i]) * 300 for i in range(10)]
    parts = wp.reply_parts(3, messages, limit=1000)
    assert [len(p.messages) for p in parts] == [3, 3, 3, 1]
    assert [p.last for p in parts] == [False, False, False, True]
    assert all(sum(map(len, p.messages)) <= 1000 for p in parts)
    joiner = wp.Joiner()
    other = wp.reply_parts(4, [b"x" * 900, b"y" * 900], limit=1000)
    got: dict[int, list[bytes]] = {}
    for part in [parts[0], other[0], parts[1], other[1], parts[2], parts[3]]:  # interleaved
        whole = joiner.add(part)
        if whole is not None:
            got[part.id] = whole
    assert got == {3: messages, 4: [b"x" * 900, b"y" * 900]}


def test_an_empty_reply_is_one_last_part_and_a_large_message_goes_alone() -> None:
    assert wp.reply_parts(1, []) == [wp.HandOffReply(1, (), last=True)]
    big = b"z" * 5000
    parts = wp.reply_parts(2, [b"a", big, b"b"], limit=1000)
    assert [p.messages for p in parts] == [(b"a",), (big,), (b"b",)]


def test_a_dropped_request_keeps_no_parts() -> None:
    joiner = wp.Joiner()
    first, second = wp.reply_parts(5, [b"a" * 600, b"b" * 600], limit=1000)
    assert joiner.add(first) is None
    joiner.drop(5)
    assert joiner.add(second) == [b"b" * 600]  # the dropped part is gone


def test_answers_set_beside_the_zones_cross_and_outlive_a_select(first: Snapshot) -> None:
    """Publish mode's apex SOA: the worker answers what the owner answers, after a flip too."""
    soa_key = answer_key(dns.name.from_text("example.com."), RdataType.SOA, 1)
    ns_key = answer_key(dns.name.from_text("example.com."), RdataType.NS, 1)
    entries = {soa_key: first.answers[ns_key]}  # any other answer stands in for it
    message = wp.from_payload(wp.to_frame(wp.Answers(entries))[wp.HEADER.size:])
    assert isinstance(message, wp.Answers)
    owner = wp.with_answers(first, entries)
    worker = wp.with_answers(first, message.entries)
    view = down("127.0.0.11")
    owner = owner.with_selections({KEY: select(POOL, view, 1.0)}, health=view, generation=3)
    change = wp.changes(wp.with_answers(first, entries), owner, 1.0)
    assert isinstance(change, wp.Select)
    worker = wp.apply(worker, change)
    soa = dns.message.make_query("example.com.", "SOA").to_wire()
    assert Engine(worker).respond(soa, tcp=False) == Engine(owner).respond(soa, tcp=False)
    answer = dns.message.from_wire(Engine(worker).respond(soa, tcp=False) or b"")
    assert answer.answer[0].rdtype == RdataType.NS
    assert www(Engine(worker)) == www(Engine(owner)) == {"127.0.0.12", "127.0.0.13"}


def test_hot_keys_go_in_parts_and_survive_a_frame() -> None:
    keys = [bytes([i % 256, i // 256]) for i in range(12)]
    parts = wp.hot_parts(7, keys, limit=5)
    assert [len(p.keys) for p in parts] == [5, 5, 2]
    assert [p.last for p in parts] == [False, False, True]
    decoded = [wp.from_payload(wp.to_frame(p)[wp.HEADER.size:]) for p in parts]
    assert [k for p in decoded if isinstance(p, wp.HotKeys) for k in p.keys] == keys
    assert wp.hot_parts(8, []) == [wp.HotKeys(8, ())]
    assert wp.from_payload(wp.to_frame(wp.HotRequest(3))[wp.HEADER.size:]) == wp.HotRequest(3)
