"""Probes against real backends on loopback: HTTP(S) servers, TCP ports, a UDP DNS
responder and real commands. The timeout is applied here as the monitor applies it.

That an https probe needs its injected TLS context is tested without a
backend, in tests/unit/test_probes_tls.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trio

from dnsserve.health import probes
from dnsserve.health.probes import TIMEOUT, CheckKind, CheckSpec, ProbeResult, probe
from dnsserve.health.tls import TlsContexts
from testkit.backends import HttpBackend, Mode
from testkit.ports import free_port
from testkit.wait import wait_for

CERT_HOST = "health.example.test"
# Paths the probes ask for; any other path gets Mode.NOT_FOUND (404).
ROUTES = {"/ok": Mode.OK, "/down": Mode.ERROR, "/wrong": Mode.WRONG_BODY, "/hang": Mode.HANG}


@pytest.fixture
def http_backend() -> Iterator[HttpBackend]:
    with HttpBackend("127.0.0.21", 0, Mode.NOT_FOUND, routes=ROUTES) as backend:
        yield backend


def check(spec: CheckSpec, address: str) -> ProbeResult:
    """One check with the monitor's TLS context and its timeout rule."""

    async def main() -> ProbeResult:
        tls = TlsContexts().for_spec(spec)
        with trio.move_on_after(spec.timeout):
            return await probe(spec, address, tls=tls)
        return TIMEOUT

    return trio.run(main)


def http(port: int, path: str, **kw: object) -> CheckSpec:
    return CheckSpec(kind=CheckKind.HTTP, port=port, path=path, timeout=2.0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "extra", "expected"),
    [
        ("/ok", {}, ProbeResult(True, "HTTP 200")),
        ("/ok", {"expect_body": "ok"}, ProbeResult(True, "HTTP 200")),
        ("/down", {}, ProbeResult(False, "HTTP 503")),
        ("/down", {"expect_status": (200, 503)}, ProbeResult(True, "HTTP 503")),
        ("/missing", {}, ProbeResult(False, "HTTP 404")),
    ],
)
def test_http_status(
    http_backend: HttpBackend, path: str, extra: dict, expected: ProbeResult
) -> None:
    assert check(http(http_backend.port, path, **extra), "127.0.0.21") == expected


def test_http_body_mismatch(http_backend: HttpBackend) -> None:
    result = check(http(http_backend.port, "/wrong", expect_body="ok"), "127.0.0.21")
    assert (result.ok, result.reason) == (False, "body mismatch")
    assert "maintenance page" in result.detail


def test_http_hanging_response_is_a_timeout(http_backend: HttpBackend) -> None:
    spec = CheckSpec(kind=CheckKind.HTTP, port=http_backend.port, path="/hang", timeout=0.3)
    assert check(spec, "127.0.0.21") == TIMEOUT


def test_http_sends_the_host_header(http_backend: HttpBackend) -> None:
    check(http(http_backend.port, "/ok", host="www.example.com"), "127.0.0.21")
    check(http(http_backend.port, "/ok"), "127.0.0.21")
    assert http_backend.hosts == ["www.example.com", f"127.0.0.21:{http_backend.port}"]


def test_http_stopped_backend_refuses() -> None:
    port = free_port("127.0.0.21")
    result = check(http(port, "/ok"), "127.0.0.21")
    assert (result.ok, result.reason) == (False, "connect refused")


# -- what the server sends, byte for byte -----------------------------------


class Canned:
    """A TCP server on 127.0.0.26 that answers each connection with fixed bytes.

    ``hold``: after sending, keep the connection open (until stop) instead of
    closing it. ``requests`` keeps the raw request head of each connection.
    """

    def __init__(self, response: bytes, *, hold: bool = False) -> None:
        self.response, self.hold = response, hold
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.26", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve)
        self.thread.start()

    def serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2.0)
                head = b""
                for _ in range(64):  # a request head is a few hundred bytes
                    chunk = conn.recv(4096)
                    head += chunk
                    if not chunk or b"\r\n\r\n" in head:
                        break
                self.requests.append(head)
                conn.sendall(self.response)
                if self.hold:
                    self.done.wait(10)

    def __enter__(self) -> Canned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(15)
        self.listener.close()


CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nall\r\n4\r\n ok \r\n5\r\nhere.\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    ("response", "extra", "expected"),
    [
        (CHUNKED, {"expect_body": "l ok h"}, ProbeResult(True, "HTTP 200")),
        # No length: the body ends when the server closes (HTTP/1.0).
        (b"HTTP/1.0 200 OK\r\n\r\nstatus: ok", {"expect_body": "ok"},
         ProbeResult(True, "HTTP 200")),
        # A redirect is not followed: its status is the result.
        (b"HTTP/1.1 301 Moved\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n", {},
         ProbeResult(False, "HTTP 301")),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
         {"expect_status": (204,)}, ProbeResult(True, "HTTP 204")),
        # The body after an informational response (read from the first byte).
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nall ok",
         {"expect_body": "ok"}, ProbeResult(True, "HTTP 200")),
        # Header lines are not parsed for a status-only check.
        (b"HTTP/1.1 200 OK\r\nX-Odd: \x01\r\n\r\n", {}, ProbeResult(True, "HTTP 200")),
    ],
)
def test_http_response_forms(response: bytes, extra: dict, expected: ProbeResult) -> None:
    with Canned(response) as server:
        assert check(http(server.port, "/ok", **extra), "127.0.0.26") == expected


def test_http_request_is_one_get_that_closes() -> None:
    with Canned(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") as server:
        assert check(http(server.port, "/health?x=1", host="www.example.com"), "127.0.0.26").ok
    head = server.requests[0].decode()
    assert head.startswith("GET /health?x=1 HTTP/1.1\r\n")
    lines = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip()
             for line in head.split("\r\n")[1:] if ":" in line}
    assert lines["host"] == "www.example.com"
    assert lines["connection"] == "close"
    assert "accept-encoding" not in lines  # the body is searched as sent


def test_http_body_is_searched_within_the_limit() -> None:
    big = b"x" * probes.BODY_LIMIT
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%sok" % (len(big) + 2, big)
    with Canned(response) as server:
        result = check(http(server.port, "/ok", expect_body="ok"), "127.0.0.26")
    assert (result.ok, result.reason) == (False, "body mismatch")


def test_http_wrong_status_does_not_wait_for_the_body() -> None:
    # The status fails the check: the body that never ends is not read.
    head = b"HTTP/1.1 503 Unavailable\r\nContent-Length: 1000\r\n\r\npartial"
    with Canned(head, hold=True) as server:
        spec = http(server.port, "/ok", expect_body="ok")
        assert check(spec, "127.0.0.26") == ProbeResult(False, "HTTP 503")


@pytest.mark.parametrize("response", [b"", b"HTTP/1.1 200 OK\r\nContent-Le", b"SSH-2.0-x\r\n\r\n"])
def test_http_no_valid_response_is_a_protocol_error(response: bytes) -> None:
    with Canned(response) as server:
        result = check(http(server.port, "/ok"), "127.0.0.26")
    assert (result.ok, result.reason) == (False, "protocol error")


def test_http_body_shorter_than_its_length_is_a_protocol_error() -> None:
    with Canned(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok") as server:
        result = check(http(server.port, "/ok", expect_body="ok"), "127.0.0.26")
    assert (result.ok, result.reason) == (False, "protocol error")


def test_http_connect_that_never_completes_is_a_timeout() -> None:
    # A listener that accepts nothing, its queue full: the kernel drops the
    # check's SYN, the handshake never ends, and the request waits for it.
    with socket.create_server(("127.0.0.26", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):  # more than the queue holds
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.26", port))
                fillers.append(filler)
            spec = CheckSpec(kind=CheckKind.HTTP, port=port, path="/ok", timeout=0.3)
            assert check(spec, "127.0.0.26") == TIMEOUT
        finally:
            for filler in fillers:
                filler.close()


def test_http_over_ipv6_names_the_address_in_host() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("::1 not configured")
    with listener:
        port = listener.getsockname()[1]
        listener.settimeout(5.0)

        def answer() -> bytes:
            conn, _ = listener.accept()
            with conn:
                head = conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            return head

        seen: list[bytes] = []
        thread = threading.Thread(target=lambda: seen.append(answer()))
        thread.start()
        result = check(http(port, "/ok"), "::1")
        thread.join(10)
    assert result == ProbeResult(True, "HTTP 200")
    assert f"Host: [::1]:{port}\r\n".encode() in seen[0]


# -- https ----------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2",
         "-subj", f"/CN={CERT_HOST}", "-addext", f"subjectAltName=DNS:{CERT_HOST}"],
        check=True, capture_output=True, timeout=30,
    )
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def https_backend(cert: tuple[Path, Path]) -> Iterator[HttpBackend]:
    with HttpBackend("127.0.0.25", 0, Mode.NOT_FOUND, routes=ROUTES, cert=cert) as backend:
        yield backend


def https(port: int, **kw: object) -> CheckSpec:
    return CheckSpec(kind=CheckKind.HTTPS, port=port, path="/ok", timeout=2.0, **kw)  # type: ignore[arg-type]


def test_https_verifies_by_default(https_backend: HttpBackend) -> None:
    result = check(https(https_backend.port, host=CERT_HOST), "127.0.0.25")
    assert (result.ok, result.reason) == (False, "tls verify failed")


def test_https_without_verification_passes(https_backend: HttpBackend) -> None:
    result = check(https(https_backend.port, host=CERT_HOST, tls_verify=False), "127.0.0.25")
    assert result == ProbeResult(True, "HTTP 200")


def test_https_ca_file_and_sni(https_backend: HttpBackend, cert: tuple[Path, Path]) -> None:
    backend = https_backend
    spec = https(backend.port, host=CERT_HOST, ca_file=str(cert[0]))
    assert check(spec, "127.0.0.25") == ProbeResult(True, "HTTP 200")
    assert backend.sni == [CERT_HOST]
    assert backend.hosts == [CERT_HOST]
    # Without a host name the handshake names the address, which the cert does not.
    result = check(https(backend.port, ca_file=str(cert[0])), "127.0.0.25")
    assert (result.ok, result.reason) == (False, "tls verify failed")
    assert backend.sni == [CERT_HOST, None]


# -- tcp ------------------------------------------------------------------


def test_tcp_open_port_passes_closed_port_refuses() -> None:
    with socket.create_server(("127.0.0.22", 0)) as listener:
        port = listener.getsockname()[1]
        ok = check(CheckSpec(kind=CheckKind.TCP, port=port, timeout=1.0), "127.0.0.22")
    closed = check(CheckSpec(kind=CheckKind.TCP, port=port, timeout=1.0), "127.0.0.22")
    assert ok == ProbeResult(True, "connected")
    assert (closed.ok, closed.reason) == (False, "connect refused")


def test_tcp_over_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("::1 not configured")
    with listener:
        spec = CheckSpec(kind=CheckKind.TCP, port=listener.getsockname()[1], timeout=1.0)
        assert check(spec, "::1") == ProbeResult(True, "connected")


# -- dns ------------------------------------------------------------------


class Responder:
    """A tiny UDP DNS responder: ok.test. has an A record, empty.test. none,
    drop.test. gets no reply, every other name NXDOMAIN."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve)
        self.thread.start()

    def serve(self) -> None:
        while not self.done.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            name = query.question[0].name.to_text()
            if name == "drop.test.":
                continue
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.AA
            if name == "ok.test.":
                reply.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "127.0.0.1"))
            elif name != "empty.test.":
                reply.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(reply.to_wire(), peer)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def responder() -> Iterator[Responder]:
    r = Responder("127.0.0.23")
    yield r
    r.stop()


def dns_spec(port: int, name: str, **kw: object) -> CheckSpec:
    return CheckSpec(kind=CheckKind.DNS, port=port, query_name=name, query_type=dns.rdatatype.A,
                     timeout=1.0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "extra", "expected"),
    [
        ("ok.test.", {"expect_answer": True}, ProbeResult(True, "rcode NOERROR")),
        ("empty.test.", {}, ProbeResult(True, "rcode NOERROR")),
        ("empty.test.", {"expect_answer": True},
         ProbeResult(False, "empty answer", "rcode NOERROR")),
        ("nx.test.", {}, ProbeResult(False, "rcode NXDOMAIN")),
        ("nx.test.", {"expect_rcode": dns.rcode.NXDOMAIN}, ProbeResult(True, "rcode NXDOMAIN")),
    ],
)
def test_dns(responder: Responder, name: str, extra: dict, expected: ProbeResult) -> None:
    assert check(dns_spec(responder.port, name, **extra), "127.0.0.23") == expected


def test_dns_no_reply_is_a_timeout(responder: Responder) -> None:
    spec = CheckSpec(kind=CheckKind.DNS, port=responder.port, query_name="drop.test.", timeout=0.3)
    assert check(spec, "127.0.0.23") == TIMEOUT


def test_dns_closed_port_refuses() -> None:
    result = check(dns_spec(free_port("127.0.0.23"), "ok.test."), "127.0.0.23")
    assert (result.ok, result.reason) == (False, "connect refused")


# -- exec -----------------------------------------------------------------


def run_exec(command: tuple[str, ...] | str, timeout: float = 5.0, port: int = 8080) -> ProbeResult:
    return check(CheckSpec(kind=CheckKind.EXEC, command=command, port=port, timeout=timeout),
                 "127.0.0.24")


def test_exec_exit_status() -> None:
    assert run_exec(("true",)) == ProbeResult(True, "exit 0")
    assert run_exec(("false",)) == ProbeResult(False, "exit 1")
    assert run_exec("echo boom >&2; exit 3") == ProbeResult(False, "exit 3", "boom")


def test_exec_gets_the_member_address() -> None:
    script = 'test "$DNSSERVE_ADDRESS" = 127.0.0.24 && test "$DNSSERVE_PORT" = 8443'
    assert run_exec(script, port=8443).ok
    assert not run_exec(script, port=8080).ok


def test_exec_missing_command() -> None:
    result = run_exec(("/nonexistent/dnsserve-check",))
    assert (result.ok, result.reason) == (False, "exec failed")


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever adopted it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize(
    "script",
    [
        "echo $$ > {pidfile}; exec sleep 10",  # the command itself
        "sleep 10 & echo $! > {pidfile}; wait",  # a child of the command
    ],
)
def test_exec_killed_at_the_timeout(tmp_path: Path, script: str) -> None:
    pidfile = tmp_path / "pid"
    result = run_exec(script.format(pidfile=pidfile), timeout=0.5)
    assert result == TIMEOUT
    pid = int(pidfile.read_text())
    try:
        wait_for(f"the probe's process {pid} to end", lambda: _dead(pid), seconds=5)
    finally:
        if not _dead(pid):  # clean up before failing
            os.kill(pid, 9)


# Issue "Survive faults" 6: an exec check's stderr was read whole into memory (a check
# writing 300 MB to stderr took the server to 921 MB). The probe now keeps the last
# BODY_LIMIT bytes and drops the rest as it reads; the verdict does not change. Measured in
# a child process (ru_maxrss is a process's high-water mark): a memory bound, not timing.
GROWTH = """
import json, resource, sys, trio
from dnsserve.health.probes import CheckKind, CheckSpec, probe_exec
def run(command):
    spec = CheckSpec(kind=CheckKind.EXEC, command=command, timeout=60.0)
    return trio.run(probe_exec, spec, "127.0.0.24")
run("echo warm-up >&2")  # imports, trio's first run and the first fork are not the probe's
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = run(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"ok": result.ok, "reason": result.reason, "detail": result.detail,
                  "growth_mib": (after - before) / 1024}))
"""


def test_exec_stderr_flood_keeps_the_verdict_and_bounded_memory() -> None:
    flood = "head -c 52428800 /dev/zero | tr '\\0' e >&2; echo >&2; echo all good >&2"  # 50 MiB
    done = subprocess.run([sys.executable, "-c", GROWTH, flood], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["growth_mib"] < 64, got
    assert (got["ok"], got["reason"], got["detail"]) == (True, "exit 0", "all good")
