"""Probes: one check of one address -> a raw result, never a verdict.

Owns how each kind of check talks to a backend (http/https, tcp, dns, exec) and
how its outcome is named ("HTTP 200", "HTTP 503", "body mismatch", "connect
refused", "timeout", "exit 1"). Runs on trio, in the monitor thread.

Must not: decide UP/DOWN (the tracker does, from many results), apply its own
timeout (the monitor cancels a probe at ``CheckSpec.timeout`` and names that
"timeout"), construct HTTP clients (the caller injects an ``httpx.AsyncClient``
built with the TLS settings of the spec), or read configuration files (the app
converts config into ``CheckSpec``). A probe catches the errors a backend can
cause and returns them as failures; cancellation always propagates.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import ssl
import subprocess
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import httpx
import trio

from dnsserve.health.model import DEFAULT_PORTS, CheckKind

BODY_LIMIT = 64 * 1024  # bytes of a response body searched for expect_body
DETAIL_LIMIT = 200      # characters of error detail kept in a result


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckSpec:
    """The parameters of one kind of check (a monitor's, without its schedule)."""

    kind: CheckKind
    port: int = 0                        # 0 = the kind's default (80, 443, 53)
    path: str = "/"
    host: str = ""                       # HTTP Host header and TLS SNI
    expect_status: tuple[int, ...] = (200,)
    expect_body: str = ""                # substring; "" = any body
    timeout: float = 1.0                 # applied by the monitor
    query_name: str = ""
    query_type: dns.rdatatype.RdataType = dns.rdatatype.RdataType.SOA
    expect_rcode: dns.rcode.Rcode = dns.rcode.Rcode.NOERROR
    expect_answer: bool = False
    command: tuple[str, ...] | str = ()  # argv, or a shell command line
    tls_verify: bool = True              # client settings: health.clients builds
    ca_file: str = ""                    # one client per (tls_verify, ca_file)

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.kind is CheckKind.TCP and not self.port:
            raise ValueError("a tcp check needs a port")
        if self.kind is CheckKind.DNS and not self.query_name:
            raise ValueError("a dns check needs a query_name")
        if self.kind is CheckKind.EXEC and not self.command:
            raise ValueError("an exec check needs a command")
        if self.kind in (CheckKind.HTTP, CheckKind.HTTPS) and not self.expect_status:
            raise ValueError("an http check needs at least one expected status")

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS.get(self.kind, 0)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    reason: str
    detail: str = ""


TIMEOUT = ProbeResult(False, "timeout")


async def probe(
    spec: CheckSpec, address: str, *, client: httpx.AsyncClient | None = None
) -> ProbeResult:
    """Run one check of ``address``; never raises for what a backend does."""
    if spec.kind in (CheckKind.HTTP, CheckKind.HTTPS):
        if client is None:
            raise ValueError("http and https probes need an injected httpx.AsyncClient")
        return await probe_http(spec, address, client)
    if spec.kind is CheckKind.TCP:
        return await probe_tcp(spec, address)
    if spec.kind is CheckKind.DNS:
        return await probe_dns(spec, address)
    return await probe_exec(spec, address)


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


async def probe_http(spec: CheckSpec, address: str, client: httpx.AsyncClient) -> ProbeResult:
    scheme = spec.kind.value
    url = f"{scheme}://{_hostport(address, spec.effective_port)}{spec.path}"
    headers = {"Host": spec.host} if spec.host else {}
    # The URL holds the member's address; the TLS handshake must name the host.
    extensions = {"sni_hostname": spec.host} if spec.kind is CheckKind.HTTPS and spec.host else {}
    try:
        async with client.stream("GET", url, headers=headers, extensions=extensions) as resp:
            status = resp.status_code
            if status not in spec.expect_status:
                return ProbeResult(False, f"HTTP {status}")
            if spec.expect_body:
                body = await _read_limited(resp)
                if spec.expect_body.encode() not in body:
                    return ProbeResult(False, "body mismatch", _clip(repr(body[:80])))
            return ProbeResult(True, f"HTTP {status}")
    except httpx.TimeoutException as exc:
        return ProbeResult(False, "timeout", _clip(repr(exc)))
    except httpx.HTTPError as exc:
        return _failure(exc)


async def _read_limited(resp: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in resp.aiter_bytes():
        body += chunk
        if len(body) >= BODY_LIMIT:
            break
    return bytes(body[:BODY_LIMIT])


async def probe_tcp(spec: CheckSpec, address: str) -> ProbeResult:
    try:
        stream = await trio.open_tcp_stream(address, spec.effective_port)
    except OSError as exc:
        return _failure(exc)
    await stream.aclose()
    return ProbeResult(True, "connected")


async def probe_dns(spec: CheckSpec, address: str) -> ProbeResult:
    query = dns.message.make_query(spec.query_name, spec.query_type)
    try:
        response = await _exchange_udp(query, address, spec.effective_port)
    except dns.exception.DNSException as exc:  # a reply that is not DNS, or not ours
        return ProbeResult(False, "bad response", _clip(repr(exc)))
    except OSError as exc:
        return _failure(exc)
    rcode = response.rcode()
    if rcode != spec.expect_rcode:
        return ProbeResult(False, f"rcode {dns.rcode.to_text(rcode)}")
    if spec.expect_answer and not response.answer:
        return ProbeResult(False, "empty answer", f"rcode {dns.rcode.to_text(rcode)}")
    return ProbeResult(True, f"rcode {dns.rcode.to_text(rcode)}")


async def _exchange_udp(
    query: dns.message.Message, address: str, port: int
) -> dns.message.Message:
    """One query over a connected UDP socket, so a closed port reports "refused"."""
    family = trio.socket.AF_INET6 if ":" in address else trio.socket.AF_INET
    with trio.socket.socket(family, trio.socket.SOCK_DGRAM) as sock:
        await sock.connect((address, port))
        await sock.send(query.to_wire())
        for _ in range(16):  # ignore a few strays: late replies to earlier checks
            reply = dns.message.from_wire(await sock.recv(65535))
            if query.is_response(reply):
                return reply
    raise dns.exception.DNSException("no reply matching the query")


async def probe_exec(spec: CheckSpec, address: str) -> ProbeResult:
    env = dict(os.environ)
    env["DNSSERVE_ADDRESS"] = address
    env["DNSSERVE_PORT"] = str(spec.effective_port) if spec.effective_port else ""
    shell = isinstance(spec.command, str)
    try:
        done = await trio.run_process(
            spec.command if shell else list(spec.command),
            shell=shell,
            env=env,
            stdin=b"",
            stdout=subprocess.DEVNULL,
            capture_stderr=True,
            check=False,
            # Its own session, so a cancel kills the command and its children.
            start_new_session=True,
            deliver_cancel=_kill_group,
        )
    except OSError as exc:  # not found, not executable
        return ProbeResult(False, "exec failed", _clip(str(exc)))
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    detail = _clip(lines[-1]) if lines else ""
    code = done.returncode
    if code == 0:
        return ProbeResult(True, "exit 0", detail)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return ProbeResult(False, f"killed by {name}", detail)
    return ProbeResult(False, f"exit {code}", detail)


async def _kill_group(process: trio.Process) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)


def _failure(exc: BaseException) -> ProbeResult:
    """Name a connection-level failure by the first OS or TLS error in its chain."""
    for seen in _chain(exc):
        if isinstance(seen, ssl.SSLCertVerificationError):
            return ProbeResult(False, "tls verify failed", _clip(seen.verify_message or str(seen)))
        if isinstance(seen, ssl.SSLError):
            return ProbeResult(False, "tls error", _clip(str(seen)))
        if isinstance(seen, ConnectionRefusedError) or (
            isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED
        ):
            return ProbeResult(False, "connect refused", _clip(str(seen)))
        if isinstance(seen, ConnectionResetError):
            return ProbeResult(False, "connection reset", _clip(str(seen)))
        if isinstance(seen, OSError) and seen.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return ProbeResult(False, "unreachable", _clip(str(seen)))
    kind = "connect error" if isinstance(exc, httpx.ConnectError | OSError) else "protocol error"
    return ProbeResult(False, kind, _clip(f"{type(exc).__name__}: {exc}"))


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and (for groups) its members, breadth first, bounded."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < 16:
        seen = todo.pop(0)
        found.append(seen)
        if isinstance(seen, BaseExceptionGroup):
            todo.extend(seen.exceptions)
        todo.extend(e for e in (seen.__cause__, seen.__context__) if e is not None)
    return found


def _clip(text: str) -> str:
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 3] + "..."
