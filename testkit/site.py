"""One operator's site around a running server: zone files, config, server, control API.

Owns what the end-to-end tests of operating a server (tests/integration/
test_operate.py, test_guard_reload.py) build and use: a zones directory in
the test's temporary directory with ``operate.example.`` (``zone_text``: a
zone whose records the deletion guard's rules can remove one kind at a time)
and, where needed, ``other.example.``; the config naming it, rewritten at
will while the control address stays the same; the real server started with
that config (``Site.serve``, ``restart``); and the control API as an operator
uses it (GETs open, POSTs with the bearer token from ``<state>.token``;
``metric`` reads one sample of ``/metrics``). ``run_serve`` runs a start that
is expected to be refused.

Must not: send traffic anywhere but loopback, write outside the test's
temporary directory, or start anything the harness's exit stack does not stop.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.rcode
import httpx

from testkit.backends import HttpBackend
from testkit.harness import Harness, monitor, pool, query, render_config
from testkit.ports import free_port
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

ZONE = "operate.example."
OTHER = "other.example."
POOL = f"www.{ZONE}"  # the pool's name; the zone has a static A there too
MANY = 20  # A records at many.operate.example.: one RRset the fraction rule can thin out
RECORDS = 7 + MANY  # zone_text's records with nothing dropped
BROKEN = "broken IN A 192.0.2.999\n"  # a line that fails a zone's load: not an IPv4 address


def zone_text(serial: int, *, drop: tuple[str, ...] = (), many: int = MANY,
              extra: str = "") -> str:
    """operate.example.: 7 + ``many`` records; ``drop`` leaves out the lines so tagged."""
    lines = {
        "soa": f"@ IN SOA ns1 hostmaster {serial} 60 60 600 60",
        "ns": "  IN NS ns1",
        "mx": "  IN MX 10 mail",
        "ns1": "ns1 IN A 192.0.2.1",
        "mail": "mail IN A 192.0.2.25",
        "www": "www IN A 192.0.2.80",
        "static": "static IN A 192.0.2.90",
    }
    body = [line for tag, line in lines.items() if tag not in drop]
    body += [f"many IN A 198.51.100.{i}" for i in range(1, many + 1)]
    return f"$ORIGIN {ZONE}\n$TTL 60\n" + "\n".join(body) + "\n" + extra


def other_text(serial: int, extra: str = "") -> str:
    return (f"$ORIGIN {OTHER}\n$TTL 60\n@ IN SOA ns1 hostmaster {serial} 60 60 600 60\n"
            f"  IN NS ns1\nns1 IN A 192.0.2.2\napp IN A 192.0.2.100\n{extra}")


@dataclass
class Site:
    """A zones directory, a config and (once started) the server, of one test."""

    h: Harness
    zones: Path
    srv: ServerProc | None = None
    backends: dict[str, HttpBackend] = field(default_factory=dict)

    @classmethod
    def create(cls, h: Harness) -> Site:
        """The zones directory with ``operate.example.`` at serial 1; no config yet."""
        zones = h.tmp_path / "zones"
        zones.mkdir()
        site = cls(h, zones)
        site.zone.write_text(zone_text(1))
        return site

    @property
    def zone(self) -> Path:
        return self.zones / f"{ZONE}zone"

    @property
    def other(self) -> Path:
        return self.zones / f"{OTHER}zone"

    @property
    def overrides(self) -> Path:
        return self.zones.parent / "overrides.toml"

    @property
    def server(self) -> ServerProc:
        assert self.srv is not None, "the server is not running"
        return self.srv

    # -- config and process ------------------------------------------------------------------

    def configure(self, monitors: list[dict[str, Any]], pools: list[dict[str, Any]],
                  **server: Any) -> None:
        """Write the config; the control address stays the same across rewrites."""
        if not self.h.control:
            self.h.control = f"127.0.0.1:{free_port()}"
        settings = {"state": str(self.h.state), "control": self.h.control,
                    "zones": str(self.zones), **server}
        self.h.config.write_text(render_config(
            {"server": settings, "monitor": monitors, "pool": pools}))

    def backend_pool(self, *hosts: str, owner: str = POOL, **over: Any) -> list[str]:
        """HTTP backends on ``hosts`` and a config of one pool of them; returns ``hosts``."""
        self.backends.update(self.h.http(*hosts))
        self.configure([monitor(port=self.backends[hosts[0]].port)],
                       [pool(owner, [{"address": h} for h in hosts], **over)])
        return list(hosts)

    def serve(self, *args: str) -> ServerProc:
        srv = start_server(self.h.tmp_path, "-c", str(self.h.config), *args, zones=None)
        self.h.stack.callback(srv.stop)
        self.srv = srv
        return srv

    def stop(self) -> None:
        self.server.stop()
        self.srv = None

    def restart(self, *args: str) -> ServerProc:
        self.stop()
        return self.serve(*args)

    # -- the control API ---------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://{self.h.control}", timeout=10.0, trust_env=False)

    def get(self, path: str, **params: Any) -> Any:
        """A GET that must answer 200; its JSON."""
        with self._client() as client:
            reply = client.get(path, params=params)
        assert reply.status_code == 200, (path, reply.status_code, reply.text)
        return reply.json()

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.get("/api/v1/status")
        return doc

    def member(self, member: str) -> dict[str, Any]:
        found = [m for m in self.status()["members"] if m["member"] == member]
        assert len(found) == 1, (member, found)
        return found[0]

    def events(self, **params: Any) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.get("/api/v1/events", **params)["events"]
        return events

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.h.api("POST", path, body)

    def override(self, member: str, action: str, body: dict[str, Any] | None = None,
                 ) -> httpx.Response:
        """POST /api/v1/members/MEMBER/ACTION (drain, force-up, undrain)."""
        return self.post(f"/api/v1/members/{member}/{action}", body)

    def reload(self, **body: Any) -> httpx.Response:
        return self.post("/api/v1/reload", body)

    def said(self, reply: httpx.Response) -> list[str]:
        """What a reload's reply (warnings or errors) and the status's problems tell."""
        doc = reply.json()
        return [*doc.get("warnings", []), *doc.get("detail", {}).get("errors", []),
                *self.status()["problems"]]

    def metric(self, name: str, **labels: str) -> float | None:
        """The first sample of ``name`` in /metrics whose labels include ``labels``;
        None when there is none."""
        with self._client() as client:
            reply = client.get("/metrics")
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain")
        for line in reply.text.splitlines():
            found = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
            if found is None or found[1] != name:
                continue
            got = dict(re.findall(r'([a-z_]+)="([^"]*)"', found[2] or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(found[3])
        return None

    # -- the state file ----------------------------------------------------------------------

    def zone_versions(self) -> list[tuple[str, int, int]]:
        """(zone, serial, records) of each accepted version in the state file, oldest first."""
        with contextlib.closing(sqlite3.connect(self.h.state, timeout=5)) as db:
            rows = db.execute("SELECT zone, serial, records FROM zone_versions ORDER BY id")
            return [(str(z), int(s), int(r)) for z, s, r in rows]

    def zone_contents(self) -> list[str]:
        """The zones whose last accepted content the state file holds."""
        with contextlib.closing(sqlite3.connect(self.h.state, timeout=5)) as db:
            return sorted(str(z) for (z,) in db.execute("SELECT zone FROM zone_content"))

    def wait_member(self, member: str, what: str,
                    ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        found: dict[str, Any] = wait_for(f"{member}: {what}", lambda: self.member(member), ok)
        return found

    def wait_checked_up(self, *members: str) -> None:
        for m in members:
            self.wait_member(m, "checked and up",
                             lambda doc: doc["checked"] is not None and doc["real"] == "up")


# -- DNS ----------------------------------------------------------------------------------------


def soa_serial(srv: ServerProc, zone: str = ZONE) -> int | None:
    """The zone's SOA serial served; None without one (or a lost UDP packet)."""
    msg = query(srv, zone, "SOA")
    if msg is None or msg.rcode() != dns.rcode.NOERROR or not msg.answer:
        return None
    serial: int = msg.answer[0][0].serial
    return serial


def rcode_of(srv: ServerProc, qname: str, rdtype: str = "A") -> str | None:
    msg = query(srv, qname, rdtype)
    return None if msg is None else dns.rcode.to_text(msg.rcode())


def wait_serial(srv: ServerProc, serial: int, zone: str = ZONE) -> None:
    wait_for(f"{zone} SOA serial {serial}", lambda: soa_serial(srv, zone),
             lambda got: got == serial)


def run_serve(h: Harness, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``dnsserve serve`` expected to exit by itself (a refused start), on a free port."""
    cmd = [sys.executable, "-m", "dnsserve", "serve", "--listen", f"127.0.0.1:{free_port()}",
           *args]
    return subprocess.run(cmd, cwd=h.tmp_path, capture_output=True, text=True,
                          timeout=timeout, check=False)
