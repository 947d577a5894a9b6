"""Secondaries without a network: who may NOTIFY a zone (``on_notify``), and a reload
of the config adding, removing and updating secondary zones (``apply``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.name
import pytest

from dnsserve.config import decode_config
from dnsserve.config_schema import Config
from dnsserve.inbound import TransferError
from dnsserve.secondary import Hooks, Secondaries, SecondaryZone
from dnsserve.settings import Settings

CONFIG = """
[[key]]
name = "xfr"
secret = "c2VjcmV0"

[[zone]]
name = "open.example."
primaries = ["127.0.0.1:5301", "[::1]:5301"]

[[zone]]
name = "listed.example."
primaries = ["127.0.0.1:5301"]
allow_notify = ["127.0.9.0/24"]

[[zone]]
name = "signed.example."
primaries = ["127.0.0.1:5301"]
key = "xfr"
"""


async def _ok() -> tuple[bool, str]:
    return True, ""


@pytest.fixture
def secondaries(tmp_path: Path) -> Secondaries:
    config = decode_config(CONFIG)
    settings = Settings(config, tmp_path / "dnsserve.toml", tmp_path / "zones",
                        config.server, tmp_path / "dnsserve.db")
    hooks = Hooks(served=lambda _: None, protected=lambda _: (), serve=_ok,
                  expired=lambda _: None)
    return Secondaries(settings, hooks)


XFR = dns.name.from_text("xfr.")


@pytest.mark.parametrize(
    ("zone", "peer", "key", "allowed"),
    [
        ("open.example.", "127.0.0.1", None, True),  # a primary's address
        ("open.example.", "::1", None, True),
        ("open.example.", "127.0.0.2", None, False),
        ("listed.example.", "127.0.9.7", None, True),  # allow_notify replaces the primaries
        ("listed.example.", "127.0.0.1", None, False),
        ("signed.example.", "127.0.0.1", XFR, True),
        ("signed.example.", "127.0.0.1", None, False),  # the key is required
        ("signed.example.", "127.0.0.2", XFR, False),  # and the address still counts
        ("primary.example.", "127.0.0.1", None, None),  # not a secondary zone
    ],
)
def test_notify_allowed(secondaries: Secondaries, zone: str, peer: str,
                        key: dns.name.Name | None, allowed: bool | None) -> None:
    origin = dns.name.from_text(zone)
    assert secondaries.on_notify(origin, peer, key) is allowed
    if origin in secondaries.zones:  # an allowed NOTIFY wakes the zone's refresh
        assert secondaries.zones[origin]._wake.is_set() is allowed


def test_copies_live_beside_the_state_file(secondaries: Secondaries, tmp_path: Path) -> None:
    zone = secondaries.zones[dns.name.from_text("open.example.")]
    assert zone.path == tmp_path / "secondary" / "open.example.zone"
    assert [d.zone for d in secondaries.status()] == [
        "open.example.", "listed.example.", "signed.example."]
    assert all(d.serial is None for d in secondaries.status())


def test_a_reload_adds_removes_and_updates_secondary_zones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(self: SecondaryZone, host: str, port: int) -> int:
        raise TransferError("unreachable (test)")

    monkeypatch.setattr(SecondaryZone, "_soa_serial", unreachable)
    expired: list[frozenset[dns.name.Name]] = []
    first = decode_config(CONFIG)
    second = decode_config(CONFIG.replace('name = "open.example."', 'name = "new.example."')
                           .replace('allow_notify = ["127.0.9.0/24"]', 'guard = false'))

    def settings(config: Config) -> Settings:
        return Settings(config, tmp_path / "dnsserve.toml", tmp_path / "zones",
                        config.server, tmp_path / "dnsserve.db")

    hooks = Hooks(served=lambda _: None, protected=lambda _: (), serve=_ok,
                  expired=expired.append)

    async def refreshed(secondaries: Secondaries) -> None:
        """Until every zone's first refresh has run (and failed): bounded."""
        for _ in range(1000):
            if all(z.failures for z in secondaries.zones.values()):
                return
            await asyncio.sleep(0.01)

    async def scenario() -> Secondaries:
        secondaries = Secondaries(settings(first), hooks)
        secondaries.start()
        await refreshed(secondaries)
        secondaries.apply(settings(second))
        await refreshed(secondaries)
        await secondaries.stop()
        return secondaries

    secondaries = asyncio.run(scenario())
    names = {o.to_text() for o in secondaries.zones}
    assert names == {"new.example.", "listed.example.", "signed.example."}
    listed = secondaries.zones[dns.name.from_text("listed.example.")]
    assert listed.config.guard is False and listed.config.allow_notify == ()
    assert all(z.failures for z in secondaries.zones.values())
    assert "unreachable (test)" in listed.state.last_error
    assert expired[0] == {dns.name.from_text(n) for n in
                          ("open.example.", "listed.example.", "signed.example.")}
    assert expired[-1] == {dns.name.from_text(n) for n in names}  # no copy: SERVFAIL
