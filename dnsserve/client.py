"""A client of the control API: one node's status, answers, events, overrides and reloads.

Owns the requests the CLI sends to a running server (paths, query
parameters, bodies, the bearer token) over httpx, the decoding of what comes
back into Structs that ignore fields they do not know (``statuspage``'s for
the status document, the explanation's below), and every failure as one
``ControlClientError``. One ``Client`` talks to one ``Node``; the CLI runs
one per node of a fleet. Must not: know the server's internals (app, store,
the engine), print, or decide exit codes: the CLI does.

Errors: one type, ``ControlClientError``, with ``status`` and ``detail``::

    status None     no HTTP answer: "no server answers at HOST:PORT (connection
                    refused)", a timeout, a reset; or no token for a mutation
    status 4xx/5xx  the server's {"error", "detail"}: 401/403 token, 404 unknown
                    member or name, 409 a drain that leaves a pool with nobody up,
                    422 a refused reload (the zone errors in ``detail``)
    status 200      an answer that is not what a dnsserve control API sends
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import msgspec

from dnsserve import __version__
from dnsserve.errors import DnsServeError
from dnsserve.statuspage import EventDoc, OverrideDoc, Status

T = TypeVar("T")

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
RELOAD_TIMEOUT = httpx.Timeout(120.0, connect=3.0)  # a reload loads every zone again


class ControlClientError(DnsServeError):
    """A request to a node's control API failed; ``status`` None: no HTTP answer at all."""

    def __init__(self, message: str, *, status: int | None = None, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Node:
    """One server's control API: ``url`` is http://ADDRESS:PORT; ``token`` for mutations."""

    url: str
    token: str | None = None
    name: str = ""  # how output names it; "" = the URL

    @property
    def label(self) -> str:
        return self.name or self.url

    @property
    def address(self) -> str:
        """HOST:PORT, as messages name it ("[::1]:8053" for IPv6)."""
        url = httpx.URL(self.url)
        host = f"[{url.host}]" if ":" in url.host else url.host
        return f"{host}:{url.port}" if url.port is not None else host


@dataclass(frozen=True, slots=True)
class Reply(Generic[T]):
    """A decoded answer (``doc``) and the JSON as the server sent it (``raw``: --format json)."""

    doc: T
    raw: Any


# --- what the CLI reads of the server's documents (unknown fields are ignored) --------


class MemberWhy(msgspec.Struct, frozen=True, kw_only=True):
    """A pool member in an answer's explanation."""

    member: str  # MONITOR/ADDRESS
    value: str = ""  # what the pool answers with it
    real: str = ""  # "up" | "down": its checks
    effective: str = ""  # with the override: what the selection used
    reason: str = ""
    override: OverrideDoc | None = None
    weight: int | None = None
    priority: int | None = None


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """A pool's selection: the live one, or the one with ``what_if_down`` members down."""

    owner: str = ""
    type: str = ""
    policy: str = ""
    when_all_down: str = ""
    all_down_rule_applied: bool = False
    reason: str = ""
    members: tuple[MemberWhy, ...] = ()
    answer: tuple[str, ...] = ()
    down: tuple[str, ...] = ()  # what_if_down: the members taken down


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/answer``: what a name answers now, and why."""

    name: str = ""
    type: str = ""
    rcode: str | int = ""
    answer: tuple[str, ...] = ()
    zone: str | None = None
    source: str = ""  # "static" | "pool" | "none"
    pool: Selection | None = None
    what_if_down: Selection | None = None


class OverrideResult(msgspec.Struct, frozen=True, kw_only=True):
    """``POST .../drain`` and ``.../force-up``."""

    member: str = ""
    override: OverrideDoc | None = None
    effective: str = ""


class Undrained(msgspec.Struct, frozen=True, kw_only=True):
    member: str = ""
    removed: bool | None = None


class _Events(msgspec.Struct, frozen=True):
    events: tuple[EventDoc, ...] = ()


class _Error(msgspec.Struct, frozen=True):
    error: str = ""
    detail: Any = None


def member_path(member: str, action: str) -> str:
    """``/api/v1/members/web%2F2001%3Adb8%3A%3A1/drain``: the member as one escaped segment."""
    return f"/api/v1/members/{urllib.parse.quote(member, safe='')}/{action}"


class Client:
    """Requests to one node; a context manager (closes its connections)."""

    def __init__(self, node: Node, *, transport: httpx.BaseTransport | None = None) -> None:
        self.node = node
        self._http = httpx.Client(
            base_url=node.url,
            timeout=TIMEOUT,
            transport=transport,
            trust_env=False,  # no proxy from the environment between us and the node
            headers={"user-agent": f"dnsserve-cli/{__version__}"},
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- reads --------------------------------------------------------------------

    def status(self) -> Reply[Status]:
        raw = self._get("/api/v1/status")
        return Reply(self._convert(raw, Status, "status document"), raw)

    def answer(
        self, name: str, qtype: str = "A", what_if_down: Sequence[str] = ()
    ) -> Reply[Explanation | None]:
        """The explanation; ``doc`` None when it has a shape this client cannot read."""
        params = [("name", name), ("type", qtype), *(("what_if_down", m) for m in what_if_down)]
        raw = self._get("/api/v1/answer", params)
        try:
            doc: Explanation | None = msgspec.convert(raw, Explanation)
        except msgspec.ValidationError:
            doc = None
        return Reply(doc, raw)

    def events(
        self, since: float | None = None, member: str | None = None, limit: int = 100
    ) -> Reply[tuple[EventDoc, ...]]:
        params: list[tuple[str, str]] = [("limit", str(limit))]
        if since is not None:
            params.append(("since", repr(since)))
        if member is not None:
            params.append(("member", member))
        raw = self._get("/api/v1/events", params)
        return Reply(self._convert(raw, _Events, "events").events, raw)

    def healthz(self) -> tuple[bool, Any]:
        """(healthy, the details): 503 is an answer here, not an error."""
        response = self._send("GET", "/healthz")
        if response.status_code not in (200, 503):
            raise self._error(response)
        return response.status_code == 200, self._json(response)

    # --- mutations (the bearer token) --------------------------------------------------

    def drain(
        self, member: str, *, duration: float | None = None, reason: str = "", force: bool = False
    ) -> Reply[OverrideResult]:
        body = {"for": duration, "reason": reason, "force": force}
        raw = self._post(member_path(member, "drain"), body)
        return Reply(self._convert(raw, OverrideResult, "drain result"), raw)

    def force_up(
        self, member: str, *, duration: float | None = None, reason: str = ""
    ) -> Reply[OverrideResult]:
        raw = self._post(member_path(member, "force-up"), {"for": duration, "reason": reason})
        return Reply(self._convert(raw, OverrideResult, "force-up result"), raw)

    def undrain(self, member: str) -> Reply[Undrained]:
        raw = self._post(member_path(member, "undrain"), None)
        return Reply(self._convert(raw, Undrained, "undrain result"), raw)

    def reload(self, *, force: bool = False) -> Reply[dict[str, Any]]:
        raw = self._post("/api/v1/reload", {"force": force}, timeout=RELOAD_TIMEOUT)
        return Reply(raw if isinstance(raw, dict) else {"result": raw}, raw)

    def refresh(self, zone: str) -> Reply[dict[str, Any]]:
        """Refresh a secondary zone now (its primaries are asked at once)."""
        raw = self._post("/api/v1/refresh", {"zone": zone})
        return Reply(raw if isinstance(raw, dict) else {"result": raw}, raw)

    # --- the one place requests are sent and failures mapped ----------------------------

    def _get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        return self._ok(self._send("GET", path, params=list(params)))

    def _post(
        self, path: str, body: dict[str, Any] | None, timeout: httpx.Timeout = TIMEOUT
    ) -> Any:
        if not self.node.token:
            raise ControlClientError(f"{self.node.address}: no control token to send")
        headers = {"authorization": f"Bearer {self.node.token}"}
        content = msgspec.json.encode(body) if body is not None else b""
        if body is not None:
            headers["content-type"] = "application/json"
        return self._ok(
            self._send("POST", path, headers=headers, content=content, timeout=timeout)
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        where = self.node.address
        try:
            return self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            why = "timed out" if isinstance(exc, httpx.ConnectTimeout) else _reason(exc)
            raise ControlClientError(f"no server answers at {where} ({why})") from None
        except httpx.TimeoutException:
            raise ControlClientError(f"the server at {where} did not answer in time") from None
        except httpx.TransportError as exc:
            raise ControlClientError(f"no answer from {where} ({_reason(exc)})") from None

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code != 200:
            raise self._error(response)
        return self._json(response)

    def _json(self, response: httpx.Response) -> Any:
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            raise ControlClientError(
                f"{self.node.address}: the answer is not JSON: is this a dnsserve control API?",
                status=response.status_code,
            ) from None

    def _error(self, response: httpx.Response) -> ControlClientError:
        status = response.status_code
        try:
            err = msgspec.json.decode(response.content, type=_Error)
        except msgspec.DecodeError:
            err = _Error()
        if err.error:
            return ControlClientError(err.error, status=status, detail=err.detail)
        text = response.text.strip().splitlines()
        first = text[0][:200] if text else response.reason_phrase
        return ControlClientError(f"HTTP {status}: {first}", status=status)

    def _convert(self, raw: Any, kind: type[T], what: str) -> T:
        try:
            return msgspec.convert(raw, kind)
        except msgspec.ValidationError as exc:
            raise ControlClientError(
                f"{self.node.address}: the {what} is not what this CLI reads: {exc}", status=200
            ) from None


def _reason(exc: httpx.TransportError) -> str:
    """'connection refused' from '[Errno 111] Connection refused'."""
    text = str(exc).strip() or type(exc).__name__
    return text.rpartition("] ")[2].lower() if "] " in text else text.lower()
