"""SecondaryZone's refresh decisions with the network stubbed out (no sockets).

The SOA query and the transfer are replaced by functions returning a serial and
a dnspython zone; what is checked is what the refresh does with them: the copy
written (or not), the reload asked for (or not), the state and the counters.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.name
import dns.zone
import pytest
from dns.rdatatype import RdataType

from dnsserve.config_schema import ZoneConfig
from dnsserve.secondary import Hooks, SecondaryZone
from dnsserve.zones.compile import compile_zone
from dnsserve.zones.versions import ZoneContent, zone_content

ORIGIN = dns.name.from_text("example.org.")


def zone(serial: int, hosts: int) -> dns.zone.Zone:
    lines = [f"@ 60 IN SOA ns1 hostmaster {serial} 100 10 1000 60", "@ 60 IN NS ns1",
             "ns1 60 IN A 192.0.2.53"]
    lines += [f"h{i} 60 IN A 192.0.2.{100 + i}" for i in range(hosts)]
    return dns.zone.from_text("\n".join(lines) + "\n", ORIGIN, relativize=False)


def content(z: dns.zone.Zone) -> ZoneContent:
    return zone_content(compile_zone(z, file="<test>", lines={}))


class Fake:
    """The server around one secondary zone: what it serves, and the reloads asked."""

    def __init__(self, served: ZoneContent | None, serve_ok: bool = True) -> None:
        self.served = served
        self.serve_ok = serve_ok
        self.reloads = 0

    async def serve(self) -> tuple[bool, str]:
        self.reloads += 1
        return self.serve_ok, "" if self.serve_ok else "reload refused: config error"

    def hooks(self) -> Hooks:
        return Hooks(served=lambda _: self.served, protected=lambda _: (), serve=self.serve,
                     expired=lambda _: None)


def secondary(tmp_path: Path, fake: Fake, theirs: int, transferred: dns.zone.Zone | None,
              *, guard: bool = True) -> SecondaryZone:
    config = ZoneConfig(name="example.org.", primaries=("127.0.0.1:5301",), guard=guard)
    sz = SecondaryZone(config, tmp_path / "secondary" / "example.org.zone", fake.hooks(), {},
                       0.1)

    def soa(host: str, port: int) -> int:
        return theirs

    def transfer(host: str, port: int, incremental: bool) -> tuple[dns.zone.Zone, str]:
        assert transferred is not None, "no transfer expected"
        return transferred, "ixfr" if incremental else "axfr"

    sz._soa_serial = soa  # type: ignore[method-assign]
    sz._transfer = transfer  # type: ignore[method-assign]
    return sz


def test_no_copy_takes_an_axfr_writes_it_and_serves_it(tmp_path: Path) -> None:
    fake = Fake(None)
    sz = secondary(tmp_path, fake, 3, zone(3, 2))
    asyncio.run(sz.refresh())
    assert sz.path.is_file() and "h1.example.org." in sz.path.read_text()
    assert [p.name for p in sz.path.parent.iterdir()] == ["example.org.zone"]  # no temp left
    assert fake.reloads == 1 and sz.transfers == {"axfr": 1, "ixfr": 0}
    assert sz.state.serial == 3 and sz.state.last_error == ""
    assert sz.state.timers.refresh == 100 and not sz.state.expired(sz.state.last_success or 0)


def test_current_serial_transfers_nothing(tmp_path: Path) -> None:
    fake = Fake(content(zone(3, 2)))
    sz = secondary(tmp_path, fake, 3, None)
    asyncio.run(sz.refresh())
    assert fake.reloads == 0 and sz.state.serial == 3 and sz.state.last_error == ""


def test_older_serial_is_not_taken(tmp_path: Path) -> None:
    fake = Fake(content(zone(5, 2)))
    sz = secondary(tmp_path, fake, 4, None)
    asyncio.run(sz.refresh())
    assert fake.reloads == 0 and sz.failures == 1
    assert "older than ours" in sz.state.last_error


@pytest.mark.parametrize("guard", [True, False])
def test_the_guard_holds_back_a_deleting_transfer(tmp_path: Path, guard: bool) -> None:
    fake = Fake(content(zone(1, 20)))
    sz = secondary(tmp_path, fake, 2, zone(2, 5), guard=guard)
    asyncio.run(sz.refresh())
    if guard:
        assert not sz.path.exists() and fake.reloads == 0 and sz.held_back == 1
        assert "deletion guard" in sz.state.last_error
        assert sz.state.last_success is not None  # the primary answered: no expiry for it
    else:
        assert sz.path.is_file() and fake.reloads == 1 and sz.transfers["ixfr"] == 1


def test_the_guard_keeps_a_pools_name(tmp_path: Path) -> None:
    fake = Fake(content(zone(1, 20)))
    sz = secondary(tmp_path, fake, 2, zone(2, 19))  # h19 goes: 1 record of 23, but a pool's
    h19 = dns.name.from_text("h19.example.org.")
    sz.hooks = Hooks(served=lambda _: fake.served, protected=lambda _: {(h19, RdataType.A)},
                     serve=fake.serve, expired=lambda _: None)
    asyncio.run(sz.refresh())
    assert sz.held_back == 1 and fake.reloads == 0 and "h19.example.org." in sz.state.last_error


def test_a_copy_the_reload_refuses_is_a_failed_refresh(tmp_path: Path) -> None:
    fake = Fake(None, serve_ok=False)
    sz = secondary(tmp_path, fake, 3, zone(3, 2))
    asyncio.run(sz.refresh())
    assert sz.failures == 1 and sz.state.serial is None
    assert "not served: reload refused: config error" in sz.state.last_error


def test_a_notify_during_a_refresh_brings_another(tmp_path: Path) -> None:
    fake = Fake(content(zone(3, 2)))
    sz = secondary(tmp_path, fake, 3, None)

    async def notified_during_refresh() -> None:
        served = fake.served

        def served_and_notify(_: dns.name.Name) -> ZoneContent | None:
            if sz._refreshing:
                sz.wake()  # a NOTIFY arrives while the refresh runs (on the loop)
            return served

        sz.hooks = Hooks(served=served_and_notify, protected=lambda _: (), serve=fake.serve,
                         expired=lambda _: None)
        await sz.refresh()

    asyncio.run(notified_during_refresh())
    assert sz.state.next_refresh <= sz.state.last_refresh + 0.001  # type: ignore[operator]
