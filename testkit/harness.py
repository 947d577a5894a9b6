"""The health tests' harness: backends, a config file, the server, the CLI and the state file.

Owns what an end-to-end health test builds around one server: the config
(``monitor``/``pool`` entries with the tests' fast schedule, written as TOML
by ``render_config``), real backends on 127.0.0.x started on one port free on
all of them, the server (``start_server``), the CLI (``python -m dnsserve``),
the state file read directly with sqlite3, and the polls on the server's
answer (``wait_answer``). ``Harness`` registers every stop on the test's exit
stack, so the server stops first, then the backends.

Must not: send traffic anywhere but loopback, or write anything outside the
test's temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import httpx

from testkit.backends import HttpBackend, TcpListener, close_all
from testkit.ports import common_port, free_port
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

FALL = 2


def monitor(**over: Any) -> dict[str, Any]:
    """The test monitor: HTTP GET /health, fast schedule."""
    base: dict[str, Any] = {
        "name": "web", "kind": "http", "path": "/health", "expect_body": "ok",
        "interval": 0.2, "timeout": 0.15, "rise": 2, "fall": FALL,
    }
    return {**base, **over}


def pool(owner: str, members: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    return {"owner": owner, "type": "A", "monitor": "web", "policy": "all", "ttl": 20,
            **over, "members": members}


# -- a small TOML writer (msgspec needs tomli_w to encode TOML; it is not a dependency) -----------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for this ASCII text
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def render_config(doc: dict[str, Any]) -> str:
    lines = []
    if "server" in doc:
        lines.append("[server]")
        lines += [f"{k} = {_toml(v)}" for k, v in doc["server"].items()]
    for table in ("monitor", "pool"):
        for entry in doc.get(table, []):
            lines += ["", f"[[{table}]]"]
            lines += [f"{k} = {_toml(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


# -- polling and queries --------------------------------------------------------------------------


def query(srv: ServerProc, qname: str, rdtype: str = "A") -> dns.message.Message | None:
    """One UDP query; None when it timed out (the caller polls again)."""
    try:
        return srv.udp(dns.message.make_query(qname, rdtype), timeout=1.0)
    except dns.exception.Timeout:
        return None


def rdatas(msg: dns.message.Message | None, qname: str, rdtype: str = "A") -> frozenset[str] | None:
    """The answer's records of ``qname``/``rdtype`` as text; None unless NOERROR."""
    if msg is None or msg.rcode() != dns.rcode.NOERROR:
        return None
    name, kind = dns.name.from_text(qname), dns.rdatatype.from_text(rdtype)
    found = [rr.to_text() for rrset in msg.answer if rrset.name == name and rrset.rdtype == kind
             for rr in rrset]
    return frozenset(found)


def addresses(srv: ServerProc, qname: str, rdtype: str = "A") -> frozenset[str] | None:
    return rdatas(query(srv, qname, rdtype), qname, rdtype)


def wait_answer(srv: ServerProc, qname: str, expected: set[str] | frozenset[str],
                rdtype: str = "A") -> frozenset[str] | None:
    want = frozenset(expected)
    return wait_for(f"{qname} {rdtype} to answer {sorted(want)}",
                    lambda: addresses(srv, qname, rdtype), lambda got: got == want)


def steady(srv: ServerProc, qname: str, expected: set[str], times: int = 10) -> None:
    """Several answers in a row are exactly ``expected`` (rotation changes only the order)."""
    seen = [addresses(srv, qname) for _ in range(times)]
    assert all(got == frozenset(expected) for got in seen), seen


# -- the harness: backends, config, server, CLI and state file of one test ------------------------


class Harness:
    """One test's backends, config, server, CLI and state file, stopped by ``stack``."""

    def __init__(self, tmp_path: Path, stack: contextlib.ExitStack) -> None:
        self.tmp_path = tmp_path
        self.stack = stack
        self.state = tmp_path / "state.db"
        self.config = tmp_path / "health.toml"  # not ./dnsserve.toml: the CLI must not find it
        self.control = ""  # the control API's ADDR:PORT, set by write_config
        self.workers = 1  # the server's answering processes (``[server] workers``)

    def http(self, *hosts: str) -> dict[str, HttpBackend]:
        """Started HTTP backends, one per host, on one port free on all of them."""
        port = common_port(hosts)
        backends = {h: HttpBackend(h, port) for h in hosts}
        self.stack.callback(close_all, list(backends.values()))
        for backend in backends.values():
            backend.start()
        return backends

    def tcp(self, *hosts: str) -> dict[str, TcpListener]:
        port = common_port(hosts)
        listeners = {h: TcpListener(h, port) for h in hosts}
        self.stack.callback(close_all, list(listeners.values()))
        for listener in listeners.values():
            listener.open()
        return listeners

    def write_config(self, monitors: list[dict[str, Any]], pools: list[dict[str, Any]],
                     **server: Any) -> Path:
        self.control = f"127.0.0.1:{free_port()}"
        doc = {
            "server": {"state": str(self.state), "control": self.control, **server},
            "monitor": monitors,
            "pool": pools,
        }
        self.config.write_text(render_config(doc))
        return self.config

    def serve(self, *, nofile: int | None = None) -> ServerProc:
        """The server on this config (``nofile``: its file descriptor limit)."""
        srv = start_server(self.tmp_path, "-c", str(self.config), nofile=nofile,
                           workers=self.workers)
        self.stack.callback(srv.stop)
        return srv

    def cli(self, *args: str, check: bool = True,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "dnsserve", *args], cwd=self.tmp_path,
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def status(self) -> dict[str, Any]:
        """``dnsserve status --offline`` of the state file, as JSON."""
        done = self.cli("status", "--offline", "--state", str(self.state), "--format", "json",
                        "--events", "1000")
        doc: dict[str, Any] = json.loads(done.stdout)
        return doc

    def api(self, method: str, path: str, body: dict[str, Any] | None = None, *,
            token: bool = True) -> httpx.Response:
        """One request to the running server's control API (with the token file's
        bearer token unless ``token`` is False)."""
        headers = {}
        if token:
            secret = Path(f"{self.state}.token").read_text().strip()
            headers["Authorization"] = f"Bearer {secret}"
        with httpx.Client(base_url=f"http://{self.control}", timeout=10.0,
                          trust_env=False) as client:
            return client.request(method, path, json=body, headers=headers)

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.state, timeout=5)) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql, args)]

    def states(self) -> dict[str, dict[str, Any]]:
        """member_state rows by member text ("web/127.0.0.x")."""
        return {r["member"]: r for r in self._rows("SELECT * FROM member_state")}

    def events(self, member: str) -> list[dict[str, Any]]:
        """A member's events (or "*" for alarms), oldest first."""
        return self._rows("SELECT * FROM events WHERE member = ? ORDER BY id", (member,))

    def wait_states(self, what: str, ok: Callable[[dict[str, dict[str, Any]]], bool]) -> None:
        wait_for(what, self.states, ok)

    def wait_up(self, members: list[str]) -> None:
        """Every member has been checked and is up in the state file."""
        self.wait_states(
            f"{members} checked and up",
            lambda s: all(m in s and s[m]["state"] == "up" for m in members),
        )
