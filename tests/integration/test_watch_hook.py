"""``dnsserve watch``'s hook: an argv list (no shell: a ';' stays an argument), the
deviation only in its environment, killed after hook_timeout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testkit.ports import free_port
from testkit.wait import wait_for
from testkit.watcher import start_watch, zone_text


def test_the_hook_runs_without_a_shell_and_is_killed_after_its_timeout(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "watch.example.zone").write_text(zone_text())
    silent = f"127.0.0.1:{free_port()}"  # nothing answers there: unreachable
    pwned = tmp_path / "pwned"
    watcher = start_watch(tmp_path / "w", zones, [silent], free_port(),
                          extra="hook_timeout = 0.5\n",
                          hook_args=(f"x; touch {pwned}", "sleep"))
    try:
        (event,) = wait_for("the hook's event", watcher.hook_events, seconds=60, poll=0.1)
        assert event["argv"] == [f"x; touch {pwned}", "sleep"]
        assert event["DNSSERVE_WATCH_EVENT"] == "start"
        assert event["DNSSERVE_WATCH_KIND"] == "unreachable"
        assert event["DNSSERVE_WATCH_SERVER"] == silent
        assert event["DNSSERVE_WATCH_SUBJECT"] == ""
        assert event["DNSSERVE_WATCH_DETAIL"]  # why: a timeout, a refused connection
        wait_for("the hook killed", lambda: "killed after 0.5 s" in watcher.log_text(),
                 seconds=60, poll=0.1)
        assert not pwned.exists()
        assert f'dnsserve_watch_server_up{{server="{silent}"}} 0' in watcher.metrics_text()
    finally:
        watcher.stop()


def test_a_bad_flag_is_named_by_its_key(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "watch.example.zone").write_text(zone_text())
    done = subprocess.run(
        [sys.executable, "-m", "dnsserve", "watch", "--zones", str(zones), "--interval", "0",
         "--server", "127.0.0.1:5301"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert done.returncode == 1
    assert "command line: watch.interval = 0.0: must be > 0" in done.stderr
