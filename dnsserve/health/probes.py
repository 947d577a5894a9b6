"""Probes: one check of one address -> a raw result, never a verdict.

Owns how each kind of check talks to a backend (http/https through
``health.http11``: one GET on the monitor's own trio socket, its response head read;
tcp, dns, exec) and how its outcome is named ("HTTP 200", "HTTP 503", "body
mismatch", "connect refused", "timeout", "tls verify failed", "exit 1"). Runs
on trio, in the monitor thread.

Must not: decide UP/DOWN (the tracker does, from many results), apply its own
timeout (the monitor cancels a probe at ``CheckSpec.timeout`` and names that
"timeout"), construct TLS contexts (the caller injects the ``ssl.SSLContext``
of the spec's TLS settings, from ``health.tls``), or read configuration files
(the app converts config into ``CheckSpec``). A probe catches the errors a
backend can cause and returns them as failures; cancellation always
propagates.

An error of our own host (out of file descriptors, buffers or memory, or a
fork that failed: ``LOCAL_ERRNOS``) says nothing about the member: such a
check is returned with ``local_error`` set, and the monitor keeps the
member's state (``local_result``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import ssl
import subprocess
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import h11
import trio

from dnsserve.health import http11
from dnsserve.health.model import DEFAULT_PORTS, CheckKind

BODY_LIMIT = 64 * 1024  # bytes of an HTTP body searched, and of an exec check's stderr kept
DETAIL_LIMIT = 200      # characters of error detail kept in a result
# Errors of this host, not of the member: no descriptor, buffer or memory for the check.
LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Starting a command adds a fork that failed (EAGAIN: the process limit, or memory).
_LOCAL_EXEC_ERRNOS = LOCAL_ERRNOS | {errno.EAGAIN}


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
    tls_verify: bool = True              # TLS settings: health.tls builds one
    ca_file: str = ""                    # context per (tls_verify, ca_file)

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
    """One check's raw outcome. ``local_error``: the check could not run on this host
    (``LOCAL_ERRNOS``), so it is no verdict on the member (``ok`` is False)."""

    ok: bool
    reason: str
    detail: str = ""
    local_error: bool = False


TIMEOUT = ProbeResult(False, "timeout")


async def probe(
    spec: CheckSpec, address: str, *, tls: ssl.SSLContext | None = None
) -> ProbeResult:
    """Run one check of ``address``; never raises for what a backend does.

    An https check needs the TLS context of its spec injected (``tls``).
    """
    if spec.kind in (CheckKind.HTTP, CheckKind.HTTPS):
        if spec.kind is CheckKind.HTTPS and tls is None:
            raise ValueError("https probes need an injected ssl.SSLContext (health.tls)")
        return await probe_http(spec, address, tls)
    if spec.kind is CheckKind.TCP:
        return await probe_tcp(spec, address)
    if spec.kind is CheckKind.DNS:
        return await probe_dns(spec, address)
    return await probe_exec(spec, address)


async def probe_http(
    spec: CheckSpec, address: str, tls: ssl.SSLContext | None = None
) -> ProbeResult:
    """One GET of the spec's path: the status, then (if asked) a substring of the body.

    ``Host`` is the spec's host, else the address (and port, if not the
    default); TLS names the spec's host (SNI, and the name verified), else
    the address (verified against the certificate's IP addresses; no SNI).
    """
    port = spec.effective_port
    default = DEFAULT_PORTS[spec.kind]
    try:
        response = await http11.get(
            address, port,
            path=spec.path,
            host=spec.host or http11.host_header(address, port, default),
            tls=tls if spec.kind is CheckKind.HTTPS else None,
            server_hostname=spec.host or address,
            body_limit=BODY_LIMIT if spec.expect_body else 0,
            body_of=spec.expect_status,
        )
    except (OSError, trio.BrokenResourceError, h11.ProtocolError) as exc:
        return _failure(exc)
    status = response.status
    if status not in spec.expect_status:
        return ProbeResult(False, f"HTTP {status}")
    if spec.expect_body and spec.expect_body.encode() not in response.body:
        return ProbeResult(False, "body mismatch", _clip(repr(response.body[:80])))
    return ProbeResult(True, f"HTTP {status}")


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
    """Run the command; its exit status is the verdict, its last stderr line the detail.

    stdout goes to /dev/null; stderr is read as it comes and only its last
    ``BODY_LIMIT`` bytes are kept (``_read_tail``), so a command that writes
    without end costs no memory and changes no verdict.
    """
    env = dict(os.environ)
    env["DNSSERVE_ADDRESS"] = address
    env["DNSSERVE_PORT"] = str(spec.effective_port) if spec.effective_port else ""
    shell = isinstance(spec.command, str)
    run = functools.partial(
        trio.run_process,
        spec.command if shell else list(spec.command),
        shell=shell,
        env=env,
        stdin=b"",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
        # Its own session, so a cancel kills the command and its children.
        start_new_session=True,
        deliver_cancel=_kill_group,
    )
    process: trio.Process | None = None
    failed: OSError | None = None
    tail = b""
    try:
        async with trio.open_nursery() as nursery:
            process = await nursery.start(run)
            assert process.stderr is not None  # stderr=PIPE
            tail = await _read_tail(process.stderr)
    except* OSError as group:  # not found, not executable (trio groups what a nursery raises)
        failed = next((e for e in _chain(group) if isinstance(e, OSError)), None)
    if failed is not None and failed.errno in _LOCAL_EXEC_ERRNOS:
        return local_result(failed)
    if failed is not None or process is None or process.returncode is None:
        return ProbeResult(False, "exec failed", _clip(str(failed or "no exit status")))
    lines = tail.decode(errors="replace").strip().splitlines()
    detail = _clip(lines[-1]) if lines else ""
    code = process.returncode
    if code == 0:
        return ProbeResult(True, "exit 0", detail)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return ProbeResult(False, f"killed by {name}", detail)
    return ProbeResult(False, f"exit {code}", detail)


async def _read_tail(stream: trio.abc.ReceiveStream) -> bytes:
    """Read ``stream`` to its end, keeping only its last ``BODY_LIMIT`` bytes.

    At most twice the limit (and one chunk) is held at any time: the rest is
    dropped as it arrives.
    """
    tail = bytearray()
    async with stream:
        async for chunk in stream:
            tail += chunk
            if len(tail) > 2 * BODY_LIMIT:
                del tail[:-BODY_LIMIT]
    return bytes(tail[-BODY_LIMIT:])


async def _kill_group(process: trio.Process) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)


def local_result(exc: BaseException) -> ProbeResult:
    """The result of a check that could not run here, named by its error."""
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
    detail = _clip(f"{name or type(exc).__name__}: {exc}")
    return ProbeResult(False, "local error", detail, local_error=True)


def local_cause(exc: BaseException) -> BaseException | None:
    """The error of our own host in ``exc``'s chain (``LOCAL_ERRNOS``, MemoryError), if any."""
    for seen in _chain(exc):
        if isinstance(seen, MemoryError) or (
            isinstance(seen, OSError) and seen.errno in LOCAL_ERRNOS
        ):
            return seen
    return None


def _failure(exc: BaseException) -> ProbeResult:
    """Name a connection-level failure by the first OS or TLS error in its chain.

    An error of our own host anywhere in the chain wins: the check did not
    reach the member, so it is a local error, no verdict on it.
    """
    local = local_cause(exc)
    if local is not None:
        return local_result(local)
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
    kind = "connect error" if isinstance(exc, OSError) else "protocol error"
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
