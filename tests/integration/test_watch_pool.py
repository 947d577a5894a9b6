"""``dnsserve watch`` and pools: a pool name deviates only when a server answers a value
the pool could not give now (the control API's answer and members up, the file's static
set); our own dnsserve's health-chosen subset is no deviation."""

from __future__ import annotations

from pathlib import Path

from testkit.backends import TcpListener
from testkit.peers import start_knot
from testkit.ports import common_port, free_port
from testkit.server import start_server
from testkit.wait import wait_for
from testkit.watcher import ORIGIN, knot_reload, start_watch, zone_text

WAIT = 60.0
MEMBERS = ("127.0.0.31", "127.0.0.32")


def test_a_pool_value_of_a_member_down_deviates_until_it_is_up(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "watch.example.zone").write_text(zone_text() + f"api IN A {MEMBERS[0]}\n")
    theirs = tmp_path / "knot-zone" / "watch.example.zone"
    theirs.parent.mkdir()
    theirs.write_text(zone_text() + f"api IN A {MEMBERS[1]}\n")  # a member that is down
    check_port = common_port(MEMBERS)
    pools = f"""
[[monitor]]
name = "tcp"
kind = "tcp"
port = {check_port}
interval = 0.25
timeout = 0.2
rise = 1
fall = 1

[[pool]]
owner = "api.{ORIGIN}"
type = "A"
monitor = "tcp"
members = [{{ address = "{MEMBERS[0]}" }}, {{ address = "{MEMBERS[1]}" }}]
"""
    config = tmp_path / "dnsserve.toml"
    transfers = f'[[zone]]\nname = "{ORIGIN}"\nallow_transfer = ["127.0.0.0/8"]\n'
    config.write_text(f'[server]\nzones = "zones"\nstate = "state.db"\n{pools}{transfers}')
    up = TcpListener(MEMBERS[0], check_port).open()
    later = TcpListener(MEMBERS[1], check_port)
    server = start_server(tmp_path, "-c", str(config), zones=None)
    knot_port = free_port()
    knot = start_knot({ORIGIN: theirs}, tmp_path / "knot", port=knot_port)
    ours, peer = f"127.0.0.1:{server.port}", f"127.0.0.1:{knot_port}"
    watcher = start_watch(tmp_path / "w", zones, [ours, peer], free_port(),
                          extra=f'control = "http://{server.control}"\n{pools}')
    try:
        def pool_events(event: str) -> list[dict[str, str]]:
            return [e for e in watcher.hook_events() if e["DNSSERVE_WATCH_KIND"] == "pool"
                    and e["DNSSERVE_WATCH_EVENT"] == event]

        (start,) = wait_for(f"the pool deviation on knot:\n{watcher.log_text()}",
                            lambda: pool_events("start"), seconds=WAIT, poll=0.1)
        assert start["DNSSERVE_WATCH_SERVER"] == peer
        assert start["DNSSERVE_WATCH_SUBJECT"] == f"api.{ORIGIN} A"
        assert MEMBERS[1] in start["DNSSERVE_WATCH_DETAIL"]
        later.open()  # the member comes up: its value is one the pool may give
        wait_for(f"the clear:\n{watcher.log_text()}", lambda: pool_events("clear"),
                 seconds=WAIT, poll=0.1)
        # ours allows AXFR (compared whole that way); Knot refuses it (one query per name)
        text = watcher.metrics_text()
        assert f'dnsserve_watch_content_total{{server="{ours}",method="axfr"}}' in text
        assert f'dnsserve_watch_content_total{{server="{peer}",method="queries"}}' in text
        # our own server (a health-chosen subset) never deviated
        assert not [e for e in watcher.hook_events() if e["DNSSERVE_WATCH_SERVER"] == ours]
        theirs.write_text(zone_text())  # the pool name deleted there
        knot_reload(knot)
        gone = wait_for("vanished", lambda: [e for e in watcher.hook_events()
                                             if e["DNSSERVE_WATCH_KIND"] == "vanished"],
                        seconds=WAIT, poll=0.1)
        assert gone[0]["DNSSERVE_WATCH_SUBJECT"] == f"api.{ORIGIN} A"
    finally:
        watcher.stop()
        knot.stop()
        server.stop()
        up.close()
        later.close()
