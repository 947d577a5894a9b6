"""staging.prepare at the server's start (``defer_first``): a zone with no earlier
version is served before its canonical content is made; ``first_versions`` then
makes the same versions an eager load records, and a zone with an earlier
version is still checked by the deletion guard before it is served. And
``reload.Reloader``'s side: the first versions reach ``on_first`` once, before
any later commit's versions."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import dns.name

from dnsserve.config import decode_config
from dnsserve.health.model import HealthView
from dnsserve.reload import FirstVersion, Reloader
from dnsserve.settings import Settings
from dnsserve.staging import Prepared, ReloadInput, first_versions, prepare
from dnsserve.zones.versions import PendingRecords, Records, zone_content

ORG = dns.name.from_text("example.org.")


def zone(serial: int, hosts: int) -> str:
    lines = [f"@ 60 IN SOA ns1 hostmaster {serial} 3600 600 86400 60", "@ 60 IN NS ns1",
             "ns1 60 IN A 192.0.2.53", "mail 60 IN MX 10 NS1", "Www 60 IN CNAME ns1"]
    lines += [f"h{i} 60 IN A 192.0.2.{100 + i}" for i in range(hosts)]
    return "$ORIGIN example.org.\n" + "\n".join(lines) + "\n"


def settings(tmp_path: Path, text: str) -> Settings:
    config = decode_config("")
    (tmp_path / "zones").mkdir(parents=True, exist_ok=True)
    (tmp_path / "zones" / "example.org.zone").write_text(text)
    return Settings(config, tmp_path / "dnsserve.toml", tmp_path / "zones", config.server,
                    tmp_path / "dnsserve.db")


def start(s: Settings, accepted: dict[dns.name.Name, object] | None = None,
          defer: bool = True) -> ReloadInput:
    return ReloadInput(settings=s, previous=None, accepted=accepted or {},  # type: ignore[arg-type]
                       view=HealthView(), selections={}, now=12.5, defer_first=defer)


def made_yet(records: object) -> bool:
    """Whether pending records were made (read past ``PendingRecords.__getattr__``)."""
    try:
        object.__getattribute__(records, "_data")
    except AttributeError:
        return False
    return True


def test_a_first_start_leaves_the_content_and_version_for_later(tmp_path: Path) -> None:
    s = settings(tmp_path, zone(7, 5))
    eager = prepare(start(s, defer=False))
    deferred = prepare(start(s))
    assert deferred.versions == () and [c.origin for c in deferred.first] == [ORG]
    content = deferred.served.contents[ORG]
    assert isinstance(content.records, PendingRecords)
    # served and described without making the content
    assert deferred.served.zones[ORG].serial == 7
    assert not made_yet(content.records)
    made = first_versions(deferred.first, at=deferred.first_at)
    assert made_yet(content.records)
    assert made == list(eager.versions)
    assert deferred.served.zones[ORG].records == len(eager.served.contents[ORG]) == 10


def test_pending_records_equal_the_eager_ones_and_pickle_as_records(tmp_path: Path) -> None:
    table = prepare(start(settings(tmp_path, zone(3, 40)), defer=False)).served.loaded.tables[ORG]
    eager = zone_content(table)
    pending = zone_content(table, pending=True)
    copied = pickle.loads(pickle.dumps(zone_content(table, pending=True).records))
    assert type(copied) is Records and copied == eager.records
    assert pending == eager and pending.serial == 3 and pending.to_wire() == eager.to_wire()


def test_a_zone_with_an_earlier_version_is_guarded_at_once(tmp_path: Path) -> None:
    s = settings(tmp_path, zone(8, 2))
    older = prepare(start(settings(tmp_path / "old", zone(7, 40)), defer=False))
    accepted = dict(older.served.contents)
    got = prepare(start(s, accepted))  # 38 of 45 records gone: over the default fraction
    assert got.first == ()
    assert got.served.zones[ORG].serial == 7 and not got.served.zones[ORG].ok
    forced = prepare(replace(start(s, accepted), force=True))
    assert forced.first == () and [v.serial for v, _, _ in forced.versions] == [8]


def test_the_first_versions_are_recorded_before_the_next_commit(tmp_path: Path) -> None:
    """``Reloader``: a commit that comes before the start's first versions were
    made (a reload right after the start) hands them to ``on_first`` first, once."""
    s = settings(tmp_path, zone(7, 5))
    calls: list[tuple[str, list[int]]] = []

    def committed(prepared: Prepared) -> list[str]:
        calls.append(("commit", [v.serial for v, _, _ in prepared.versions]))
        return []

    def first(versions: Sequence[FirstVersion]) -> None:
        calls.append(("first", [v.serial for v, _, _ in versions]))

    reloader = Reloader(s, view=HealthView, on_commit=committed, on_first=first)
    reloader.load()
    assert calls == [("commit", [])]  # the first version is left for later
    (s.zones_dir / "example.org.zone").write_text(zone(8, 5))
    reloader.commit(prepare(reloader._input(s)))  # a reload before started()
    assert calls == [("commit", []), ("first", [7]), ("commit", [8])]
    reloader.started()  # nothing is left to record (no loop: the index is built now)
    assert len(calls) == 3


def test_started_without_a_loop_records_the_first_versions_at_once(tmp_path: Path) -> None:
    s = settings(tmp_path, zone(7, 5))
    got: list[list[int]] = []
    reloader = Reloader(s, view=HealthView,
                        on_first=lambda vs: got.append([v.records for v, _, _ in vs]))
    reloader.load()
    assert got == []
    reloader.started()
    assert got == [[10]]
    assert reloader.engine is not None and reloader.engine.snapshot.misses is not None
    assert reloader.engine.snapshot.misses.ready
