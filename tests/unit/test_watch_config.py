"""``[watch]``: each bad value is named by its key."""

from __future__ import annotations

from dnsserve.config_schema import WatchConfig
from dnsserve.config_validate_ops import check_watch


def test_watch_errors_name_the_key() -> None:
    bad = WatchConfig(interval=0, servers=("nowhere",), max_queries=0, on_deviation="'open",
                      control="127.0.0.1:8000")
    lines = check_watch(bad, "d.toml")
    for key in ("watch.interval", "watch.servers[0]", "watch.max_queries",
                "watch.on_deviation", "watch.control"):
        assert any(line.startswith(f"d.toml: {key} = ") for line in lines), (key, lines)
    assert check_watch(WatchConfig(servers=("127.0.0.1:5301",)), "d.toml") == []
