"""The messages between the owner process and its answering workers, and their frames.

Owns what crosses the channel (``net.channel_pair``) between the process that
owns the monitor, the state file and the control API and each worker that
answers queries, the frame each message travels in, and ``changes``: what a
worker must be told so that it serves the snapshot the owner serves now.

A worker is forked from the owner: it starts with the owner's snapshot in
its memory, shared copy-on-write (``workers``), so nothing large ever crosses
the channel. What does:

    owner -> worker   Select    pools whose selection changed (a flip, a drain,
                                a force-up, an expiry): applied with
                                ``Snapshot.with_selections``, as the owner did
    worker -> owner   Ready     the worker's listeners are bound: it answers
                      Stats     its counters, every ``STATS_EVERY`` seconds
                      HandOffRequest  a query the engine handed off (AXFR/IXFR,
                                NOTIFY, TSIG-signed, EDNS EXPIRE of a secondary
                                zone): the owner answers it (``handoff``)
    owner -> worker   Answers   answers set beside the zones' (publish mode's apex
                                SOA with the published serial): ``with_answers``
    owner -> worker   HotRequest  a reload is about to be served: which keys are hot?
    worker -> owner   HotKeys   the keys its engine answered lately from the miss
                                index (``Engine.hot_keys``), in parts of at most
                                ``HOT_PART`` keys (the last has ``last`` set): the
                                owner warms the new snapshot with them before it
                                forks the workers that serve it
    owner -> worker   HandOffReply    the messages to send for one request, in
                                frames of at most ``REPLY_BYTES`` (``reply_parts``;
                                the last has ``last`` set): an AXFR of a big
                                zone never sits whole in the channel's buffer

A reload (a snapshot over new zones) crosses no channel: ``changes`` says
``Whole``, and the owner forks new workers from the new snapshot and retires
the old ones when the new ones are ready.

Rule: a worker applies every Select in order to the snapshot it was forked
with, and the owner diffs against the snapshot it served last, which every
worker of the current zones holds. So every worker serves what the owner
serves, however many changes are in flight.

Frame: a 4-byte big-endian length, then the message pickled (protocol 5).
Pickle is safe here: both ends are this program, over a socketpair no one
else holds.

Pure: no I/O, no clock (``sent_at`` is passed in), no sockets.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from dnsserve.answer.policies import Selection
from dnsserve.answer.snapshot import Entry, PoolKey, Snapshot
from dnsserve.errors import DnsServeError
from dnsserve.health.model import HealthView

HEADER = struct.Struct(">I")
MAX_FRAME = 2**32 - 1  # the length field's limit
STATS_EVERY = 0.5  # seconds between a worker's Stats
REPLY_BYTES = 256 * 1024  # a HandOffReply frame's messages, at most (unless one is larger)
HOT_PART = 5_000  # keys per HotKeys frame: a worker pickles one part between answers


class ProtocolError(DnsServeError):
    """A frame that is not one of these messages: the channel is broken."""


@dataclass(frozen=True, slots=True)
class Whole:
    """The snapshot serves other zones (a load or reload): workers start again from it."""

    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class Select:
    changed: Mapping[PoolKey, Selection]
    health: HealthView
    generation: int
    sent_at: float  # when the owner sent it (seconds since the epoch): the flip's delay


@dataclass(frozen=True, slots=True)
class Ready:
    index: int
    pid: int


@dataclass(frozen=True, slots=True)
class Stats:
    """A worker's counters (each a running total since it started)."""

    index: int
    answered: Mapping[int, int]  # ``Engine.answered``: (rcode, qtype, tcp) packed -> answers
    truncated: int
    formerr: int
    servfails: int
    net: Mapping[str, int]  # ``net.NetStats`` by field name
    generation: int  # the snapshot generation it serves
    select_delay: float = 0.0  # the last Select's delay, from sent_at to applied (seconds)
    select_delay_max: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answers:
    """Prebuilt answers by answer key, served in place of the snapshot's own."""

    entries: Mapping[bytes, Entry]


@dataclass(frozen=True, slots=True)
class HandOffRequest:
    """A query a worker's engine handed off (``wire.HAND_OFF``), for the owner to answer."""

    id: int  # the worker's number for it, unique among its requests in flight
    data: bytes
    peer: tuple[str, int]
    tcp: bool


@dataclass(frozen=True, slots=True)
class HandOffReply:
    """Part of the owner's answer to request ``id``: messages to send, in order."""

    id: int
    messages: tuple[bytes, ...]
    last: bool = True  # no more parts follow


@dataclass(frozen=True, slots=True)
class HotRequest:
    """The owner asks a worker for its hot keys (``HotKeys`` parts answer ``id``)."""

    id: int


@dataclass(frozen=True, slots=True)
class HotKeys:
    """Part of a worker's hot keys (answer keys, most recent first) for request ``id``."""

    id: int
    keys: tuple[bytes, ...]
    last: bool = True


def hot_parts(request_id: int, keys: Sequence[bytes], limit: int = HOT_PART) -> list[HotKeys]:
    """``keys`` as HotKeys parts of at most ``limit`` keys, the last marked (none: one)."""
    parts = [HotKeys(request_id, tuple(keys[i : i + limit]), last=False)
             for i in range(0, len(keys), limit)]
    if not parts:
        return [HotKeys(request_id, ())]
    parts[-1] = HotKeys(request_id, parts[-1].keys, last=True)
    return parts


Message = Select | Ready | Stats | Answers | HandOffRequest | HandOffReply | HotRequest | HotKeys
_MESSAGES = (Select, Ready, Stats, Answers, HandOffRequest, HandOffReply, HotRequest, HotKeys)


def _proxy(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


def _reduce_proxy(proxy: MappingProxyType[Any, Any]) -> tuple[Any, tuple[dict[Any, Any]]]:
    return _proxy, (dict(proxy),)


_DISPATCH = copyreg.dispatch_table.copy()
_DISPATCH[MappingProxyType] = _reduce_proxy


def to_frame(message: Message) -> bytes:
    """``message`` as one frame: its length, then its pickle."""
    out = io.BytesIO()
    out.write(b"\0\0\0\0")
    pickler = pickle.Pickler(out, protocol=5)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(message)
    length = out.tell() - HEADER.size
    if length > MAX_FRAME:
        raise ProtocolError(f"a message of {length} bytes does not fit one frame")
    out.seek(0)
    out.write(HEADER.pack(length))
    return out.getvalue()


def frame_length(header: bytes) -> int:
    """The payload length that a frame's 4-byte ``header`` announces."""
    (length,) = HEADER.unpack(header)
    return int(length)


def from_payload(payload: bytes) -> Message:
    """The message in one frame's payload; ProtocolError when it is none."""
    try:
        message = pickle.loads(payload)
    except Exception as exc:
        raise ProtocolError(f"a frame that does not decode: {exc!r}") from None
    if not isinstance(message, _MESSAGES):
        raise ProtocolError(f"a frame that holds no message: {type(message).__name__}")
    return message


# What ``Snapshot.with_selections`` changes; any other field that differs
# (zones expired, and whatever a future field holds) makes the change Whole.
_DERIVED = frozenset({"zones", "answers", "health", "generation", "selections", "depends",
                      "zone_pools", "misses"})
_NOT_DERIVED = tuple(f.name for f in fields(Snapshot) if f.name not in _DERIVED)


def changes(sent: Snapshot | None, now: Snapshot, sent_at: float) -> Whole | Select | None:
    """What turns the snapshot the workers hold (``sent``) into ``now``.

    A snapshot over other zones (a load or reload: new tables) is ``Whole``;
    one derived by ``with_selections`` from the same zones goes as the
    selections that differ; None when nothing a worker serves differs.
    """
    if sent is None or now.base is not sent.base:
        return Whole(now)
    for name in _NOT_DERIVED:
        if getattr(now, name) is not getattr(sent, name) and getattr(now, name) != getattr(
            sent, name
        ):
            return Whole(now)  # not what with_selections changes (expired zones, ...)
    if now is sent:
        return None
    changed = {
        pool: selection for pool, selection in now.selections.items()
        if sent.selections.get(pool) != selection
    }
    if set(sent.selections) - set(now.selections):
        return Whole(now)  # a pool went away without a reload: not a selection change
    if not changed and now.health == sent.health and now.generation == sent.generation:
        return None
    return Select(MappingProxyType(changed), now.health, now.generation, sent_at)


def apply(snapshot: Snapshot, message: Select) -> Snapshot:
    """The snapshot a worker serves after ``message``: what the owner built."""
    return snapshot.with_selections(
        message.changed, health=message.health, generation=message.generation
    )


def with_answers(snapshot: Snapshot, entries: Mapping[bytes, Entry]) -> Snapshot:
    """``snapshot`` answering ``entries`` in place of its own answers for those keys
    (what the owner serves; later Selects keep them, as ``with_selections`` does)."""
    return replace(snapshot, answers={**snapshot.answers, **entries})


def reply_parts(
    request_id: int, messages: Sequence[bytes], limit: int = REPLY_BYTES
) -> list[HandOffReply]:
    """``messages`` (the answer to ``request_id``) as HandOffReply parts in order,
    each holding at most ``limit`` bytes of messages (a larger message alone);
    the last part is marked ``last`` (no messages at all: one empty last part)."""
    parts: list[HandOffReply] = []
    chunk: list[bytes] = []
    size = 0
    for message in messages:
        if chunk and size + len(message) > limit:
            parts.append(HandOffReply(request_id, tuple(chunk), last=False))
            chunk, size = [], 0
        chunk.append(message)
        size += len(message)
    parts.append(HandOffReply(request_id, tuple(chunk), last=True))
    return parts


class Joiner:
    """The worker's side of ``reply_parts``: parts in, whole answers out.

    Parts of one request arrive in order; parts of different requests may
    interleave. ``drop`` forgets the parts held for a request that timed out
    (its later parts are joined again, and the caller finds no one waiting).
    """

    def __init__(self) -> None:
        self._partial: dict[int, list[bytes]] = {}

    def add(self, part: HandOffReply) -> list[bytes] | None:
        """The whole answer when ``part`` is its last, else None."""
        if part.last:
            return self._partial.pop(part.id, []) + list(part.messages)
        self._partial.setdefault(part.id, []).extend(part.messages)
        return None

    def drop(self, request_id: int) -> None:
        self._partial.pop(request_id, None)
