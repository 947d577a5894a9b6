"""app.Server's parts (HealthSync, Reloader) run in process: no sockets, no monitor.

The composition root is tested end to end in tests/integration (the real
process); here its steps are called directly where a property is about what
they build, not about what goes over the wire.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import MappingProxyType

import dns.name
import dns.rdataclass
import dns.rdatatype

from dnsserve import app
from dnsserve.answer.lookup import answer_key
from dnsserve.health.guard import Suspicion
from dnsserve.health.model import MemberId
from dnsserve.settings import load_settings
from testkit import SHIPPED_ZONES
from testkit.harness import pool, render_config


# Regression (a fixed bug): reselect swaps when only a Selection's reason text
# changed: entering or leaving suspicion rebuilds every pool's answers on the main loop (3 s
# stall at 100 pools)
def test_entering_suspicion_rebuilds_no_unchanged_answer(tmp_path: Path) -> None:
    """Runs the app's own main-loop steps in process (no sockets): load, then the
    suspicion event the monitor thread hands over. No answer changes, so no prebuilt
    answer may be rebuilt (a full rebuild stalls the loop: 3 s at 100 pools)."""
    hosts = {k: [f"192.0.2.{10 + 2 * i}", f"192.0.2.{11 + 2 * i}"] for i, k in enumerate("abc")}
    owners = {k: f"suspect-{k}.example.com." for k in hosts}
    config = tmp_path / "c.toml"
    config.write_text(render_config({
        "server": {"state": str(tmp_path / "state.db")},
        "monitor": [{"name": "web", "kind": "tcp", "port": 9, "interval": 1.0, "timeout": 0.5}],
        "pool": [pool(owners[k], [{"address": h} for h in hosts[k]]) for k in hosts],
    }))
    server = app.Server(load_settings(config, zones=SHIPPED_ZONES))
    loop = asyncio.new_event_loop()
    server.health.open(loop)
    try:
        engine = server.reloader.load()
        before = engine.snapshot
        keys = [answer_key(dns.name.from_text(owners[k]), dns.rdatatype.A, dns.rdataclass.IN)
                for k in hosts]
        held = frozenset(MemberId("web", h) for hs in hosts.values() for h in hs)
        server.health._apply_suspicion(
            Suspicion(True, time.time(), held, MappingProxyType({}), "test")
        )
        after = engine.snapshot
        assert server.health.view.suspect
        assert [after.answers[k] is before.answers[k] for k in keys] == [True, True, True]
    finally:
        server.health.close()
        loop.close()
