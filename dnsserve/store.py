"""The state file (SQLite through sqlite-utils): member states, events, overrides.

Owns the schema and every read and write of the file. The app calls it from
the monitor side and the control side (one lock serialises them), at start to
restore states and overrides, and on each transition.

Must not: be read on the query path, decide health, or swallow an error: any
SQLite or OS failure becomes ``StateError`` naming the file.

Durability: WAL journal. Events and overrides commit with ``synchronous=FULL``
(a ``kill -9``, or a power cut, loses no committed event); plain counter
updates (``save_state``) use NORMAL, which a ``kill -9`` cannot lose either.

Tables:
    member_state  member PK ("monitor/address"), state, since, reason,
                  passes, failures, checked
    events        id, time, member, monitor, from_state, to_state, reason;
                  alarms (the self-suspicion guard) use member "*", monitor "",
                  from_state NULL and to_state the alarm kind
    overrides     member PK, kind ("drain" | "force-up"), until, reason, set_at
    zone_versions id, zone, serial, hash, records, added, removed, at, and the
                  diff's records (removed_rrs, added_rrs: canonical wire, see
                  zones.versions) for IXFR; one row per accepted zone version
    zone_content  zone PK, version (zone_versions.id), data: the last accepted
                  content (canonical wire), for the deletion guard at start

Schema 1 (no zone tables) is upgraded in place on open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import msgspec
import sqlite_utils

from dnsserve.errors import StateError
from dnsserve.health.model import MemberHealth, MemberId, Override, OverrideEntry, State
from dnsserve.zones.versions import ZoneContent, ZoneDiff, ZoneVersion, split_records

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
ALARM_MEMBER = "*"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS member_state (
    member TEXT PRIMARY KEY, state TEXT NOT NULL, since REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '', passes INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, checked REAL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, member TEXT NOT NULL,
    monitor TEXT NOT NULL, from_state TEXT, to_state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS events_member ON events (member, id);
CREATE TABLE IF NOT EXISTS overrides (
    member TEXT PRIMARY KEY, kind TEXT NOT NULL, until REAL,
    reason TEXT NOT NULL DEFAULT '', set_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS zone_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, zone TEXT NOT NULL, serial INTEGER NOT NULL,
    hash TEXT NOT NULL, records INTEGER NOT NULL, added INTEGER NOT NULL,
    removed INTEGER NOT NULL, at REAL NOT NULL, removed_rrs BLOB, added_rrs BLOB);
CREATE INDEX IF NOT EXISTS zone_versions_zone ON zone_versions (zone, id);
CREATE TABLE IF NOT EXISTS zone_content (
    zone TEXT PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL);
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One row of the event log: a member's state change, or an alarm.

    An alarm (the self-suspicion guard, a dead monitor) has member ``"*"``,
    monitor ``""``, no ``from_state``, and its kind as ``to_state``.
    """

    id: int
    time: float
    member: str
    monitor: str
    from_state: str | None
    to_state: str
    reason: str

    @property
    def is_alarm(self) -> bool:
        return self.member == ALARM_MEMBER


def _count(value: object) -> int:
    """A stored counter: a non-negative int, else ValueError."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value


def _state_row(member: MemberId, health: MemberHealth) -> dict[str, Any]:
    return {
        "member": member.to_text(),
        "state": health.state.value,
        "since": health.since,
        "reason": health.reason,
        "passes": health.passes,
        "failures": health.failures,
        "checked": health.checked,
    }


@contextlib.contextmanager
def _immediate(db: sqlite_utils.Database) -> Iterator[None]:
    """A write transaction that takes the write lock up front (BEGIN IMMEDIATE).

    A deferred transaction that reads first and then writes fails at once
    with "database is locked" when another process committed in between;
    an immediate one waits (up to the connection's timeout) for the lock.
    """
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


class Store:
    """One open state file. Use ``Store.open(path)``; ``close()`` when done."""

    def __init__(self, path: Path, db: sqlite_utils.Database) -> None:
        self.path = path
        self._db = db
        self._lock = threading.Lock()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str) -> Store:
        """Open (creating when missing) the state file at ``path``."""
        path = Path(path)
        try:
            conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StateError(f"{path}: cannot open state file: {exc}") from None
        try:
            store = cls(path, sqlite_utils.Database(conn, execute_plugins=False))
            store._setup()
        except (sqlite3.Error, OSError) as exc:
            conn.close()
            raise StateError(f"{path}: cannot open state file: {exc}") from None
        except StateError:
            conn.close()
            raise
        return store

    def _setup(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.path}: state file schema {version} is newer than this dnsserve "
                f"({SCHEMA_VERSION})"
            )
        db.enable_wal()
        db.execute("PRAGMA synchronous=FULL")
        if version == SCHEMA_VERSION:
            return  # opening must not write: another process may be writing now
        # executescript commits any open transaction first: the script brings its own.
        db.executescript(
            f"BEGIN IMMEDIATE;\n{_SCHEMA}\nPRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;"
        )

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _use(self, action: str) -> Iterator[sqlite_utils.Database]:
        """Hold the lock; map every SQLite/OS failure to StateError."""
        with self._lock:
            if self._closed:
                raise StateError(f"{self.path}: cannot {action}: state file is closed")
            try:
                yield self._db
            except (sqlite3.Error, OSError) as exc:
                raise StateError(f"{self.path}: cannot {action}: {exc}") from None
            except (ValueError, KeyError) as exc:
                raise StateError(f"{self.path}: cannot {action}: bad row: {exc}") from None

    # -- member states -----------------------------------------------------------

    def load_states(self) -> dict[MemberId, MemberHealth]:
        """Every member's last recorded state; a row with a bad value is skipped
        and logged (nothing read from the file may stop the server or the monitor)."""
        with self._use("read member states") as db:
            rows = list(db.table("member_state").rows)
        out = {}
        for row in rows:
            try:
                checked = row["checked"]
                out[MemberId.from_text(str(row["member"]))] = MemberHealth(
                    state=State(row["state"]),
                    since=float(row["since"]),
                    reason=str(row["reason"]),
                    passes=_count(row["passes"]),
                    failures=_count(row["failures"]),
                    checked=None if checked is None else float(checked),
                )
            except (ValueError, TypeError, KeyError) as exc:
                log.error("%s: member_state row %r skipped: %s", self.path, row.get("member"), exc)
        return out

    def save_state(self, member: MemberId, health: MemberHealth) -> None:
        """Record counters and last check without an event (no transition)."""
        self.save_states({member: health})

    def save_states(self, states: Mapping[MemberId, MemberHealth]) -> None:
        """Several members' counters in one transaction."""
        with self._use("save member states") as db:
            db.execute("PRAGMA synchronous=NORMAL")
            try:
                with _immediate(db):
                    for member, health in states.items():
                        db.table("member_state").upsert(_state_row(member, health), pk="member")
            finally:
                db.execute("PRAGMA synchronous=FULL")

    def record_transition(
        self,
        member: MemberId,
        old: State | None,
        new: State,
        reason: str,
        at: float,
        health: MemberHealth,
    ) -> int:
        """One transaction: the event and the member's new state. Returns the
        event id; when this returns, the event survives ``kill -9``."""
        event = {
            "time": at,
            "member": member.to_text(),
            "monitor": member.monitor,
            "from_state": None if old is None else old.value,
            "to_state": new.value,
            "reason": reason,
        }
        with self._use("record a transition") as db, _immediate(db):
            table = db.table("events")
            table.insert(event)
            event_id = table.last_rowid
            db.table("member_state").upsert(_state_row(member, health), pk="member")
        assert event_id is not None
        return event_id

    def record_alarm(self, kind: str, reason: str, at: float) -> int:
        """An event for the whole monitor (member "*"), e.g. kind "suspicion"."""
        return self.record_event(ALARM_MEMBER, "", None, kind, reason, at)

    def record_event(self, member: str, monitor: str, from_state: str | None, to_state: str,
                     reason: str, at: float) -> int:
        """An event that changes no member state (an override set, removed or expired)."""
        event = {"time": at, "member": member, "monitor": monitor, "from_state": from_state,
                 "to_state": to_state, "reason": reason}
        with self._use("record an event") as db, _immediate(db):
            table = db.table("events")
            table.insert(event)
            event_id = table.last_rowid
        assert event_id is not None
        return event_id

    def events(
        self, limit: int = 100, member: MemberId | str | None = None, since: float | None = None
    ) -> list[Event]:
        """The newest ``limit`` events, newest first; only ``member``'s if given
        (a MemberId, its text, or ``ALARM_MEMBER`` for alarms); only after ``since``."""
        clauses: list[str] = []
        args: list[object] = []
        if member is not None:
            clauses.append("member = ?")
            args.append(member.to_text() if isinstance(member, MemberId) else member)
        if since is not None:
            clauses.append("time > ?")
            args.append(since)
        where = " AND ".join(clauses) or None
        with self._use("read events") as db:
            rows = db.table("events").rows_where(
                where, args or None, order_by="id desc", limit=max(0, limit)
            )
            return [Event(**row) for row in rows]

    # -- overrides ---------------------------------------------------------------

    def load_overrides(self, now: float | None = None) -> dict[MemberId, OverrideEntry]:
        """Overrides still active at ``now`` (default: the clock).

        Read-only, so a reader never waits for a writer's lock; expired rows
        are pruned when an override is written.
        """
        now = time.time() if now is None else now
        with self._use("read overrides") as db:
            rows = db.execute(
                "SELECT member, kind, until, reason, set_at FROM overrides "
                "WHERE until IS NULL OR until > ?",
                [now],
            ).fetchall()
        out = {}
        for member, kind, until, reason, set_at in rows:
            try:
                out[MemberId.from_text(str(member))] = OverrideEntry(
                    Override(kind), None if until is None else float(until), str(reason),
                    source="api", set_at=None if set_at is None else float(set_at),
                )
            except (ValueError, TypeError) as exc:
                log.error("%s: overrides row %r skipped: %s", self.path, member, exc)
        return out

    def _prune(self, db: sqlite_utils.Database, now: float) -> None:
        db.execute("DELETE FROM overrides WHERE until IS NOT NULL AND until <= ?", [now])

    def set_override(self, member: MemberId, entry: OverrideEntry, at: float) -> None:
        row = {
            "member": member.to_text(),
            "kind": entry.kind.value,
            "until": entry.until,
            "reason": entry.reason,
            "set_at": at,
        }
        with self._use("set an override") as db, _immediate(db):
            self._prune(db, at)
            db.table("overrides").upsert(row, pk="member")

    def clear_override(self, member: MemberId) -> bool:
        """Remove ``member``'s override; False when it had none."""
        with self._use("clear an override") as db, _immediate(db):
            cursor = db.execute("DELETE FROM overrides WHERE member = ?", [member.to_text()])
            removed = cursor.rowcount > 0
            self._prune(db, time.time())
            return removed


    # -- zone versions ---------------------------------------------------------------

    def record_zone_version(
        self, version: ZoneVersion, removed: bytes, added: bytes, content: bytes
    ) -> int:
        """One accepted zone version: its record, its diff, and its whole content
        (which replaces the zone's previous content). Returns the version id."""
        row = {**msgspec.structs.asdict(version), "removed_rrs": removed, "added_rrs": added}
        with self._use("record a zone version") as db, _immediate(db):
            table = db.table("zone_versions")
            table.insert(row)
            version_id = table.last_rowid
            db.table("zone_content").upsert(
                {"zone": version.zone, "version": version_id, "data": content}, pk="zone"
            )
        assert version_id is not None
        return version_id

    def zone_versions(self, zone: str, limit: int = 100) -> list[ZoneVersion]:
        """A zone's newest ``limit`` versions, newest first."""
        fields = ("zone", "serial", "hash", "records", "added", "removed", "at")
        with self._use("read zone versions") as db:
            rows = db.execute(
                f"SELECT {', '.join(fields)} FROM zone_versions WHERE zone = ? "
                "ORDER BY id DESC LIMIT ?", [zone, max(0, limit)],
            ).fetchall()
        return [ZoneVersion(**dict(zip(fields, row, strict=True))) for row in rows]

    def zone_diffs(self, zone: str, limit: int = 64) -> list[ZoneDiff]:
        """A zone's newest ``limit`` diffs (what IXFR answers from), oldest first.

        A diff that removes nothing (a zone's first version: all of it added)
        changes no SOA, so IXFR cannot carry it (``xfr.outgoing.ixfr_chain``
        starts again after such a diff): it comes back empty, a mark in the
        sequence, its records (a large zone's whole content) not read.
        """
        with self._use("read zone diffs") as db:
            rows = db.execute(
                "SELECT removed_rrs, CASE WHEN length(removed_rrs) > 0 THEN added_rrs END"
                " FROM zone_versions WHERE zone = ? ORDER BY id DESC LIMIT ?",
                [zone, max(0, limit)],
            ).fetchall()
        return [ZoneDiff(split_records(removed or b""), split_records(added or b""))
                for removed, added in reversed(rows)]

    def accepted_contents(self) -> dict[dns.name.Name, ZoneContent]:
        """Each zone's last accepted content; a damaged one is left out (and logged)."""
        with self._use("read zone contents") as db:
            rows = db.execute("SELECT zone, data FROM zone_content").fetchall()
        out = {}
        for zone, data in rows:
            try:
                origin = dns.name.from_text(zone)
                out[origin] = ZoneContent.from_wire(origin, data)
            except (ValueError, dns.exception.DNSException) as exc:
                log.error("%s: the last accepted version of zone %s is damaged (%s); "
                          "the deletion guard cannot check it at start", self.path, zone, exc)
        return out
