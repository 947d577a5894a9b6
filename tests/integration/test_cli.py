"""The CLI's live commands (status, query, drain, force-up, undrain, reload, history) over HTTP.

Two halves:

- Against the real control endpoint (``control.start_control`` on a loop in
  a thread) with ``CliApi``, an in-memory Api that answers as
  docs/control-api.md says (and, for ``/api/v1/answer``, in the shape the CLI
  assumes until the document fixes it). The CLI runs in-process (typer's
  CliRunner) against it: every request crosses a real loopback socket.
- End to end: ``dnsserve serve`` with pools and real backends, the CLI as a
  subprocess. Those need the control API wired into the server (issue i12)
  and are skipped until it is; ``test_status_with_no_server_running`` needs
  nothing and runs now.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner, Result

from dnsserve import control
from dnsserve.cli import cli
from dnsserve.control import ControlError, ControlServer
from dnsserve.health.model import MemberHealth, MemberId, Override, OverrideEntry, State
from dnsserve.metrics import Registry
from dnsserve.statuspage import (
    EventDoc,
    MemberDoc,
    OverrideDoc,
    PoolDoc,
    PoolMemberDoc,
    Status,
    ZoneDoc,
)
from dnsserve.store import Store
from testkit import SHIPPED_ZONES
from testkit.harness import Harness, monitor, pool, render_config, wait_answer
from testkit.loopthread import LoopThread
from testkit.ports import free_port
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

TOKEN = "cli-test-token-" + "a" * 30
NOW = 1_760_000_000.0
A, B = "web/127.0.0.11", "web/127.0.0.12"
OWNER = "www.example.com."
MARKUP = "[bold red]not markup[/]"


class CliApi:
    """An in-memory Api with one pool of two members, as the CLI expects a server to answer."""

    def __init__(self) -> None:
        self.values = {A: "127.0.0.11", B: "127.0.0.12"}
        self.real = dict.fromkeys(self.values, "up")
        self.overrides: dict[str, OverrideDoc] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.zone_errors: list[str] = []

    def _effective(self, member: str, down: Sequence[str] = ()) -> str:
        if member in down:
            return "down"
        o = self.overrides.get(member)
        return self.real[member] if o is None else ("down" if o.kind == "drain" else "up")

    def _selection(self, down: Sequence[str] = ()) -> dict[str, Any]:
        up = [v for m, v in self.values.items() if self._effective(m, down) == "up"]
        members = [{"member": m, "value": v, "real": self.real[m],
                    "effective": self._effective(m, down), "reason": "HTTP 200",
                    "override": msgspec.to_builtins(self.overrides.get(m))}
                   for m, v in self.values.items()]
        applied = not up
        return {"owner": OWNER, "type": "A", "policy": "all", "when_all_down": "all",
                "all_down_rule_applied": applied,
                "reason": "every member down: all, as if up" if applied
                else f"{len(up)} of {len(self.values)} members up",
                "members": members, "answer": list(self.values.values()) if applied else up}

    def status(self) -> Status:
        sel = self._selection()
        return Status(
            now=NOW, version="0.1.0",
            zones=(ZoneDoc(name="example.com.", file="zones/example.com.zone", serial=7,
                           records=12, loaded_at=NOW - 60, result="loaded"),),
            pools=(PoolDoc(owner=OWNER, type="A", monitor="web", policy="all", ttl=20,
                           members=tuple(PoolMemberDoc(member=m, value=v)
                                         for m, v in self.values.items()),
                           answer=tuple(sel["answer"]), reason=sel["reason"]),),
            members=tuple(
                MemberDoc(member=m, monitor="web", address=v, real=self.real[m],
                          effective=self._effective(m), since=NOW - 300, reason="HTTP 200",
                          checked=NOW - 1, ok=True, result="HTTP 200", latency=0.004,
                          override=self.overrides.get(m))
                for m, v in self.values.items()
            ),
            events=(EventDoc(time=NOW - 60, member=A, from_state="down", to_state="up",
                             reason=MARKUP),),
        )

    def answer(self, name: str, qtype: str, what_if_down: Sequence[str]) -> dict[str, Any]:
        self.calls.append(("answer", name, qtype, list(what_if_down)))
        if name != OWNER:
            raise ControlError(404, f"{name} is in no served zone")
        live = self._selection()
        hypothetical = {**self._selection(what_if_down), "down": list(what_if_down)}
        return {"name": name, "type": qtype, "rcode": "NOERROR", "answer": live["answer"],
                "zone": "example.com.", "source": "pool", "pool": live,
                "what_if_down": hypothetical if what_if_down else None, "new_field": 1}

    def events(self, since: float | None, member: str | None, limit: int) -> list[dict[str, Any]]:
        self.calls.append(("events", since, member, limit))
        return [{"time": NOW - 60, "member": member or A, "monitor": "web",
                 "from_state": "up", "to_state": "down", "reason": "HTTP 503"}]

    def set_override(
        self, member: str, kind: str, duration: float | None, reason: str, force: bool
    ) -> dict[str, Any]:
        self.calls.append(("set_override", member, kind, duration, reason, force))
        if member not in self.values:
            raise ControlError(404, f"{member}: in no pool")
        others_up = [m for m in self.values if m != member and self._effective(m) == "up"]
        if kind == "drain" and not others_up and not force:
            raise ControlError(
                409, f"draining {member} leaves {OWNER} A with no member up",
                detail={"pool": f"{OWNER} A", "rule": "when_all_down = all",
                        "would_serve": list(self.values.values())})
        until = NOW + duration if duration is not None else None
        self.overrides[member] = OverrideDoc(kind=kind, reason=reason, until=until, set_at=NOW)
        return {"member": member, "override": self.overrides[member],
                "effective": self._effective(member)}

    def clear_override(self, member: str) -> dict[str, Any]:
        self.calls.append(("clear_override", member))
        return {"member": member, "removed": self.overrides.pop(member, None) is not None}

    async def reload(self, force: bool) -> dict[str, Any]:
        self.calls.append(("reload", force))
        if self.zone_errors and not force:
            raise ControlError(422, "reload refused: zone errors", detail=self.zone_errors)
        return {"accepted": True, "zones": 3}

    def metrics(self) -> str:
        return Registry().render()

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        return True, {}


API: control.Api = CliApi()  # mypy checks the fake against the Protocol


@dataclass
class Fake:
    api: CliApi
    server: ControlServer
    url: str
    port: int


class Fakes:
    """Control endpoints with ``CliApi``s on one loop thread; ``stop`` stops one early."""

    def __init__(self) -> None:
        self.lt = LoopThread()
        self.started: list[ControlServer] = []

    def start(self, token: str = TOKEN) -> Fake:
        api = CliApi()
        server = self.lt.run(control.start_control(api, "127.0.0.1", 0, token))
        self.started.append(server)
        port = server.address[1]
        return Fake(api, server, f"http://127.0.0.1:{port}", port)

    def stop(self, server: ControlServer) -> None:
        async def close() -> None:
            server.close()
            await server.wait_closed()

        self.lt.run(close())

    def close(self) -> None:
        for server in self.started:
            self.stop(server)
        self.lt.stop()


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    f = Fakes()
    yield f
    f.close()


@pytest.fixture
def fake(fakes: Fakes) -> Fake:
    return fakes.start()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ./dnsserve.toml or token of the repository is found by accident."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DNSSERVE_TOKEN", raising=False)


def write_token(path: Path, token: str = TOKEN) -> Path:
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def write_config(tmp: Path, control_port: int, *, nodes: Sequence[dict[str, str]] = (),
                 token: bool = True, name: str = "cli.toml") -> Path:
    doc = {
        "server": {"listen": ["127.0.0.1:5300"], "state": "state.db",
                   "control": f"127.0.0.1:{control_port}"},
        "monitor": [{"name": "web", "kind": "http", "port": 8080}],
        "pool": [{"owner": OWNER, "type": "A", "monitor": "web",
                  "members": [{"address": "127.0.0.11"}, {"address": "127.0.0.12"}]}],
    }
    text = render_config(doc)
    for node in nodes:
        text += "\n[[node]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in node.items())
    path = tmp / name
    path.write_text(text)
    if token:
        write_token(tmp / "state.db.token")
    return path


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    environ: dict[str, str | None] = {"COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return CliRunner(env=environ).invoke(cli, list(args))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def failed(result: Result, code: int = 1) -> Result:
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def row(out: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row of {first} in:\n{out}")


def api_calls(fake: Fake, kind: str) -> list[tuple[Any, ...]]:
    return [c for c in fake.api.calls if c[0] == kind]


# --- status -------------------------------------------------------------------


def test_status_shows_a_table_per_pool(fake: Fake, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, fake.port)
    fake.api.overrides[B] = OverrideDoc(kind="drain", reason="kernel upgrade", until=NOW + 900)
    out = ok(run("status", "-c", str(cfg))).stdout
    assert fake.url in out
    assert f"{OWNER} A  policy all, when all down: all, ttl 20" in out
    assert "answer: 127.0.0.11  (1 of 2 members up)" in out
    assert row(out, B) == [B, "127.0.0.12", "down (checks: up)", "5m ago",
                           "HTTP 200, 4 ms, 1s ago",
                           "drain until 2025-10-09 09:08:20Z (in 15m): kernel upgrade"]
    assert MARKUP in out  # a server's text is shown as it is, never as markup


def test_status_json_is_the_api_document_per_node(fake: Fake, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, fake.port)
    docs = json.loads(ok(run("status", "-c", str(cfg), "--format", "json")).stdout)
    assert [(d["node"], d["name"]) for d in docs] == [(fake.url, "")]
    assert docs[0]["pools"][0]["owner"] == OWNER
    assert docs[0]["members"][0]["member"] == A


def test_status_without_a_server_names_the_address(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, port)
    result = failed(run("status", "-c", str(cfg)))
    assert f"no server answers at 127.0.0.1:{port} (connection refused)" in result.stderr
    assert "status --offline" in result.stderr
    docs = json.loads(failed(run("status", "-c", str(cfg), "--format", "json")).stdout)
    assert docs[0]["error"] == f"no server answers at 127.0.0.1:{port} (connection refused)"


def test_status_offline_reads_the_state_file_and_says_so(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, free_port())
    with Store.open(tmp_path / "state.db") as store:
        down = MemberHealth(State.DOWN, NOW, "HTTP 503", 0, 2, NOW)
        store.record_transition(MemberId("web", "127.0.0.12"), State.UP, State.DOWN,
                                "HTTP 503", NOW, down)
        store.set_override(MemberId("web", "127.0.0.11"),
                           OverrideEntry(Override.DRAIN, None, "kernel"), NOW)
    out = ok(run("status", "--offline", "-c", str(cfg))).stdout
    assert "OFFLINE: from the state file, not the running server" in out
    assert "drain: kernel" in out and "HTTP 503" in out
    doc = json.loads(ok(run("status", "--offline", "-c", str(cfg), "--format", "json")).stdout)
    assert doc["offline"] is True
    assert doc["members"][B]["state"] == "down"


# --- drain, force-up, undrain: the token, the refusal, the fleet ------------------------------


def test_mutations_need_the_token(fake: Fake, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, fake.port, token=False)
    result = failed(run("drain", A, "-c", str(cfg)))
    assert "state.db.token: cannot read the control token" in result.stderr
    assert "--token-file" in result.stderr and "DNSSERVE_TOKEN" in result.stderr
    result = failed(run("drain", A, "-c", str(cfg), env={"DNSSERVE_TOKEN": "x" * 20}))
    assert "wrong token" in result.stderr
    assert fake.api.calls == []  # neither reached the Api
    ok(run("drain", A, "-c", str(cfg), env={"DNSSERVE_TOKEN": TOKEN}))
    token_file = write_token(tmp_path / "elsewhere.token")
    ok(run("undrain", A, "-c", str(cfg), "--token-file", str(token_file)))
    assert [c[0] for c in fake.api.calls] == ["set_override", "clear_override"]


def test_drain_refused_without_yes(fake: Fake, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, fake.port)
    out = ok(run("drain", "127.0.0.11", "-c", str(cfg), "--for", "30m",
                 "--reason", "kernel upgrade")).stdout
    assert out == f"{A}: drain until 2025-10-09 09:23:20Z: kernel upgrade (now down)\n"
    result = failed(run("drain", B, "-c", str(cfg)))
    assert result.stderr.splitlines() == [
        f"dnsserve: draining {B} leaves {OWNER} A with no member up",
        f"  pool: {OWNER} A",
        "  rule: when_all_down = all",
        "  would_serve: 127.0.0.11, 127.0.0.12",
        "  nothing changed there; add --yes to drain anyway",
    ]
    assert B not in fake.api.overrides
    result = ok(run("drain", B, "-c", str(cfg), "--yes", "--reason", "all of it"))
    assert "warning: draining" in result.stdout and "would_serve" in result.stdout
    assert result.stdout.endswith(f"{B}: drain: all of it (now down)\n")
    assert api_calls(fake, "set_override") == [
        ("set_override", A, "drain", 1800.0, "kernel upgrade", False),
        ("set_override", B, "drain", None, "", False),
        ("set_override", B, "drain", None, "all of it", False),
        ("set_override", B, "drain", None, "all of it", True),
    ]


def test_force_up_undrain_and_member_names(fake: Fake, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, fake.port)
    out = ok(run("force-up", "127.0.0.12", "-c", str(cfg), "--for", "15m")).stdout
    assert out.startswith(f"{B}: force-up until ")
    assert ok(run("undrain", "127.0.0.12", "-c", str(cfg))).stdout == \
        f"{B}: override removed\n"
    assert ok(run("undrain", B, "-c", str(cfg))).stdout == f"{B}: had no override\n"
    result = failed(run("drain", "wbe/127.0.0.12", "-c", str(cfg)))
    assert "wbe/127.0.0.12: in no pool of" in result.stderr
    failed(run("drain", "127.0.0.99", "-c", str(cfg)), code=2)
    failed(run("drain", A, "-c", str(cfg), "--for", "soon"), code=2)
    assert api_calls(fake, "set_override") == [("set_override", B, "force-up", 900.0, "", False)]


def test_fleet_acts_on_every_node_and_reports_the_one_down(
    fakes: Fakes, tmp_path: Path
) -> None:
    one, two, gone = fakes.start(), fakes.start(), fakes.start()
    fakes.stop(gone.server)
    cfg = write_config(tmp_path, one.port)
    nodes = ["--node", one.url, "--node", gone.url, "--node", two.url]
    result = failed(run("drain", A, "-c", str(cfg), *nodes, "--reason", "rack 4"))
    assert result.stdout.splitlines() == [
        f"{one.url}: {A}: drain: rack 4 (now down)",
        f"{two.url}: {A}: drain: rack 4 (now down)",
    ]
    assert result.stderr == \
        f"dnsserve: {gone.url}: no server answers at 127.0.0.1:{gone.port} (connection refused)\n"
    assert A in one.api.overrides and A in two.api.overrides
    result = failed(run("status", "-c", str(cfg), *nodes))
    assert [line.split(" ")[0] for line in result.stdout.splitlines()
            if line.startswith("http://")] == [one.url, gone.url, two.url]
    assert result.stdout.count(f"{OWNER} A  policy all") == 2
    docs = json.loads(failed(run("status", "-c", str(cfg), *nodes, "--format", "json")).stdout)
    assert ["error" in d for d in docs] == [False, True, False]
    ok(run("undrain", A, "-c", str(cfg), "--node", one.url, "--node", two.url))
    assert one.api.overrides == two.api.overrides == {}


def test_nodes_from_the_config_with_their_own_tokens(fakes: Fakes, tmp_path: Path) -> None:
    one, two = fakes.start(token="token-of-ns1-" + "1" * 20), fakes.start()
    write_token(tmp_path / "ns1.token", "token-of-ns1-" + "1" * 20)
    cfg = write_config(tmp_path, free_port(), nodes=[
        {"name": "ns1", "url": one.url, "token_file": "ns1.token"},
        {"name": "ns2", "url": two.url + "/"},  # the token beside the state file
    ])
    result = ok(run("drain", A, "-c", str(cfg)))
    assert result.stdout.splitlines() == [f"ns1: {A}: drain (now down)",
                                          f"ns2: {A}: drain (now down)"]
    out = ok(run("status", "-c", str(cfg))).stdout
    assert f"ns1 ({one.url})" in out and f"ns2 ({two.url})" in out
    ok(run("undrain", A, "-c", str(cfg), "--node", "ns2"))
    assert (A in one.api.overrides, A in two.api.overrides) == (True, False)


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ("ftp://127.0.0.1:1", "--node 'ftp://127.0.0.1:1': expected http://ADDRESS:PORT"),
        ("http://localhost:8053", "'localhost' is not an IP address"),
        ("ns9", "--node 'ns9': not a URL (http://ADDRESS:PORT) nor the name of a"),
    ],
)
def test_bad_node_flags(tmp_path: Path, node: str, message: str) -> None:
    cfg = write_config(tmp_path, free_port())
    result = failed(run("status", "-c", str(cfg), "--node", node), code=2)
    assert message in " ".join(result.stderr.split())  # typer boxes and wraps the message


# --- query, history, reload ---------------------------------------------------


def test_query_asks_over_dns_and_the_api(fake: Fake, tmp_path: Path, server: ServerProc) -> None:
    cfg = write_config(tmp_path, fake.port)
    dns_at = f"{server.host}:{server.port}"
    fake.api.real[B] = "down"
    out = ok(run("query", "www.example.com", "-c", str(cfg), "--server", dns_at)).stdout
    assert f"DNS @{dns_at}: NOERROR  flags: QR AA" in out
    assert "www.example.com. 60 IN A 127.0.0.11" in out  # the shipped zone's records
    assert "why: zone example.com., pool; answer NOERROR: 127.0.0.11" in out
    assert "pool: www.example.com. A  policy all, when all down: all" in out
    assert "selected: 127.0.0.11  (1 of 2 members up)" in out
    assert row(out, B)[:4] == [B, "127.0.0.12", "down", "HTTP 200"]
    out = ok(run("query", "www.example.com.", "A", "-c", str(cfg), "--server", dns_at,
                 "--what-if-down", "127.0.0.11")).stdout
    assert f"what if down: {A}  www.example.com. A" in out
    assert "(applied: every member is down, so 'all' decides)" in out
    assert api_calls(fake, "answer")[-1] == ("answer", OWNER, "A", [A])
    docs = json.loads(ok(run("query", OWNER, "AAAA", "-c", str(cfg), "--server", dns_at,
                             "--format", "json")).stdout)
    assert docs[0]["dns"]["rcode"] == "NOERROR"
    assert docs[0]["dns"]["answer"] == ["www.example.com. 3600 IN AAAA 2001:db8::80"]
    assert docs[0]["explanation"]["new_field"] == 1  # the API's JSON as it came


def test_query_for_a_name_not_served(fake: Fake, tmp_path: Path, server: ServerProc) -> None:
    cfg = write_config(tmp_path, fake.port)
    result = failed(run("query", "nowhere.test", "-c", str(cfg), "--server",
                        f"{server.host}:{server.port}"))
    assert "REFUSED" in result.stdout
    assert "dnsserve: nowhere.test. is in no served zone" in result.stderr


def test_query_without_a_dns_answer(fake: Fake, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, fake.port)
    result = failed(run("query", OWNER, "-c", str(cfg), "--server", f"127.0.0.1:{free_port()}"))
    assert "DNS @127.0.0.1:" in result.stdout and "why: zone example.com." in result.stdout


def test_history(fake: Fake, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, fake.port)
    before = time.time()
    out = ok(run("history", "-c", str(cfg), "--since", "1h", "--member", "127.0.0.11",
                 "--limit", "5")).stdout
    after = time.time()
    assert "2025-10-09 08:52:20Z" in out and "up -> down" in out and "HTTP 503" in out
    (_, since, member, limit), = api_calls(fake, "events")
    assert before - 3600 <= since <= after - 3600
    assert (member, limit) == (A, 5)
    docs = json.loads(ok(run("history", "-c", str(cfg), "--format", "json")).stdout)
    assert docs[0]["events"][0]["reason"] == "HTTP 503"
    assert api_calls(fake, "events")[-1] == ("events", None, None, 100)


def test_reload_refused_then_forced(fake: Fake, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, fake.port)
    assert ok(run("reload", "-c", str(cfg))).stdout == "reload: ok\n  accepted: true\n  zones: 3\n"
    fake.api.zone_errors = ["zones/example.com.zone:3: bad TTL"]
    result = failed(run("reload", "-c", str(cfg)))
    assert result.stderr.splitlines() == [
        "dnsserve: reload refused: zone errors",
        "  zones/example.com.zone:3: bad TTL",
        "  the old versions still serve; --force overrides the deletion guard once",
    ]
    ok(run("reload", "-c", str(cfg), "--force"))
    assert api_calls(fake, "reload") == [("reload", False), ("reload", False), ("reload", True)]


# --- end to end: dnsserve serve, real backends, the CLI as a subprocess ------------------------



def ip(x: int) -> str:
    return f"127.0.0.{x}"


def cli_json(h: Harness, *args: str, check: bool = True) -> Any:
    done = h.cli(*args, "--format", "json", check=check)
    return json.loads(done.stdout)


def two_member_pool(h: Harness, x: int, owner: str) -> tuple[str, str]:
    a, b = ip(x), ip(x + 1)
    backends = h.http(a, b)
    h.write_config([monitor(port=backends[a].port)],
                   [pool(owner, [{"address": a}, {"address": b}])])
    return a, b


def test_status_with_no_server_running(harness: Harness) -> None:
    harness.write_config([monitor(port=9)], [pool("none.example.com.", [{"address": ip(81)}])])
    control_at = next(line.split('"')[1] for line in harness.config.read_text().splitlines()
                      if line.startswith("control"))
    done = harness.cli("status", "-c", str(harness.config), check=False)
    assert done.returncode == 1
    assert f"no server answers at {control_at}" in done.stderr
    done = harness.cli("status", "-c", str(harness.config), "--format", "json", check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout)[0]["error"].startswith(f"no server answers at {control_at}")


def test_e2e_status_query_and_history(harness: Harness) -> None:
    owner = "cli-status.example.com."
    a, b = two_member_pool(harness, 82, owner)
    srv = harness.serve()
    wait_answer(srv, owner, {a, b})
    cfg = ("-c", str(harness.config))
    out = harness.cli("status", *cfg).stdout
    assert f"{owner} A" in out and f"web/{a}" in out and f"web/{b}" in out
    doc = cli_json(harness, "status", *cfg)[0]
    assert {m["member"]: m["effective"] for m in doc["members"]} == \
        {f"web/{a}": "up", f"web/{b}": "up"}
    dns_at = ("--server", f"{srv.host}:{srv.port}")  # the test server's --listen, not the file's
    out = harness.cli("query", owner, *cfg, *dns_at).stdout
    assert "NOERROR" in out and a in out and "why: zone example.com." in out
    docs = cli_json(harness, "query", owner, *cfg, *dns_at, "--what-if-down", a)
    assert docs[0]["dns"]["rcode"] == "NOERROR"
    assert docs[0]["explanation"]["name"] == owner
    harness.cli("drain", a, *cfg, "--reason", "e2e")
    events = cli_json(harness, "history", *cfg, "--since", "1h", "--member", a)[0]["events"]
    assert events and events[0]["member"] == f"web/{a}"


def test_e2e_mutations_need_the_token(harness: Harness) -> None:
    owner = "cli-token.example.com."
    a, _ = two_member_pool(harness, 84, owner)
    harness.serve()
    token_file = Path(f"{harness.state}.token")
    wait_for("the server's token file", token_file.exists, lambda made: made)
    elsewhere = harness.tmp_path / "away.token"
    token_file.rename(elsewhere)
    done = harness.cli("drain", a, "-c", str(harness.config), check=False)
    assert done.returncode == 1 and "cannot read the control token" in done.stderr
    bad = write_token(harness.tmp_path / "bad.token", "not-the-token-" + "z" * 20)
    done = harness.cli("drain", a, "-c", str(harness.config), "--token-file", str(bad),
                       check=False)
    assert done.returncode == 1 and "wrong token" in done.stderr
    harness.cli("drain", a, "-c", str(harness.config), "--token-file", str(elsewhere))


def test_e2e_drain_refused_without_yes(harness: Harness) -> None:
    owner = "cli-refuse.example.com."
    a, b = two_member_pool(harness, 86, owner)
    srv = harness.serve()
    wait_answer(srv, owner, {a, b})
    cfg = ("-c", str(harness.config))
    harness.cli("drain", a, *cfg)
    wait_answer(srv, owner, {b})
    done = harness.cli("drain", b, *cfg, check=False)
    assert done.returncode == 1 and "--yes" in done.stderr
    wait_answer(srv, owner, {b})  # nothing changed
    harness.cli("drain", b, *cfg, "--yes")
    wait_answer(srv, owner, {a, b})  # when_all_down = "all": every member, as if up
    harness.cli("undrain", a, *cfg)
    wait_answer(srv, owner, {a})


def test_e2e_fleet_of_two_servers(harness: Harness) -> None:
    owner = "cli-fleet.example.com."
    a, b = two_member_pool(harness, 88, owner)
    # A second node: the same pools, its own state file and control port, and the
    # fleet's one token (written before either server starts, so both read it).
    text = harness.config.read_text()
    second_dir = harness.tmp_path / "second"
    second_dir.mkdir()
    second_cfg = second_dir / "health.toml"
    second_cfg.write_text(text.replace(str(harness.state), str(second_dir / "state.db"))
                          .replace(_control_of(text), f"127.0.0.1:{free_port()}"))
    write_token(Path(f"{harness.state}.token"))
    write_token(second_dir / "state.db.token")
    first, second = harness.serve(), _serve(harness, second_cfg)
    fleet_cfg = harness.tmp_path / "fleet.toml"
    fleet_cfg.write_text(
        text
        + f'\n[[node]]\nname = "one"\nurl = "http://{_control_of(text)}"\n'
        + f'dns = "{first.host}:{first.port}"\n'
        + f'\n[[node]]\nname = "two"\nurl = "http://{_control_of(second_cfg.read_text())}"\n'
        + f'dns = "{second.host}:{second.port}"\n'
    )
    for srv in (first, second):
        wait_answer(srv, owner, {a, b})
    harness.cli("drain", a, "-c", str(fleet_cfg), "--reason", "fleet")
    for srv in (first, second):
        wait_answer(srv, owner, {b})
    docs = cli_json(harness, "status", "-c", str(fleet_cfg))
    assert [d["name"] for d in docs] == ["one", "two"]
    out = harness.cli("query", owner, "-c", str(fleet_cfg)).stdout
    assert out.count("why: zone example.com.") == 2
    second.stop()
    done = harness.cli("undrain", a, "-c", str(fleet_cfg), check=False)
    assert done.returncode == 1 and "two: no server answers at" in done.stderr
    wait_answer(first, owner, {a, b})  # the node still up acted


def test_e2e_reload(harness: Harness) -> None:
    owner = "cli-reload.example.com."
    two_member_pool(harness, 90, owner)
    harness.serve()
    out = harness.cli("reload", "-c", str(harness.config)).stdout
    assert out.startswith("reload: ok")


def _control_of(config_text: str) -> str:
    return next(line.split('"')[1] for line in config_text.splitlines()
                if line.startswith("control"))


def _serve(h: Harness, config: Path) -> ServerProc:
    srv = start_server(config.parent, "-c", str(config), zones=SHIPPED_ZONES)
    h.stack.callback(srv.stop)
    return srv


# The harness runs the CLI as a subprocess; these make sure that path works for reads too.
def test_cli_subprocess_reads_json(fake: Fake, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, fake.port)
    env = {k: v for k, v in os.environ.items() if k != "DNSSERVE_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "dnsserve", "status", "-c", str(cfg),
                           "--format", "json"], capture_output=True, text=True, timeout=60,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["node"] == fake.url



def test_e2e_a_config_with_errors_does_not_lock_the_operator_out(harness: Harness) -> None:
    """Halfway through an edit the config does not validate: drain still reaches the
    running server (the errors are a warning), and reload is refused by the server,
    which logs and counts it."""
    owner = "cli-broken-config.example.com."
    a, b = two_member_pool(harness, 88, owner)
    srv = harness.serve()
    wait_answer(srv, owner, {a, b})
    text = harness.config.read_text()
    harness.config.write_text(text.replace("ttl = 20", "ttl = 20\nmax_answers = 0"))
    assert "max_answers = 0" in harness.config.read_text()
    cfg = ("-c", str(harness.config))
    done = harness.cli("drain", f"web/{a}", *cfg, check=False)
    assert done.returncode == 0, done.stderr
    assert "warning: the config has errors" in done.stderr and "max_answers" in done.stderr
    wait_answer(srv, owner, {b})
    done = harness.cli("reload", *cfg, check=False)
    assert done.returncode == 1 and "max_answers" in done.stderr, done.stderr
    assert "reload refused" in srv.log_text()
