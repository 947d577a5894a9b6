"""``dnsserve watch`` against a real Knot on loopback: a deleted record, a serial
lag and a stopped server are each reported when they start and when they clear,
to the log, the hook (its environment) and the metrics."""

from __future__ import annotations

from pathlib import Path

from testkit.peers import start_knot
from testkit.ports import free_port
from testkit.wait import wait_for
from testkit.watcher import ORIGIN, WatchProc, knot_reload, start_watch, zone_text

WAIT = 60.0  # generous: a loaded 2-core machine


def _events(w: WatchProc, event: str, kind: str) -> list[dict[str, str]]:
    return [e for e in w.hook_events()
            if e.get("DNSSERVE_WATCH_EVENT") == event and e.get("DNSSERVE_WATCH_KIND") == kind]


def _wait_event(w: WatchProc, event: str, kind: str, count: int = 1) -> list[dict[str, str]]:
    return wait_for(f"{count} hook event(s) {event} {kind}:\n{w.log_text()}",
                    lambda: _events(w, event, kind), lambda got: len(got) >= count,
                    seconds=WAIT, poll=0.1)


def test_watch_reports_deletion_serial_lag_and_a_stopped_server(tmp_path: Path) -> None:
    ours = tmp_path / "zones"
    ours.mkdir()
    (ours / "watch.example.zone").write_text(zone_text())
    theirs = tmp_path / "knot-zone" / "watch.example.zone"
    theirs.parent.mkdir()
    theirs.write_text(zone_text())
    port = free_port()
    knot = start_knot({ORIGIN: theirs}, tmp_path / "knot", port=port)
    server = f"127.0.0.1:{port}"
    # no server listed: Knot is found as the zone's NS (ns1 A 127.0.0.1) on its port
    watcher = start_watch(tmp_path, ours, [], free_port(), ns_port=port)
    try:
        wait_for("two rounds", lambda: "dnsserve_watch_rounds_total 2" in watcher.metrics_text()
                 or "dnsserve_watch_rounds_total 3" in watcher.metrics_text(),
                 seconds=WAIT, poll=0.1)
        assert watcher.hook_events() == []
        assert f'dnsserve_watch_server_up{{server="{server}"}} 1' in watcher.metrics_text()

        # a record deleted there (the same serial), then put back
        theirs.write_text(zone_text(www=False))
        knot_reload(knot)
        (start,) = _wait_event(watcher, "start", "vanished")
        assert start["DNSSERVE_WATCH_ZONE"] == ORIGIN
        assert start["DNSSERVE_WATCH_SERVER"] == server
        assert start["DNSSERVE_WATCH_SUBJECT"] == f"www.{ORIGIN} A"
        assert "does not exist" in start["DNSSERVE_WATCH_DETAIL"]
        text = watcher.metrics_text()
        assert (f'dnsserve_watch_deviations{{zone="{ORIGIN}",server="{server}",'
                f'kind="vanished"}} 1') in text
        theirs.write_text(zone_text())
        knot_reload(knot)
        _wait_event(watcher, "clear", "vanished")
        assert "deviation clear: zone=watch.example. " in watcher.log_text()

        # their serial ahead of ours (the file differs only there), then ours again
        theirs.write_text(zone_text(serial=2))
        knot_reload(knot)
        (lag,) = _wait_event(watcher, "start", "serial-lag")
        assert lag["DNSSERVE_WATCH_DETAIL"] == "serial 2, ours 1"
        (ours / "watch.example.zone").write_text(zone_text(serial=2))
        _wait_event(watcher, "clear", "serial-lag")

        # the server stopped (by PID), then started again
        knot.stop()
        _wait_event(watcher, "start", "unreachable")
        wait_for("server_up 0", lambda: f'dnsserve_watch_server_up{{server="{server}"}} 0'
                 in watcher.metrics_text(), seconds=WAIT, poll=0.1)
        knot = start_knot({ORIGIN: theirs}, tmp_path / "knot2", port=port)
        _wait_event(watcher, "clear", "unreachable")
        wait_for("server_up 1", lambda: f'dnsserve_watch_server_up{{server="{server}"}} 1'
                 in watcher.metrics_text(), seconds=WAIT, poll=0.1)
        assert 'dnsserve_watch_events_total{kind="unreachable",event="clear"} 1' in \
            watcher.metrics_text()
        assert len(watcher.hook_events()) == 6  # each start and each clear once
    finally:
        watcher.stop()
        knot.stop()
