"""Member identities, states, check kinds and the immutable health view.

Owns the vocabulary every other health and answer module speaks, and the
config schema too: the kinds of check and each kind's default port (one
table, for the config's ``probe_port`` and the probes alike). Pure: no
clock reads (times are floats passed in, seconds since the epoch), no I/O.

A *member* is what a monitor checks: one probe address under one monitor.
Several pools may share a member (same monitor, same probe address); one check
serves them all.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class CheckKind(enum.Enum):
    """How a monitor checks a member (``health.probes`` runs each kind)."""

    HTTP = "http"
    HTTPS = "https"
    TCP = "tcp"
    DNS = "dns"
    EXEC = "exec"


# The port a check of each kind uses when none is configured; tcp needs one,
# exec gets none.
DEFAULT_PORTS: Mapping[CheckKind, int] = MappingProxyType(
    {CheckKind.HTTP: 80, CheckKind.HTTPS: 443, CheckKind.DNS: 53}
)


class State(enum.Enum):
    UP = "up"
    DOWN = "down"


class Override(enum.Enum):
    DRAIN = "drain"        # force down
    FORCE_UP = "force-up"  # force up


@dataclass(frozen=True, slots=True, order=True)
class MemberId:
    """One monitored thing: a monitor name and the address it probes."""

    monitor: str
    address: str

    def to_text(self) -> str:
        return f"{self.monitor}/{self.address}"

    @classmethod
    def from_text(cls, text: str) -> MemberId:
        monitor, sep, address = text.partition("/")
        if not sep or not monitor or not address:
            raise ValueError(f"member must be MONITOR/ADDRESS, got {text!r}")
        return cls(monitor, address)


@dataclass(frozen=True, slots=True)
class OverrideEntry:
    kind: Override
    until: float | None = None  # None = until removed
    reason: str = ""
    source: str = "api"  # "api" (an operator, kept in the state file) | "file" (overrides.toml)
    set_at: float | None = field(default=None, compare=False)  # when it was set

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True)
class MemberHealth:
    """What the tracker knows of one member (its real state, without overrides)."""

    state: State
    since: float
    reason: str = ""
    passes: int = 0     # consecutive passes (counts toward rise)
    failures: int = 0   # consecutive failures (counts toward fall)
    checked: float | None = None  # time of the last completed check


@dataclass(frozen=True, slots=True)
class HealthView:
    """An immutable picture of every member's health at one moment.

    ``effective(member, now)`` applies an active override over the real state;
    a member the view does not know is up (never seen = up, checked at once).
    """

    members: Mapping[MemberId, MemberHealth] = field(default_factory=lambda: MappingProxyType({}))
    overrides: Mapping[MemberId, OverrideEntry] = field(
        default_factory=lambda: MappingProxyType({})
    )
    suspect: bool = False  # the self-suspicion guard holds states
    generation: int = 0

    def real(self, member: MemberId) -> State:
        health = self.members.get(member)
        return State.UP if health is None else health.state

    def effective(self, member: MemberId, now: float) -> State:
        entry = self.overrides.get(member)
        if entry is not None and entry.active(now):
            return State.DOWN if entry.kind is Override.DRAIN else State.UP
        return self.real(member)

    def is_up(self, member: MemberId, now: float) -> bool:
        return self.effective(member, now) is State.UP
