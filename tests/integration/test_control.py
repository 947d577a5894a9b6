"""The control endpoint on loopback: control.start_control on a uvloop loop in a thread,
spoken to with httpx and, where httpx would hide the bytes, with a raw socket.

The Api here is ``FakeApi``, a small in-memory implementation written for these
tests: the real one (the app's, over the snapshot and the state file) is wired
in later; these tests pin what the endpoint does with whatever an Api returns.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import html.parser
import logging
import os
import re
import socket
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from dnsserve import control
from dnsserve.control import ControlError, ControlServer, TokenError
from dnsserve.control_routes import ROUTES, match
from dnsserve.metrics import Registry, server_metrics
from dnsserve.statuspage import (
    EventDoc,
    MemberDoc,
    OverrideDoc,
    PoolDoc,
    PoolMemberDoc,
    Status,
    ZoneDoc,
)
from testkit.loopthread import LoopThread

T = TypeVar("T")

TOKEN = "test-token-" + "x" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
NOW = 1_760_000_000.0


class FakeApi:
    """An in-memory Api: two members of one pool, overrides in a dict, canned events."""

    def __init__(self) -> None:
        self.members = {"web/127.0.0.11": "127.0.0.11", "web/2001:db8::1": "2001:db8::1"}
        self.overrides: dict[str, OverrideDoc] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.healthy = True
        self.zone_errors: list[str] = []
        self.hostile = False
        self.registry = Registry()
        self.stats = server_metrics(self.registry)

    def _effective(self, member: str) -> str:
        o = self.overrides.get(member)
        return "up" if o is None or o.kind == "force-up" else "down"

    def status(self) -> Status:
        reason = HOSTILE if self.hostile else "maintenance"
        members = tuple(
            MemberDoc(
                member=m, monitor="web", address=a, real="up", effective=self._effective(m),
                since=NOW - 300, reason="HTTP 200", checked=NOW - 1, ok=True, result="HTTP 200",
                latency=0.0042,
                override=msgspec.structs.replace(self.overrides[m], reason=reason)
                if m in self.overrides else None,
            )
            for m, a in self.members.items()
        )
        pool = PoolDoc(
            owner=(HOSTILE if self.hostile else "www.example.com."), type="A", monitor="web",
            policy="all", ttl=20,
            members=tuple(PoolMemberDoc(member=m, value=a) for m, a in self.members.items()),
            answer=tuple(a for m, a in self.members.items() if self._effective(m) == "up"),
        )
        return Status(
            now=NOW, version="0.1.0",
            zones=(ZoneDoc(name="example.com.", file="zones/example.com.zone", serial=2024010101,
                           records=12, loaded_at=NOW - 3600, result="loaded"),),
            pools=(pool,), members=members,
            events=(EventDoc(time=NOW - 60, member="web/127.0.0.11", from_state="down",
                             to_state="up", reason=HOSTILE if self.hostile else "HTTP 200"),),
        )

    def answer(self, name: str, qtype: str, what_if_down: Sequence[str]) -> dict[str, Any]:
        if name == "boom.example.com.":
            raise RuntimeError("a bug in the Api")
        if name != "www.example.com.":
            raise ControlError(404, f"{name} is in no served zone")
        up = [a for m, a in self.members.items()
              if m not in what_if_down and self._effective(m) == "up"]
        return {"name": name, "type": qtype, "answer": up, "what_if_down": list(what_if_down)}

    def events(self, since: float | None, member: str | None, limit: int) -> list[dict[str, Any]]:
        self.calls.append(("events", since, member, limit))
        return [{"time": NOW, "member": member or "web/127.0.0.11", "from_state": None,
                 "to_state": "up", "reason": "first check"}]

    def set_override(
        self, member: str, kind: str, duration: float | None, reason: str, force: bool
    ) -> dict[str, Any]:
        self.calls.append(("set_override", member, kind, duration, reason, force))
        if member not in self.members:
            raise ControlError(404, f"{member}: in no pool")
        others_up = [m for m in self.members if m != member and self._effective(m) == "up"]
        if kind == "drain" and not others_up and not force:
            raise ControlError(409, "that would drain the last member up; send force",
                               detail={"pool": "www.example.com. A"})
        until = NOW + duration if duration is not None else None
        self.overrides[member] = OverrideDoc(kind=kind, reason=reason, until=until, set_at=NOW)
        return {"member": member, "override": self.overrides[member],
                "effective": self._effective(member)}

    def clear_override(self, member: str) -> dict[str, Any]:
        self.calls.append(("clear_override", member))
        if member not in self.members:
            raise ControlError(404, f"{member}: in no pool")
        removed = self.overrides.pop(member, None) is not None
        return {"member": member, "removed": removed}

    async def reload(self, force: bool) -> dict[str, Any]:
        self.calls.append(("reload", force))
        await asyncio.sleep(0)  # a real reload awaits a worker thread
        if self.zone_errors and not force:
            raise ControlError(422, "reload refused: zone errors", detail=self.zone_errors)
        return {"accepted": True, "zones": 1}

    def refresh(self, zone: str) -> dict[str, Any]:
        self.calls.append(("refresh", zone))
        if zone != "example.org.":
            raise ControlError(404, f"{zone}: not a secondary zone")
        return {"zone": zone, "refresh": "started"}

    def metrics(self) -> str:
        self.stats.reloads.labels(result="accepted").set_total(1)
        return self.registry.render()

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        return self.healthy, {"zones_loaded": self.healthy, "listeners": ["127.0.0.1:5300"]}


API: control.Api = FakeApi()  # mypy checks that the fake has the Protocol's shape


class Running:
    def __init__(self, server: ControlServer, api: FakeApi, lt: LoopThread) -> None:
        self.server = server
        self.api = api
        self.lt = lt
        self.port = server.address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """close() on the loop's thread, as the app will call it."""

        async def on_loop() -> None:
            self.server.close()

        self.lt.run(on_loop())


Start = Callable[..., Running]


@pytest.fixture
def start() -> Iterator[Start]:
    lt = LoopThread()
    started: list[ControlServer] = []

    def _start(**kwargs: Any) -> Running:
        api = FakeApi()
        server = lt.run(control.start_control(api, "127.0.0.1", 0, TOKEN, **kwargs))
        started.append(server)
        return Running(server, api, lt)

    yield _start

    async def close(server: ControlServer) -> None:
        server.close()
        await server.wait_closed()

    for server in started:
        lt.run(close(server))
    lt.stop()


@pytest.fixture
def srv(start: Start) -> Running:
    return start()


@pytest.fixture
def client(srv: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10.0) as c:
        yield c


# --- raw HTTP, for what httpx would not send or would hide ---------------------


def raw_response(sock: socket.socket, buf: bytearray, *, head: bool = False) -> tuple[
    int, dict[str, str], bytes
]:
    """Read one response (status, headers, body) from ``sock``, keeping extra bytes in ``buf``."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a whole response head: {bytes(buf)!r}"
        buf += chunk
    head_bytes, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = 0 if head else int(headers.get("content-length", "0"))
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a body"
        body += chunk
    buf[:] = body[length:]
    return status, headers, bytes(body[:length])


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10.0)


def exchange(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(port) as sock:
        sock.sendall(data)
        return raw_response(sock, bytearray())


def closed_by_server(sock: socket.socket) -> bool:
    """Read until EOF (True), or until the socket's timeout (False)."""
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


# --- routes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/api/v1/status", "/api/v1/status", {}),
        ("/api/v1/status", "/api/v1/status/", None),
        ("/api/v1/status", "/api/v1/%73tatus", {}),
        ("/api/v1/members/{member}/drain", "/api/v1/members/web/127.0.0.11/drain",
         {"member": "web/127.0.0.11"}),
        ("/api/v1/members/{member}/drain", "/api/v1/members/web/2001:db8::1/drain",
         {"member": "web/2001:db8::1"}),
        ("/api/v1/members/{member}/drain", "/api/v1/members/web%2F2001%3Adb8%3A%3A1/drain",
         {"member": "web/2001:db8::1"}),
        ("/api/v1/members/{member}/drain", "/api/v1/members/drain", None),
        ("/api/v1/members/{member}/drain", "/api/v1/members//drain", None),
        ("/api/v1/members/{member}/drain", "/api/v1/members/web/1/undrain", None),
        ("/api/v1/members/{member}/drain", "/api/v1/members/%ff/drain", None),
    ],
)
def test_match(pattern: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(pattern, path) == expected


def test_every_post_route_needs_the_token() -> None:
    assert all(r.mutates == (r.method == "POST") for r in ROUTES)


# --- reads are open ----------------------------------------------------------------


def test_status(client: httpx.Client) -> None:
    r = client.get("/api/v1/status")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    doc = r.json()
    assert {"now", "zones", "pools", "members", "events"} <= set(doc)
    assert doc["zones"][0]["serial"] == 2024010101
    assert doc["pools"][0]["answer"] == ["127.0.0.11", "2001:db8::1"]
    member = doc["members"][0]
    assert {"member", "real", "effective", "since", "result", "latency", "override", "held"} \
        <= set(member)


def test_answer(client: httpx.Client) -> None:
    r = client.get("/api/v1/answer", params=[
        ("name", "www.example.com."), ("type", "A"),
        ("what_if_down", "web/127.0.0.11"), ("what_if_down", "web/x"),
    ])
    assert r.status_code == 200
    assert r.json() == {"name": "www.example.com.", "type": "A", "answer": ["2001:db8::1"],
                        "what_if_down": ["web/127.0.0.11", "web/x"]}
    assert client.get("/api/v1/answer", params={"name": "www.example.com."}).json()["type"] == "A"


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({}, 400, "'name' is required"),
        ({"name": ["a.", "b."]}, 400, "'name' given 2 times"),
        ({"name": "nowhere.test."}, 404, "nowhere.test. is in no served zone"),
    ],
)
def test_answer_refusals(client: httpx.Client, params: Any, status: int, error: str) -> None:
    r = client.get("/api/v1/answer", params=params)
    assert r.status_code == status
    assert error in r.json()["error"]


def test_events(srv: Running, client: httpx.Client) -> None:
    r = client.get("/api/v1/events", params={"since": "1760000000.5", "member": "web/1",
                                              "limit": "5"})
    assert r.status_code == 200
    assert r.json()["events"][0]["member"] == "web/1"
    assert client.get("/api/v1/events").status_code == 200
    assert srv.api.calls == [("events", 1760000000.5, "web/1", 5), ("events", None, None, 100)]


@pytest.mark.parametrize(
    "params", [{"since": "yesterday"}, {"since": "nan"}, {"limit": "0"}, {"limit": "1001"},
               {"limit": "1.5"}],
)
def test_events_bad_parameters(client: httpx.Client, params: dict[str, str]) -> None:
    r = client.get("/api/v1/events", params=params)
    assert r.status_code == 400
    assert "query parameter" in r.json()["error"]


def test_metrics(client: httpx.Client) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'dnsserve_reloads_total{result="accepted"} 1' in r.text.splitlines()
    sample = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+]?([0-9.e+-]+|Inf|NaN)')
    for line in r.text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or sample.fullmatch(line), line


def test_healthz(srv: Running, client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert (r.status_code, r.json()["zones_loaded"]) == (200, True)
    srv.api.healthy = False
    r = client.get("/healthz")
    assert (r.status_code, r.json()["zones_loaded"]) == (503, False)
    head = client.head("/healthz")
    assert (head.status_code, head.content) == (503, b"")
    assert int(head.headers["content-length"]) == len(r.content)


# --- mutations need the token ------------------------------------------------------

MUTATIONS = [
    "/api/v1/members/web/127.0.0.11/drain",
    "/api/v1/members/web/127.0.0.11/undrain",
    "/api/v1/members/web/127.0.0.11/force-up",
    "/api/v1/reload",
]


@pytest.mark.parametrize("path", MUTATIONS)
def test_token_required(srv: Running, client: httpx.Client, path: str) -> None:
    r = client.post(path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="dnsserve"'
    assert client.post(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.post(path, headers={"Authorization": "Bearer"}).status_code == 401
    wrong = client.post(path, headers={"Authorization": f"Bearer {TOKEN}x"})
    assert (wrong.status_code, wrong.json()) == (403, {"error": "wrong token"})
    assert srv.api.calls == []  # the Api was never asked
    assert client.post(path, headers=AUTH).status_code == 200
    assert client.post(path, headers={"authorization": f"bearer {TOKEN}"}).status_code == 200


def test_drain_force_up_undrain(srv: Running, client: httpx.Client) -> None:
    r = client.post("/api/v1/members/web/2001:db8::1/drain", headers=AUTH,
                    json={"for": 900, "reason": "kernel upgrade"})
    assert r.status_code == 200
    assert r.json()["effective"] == "down"
    assert r.json()["override"]["until"] == NOW + 900
    # the last member up: refused without force, with the Api's detail
    r = client.post("/api/v1/members/web%2F127.0.0.11/drain", headers=AUTH, json={})
    assert r.status_code == 409
    assert r.json() == {"error": "that would drain the last member up; send force",
                        "detail": {"pool": "www.example.com. A"}}
    r = client.post("/api/v1/members/web/127.0.0.11/drain", headers=AUTH,
                    json={"for": None, "force": True})
    assert r.status_code == 200
    r = client.post("/api/v1/members/web/127.0.0.11/force-up", headers=AUTH,
                    json={"reason": "checks are wrong"})
    assert r.json()["override"]["kind"] == "force-up"
    r = client.post("/api/v1/members/web/2001:db8::1/undrain", headers=AUTH)
    assert r.json() == {"member": "web/2001:db8::1", "removed": True}
    assert [c for c in srv.api.calls if c[0] == "set_override"] == [
        ("set_override", "web/2001:db8::1", "drain", 900.0, "kernel upgrade", False),
        ("set_override", "web/127.0.0.11", "drain", None, "", False),
        ("set_override", "web/127.0.0.11", "drain", None, "", True),
        ("set_override", "web/127.0.0.11", "force-up", None, "checks are wrong", False),
    ]
    r = client.post("/api/v1/members/web/192.0.2.9/drain", headers=AUTH)
    assert (r.status_code, r.json()["error"]) == (404, "web/192.0.2.9: in no pool")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"for": -5}', "Expected `float` > 0.0 - at `$.for`"),
        (b'{"for": 0}', "Expected `float` > 0.0 - at `$.for`"),
        (b'{"for": 1e999}', "Number out of range - at `$.for`"),
        (b'{"for": "15m"}', "Expected `float | null`, got `str` - at `$.for`"),
        (b'{"reason": "x", "until": 5}', "Object contains unknown field `until`"),
        (b"for=15m", "JSON is malformed: invalid character (byte 5)"),
        (b"[1]", "Expected `object`, got `array`"),
    ],
)
def test_bad_override_body(client: httpx.Client, body: bytes, error: str) -> None:
    r = client.post("/api/v1/members/web/127.0.0.11/drain", headers=AUTH, content=body)
    assert (r.status_code, r.json()) == (400, {"error": f"bad request body: {error}"})


def test_reload(srv: Running, client: httpx.Client) -> None:
    assert client.post("/api/v1/reload", headers=AUTH).json() == {"accepted": True, "zones": 1}
    srv.api.zone_errors = ["zones/example.com.zone:3: bad TTL"]
    r = client.post("/api/v1/reload", headers=AUTH, json={"force": False})
    assert r.status_code == 422
    assert r.json()["detail"] == ["zones/example.com.zone:3: bad TTL"]
    r = client.post("/api/v1/reload", headers=AUTH, json={"force": True})
    assert r.status_code == 200
    assert [c for c in srv.api.calls if c[0] == "reload"] == [
        ("reload", False), ("reload", False), ("reload", True)
    ]


def test_refresh(srv: Running, client: httpx.Client) -> None:
    assert client.post("/api/v1/refresh", json={"zone": "example.org."}).status_code == 401
    r = client.post("/api/v1/refresh", headers=AUTH, json={"zone": "example.org."})
    assert r.json() == {"zone": "example.org.", "refresh": "started"}
    assert client.post("/api/v1/refresh", headers=AUTH, json={"zone": "x."}).status_code == 404
    r = client.post("/api/v1/refresh", headers=AUTH)
    assert r.status_code == 400 and "zone is required" in r.json()["error"]
    assert [c for c in srv.api.calls if c[0] == "refresh"] == [
        ("refresh", "example.org."), ("refresh", "x.")]


def test_mutations_are_logged(client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dnsserve")
    client.post("/api/v1/reload", headers={"Authorization": "Bearer nope-nope-nope-nope"})
    client.get("/api/v1/status")
    lines = [r.getMessage() for r in caplog.records if r.name == "dnsserve.control_routes"]
    assert len(lines) == 1
    assert re.fullmatch(r"control: POST /api/v1/reload from 127\.0\.0\.1:\d+: 403", lines[0])
    assert TOKEN not in caplog.text


# --- HTTP: errors, limits, keep-alive ---------------------------------------------------


def test_not_found_and_method_not_allowed(client: httpx.Client) -> None:
    r = client.get("/api/v2/status")
    assert (r.status_code, r.json()) == (404, {"error": "no such endpoint: /api/v2/status"})
    r = client.post("/api/v1/status", headers=AUTH)
    assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD")
    r = client.get("/api/v1/reload")
    assert (r.status_code, r.headers["allow"]) == (405, "POST")
    assert client.delete("/api/v1/members/web/127.0.0.11/drain").status_code == 405


def test_an_api_bug_is_a_500_and_a_log_line(
    srv: Running, caplog: pytest.LogCaptureFixture
) -> None:
    with connect(srv.port) as sock:
        buf = bytearray()
        sock.sendall(b"GET /api/v1/answer?name=boom.example.com. HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"\r\n")
        status, headers, body = raw_response(sock, buf)
        assert status == 500
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert msgspec.json.decode(body) == {
            "error": "internal error; the server log has the details"}
        # the connection survives it
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert raw_response(sock, buf)[0] == 200
    failed = [r for r in caplog.records if r.getMessage().startswith("control: GET /api/v1/answer")]
    assert failed and failed[0].exc_info is not None
    assert srv.server.stats.errors == 1


def test_keep_alive_and_pipelining(srv: Running) -> None:
    with connect(srv.port) as sock:
        buf = bytearray()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert raw_response(sock, buf)[0] == 200
        sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _, body = raw_response(sock, buf)
        assert status == 200 and msgspec.json.decode(body)["now"] == NOW
        # two requests in one write: two answers, in order
        sock.sendall(b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                     b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert raw_response(sock, buf)[0] == 404
        status, headers, body = raw_response(sock, buf, head=True)
        assert (status, body, headers["connection"]) == (200, b"", "close")
        assert closed_by_server(sock)
    assert srv.server.stats.requests == 4


def test_oversized_body_is_413_before_it_is_read(srv: Running) -> None:
    status, headers, body = exchange(srv.port, (
        b"POST /api/v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 65537\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
    ))
    assert (status, headers["connection"]) == (413, "close")
    assert b"body over 65536 bytes" in body
    assert srv.api.calls == []


def test_oversized_chunked_body_is_413(srv: Running) -> None:
    chunk = b"8000\r\n" + b" " * 0x8000 + b"\r\n"
    status, _, _ = exchange(srv.port, (
        b"POST /api/v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n" + chunk * 3 + b"0\r\n\r\n"
    ))
    assert status == 413


def test_body_at_the_limit_is_read(start: Start) -> None:
    srv = start(max_body=100)
    body = b'{"force": true}' + b" " * 85
    status, _, _ = exchange(srv.port, (
        b"POST /api/v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n" + body
    ))
    assert status == 200
    assert srv.api.calls == [("reload", True)]


def test_oversized_head_is_431(srv: Running) -> None:
    status, _, _ = exchange(srv.port, (
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n"
    ))
    assert status == 431


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: 1\r\n\r\n",
    ],
    ids=["no request line", "no host", "bad content-length", "space in a header name"],
)
def test_malformed_request_is_400(srv: Running, request_bytes: bytes) -> None:
    with connect(srv.port) as sock:
        sock.sendall(request_bytes)
        status, headers, body = raw_response(sock, bytearray())
        assert (status, headers["connection"]) == (400, "close")
        assert msgspec.json.decode(body)["error"].startswith("bad request: ")
        assert closed_by_server(sock)


def test_idle_connection_is_closed(start: Start) -> None:
    srv = start(idle_timeout=0.2)
    with connect(srv.port) as sock:
        assert closed_by_server(sock)  # nothing sent: a quiet close
    with connect(srv.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the head never ends
        assert raw_response(sock, bytearray())[0] == 408
        assert closed_by_server(sock)


def test_connection_cap(start: Start) -> None:
    srv = start(max_connections=1)
    with connect(srv.port) as first:
        buf = bytearray()
        first.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert raw_response(first, buf)[0] == 200  # accepted, and kept open
        with connect(srv.port) as second:
            status, headers, _ = raw_response(second, bytearray())
            assert (status, headers["connection"]) == (503, "close")
        first.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert raw_response(first, buf)[0] == 200
    assert srv.server.stats.refused == 1


def test_close_ends_open_connections(start: Start) -> None:
    srv = start()
    with connect(srv.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert raw_response(sock, bytearray())[0] == 200
        srv.close()
        assert closed_by_server(sock)
    with pytest.raises(ConnectionRefusedError):
        connect(srv.port).close()


@pytest.mark.parametrize(
    ("host", "status"),
    [(b"127.0.0.1:8053", 200), (b"localhost:8053", 200), (b"[::1]:8053", 200),
     (b"LOCALHOST", 200), (b"attacker.example:8053", 421), (b"127.0.0.1.nip.io", 421)],
)
def test_host_header_guards_against_dns_rebinding(srv: Running, host: bytes, status: int) -> None:
    got, _, _ = exchange(srv.port, b"GET /api/v1/status HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert got == status


def test_no_host_header_is_allowed(srv: Running) -> None:
    """HTTP/1.0 health checks (HAProxy's default) send none; a browser always does."""
    got, _, _ = exchange(srv.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert got == 200


def test_any_host_header_with_allow_remote(start: Start) -> None:
    srv = start(allow_remote=True)
    got, _, _ = exchange(srv.port, b"GET /healthz HTTP/1.1\r\nHost: dns1.example\r\n\r\n")
    assert got == 200


# --- the address ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "allow_remote", "refused"),
    [
        ("127.0.0.1", False, False),
        ("127.0.0.53", False, False),
        ("::1", False, False),
        ("::ffff:127.0.0.1", False, False),
        ("0.0.0.0", False, True),
        ("::", False, True),
        ("192.0.2.1", False, True),
        ("192.0.2.1", True, False),
        ("localhost", False, True),
        ("localhost", True, True),
    ],
)
def test_check_control_address(host: str, allow_remote: bool, refused: bool) -> None:
    problem = control.check_control_address(host, allow_remote)
    assert (problem is not None) == refused, problem


def test_non_loopback_is_refused_before_binding() -> None:
    api = FakeApi()
    with pytest.raises(ValueError, match="control_allow_remote = true"):
        asyncio.run(control.start_control(api, "0.0.0.0", 0, TOKEN))


# --- the token file -----------------------------------------------------------------


def test_token_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = control.token_path(tmp_path / "dnsserve.db")
    assert path == tmp_path / "dnsserve.db.token"
    token = control.ensure_token(path)
    assert len(token) >= 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert control.ensure_token(path) == token
    assert control.read_token(path) == token


def test_token_file_created_under_a_loose_umask_is_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        control.ensure_token(tmp_path / "t.token")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t.token").stat().st_mode) == 0o600


def test_readable_token_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dnsserve.db.token"
    control.ensure_token(path)
    path.chmod(0o644)
    with pytest.raises(TokenError, match="mode 0644; other users could read it"):
        control.ensure_token(path)


def test_symlinked_token_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.token"
    control.ensure_token(real)
    link = tmp_path / "dnsserve.db.token"
    link.symlink_to(real)
    with pytest.raises(TokenError, match="cannot read the control token"):
        control.ensure_token(link)
    assert control.read_token(link) == control.read_token(real)  # a client may follow it


@pytest.mark.parametrize("text", ["", "short", "has spaces in it and is long", "x" * 600])
def test_token_file_without_a_token_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    with pytest.raises(TokenError, match="no valid token"):
        control.ensure_token(path)


def test_client_token_precedence(tmp_path: Path) -> None:
    state = tmp_path / "dnsserve.db"
    beside = control.ensure_token(control.token_path(state))
    other = tmp_path / "other.token"
    other.write_text("from-the-token-file-option\n")
    assert control.client_token(None, state, {}) == beside
    assert control.client_token(None, state, {"DNSSERVE_TOKEN": " from-env-1234567 "}) == \
        "from-env-1234567"
    assert control.client_token(other, state, {"DNSSERVE_TOKEN": "x" * 20}) == \
        "from-the-token-file-option"
    with pytest.raises(TokenError, match=r"missing\.token: cannot read"):
        control.client_token(tmp_path / "missing.token", state, {})


# --- the status page ----------------------------------------------------------------


def test_status_page(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    page = r.text
    assert page.startswith("<!DOCTYPE html>")
    for text in ("www.example.com.", "web/2001:db8::1", "2024010101", "HTTP 200", "4.2 ms"):
        assert text in page
    fragment = client.get("/fragment")
    assert fragment.status_code == 200
    assert fragment.text in page  # one renderer for both
    assert "<script>" not in fragment.text


def test_status_page_csp_allows_exactly_its_inline_script_and_style(client: httpx.Client) -> None:
    r = client.get("/")
    csp = r.headers["content-security-policy"]

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    script = re.search(r"<script>(.*?)</script>", r.text, re.S)
    style = re.search(r"<style>(.*?)</style>", r.text, re.S)
    assert script and style
    assert f"script-src {digest(script.group(1))};" in csp
    assert f"style-src {digest(style.group(1))};" in csp
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp


class Tags(html.parser.HTMLParser):
    """Every start tag and attribute name of a page, as a browser's tokenizer sees them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: set[str] = set()
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.update(name for name, _ in attrs)


def test_status_page_escapes_hostile_text(srv: Running, client: httpx.Client) -> None:
    client.post("/api/v1/members/web/127.0.0.11/drain", headers=AUTH, json={"reason": "x"})
    srv.api.hostile = True  # in the pool's owner, an override's reason and an event's reason
    for path, scripts in (("/", 1), ("/fragment", 0)):
        page = client.get(path).text
        parsed = Tags(page)
        assert parsed.tags.count("script") == scripts  # only the page's own
        assert "img" not in parsed.tags
        assert "onerror" not in parsed.attributes
        assert page.count(html.escape(HOSTILE)) == 3


def test_status_page_with_a_status_that_does_not_fit(
    srv: Running, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(srv.api, "status", lambda: {"zones": []})
    r = client.get("/")
    assert r.status_code == 500
    assert r.json()["error"] == (
        "the status document does not fit the page: Object missing required field `now`")
    assert client.get("/api/v1/status").json() == {"zones": []}  # the API passes it through
