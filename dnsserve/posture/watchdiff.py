"""What ``dnsserve watch`` reports: deviations of a nameserver from the source of truth.

Pure [C]: owns the comparison (``compare``: one zone's source of truth and
what one server answered this round -> the deviations found and the
subjects looked at) and the start/clear state machine (``step``). Must not:
query, read the clock, run hooks or log (``watch``, the edge, does).

What counts as a deviation (``Kind``), for one zone on one server:

    unreachable   no authoritative SOA answer (timeout, refused, SERVFAIL,
                  REFUSED, AA clear): the server stopped serving the zone
    serial-lag    the SOA serial is not ours (behind, or ahead)
    vanished      a name we have is NXDOMAIN there (or absent from its AXFR)
    empty         the name exists there but the (name, type) we answer
                  is empty (NODATA)
    differs       the RRset's records differ (TTLs are not compared); from an
                  AXFR, also a (name, type) there that we do not have
    pool          a pool name answers a value outside what the pool could
                  legitimately give (``Truth.pools``: the pool's current
                  answer, its members up now, and the zone file's static set);
                  any non-empty subset of that is no deviation

The state machine (rule: a deviation is reported once when it starts and once
when it clears, and only what was looked at can clear):

    found this round, not active       -> start (now active)
    active, its subject looked at, not found -> clear
    active, its subject not looked at  -> stays active (no news)

A server that does not answer SOA looks at the subject "" only: its
``serial`` and content deviations stay as they were until it answers again.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import dns.rdata

Key = tuple[str, str]  # (owner, type): "www.example.com.", "A"; owners lower-cased
REACH = ""  # the subject of ``unreachable``
SERIAL = "serial"  # the subject of ``serial-lag``


class Kind(enum.StrEnum):
    UNREACHABLE = "unreachable"
    SERIAL_LAG = "serial-lag"
    VANISHED = "vanished"
    EMPTY = "empty"
    DIFFERS = "differs"
    POOL = "pool"


class Event(enum.StrEnum):
    START = "start"
    CLEAR = "clear"


def canonical_text(rdata: dns.rdata.Rdata) -> str:
    """One record's value as compared: the RFC 4034 canonical form (names in
    NS, CNAME, MX, SOA ... lower-cased) written as text."""
    wire = rdata.to_digestable()
    return dns.rdata.from_wire(rdata.rdclass, rdata.rdtype, wire, 0, len(wire)).to_text()


def subject(key: Key) -> str:
    return f"{key[0]} {key[1]}"


@dataclass(frozen=True, slots=True)
class Truth:
    """One zone as we serve it: the serial, each (owner, type)'s values, and
    for pool names the values the pool may legitimately give."""

    zone: str
    serial: int
    rrsets: Mapping[Key, frozenset[str]]
    pools: Mapping[Key, frozenset[str]]

    @property
    def owners(self) -> frozenset[str]:
        return frozenset(owner for owner, _ in self.rrsets)


@dataclass(frozen=True, slots=True)
class Content:
    """What a server had for some (owner, type)s this round.

    ``rrsets``: each key looked at -> its values (empty: NODATA or NXDOMAIN);
    ``nxdomain``: owners it said do not exist; ``complete`` (an AXFR): every
    key it has is in ``rrsets``, and an owner missing there does not exist.
    """

    rrsets: Mapping[Key, frozenset[str]]
    nxdomain: frozenset[str] = frozenset()
    complete: bool = False


@dataclass(frozen=True, slots=True)
class Observation:
    """One round of one zone on one server; ``serial`` None: no authoritative SOA."""

    zone: str
    server: str
    serial: int | None
    reason: str = ""  # why there is no serial: "timeout", "REFUSED" ...
    content: Content | None = None  # None: content not compared this round


@dataclass(frozen=True, slots=True, order=True)
class Deviation:
    """One deviation; its identity is everything but ``detail``."""

    zone: str
    server: str
    kind: Kind
    subject: str
    detail: str = ""

    @property
    def key(self) -> tuple[str, str, Kind, str]:
        return (self.zone, self.server, self.kind, self.subject)


def _values(values: Iterable[str], limit: int = 4) -> str:
    shown = sorted(values)
    more = f" (+{len(shown) - limit})" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more if shown else "nothing"


def compare(truth: Truth, obs: Observation) -> tuple[list[Deviation], frozenset[str]]:
    """The deviations of ``obs`` from ``truth``, and the subjects it looked at."""
    zone, server = truth.zone, obs.server
    if obs.serial is None:
        why = obs.reason or "no answer"
        return [Deviation(zone, server, Kind.UNREACHABLE, REACH, why)], frozenset({REACH})
    found: list[Deviation] = []
    looked = {REACH, SERIAL}
    if obs.serial != truth.serial:
        found.append(Deviation(zone, server, Kind.SERIAL_LAG, SERIAL,
                               f"serial {obs.serial}, ours {truth.serial}"))
    content = obs.content
    if content is None:
        return found, frozenset(looked)
    keys = set(truth.rrsets) | set(truth.pools)
    there_owners = {owner for (owner, _), values in content.rrsets.items() if values}
    for key in sorted(keys):
        if key not in content.rrsets and not content.complete:
            continue
        looked.add(subject(key))
        got = content.rrsets.get(key, frozenset())
        ours = truth.rrsets.get(key, frozenset())
        if dev := _one(zone, server, key, ours, truth.pools.get(key), got, content,
                       there_owners):
            found.append(dev)
    if content.complete:
        for key in sorted(set(content.rrsets) - keys):
            if content.rrsets[key]:
                looked.add(subject(key))
                found.append(Deviation(zone, server, Kind.DIFFERS, subject(key),
                                       f"has {_values(content.rrsets[key])}, ours nothing"))
    return found, frozenset(looked)


def _one(zone: str, server: str, key: Key, ours: frozenset[str], pool: frozenset[str] | None,
         got: frozenset[str], content: Content, there_owners: set[str]) -> Deviation | None:
    name = subject(key)
    if not got and (ours or pool):
        gone = key[0] in content.nxdomain or (content.complete and key[0] not in there_owners)
        if gone:
            return Deviation(zone, server, Kind.VANISHED, name, "the name does not exist there")
        return Deviation(zone, server, Kind.EMPTY, name, f"no {key[1]} there, ours "
                         f"{_values(ours or pool or ())}")
    if pool is not None:
        foreign = got - pool
        if foreign:
            return Deviation(zone, server, Kind.POOL, name,
                             f"answers {_values(foreign)}, not the pool's ({_values(pool)})")
        return None
    if got != ours:
        return Deviation(zone, server, Kind.DIFFERS, name,
                         f"has {_values(got)}, ours {_values(ours)}")
    return None


def next_turn(keys: Sequence[Key], cursor: int, cap: int) -> tuple[list[Key], int]:
    """The (name, type)s to query this round without AXFR: at most ``cap``, from
    ``cursor`` on, wrapping; and the next cursor. Every key is asked within
    ``ceil(len(keys) / cap)`` rounds; a zone of at most ``cap`` keys, every round."""
    if not keys:
        return [], 0
    start = cursor % len(keys)
    turn = [*keys[start:], *keys[:start]][:cap]
    return turn, (start + len(turn)) % len(keys)


def step(
    active: Mapping[tuple[str, str, Kind, str], Deviation],
    zone: str,
    server: str,
    found: Iterable[Deviation],
    looked: frozenset[str],
) -> tuple[dict[tuple[str, str, Kind, str], Deviation], list[tuple[Event, Deviation]]]:
    """The module docstring's state machine for one (zone, server): the new
    active set and the events, in order (clears first)."""
    now = {d.key: d for d in found}
    out = dict(active)
    events: list[tuple[Event, Deviation]] = []
    for key, dev in sorted(active.items()):
        if dev.zone == zone and dev.server == server and dev.subject in looked and key not in now:
            del out[key]
            events.append((Event.CLEAR, dev))
    for key, dev in sorted(now.items()):
        if key not in out:
            events.append((Event.START, dev))
        out[key] = dev
    return out, events
