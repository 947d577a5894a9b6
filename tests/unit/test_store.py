"""store: the state file round-trips, drops expired overrides, refuses what it cannot read.

That it survives a writer killed with SIGKILL is tested across processes, in
tests/integration/test_state_file.py.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import dns.name
import dns.rdata
import pytest
from dns.rdataclass import RdataClass
from dns.rdatatype import RdataType

from dnsserve.errors import StateError
from dnsserve.health.model import MemberHealth, MemberId, Override, OverrideEntry, State
from dnsserve.store import Event, Store
from dnsserve.xfr.outgoing import ixfr_chain
from dnsserve.zones.versions import Record, ZoneVersion

WEB1 = MemberId("web", "127.0.0.11")
WEB2 = MemberId("web", "2001:db8::1")


def test_roundtrip_states_and_events(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    down = MemberHealth(State.DOWN, since=100.0, reason="HTTP 503", passes=0, failures=2,
                        checked=100.0)
    with Store.open(path) as store:
        first = store.record_transition(WEB1, None, State.UP, "first check", 90.0,
                                        MemberHealth(State.UP, 90.0, "first check", 1, 0, 90.0))
        second = store.record_transition(WEB1, State.UP, State.DOWN, "HTTP 503", 100.0, down)
        store.record_transition(WEB2, State.UP, State.DOWN, "timeout", 101.0,
                                MemberHealth(State.DOWN, 101.0, "timeout", 0, 3))
        store.save_state(WEB1, MemberHealth(State.DOWN, 100.0, "HTTP 503", 0, 5, 103.0))
        alarm = store.record_alarm("suspect", "every member down within one interval", 102.0)
        assert first < second < alarm
    with Store.open(path) as store:
        states = store.load_states()
        assert states == {
            WEB1: MemberHealth(State.DOWN, 100.0, "HTTP 503", 0, 5, 103.0),
            WEB2: MemberHealth(State.DOWN, 101.0, "timeout", 0, 3, None),
        }
        events = store.events()
        assert [e.id for e in events] == sorted((e.id for e in events), reverse=True)
        assert events[0] == Event(id=alarm, time=102.0, member="*", monitor="",
                                  from_state=None, to_state="suspect",
                                  reason="every member down within one interval")
        assert events[0].is_alarm
        web1 = store.events(member=WEB1)
        assert [(e.from_state, e.to_state, e.reason) for e in web1] == [
            ("up", "down", "HTTP 503"), (None, "up", "first check")
        ]
        assert all(e.monitor == "web" and e.member == "web/127.0.0.11" for e in web1)
        assert len(store.events(limit=2)) == 2
        assert [e.id for e in store.events(member="*")] == [alarm]


def test_wal_mode_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"member_state", "events", "overrides"} <= tables
    finally:
        conn.close()


def test_overrides_with_expiry(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store.open(path) as store:
        store.set_override(WEB1, OverrideEntry(Override.DRAIN, until=200.0, reason="maint"), 100.0)
        store.set_override(WEB2, OverrideEntry(Override.FORCE_UP), 100.0)
    with Store.open(path) as store:  # survives a restart
        assert store.load_overrides(now=150.0) == {
            WEB1: OverrideEntry(Override.DRAIN, 200.0, "maint"),
            WEB2: OverrideEntry(Override.FORCE_UP, None, ""),
        }
        assert store.load_overrides(now=200.0) == {WEB2: OverrideEntry(Override.FORCE_UP)}
        # Reading never writes; the next write prunes the expired row from the file.
        assert WEB1 in store.load_overrides(now=0.0)
        store.set_override(WEB2, OverrideEntry(Override.DRAIN, reason="replaced"), 300.0)
        assert store.load_overrides(now=300.0)[WEB2].kind is Override.DRAIN
        assert set(store.load_overrides(now=0.0)) == {WEB2}
        assert store.clear_override(WEB2) is True
        assert store.clear_override(WEB2) is False
        assert store.load_overrides(now=300.0) == {}


def test_usable_from_another_thread(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            store.record_transition(WEB1, State.UP, State.DOWN, "refused", 1.0,
                                    MemberHealth(State.DOWN, 1.0))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []
    assert store.load_states()[WEB1].state is State.DOWN
    store.close()


def test_errors_name_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(StateError, match=r"garbage\.db: cannot open state file"):
        Store.open(garbage)
    with pytest.raises(StateError, match=r"missing-dir/state\.db"):
        Store.open(tmp_path / "missing-dir" / "state.db")
    store = Store.open(tmp_path / "state.db")
    store.close()
    with pytest.raises(StateError, match=r"state\.db: cannot read events: state file is closed"):
        store.events()


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StateError, match="schema 99 is newer"):
        Store.open(path)


def test_a_row_with_a_bad_value_is_skipped_not_fatal(tmp_path: Path) -> None:
    """passes='abc' in one row: that member is read as never seen, the others load."""
    path = tmp_path / "state.db"
    good, bad = MemberId("web", "127.0.0.11"), MemberId("web", "127.0.0.12")
    with Store.open(path) as store:
        store.save_states({good: MemberHealth(State.DOWN, 1.0, "HTTP 503", 0, 2, 1.0),
                           bad: MemberHealth(State.UP, 1.0, "", 1, 0, 1.0)})
    conn = sqlite3.connect(path)
    conn.execute("UPDATE member_state SET passes = 'abc' WHERE member = ?", [bad.to_text()])
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        assert set(store.load_states()) == {good}


def test_zone_diffs_leave_a_first_versions_records_unread(tmp_path: Path) -> None:
    """A first version's diff (nothing removed, the whole zone added) comes back
    empty: IXFR cannot carry it, and ``ixfr_chain`` still starts again after it."""
    owner = dns.name.from_text("example.org.").to_digestable()

    def soa(serial: int) -> bytes:
        rdata = dns.rdata.from_text(
            "IN", "SOA", f"ns1.example.org. h.example.org. {serial} 3600 600 86400 60")
        return Record(owner, RdataType.SOA, RdataClass.IN, 60, rdata.to_digestable()).to_wire()

    host = Record(b"\x01a" + owner, RdataType.A, RdataClass.IN, 60, bytes([192, 0, 2, 1]))

    def version(serial: int, added: int, removed: int) -> ZoneVersion:
        return ZoneVersion(zone="example.org.", serial=serial, hash=str(serial), records=2,
                           added=added, removed=removed, at=float(serial))

    with Store.open(tmp_path / "state.db") as store:
        first = soa(1) + host.to_wire()
        store.record_zone_version(version(1, 2, 0), removed=b"", added=first, content=first)
        store.record_zone_version(version(2, 1, 1), removed=soa(1), added=soa(2),
                                  content=soa(2) + host.to_wire())
        diffs = store.zone_diffs("example.org.")
    assert [(list(d.removed), list(d.added)) for d in diffs] == [([], []), ([soa(1)], [soa(2)])]
    assert ixfr_chain(diffs, 1, 2) == diffs[1:]
