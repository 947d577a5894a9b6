"""The control API client over httpx.MockTransport: the requests it sends, answers, failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dnsserve.client import Client, ControlClientError, Node, member_path

URL = "http://127.0.0.1:8053"
TOKEN = "t" * 43

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, node: Node | None = None) -> Client:
    return Client(node or Node(URL, TOKEN), transport=httpx.MockTransport(handler))


def answering(status: int, body: Any, seen: list[httpx.Request] | None = None) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    return handle


STATUS = {
    "now": 1760000000.0, "version": "0.1.0", "future_field": {"x": 1},
    "pools": [{"owner": "www.example.com.", "type": "A", "monitor": "web", "policy": "all",
               "members": [{"member": "web/127.0.0.11", "value": "127.0.0.11"}],
               "answer": ["127.0.0.11"], "reason": "1 of 1 members up"}],
    "members": [{"member": "web/127.0.0.11", "monitor": "web", "address": "127.0.0.11",
                 "real": "up", "effective": "up", "since": 1759999000.0}],
}


def test_status_decodes_and_keeps_the_raw_json() -> None:
    seen: list[httpx.Request] = []
    with client(answering(200, STATUS, seen)) as c:
        reply = c.status()
    assert reply.doc.pools[0].answer == ("127.0.0.11",)
    assert reply.raw == STATUS  # unknown fields kept for --format json
    assert seen[0].url == httpx.URL(f"{URL}/api/v1/status")
    assert "authorization" not in seen[0].headers  # reads are open: no token sent


def test_answer_parameters_and_a_shape_it_cannot_read() -> None:
    seen: list[httpx.Request] = []
    body = {"name": "www.example.com.", "type": "A", "rcode": "NOERROR",
            "answer": ["127.0.0.11"], "source": "pool",
            "pool": {"policy": "all", "members": [{"member": "web/127.0.0.11", "real": "up"}]}}
    with client(answering(200, body, seen)) as c:
        reply = c.answer("www.example.com.", "AAAA", ["web/127.0.0.11", "web/::1"])
        assert reply.doc is not None and reply.doc.pool is not None
        assert reply.doc.pool.members[0].real == "up"
    assert seen[0].url.params.multi_items() == [
        ("name", "www.example.com."), ("type", "AAAA"),
        ("what_if_down", "web/127.0.0.11"), ("what_if_down", "web/::1"),
    ]
    odd = {"name": "www.example.com.", "what_if_down": ["web/127.0.0.11"]}
    with client(answering(200, odd)) as c:
        reply = c.answer("www.example.com.")
    assert (reply.doc, reply.raw) == (None, odd)  # the CLI shows the raw JSON then


def test_events_parameters() -> None:
    seen: list[httpx.Request] = []
    body = {"events": [{"time": 1.5, "member": "web/127.0.0.11", "monitor": "web",
                        "from_state": None, "to_state": "up", "reason": "HTTP 200"}]}
    with client(answering(200, body, seen)) as c:
        reply = c.events(since=1760000000.25, member="web/127.0.0.11", limit=5)
        c.events()
    assert reply.doc[0].to_state == "up"
    assert dict(seen[0].url.params) == {"since": "1760000000.25", "member": "web/127.0.0.11",
                                        "limit": "5"}
    assert dict(seen[1].url.params) == {"limit": "100"}


@pytest.mark.parametrize(
    ("member", "path"),
    [
        ("web/127.0.0.11", "/api/v1/members/web%2F127.0.0.11/drain"),
        ("web/2001:db8::1", "/api/v1/members/web%2F2001%3Adb8%3A%3A1/drain"),
    ],
)
def test_member_path(member: str, path: str) -> None:
    assert member_path(member, "drain") == path


def test_mutations_send_the_token_and_the_body() -> None:
    seen: list[httpx.Request] = []
    result = {"member": "web/127.0.0.11", "effective": "down",
              "override": {"kind": "drain", "reason": "kernel", "until": 900.0}}
    with client(answering(200, result, seen)) as c:
        reply = c.drain("web/127.0.0.11", duration=900.0, reason="kernel")
        c.drain("web/127.0.0.11", force=True)
        c.force_up("web/127.0.0.11", reason="checks wrong")
        c.reload(force=True)
    assert reply.doc.override is not None and reply.doc.override.kind == "drain"
    assert {r.headers["authorization"] for r in seen} == {f"Bearer {TOKEN}"}
    assert [(r.method, r.url.raw_path.decode(), json.loads(r.content)) for r in seen] == [
        ("POST", "/api/v1/members/web%2F127.0.0.11/drain",
         {"for": 900.0, "reason": "kernel", "force": False}),
        ("POST", "/api/v1/members/web%2F127.0.0.11/drain",
         {"for": None, "reason": "", "force": True}),
        ("POST", "/api/v1/members/web%2F127.0.0.11/force-up",
         {"for": None, "reason": "checks wrong"}),
        ("POST", "/api/v1/reload", {"force": True}),
    ]


def test_undrain_sends_no_body() -> None:
    seen: list[httpx.Request] = []
    with client(answering(200, {"member": "web/127.0.0.11", "removed": True}, seen)) as c:
        assert c.undrain("web/127.0.0.11").doc.removed is True
    assert seen[0].content == b""


def test_a_mutation_without_a_token_is_not_sent() -> None:
    seen: list[httpx.Request] = []
    tokenless = client(answering(200, {}, seen), Node(URL))
    with tokenless as c, pytest.raises(ControlClientError) as info:
        c.reload()
    assert (info.value.status, seen) == (None, [])
    assert "no control token" in info.value.message


@pytest.mark.parametrize(
    ("status", "body", "message", "detail"),
    [
        (409, {"error": "would leave www.example.com. A with no member up",
               "detail": {"would_serve": ["127.0.0.11"]}},
         "would leave www.example.com. A with no member up", {"would_serve": ["127.0.0.11"]}),
        (422, {"error": "reload refused", "detail": ["zones/x.zone:3: bad TTL"]},
         "reload refused", ["zones/x.zone:3: bad TTL"]),
        (403, {"error": "wrong token"}, "wrong token", None),
    ],
)
def test_server_errors_carry_status_and_detail(
    status: int, body: Any, message: str, detail: object
) -> None:
    with client(answering(status, body)) as c, pytest.raises(ControlClientError) as info:
        c.drain("web/127.0.0.11")
    assert (info.value.status, info.value.message, info.value.detail) == (status, message, detail)


def test_an_answer_that_is_not_the_api() -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>\nmore")

    with client(html) as c, pytest.raises(ControlClientError) as info:
        c.status()
    assert (info.value.status, info.value.message) == (502, "HTTP 502: <html>Bad Gateway</html>")

    def text(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="hello")

    with client(text) as c, pytest.raises(ControlClientError) as info:
        c.status()
    assert "not JSON: is this a dnsserve control API?" in info.value.message
    with client(answering(200, {"zones": []})) as c, pytest.raises(ControlClientError) as info:
        c.status()
    assert "the status document is not what this CLI reads" in info.value.message


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"),
         "no server answers at [::1]:8053 (connection refused)"),
        (httpx.ConnectTimeout("timed out"), "no server answers at [::1]:8053 (timed out)"),
        (httpx.ReadTimeout("timed out"), "the server at [::1]:8053 did not answer in time"),
        (httpx.RemoteProtocolError("Server disconnected"),
         "no answer from [::1]:8053 (server disconnected)"),
    ],
)
def test_no_server(exc: Exception, message: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    with client(fail, Node("http://[::1]:8053")) as c, pytest.raises(ControlClientError) as info:
        c.status()
    assert (info.value.status, info.value.message) == (None, message)


def test_healthz_503_is_an_answer() -> None:
    with client(answering(503, {"zones_loaded": False})) as c:
        assert c.healthz() == (False, {"zones_loaded": False})
    with client(answering(200, {"zones_loaded": True})) as c:
        assert c.healthz() == (True, {"zones_loaded": True})


def test_node_label_and_address() -> None:
    assert Node(URL).label == URL
    assert Node(URL, name="ns1").label == "ns1"
    assert Node(URL).address == "127.0.0.1:8053"
    assert Node("http://[2001:db8::1]:8053").address == "[2001:db8::1]:8053"
