"""The control API as a function: a parsed HTTP request in, a reply out (routes, auth, JSON).

Owns: the ``Api`` Protocol the app implements, ``ControlError``, the route
table ``ROUTES`` with its handlers, the bearer-token check, JSON in and out
(msgspec), and mapping every outcome to an HTTP status at one boundary
(``Router.handle``). Pure: no sockets, no clock, no files; ``control`` moves
the bytes and parses HTTP (h11), and hands a ``Request`` to ``Router.handle``.

Rules:
1. ``ROUTES`` is the whole API. A path that matches no route is 404; one
   that matches with another method is 405 with ``Allow``. HEAD is served
   wherever GET is (``control`` leaves out the body). ``{member}`` is
   ``MONITOR/ADDRESS`` written as is (``/api/v1/members/web/2001:db8::1/drain``)
   or with the slash as ``%2F``; each path segment is percent-decoded once.
2. POST needs ``Authorization: Bearer <token>``: none is 401 with
   ``WWW-Authenticate``, a wrong one 403 (``hmac.compare_digest``). GET is
   open to whoever can connect, so the address stays on loopback
   (``control_access.check_control_address``). Without ``allow_remote`` the
   ``Host`` header, when sent, must be an IP literal or ``localhost`` (else
   421): a web page cannot read the API through DNS rebinding.
3. Outcomes: ``ControlError`` -> its status with ``{"error", "detail"}``; a
   bad query parameter or body -> 400 naming it; anything else -> 500
   ``{"error": "internal error ..."}`` and the traceback in the log.
   ``handle`` never raises. Every POST is logged with peer and status (an
   audit trail); GETs are not (the status page polls).
4. The Api's synchronous methods run on the event loop: they must be quick
   (read the current snapshot, never wait on a lock); ``reload`` is awaited.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol, TypeVar

import msgspec

from dnsserve.errors import DnsServeError
from dnsserve.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from dnsserve.statuspage import CSP, Status, decode_status, render_fragment, render_page

log = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"
MAX_EVENTS = 1000

Doc = Mapping[str, Any] | msgspec.Struct
"""What the Api returns: a msgspec Struct or a plain mapping, encoded as JSON."""

OverrideKind = Literal["drain", "force-up"]


class ControlError(DnsServeError):
    """The Api refuses a request: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, *, detail: object = None) -> None:
        self.status = status
        self.message = message
        self.detail = detail
        super().__init__(message)


class Api(Protocol):
    """What the control endpoint asks of the running server (the app implements it).

    Synchronous methods run on the event loop, so they must be quick (read
    the current snapshot; no waiting on locks). ``reload`` may take seconds.
    Any of them may raise ``ControlError``.
    """

    def status(self) -> Doc:
        """The status document: ``statuspage.Status`` or its fields as a mapping."""
        ...

    def answer(self, name: str, qtype: str, what_if_down: Sequence[str]) -> Doc:
        """The live answer for (name, qtype) and why; as if the members named were down."""
        ...

    def events(self, since: float | None, member: str | None, limit: int) -> Sequence[Doc]:
        """Events after ``since`` (unix time), of ``member`` only if given, newest first."""
        ...

    def set_override(
        self, member: str, kind: OverrideKind, duration: float | None, reason: str, force: bool
    ) -> Doc:
        """Drain or force up ``member`` ("MONITOR/ADDRESS"), for ``duration`` s or until removed."""
        ...

    def clear_override(self, member: str) -> Doc:
        """Remove ``member``'s override: its checks decide again."""
        ...

    async def reload(self, force: bool) -> Doc:
        """Load zones and config again; refuse (ControlError) unless all is well or ``force``."""
        ...

    def refresh(self, zone: str) -> Doc:
        """Refresh the secondary zone ``zone`` now (as a NOTIFY would); 404 if it is none."""
        ...

    def metrics(self) -> str:
        """Prometheus text format 0.0.4 (``metrics.Registry.render``)."""
        ...

    def healthz(self) -> tuple[bool, Doc]:
        """(every zone loaded and every listener up, details)."""
        ...


def _host_allowed(host: bytes) -> bool:
    """Rule 2: an IP literal or localhost, with or without a port; or no Host at all.

    Browsers always send Host, so an HTTP/1.0 probe without one (HAProxy's
    default health check) is no rebinding attack.
    """
    text = host.decode("ascii", "replace").strip().lower()
    if not text:
        return True
    if text.startswith("["):
        name = text[1:].partition("]")[0]
    else:
        name = text.rpartition(":")[0] if text.count(":") == 1 else text
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# --- requests, replies and routes --------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One whole HTTP request, as ``control`` read it."""

    method: str
    path: str  # the target before "?", not yet percent-decoded
    query: str  # the target after "?"
    headers: Mapping[bytes, bytes]  # names lower-cased (h11); a repeated header: the last
    body: bytes
    peer: str  # "host:port", for the log
    params: Mapping[str, str] = field(default_factory=dict)  # from the route's pattern
    args: Mapping[str, list[str]] = field(default_factory=dict)  # the query, parsed


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


class _Error(msgspec.Struct, frozen=True, omit_defaults=True):
    error: str
    detail: Any = None


class OverrideBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST .../drain`` and ``.../force-up``; an empty body means all defaults."""

    duration: Annotated[float, msgspec.Meta(gt=0, le=10 * 366 * 86400)] | None = msgspec.field(
        default=None, name="for"
    )
    reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    force: bool = False


class ReloadBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    force: bool = False


class RefreshBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    zone: str = ""  # a secondary zone (required: "" is a 400)


_encoder = msgspec.json.Encoder()


def json_reply(status: int, doc: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, _encoder.encode(doc) + b"\n", JSON, headers)


def error_reply(status: int, message: str, detail: object = None) -> Reply:
    return json_reply(status, _Error(message, detail))


B = TypeVar("B", OverrideBody, ReloadBody, RefreshBody)


def _body(req: Request, kind: type[B]) -> B:
    if not req.body.strip():
        return kind()
    try:
        return msgspec.json.decode(req.body, type=kind)
    except msgspec.DecodeError as exc:  # ValidationError included: it names the field
        raise ControlError(400, f"bad request body: {exc}") from None


def _param(req: Request, name: str, default: str | None = None) -> str:
    """A query parameter given at most once; without ``default``, required."""
    values = req.args.get(name)
    if not values:
        if default is None:
            raise ControlError(400, f"query parameter {name!r} is required")
        return default
    if len(values) > 1:
        raise ControlError(400, f"query parameter {name!r} given {len(values)} times")
    return values[0]


def _number(req: Request, name: str, convert: Callable[[str], float]) -> float | None:
    """An optional numeric query parameter (None when absent)."""
    text = _param(req, name, "")
    if not text:
        return None
    try:
        value = convert(text)
    except ValueError:
        raise ControlError(400, f"query parameter {name}={text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ControlError(400, f"query parameter {name}={text!r} is not a finite number")
    return value


async def _status(api: Api, req: Request) -> Reply:
    return json_reply(200, api.status())


async def _answer(api: Api, req: Request) -> Reply:
    down = req.args.get("what_if_down", [])
    return json_reply(200, api.answer(_param(req, "name"), _param(req, "type", "A"), down))


async def _events(api: Api, req: Request) -> Reply:
    since = _number(req, "since", float)
    count = _number(req, "limit", int)
    limit = 100 if count is None else int(count)
    if not 1 <= limit <= MAX_EVENTS:
        raise ControlError(400, f"query parameter limit={limit}: must be 1 to {MAX_EVENTS}")
    member = _param(req, "member", "") or None
    return json_reply(200, {"events": list(api.events(since, member, limit))})


async def _override(api: Api, req: Request, kind: OverrideKind) -> Reply:
    body = _body(req, OverrideBody)
    result = api.set_override(req.params["member"], kind, body.duration, body.reason, body.force)
    return json_reply(200, result)


async def _drain(api: Api, req: Request) -> Reply:
    return await _override(api, req, "drain")


async def _force_up(api: Api, req: Request) -> Reply:
    return await _override(api, req, "force-up")


async def _undrain(api: Api, req: Request) -> Reply:
    return json_reply(200, api.clear_override(req.params["member"]))


async def _reload(api: Api, req: Request) -> Reply:
    body = _body(req, ReloadBody)
    return json_reply(200, await api.reload(body.force))


async def _refresh(api: Api, req: Request) -> Reply:
    body = _body(req, RefreshBody)
    if not body.zone:
        raise ControlError(400, "bad request body: zone is required")
    return json_reply(200, api.refresh(body.zone))


async def _metrics(api: Api, req: Request) -> Reply:
    return Reply(200, api.metrics().encode(), METRICS_CONTENT_TYPE)


async def _healthz(api: Api, req: Request) -> Reply:
    ok, detail = api.healthz()
    return json_reply(200 if ok else 503, detail)


def _html(render: Callable[[Status], str], api: Api) -> Reply:
    try:
        status = decode_status(msgspec.to_builtins(api.status()))
    except msgspec.ValidationError as exc:
        raise ControlError(500, f"the status document does not fit the page: {exc}") from None
    return Reply(200, render(status).encode(), HTML, (("content-security-policy", CSP),))


async def _page(api: Api, req: Request) -> Reply:
    return _html(render_page, api)


async def _fragment(api: Api, req: Request) -> Reply:
    return _html(render_fragment, api)


Handler = Callable[[Api, Request], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: str  # segments; "{member}" takes one or more (rule 1)
    handler: Handler
    mutates: bool = False  # needs the bearer token


_MEMBER = "/api/v1/members/{member}"
ROUTES: tuple[Route, ...] = (
    Route("GET", "/", _page),
    Route("GET", "/fragment", _fragment),
    Route("GET", "/healthz", _healthz),
    Route("GET", "/metrics", _metrics),
    Route("GET", "/api/v1/status", _status),
    Route("GET", "/api/v1/answer", _answer),
    Route("GET", "/api/v1/events", _events),
    Route("POST", f"{_MEMBER}/drain", _drain, mutates=True),
    Route("POST", f"{_MEMBER}/undrain", _undrain, mutates=True),
    Route("POST", f"{_MEMBER}/force-up", _force_up, mutates=True),
    Route("POST", "/api/v1/reload", _reload, mutates=True),
    Route("POST", "/api/v1/refresh", _refresh, mutates=True),
)


def match(pattern: str, path: str) -> dict[str, str] | None:
    """The parameters when ``path`` fits ``pattern``, else None (rule 1)."""
    want = pattern.split("/")
    try:
        got = [urllib.parse.unquote(s, errors="strict") for s in path.split("/")]
    except UnicodeDecodeError:
        return None
    if "{member}" not in want:
        return {} if got == want else None
    i = want.index("{member}")
    tail = len(want) - i - 1
    middle = got[i : len(got) - tail]
    if got[:i] != want[:i] or got[len(got) - tail :] != want[i + 1 :] or not middle:
        return None
    if not all(middle):
        return None
    return {"member": "/".join(middle)}


class Router:
    """Rules 1 to 3: a parsed request in, a reply out; never raises."""

    def __init__(self, api: Api, token: str, allow_remote: bool) -> None:
        self.api = api
        self.token = token.encode()
        self.allow_remote = allow_remote

    def _find(self, req: Request) -> tuple[Route, dict[str, str]] | Reply:
        method = "GET" if req.method == "HEAD" else req.method
        allowed: set[str] = set()
        for route in ROUTES:
            params = match(route.pattern, req.path)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.add(route.method)
        if not allowed:
            return error_reply(404, f"no such endpoint: {req.path}")
        allow = ", ".join(sorted(allowed | ({"HEAD"} if "GET" in allowed else set())))
        return json_reply(405, _Error(f"{req.method} not allowed here; use {allow}"),
                          (("allow", allow),))

    def _auth(self, req: Request) -> Reply | None:
        scheme, _, given = req.headers.get(b"authorization", b"").strip().partition(b" ")
        if scheme.lower() != b"bearer" or not given.strip():
            return json_reply(401, _Error("this needs Authorization: Bearer <token>"),
                              (("www-authenticate", 'Bearer realm="dnsserve"'),))
        if not hmac.compare_digest(given.strip(), self.token):
            return error_reply(403, "wrong token")
        return None

    async def handle(self, req: Request) -> Reply:
        try:
            reply = await self._handle(req)
        except ControlError as exc:
            reply = error_reply(exc.status, exc.message, exc.detail)
        except Exception:
            log.exception("control: %s %s failed", req.method, req.path)
            reply = error_reply(500, "internal error; the server log has the details")
        if req.method == "POST":  # mutations (and attempts) leave a trace
            log.info("control: %s %s from %s: %d", req.method, req.path, req.peer, reply.status)
        return reply

    async def _handle(self, req: Request) -> Reply:
        if not self.allow_remote and not _host_allowed(req.headers.get(b"host", b"")):
            return error_reply(421, "the Host header must be an IP address or localhost")
        found = self._find(req)
        if isinstance(found, Reply):
            return found
        route, params = found
        if route.mutates and (refused := self._auth(req)) is not None:
            return refused
        try:
            args = urllib.parse.parse_qs(req.query, keep_blank_values=True, max_num_fields=100)
        except ValueError as exc:
            return error_reply(400, f"bad query string: {exc}")
        req = dataclasses.replace(req, params=params, args=args)
        return await route.handler(self.api, req)
