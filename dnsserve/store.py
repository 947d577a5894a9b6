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
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlite_utils

from dnsserve.errors import DnsServeError, StateError
from dnsserve.health.model import MemberHealth, MemberId, Override, OverrideEntry, State

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
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
        """Every member's last recorded state."""
        with self._use("read member states") as db:
            return {
                MemberId.from_text(row["member"]): MemberHealth(
                    state=State(row["state"]),
                    since=row["since"],
                    reason=row["reason"],
                    passes=row["passes"],
                    failures=row["failures"],
                    checked=row["checked"],
                )
                for row in db.table("member_state").rows
            }

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
        """An event for the whole monitor (member "*"), e.g. kind "suspect"."""
        event = {
            "time": at,
            "member": ALARM_MEMBER,
            "monitor": "",
            "from_state": None,
            "to_state": kind,
            "reason": reason,
        }
        with self._use("record an alarm") as db, _immediate(db):
            table = db.table("events")
            table.insert(event)
            event_id = table.last_rowid
        assert event_id is not None
        return event_id

    def events(
        self, limit: int = 100, member: MemberId | str | None = None
    ) -> list[Event]:
        """The newest ``limit`` events, newest first; only ``member``'s if given
        (a MemberId, its text, or ``ALARM_MEMBER`` for alarms)."""
        where, args = None, None
        if member is not None:
            text = member.to_text() if isinstance(member, MemberId) else member
            where, args = "member = ?", [text]
        with self._use("read events") as db:
            rows = db.table("events").rows_where(
                where, args, order_by="id desc", limit=max(0, limit)
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
                "SELECT member, kind, until, reason FROM overrides "
                "WHERE until IS NULL OR until > ?",
                [now],
            ).fetchall()
        return {
            MemberId.from_text(member): OverrideEntry(Override(kind), until, reason)
            for member, kind, until, reason in rows
        }

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


Write = Callable[[Store], object]  # one state-file write, run by the Writer's thread


class Writer:
    """One thread that applies state-file writes in the order they were submitted.

    The monitor thread hands its writes here, so a slow or locked state file
    delays the record of a flip, never the flip itself nor the next check.
    A failed write is logged and the next one is tried.
    """

    def __init__(self, store: Store, *, max_pending: int = 100_000) -> None:
        self.store = store
        self._queue: queue.Queue[Write | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="dnsserve-state", daemon=True)
        self._thread.start()
        self.dropped = 0

    def submit(self, write: Write) -> None:
        """Run ``write(store)`` in the writer thread, after earlier writes.

        Pass a bound call such as ``functools.partial(Store.save_state,
        member=m, health=h)``: the method is looked up here, in the caller's
        thread, so a renamed method fails where it is named, not later.
        """
        try:
            self._queue.put_nowait(write)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("state file writes are %d behind; dropped %d", self._queue.qsize(),
                          self.dropped)

    def close(self, timeout: float = 5.0) -> None:
        """Finish the pending writes (bounded by ``timeout``), then stop."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                item(self.store)
            except DnsServeError:
                log.exception("state file write failed")
