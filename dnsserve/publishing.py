"""Publish mode's edge: when to publish each zone, on the loop, and what was published.

Owns, per zone with published pools, the content published now (what
transfers give and IXFR diffs), the time of the last publication and the one
pending timer that coalesces changes (``xfr.publish`` holds the rules). The
app pokes it after every health change and every accepted load or reload;
a poke schedules a publication of that zone at ``publish_delay`` from now
unless one is pending, and the publication reads the state as it is then.

Must not: select answers, send NOTIFY or record history (``on_publish``,
wired by the app, does), or read config (the app hands it the zones).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import dns.name

from dnsserve.answer.policies import Pool, Selection
from dnsserve.xfr.outgoing import soa_record, soa_serial
from dnsserve.xfr.publish import (
    PoolKey,
    PublishZone,
    answer_values,
    next_serial,
    publish_delay,
    published_content,
    same_records,
)
from dnsserve.zones.versions import ZoneContent, ZoneDiff, diff, serial_gt

log = logging.getLogger(__name__)


class Publisher:
    """Publishes each zone's pool answers into its transferred content, coalesced."""

    def __init__(
        self,
        base: Callable[[], Mapping[dns.name.Name, ZoneContent]],
        state: Callable[[], tuple[Sequence[Pool], Mapping[PoolKey, Selection]]],
        on_publish: Callable[[dns.name.Name, ZoneContent, ZoneDiff | None], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base = base
        self._state = state
        self._on_publish = on_publish
        self._clock = clock
        self.zones: Mapping[dns.name.Name, PublishZone] = {}
        self.published: dict[dns.name.Name, ZoneContent] = {}
        self._last: dict[dns.name.Name, float] = {}
        self._pending: dict[dns.name.Name, asyncio.TimerHandle] = {}
        self.publications = 0

    def set_zones(self, zones: Mapping[dns.name.Name, PublishZone]) -> None:
        self.zones = zones
        for origin in [o for o in self.published if o not in zones]:
            del self.published[origin]
        self.poke()

    def poke(self) -> None:
        """Something may have changed: publish each zone when its interval allows."""
        if not self.zones:
            return
        loop = asyncio.get_running_loop()
        now = self._clock()
        for origin, zone in self.zones.items():
            if origin in self._pending:
                continue
            delay = publish_delay(self._last.get(origin), now, zone.min_interval)
            self._pending[origin] = loop.call_later(delay, self._fire, origin)

    def _fire(self, origin: dns.name.Name) -> None:
        self._pending.pop(origin, None)
        try:
            self.publish(origin)
        except Exception:
            log.exception("publishing zone %s failed; the last published version stays", origin)

    def publish(self, origin: dns.name.Name) -> bool:
        """Publish ``origin`` now if its answers (or its file) changed; True when it did."""
        zone = self.zones.get(origin)
        base = self._base().get(origin)
        if zone is None or base is None:
            return False
        pools, selections = self._state()
        by_key = {(p.owner, p.rdtype): p for p in pools}
        sets = {}
        for key in zone.pools:
            selection, pool = selections.get(key), by_key.get(key)
            if selection is not None and pool is not None:
                sets[key] = (selection.ttl, answer_values(pool.rdtype, selection))
        old = self.published.get(origin)
        now = self._clock()
        if old is None:
            serial = next_serial(soa_serial(soa_record(base)), now)
        else:
            candidate = published_content(base, sets, soa_serial(soa_record(old)))
            if same_records(candidate, old):
                return False
            serial = next_serial(soa_serial(soa_record(old)), now)
            file_serial = soa_serial(soa_record(base))
            if serial_gt(file_serial, serial):
                serial = file_serial
        content = published_content(base, sets, serial)
        self.published[origin] = content
        self._last[origin] = now
        self.publications += 1
        log.info("published zone %s serial %d", origin, serial)
        self._on_publish(origin, content, None if old is None else diff(old, content))
        return True

    def close(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
