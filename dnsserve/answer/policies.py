"""Answer policies: which values a pool name answers with, given health.

Owns the choice among a pool's members (policy "all" | "weighted" |
"priority") and the all-down rule ("all" | "fallback" | "hold" | "nodata") as
one pure function, ``select(pool, view, now, previous) -> Selection``. The
selection holds every answer variant up front; the snapshot prebuilds each
variant once and ``answer.prebuilt.Variants.pick`` (the one draw) picks one
per query (round-robin when ``cum_weights`` is None, else a weighted draw
over the cumulative table) without calling back.

Must not: read the clock (``now`` is an argument), do I/O, import ``config``
or any edge module, know the wire format, or look at the monitor's guard
(``HealthView.suspect`` only shows up in the reason).

Rules (the tables below are the whole behaviour)
------------------------------------------------
1. A member is *up* when ``view.is_up(member, now)``: an active override wins
   (drain = down, force-up = up), else the tracker's state; unknown = up.
2. N = ``max_answers``; a CNAME pool answers one target (N = 1), because a
   CNAME RRset holds one record.
3. POLICIES: candidates among the up members, variants, draw.

   policy    candidates                           variants                       draw
   all       every up member, config order        rotations, each cut to N       round-robin
   weighted  up members with weight > 0;          member i first, then the       by weight
             if none: up members with weight 0    candidates after it, cut to N  (weight 0: even)
   priority  up members of the lowest priority    rotations, each cut to N       round-robin
             number that has an up member

4. ALL_DOWN: when no member is up.

   when_all_down  selection
   all            the policy applied as if every member were up (Route 53's rule)
   fallback       rotations of the fallback list, each cut to N, round-robin
   hold           the previous selection's variants when it had any, else as "all"
   nodata         no variants: the engine answers NODATA (fails closed)

5. Without "nodata" a selection is never empty, and no variant is empty.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype

from dnsserve.health.model import HealthView, MemberId


class Policy(enum.Enum):
    ALL = "all"
    WEIGHTED = "weighted"
    PRIORITY = "priority"


class AllDown(enum.Enum):
    ALL = "all"
    FALLBACK = "fallback"
    HOLD = "hold"
    NODATA = "nodata"


@dataclass(frozen=True, slots=True)
class PoolMember:
    value: str  # the answer: an address, or a CNAME target (absolute name text)
    member: MemberId  # what the monitor checks
    weight: int = 1
    priority: int = 1


@dataclass(frozen=True, slots=True)
class Pool:
    owner: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    policy: Policy
    members: tuple[PoolMember, ...]
    max_answers: int = 8
    ttl: int = 20
    when_all_down: AllDown = AllDown.ALL
    fallback: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError(f"pool {self.owner} has no members")
        if self.max_answers < 1 or self.ttl < 0:
            raise ValueError(f"pool {self.owner}: max_answers >= 1 and ttl >= 0")
        if any(m.weight < 0 for m in self.members):
            raise ValueError(f"pool {self.owner}: negative weight")
        if self.when_all_down is AllDown.FALLBACK and not self.fallback:
            raise ValueError(f"pool {self.owner}: when_all_down=fallback needs a fallback list")

    @property
    def limit(self) -> int:
        return 1 if self.rdtype == dns.rdatatype.CNAME else self.max_answers


@dataclass(frozen=True, slots=True)
class Selection:
    """Every answer variant of one pool at one moment (see rule 3)."""

    values_variants: tuple[tuple[str, ...], ...]
    cum_weights: tuple[int, ...] | None  # None: round-robin over the variants
    ttl: int
    all_down: bool
    reason: str
    # in an online-signed zone: each variant's RRSIGs (rdata wire), made by the
    # owner when the selection changed (``zones.poolsign``); () elsewhere
    signatures: tuple[tuple[bytes, ...], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.values_variants

    def values(self) -> frozenset[str]:
        """Every value any variant may answer with."""
        return frozenset(itertools.chain.from_iterable(self.values_variants))

    def answers_same(self, other: Selection) -> bool:
        """Whether ``other`` gives the same answers: variants, weights and TTL.

        ``reason`` and ``all_down`` are not part of an answer (entering or
        leaving suspicion, or "all" members down serving every member, change
        only those), so a snapshot need not rebuild a pool when this holds.
        """
        return (
            self.values_variants == other.values_variants
            and self.cum_weights == other.cum_weights
            and self.ttl == other.ttl
            and self.signatures == other.signatures
        )


# What a policy returns: (values of each variant, cumulative weights or None
# for round-robin, a note for the reason). ``answer.prebuilt.Variants`` is the
# prebuilt form the server draws from.
PolicyResult = tuple[tuple[tuple[str, ...], ...], tuple[int, ...] | None, str]


def _rotations(values: Sequence[str], limit: int) -> tuple[tuple[str, ...], ...]:
    """Rotation i starts at value i; each holds min(limit, n) values (n rotations)."""
    items = tuple(values)
    width = min(limit, len(items))
    twice = items + items[: width - 1]  # rotation i is a window of ``width`` from i
    return tuple(twice[i : i + width] for i in range(len(items)))


def _policy_all(up: Sequence[PoolMember], limit: int) -> PolicyResult:
    return _rotations([m.value for m in up], limit), None, ""


def _policy_weighted(up: Sequence[PoolMember], limit: int) -> PolicyResult:
    weighted = [m for m in up if m.weight > 0]
    note = ""
    if not weighted:  # weight 0 = only when nothing weighted is up; then evenly
        weighted, note = list(up), ", only weight-0 members up"
    weights = [m.weight or 1 for m in weighted]
    variants = _rotations([m.value for m in weighted], limit)
    return variants, tuple(itertools.accumulate(weights)), note


def _policy_priority(up: Sequence[PoolMember], limit: int) -> PolicyResult:
    tier = min(m.priority for m in up)
    chosen = [m.value for m in up if m.priority == tier]
    return _rotations(chosen, limit), None, f", priority tier {tier}"


POLICIES: dict[Policy, Callable[[Sequence[PoolMember], int], PolicyResult]] = {
    Policy.ALL: _policy_all,
    Policy.WEIGHTED: _policy_weighted,
    Policy.PRIORITY: _policy_priority,
}


def _down_all(pool: Pool, previous: Selection | None) -> Selection:
    variants, cum, note = POLICIES[pool.policy](pool.members, pool.limit)
    return Selection(variants, cum, pool.ttl, True,
                     f"all {len(pool.members)} members down: serving every member{note}")


def _down_fallback(pool: Pool, previous: Selection | None) -> Selection:
    return Selection(_rotations(pool.fallback, pool.limit), None, pool.ttl, True,
                     f"all {len(pool.members)} members down: serving the fallback list")


def _down_hold(pool: Pool, previous: Selection | None) -> Selection:
    if previous is None or previous.empty:
        held = _down_all(pool, None)
        return Selection(held.values_variants, held.cum_weights, pool.ttl, True,
                         f"{held.reason} (hold: no previous answer)")
    return Selection(previous.values_variants, previous.cum_weights, pool.ttl, True,
                     f"all {len(pool.members)} members down: holding the last answer set")


def _down_nodata(pool: Pool, previous: Selection | None) -> Selection:
    return Selection((), None, pool.ttl, True,
                     f"all {len(pool.members)} members down: NODATA (when_all_down=nodata)")


ALL_DOWN: dict[AllDown, Callable[[Pool, Selection | None], Selection]] = {
    AllDown.ALL: _down_all,
    AllDown.FALLBACK: _down_fallback,
    AllDown.HOLD: _down_hold,
    AllDown.NODATA: _down_nodata,
}


def select(
    pool: Pool, view: HealthView, now: float, previous: Selection | None = None
) -> Selection:
    """What ``pool`` answers at ``now`` given ``view``; ``previous`` is what it
    answered before (used by "hold")."""
    up = [m for m in pool.members if view.is_up(m.member, now)]
    if up:
        variants, cum, note = POLICIES[pool.policy](up, pool.limit)
        reason = f"{pool.policy.value}: {len(up)} of {len(pool.members)} members up{note}"
        selection = Selection(variants, cum, pool.ttl, False, reason)
    else:
        selection = ALL_DOWN[pool.when_all_down](pool, previous)
    if view.suspect:
        selection = dataclasses.replace(
            selection, reason=f"{selection.reason} (monitor suspects its own network; states held)"
        )
    return selection
