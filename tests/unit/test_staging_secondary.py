"""staging.prepare with secondary zones: copies loaded from the state directory,
zones with no copy waiting, a zone file beside a secondary zone refused, guard = false."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from dnsserve.config import decode_config
from dnsserve.health.model import HealthView
from dnsserve.settings import Settings
from dnsserve.staging import ReloadInput, ReloadRefused, prepare

ORG = dns.name.from_text("example.org.")
CONFIG = '[[zone]]\nname = "example.org."\nprimaries = ["127.0.0.1:5301"]\n{extra}'


def zone(serial: int, hosts: int) -> str:
    lines = [f"@ 60 IN SOA ns1 hostmaster {serial} 3600 600 86400 60", "@ 60 IN NS ns1",
             "ns1 60 IN A 192.0.2.53"]
    lines += [f"h{i} 60 IN A 192.0.2.{100 + i}" for i in range(hosts)]
    return "$ORIGIN example.org.\n" + "\n".join(lines) + "\n"


def settings(tmp_path: Path, extra: str = "") -> Settings:
    config = decode_config(CONFIG.format(extra=extra))
    (tmp_path / "zones").mkdir(exist_ok=True)
    return Settings(config, tmp_path / "dnsserve.toml", tmp_path / "zones", config.server,
                    tmp_path / "dnsserve.db")


def inp(s: Settings, previous: object = None) -> ReloadInput:
    return ReloadInput(settings=s, previous=previous, accepted={}, view=HealthView(),  # type: ignore[arg-type]
                       selections={}, now=0.0)


def test_no_copy_yet_waits_without_refusing_the_start(tmp_path: Path) -> None:
    prepared = prepare(inp(settings(tmp_path)))
    assert ORG not in prepared.served.loaded.tables
    assert "waiting for its first transfer" in prepared.served.unserved[ORG]


def test_the_copy_is_served(tmp_path: Path) -> None:
    s = settings(tmp_path)
    s.secondary_dir.mkdir()
    (s.secondary_dir / "example.org.zone").write_text(zone(7, 3))
    prepared = prepare(inp(s))
    assert prepared.served.zones[ORG].serial == 7


def test_a_zone_file_beside_a_secondary_zone_is_refused(tmp_path: Path) -> None:
    s = settings(tmp_path)
    (s.zones_dir / "example.org.zone").write_text(zone(1, 3))
    with pytest.raises(ReloadRefused, match="is a secondary zone"):
        prepare(inp(s))


@pytest.mark.parametrize(("extra", "refused"), [("", True), ("guard = false\n", False)])
def test_guard_false_lets_a_deleting_copy_through(tmp_path: Path, extra: str,
                                                  refused: bool) -> None:
    s = settings(tmp_path, extra)
    s.secondary_dir.mkdir()
    copy = s.secondary_dir / "example.org.zone"
    copy.write_text(zone(1, 20))
    first = prepare(inp(s))
    copy.write_text(zone(2, 5))
    if refused:
        with pytest.raises(ReloadRefused):
            prepare(inp(s, first.served))
    else:
        assert prepare(inp(s, first.served)).served.zones[ORG].serial == 2
