"""dnsserve as a subprocess on loopback: started on a free port, stopped by PID.

Owns ``start_server`` (``python -m dnsserve serve`` on a random loopback port,
waiting until it answers), ``ServerProc`` (the handle: queries over UDP and
TCP, the log, ``stop()``) and the readiness checks shared with the peers
(``serves_zone``: an authoritative SOA answer for a zone).

Must not: listen or send anywhere but loopback, or leave the process running
after ``stop()`` (SIGTERM, then SIGKILL after a bounded wait).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode

from testkit import SHIPPED_ZONES
from testkit.ports import free_port
from testkit.wait import MAX_POLLS, POLL, wait_for

READY_SECONDS = 30.0  # generous: a loaded 2-core CI machine starts slowly


@dataclass
class ServerProc:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path
    control: str = ""  # the control API's ADDR:PORT ("" when off, or from a config)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def udp(self, q: dns.message.Message, timeout: float = 2.0) -> dns.message.Message:
        return dns.query.udp(q, self.host, port=self.port, timeout=timeout)

    def tcp(self, q: dns.message.Message, timeout: float = 2.0) -> dns.message.Message:
        return dns.query.tcp(q, self.host, port=self.port, timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        """The PIDs of the server's answering workers: its child processes, less
        multiprocessing's (the process loading zones on a reload, its resource tracker)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            pids = [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []
        return [pid for pid in pids if b"multiprocessing" not in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def answers(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when the server at ``host:port`` answers a query at all (any rcode)."""
    q = dns.message.make_query("version.invalid.", "SOA")
    # any DNS error (a stray datagram, an unexpected source) is "not yet", not a failure
    with contextlib.suppress(OSError, dns.exception.DNSException):
        dns.query.udp(q, host, port=port, timeout=timeout)
        return True
    return False


def serves_zone(host: str, port: int, origin: str, timeout: float = 0.3) -> bool:
    """True when ``origin``'s SOA is answered with NOERROR, AA and the record."""
    q = dns.message.make_query(origin, "SOA")
    q.flags &= ~dns.flags.RD
    with contextlib.suppress(OSError, dns.exception.DNSException):
        r = dns.query.udp(q, host, port=port, timeout=timeout)
        return r.rcode() == dns.rcode.NOERROR and bool(r.flags & dns.flags.AA) and bool(r.answer)
    return False


def running(proc: subprocess.Popen[bytes], name: str = "server") -> None:
    """Raise when ``proc`` has exited: a wait for it to answer would be in vain."""
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited early with {proc.returncode}")


def wait_ready(host: str, port: int, proc: subprocess.Popen[bytes],
               seconds: float = READY_SECONDS) -> None:
    """Poll with a query until the server answers anything (bounded in time)."""
    def answered() -> bool:
        running(proc)
        return answers(host, port)

    # a long wait (a big zone loading) polls less often, within wait_for's poll bound
    poll = max(POLL, seconds / MAX_POLLS)
    wait_for(f"the server on {host}:{port} to answer", answered, seconds=seconds, poll=poll)


# Run as ``python -c LIMITED N ARGS...``: set RLIMIT_NOFILE to N (soft and hard), then
# exec the interpreter with ARGS, so the server keeps this process's PID.
LIMITED = (
    "import os, resource, sys; n = int(sys.argv[1]);"
    " resource.setrlimit(resource.RLIMIT_NOFILE, (n, n));"
    " os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


# Run as ``python -c PRELOADED CODE ARGS...``: run CODE (a test's stand-in for
# something the server cannot otherwise be made to do, such as a file read that
# hangs), then dnsserve's command line with ARGS, in this process (same PID).
PRELOADED = (
    "import runpy, sys; code = sys.argv.pop(1); exec(code);"
    " sys.argv[0] = 'dnsserve'; runpy.run_module('dnsserve', run_name='__main__')"
)


def held_fifo(name: str) -> str:
    """Preload code (``start_server(preload=...)``, ``PRELOADED``): an included zone
    file named ``name`` is opened as any file once was, so a FIFO there holds the
    load until a writer comes. The server itself refuses a FIFO (``zones.files``);
    a read that hangs on a regular file (a dead network mount) has no stand-in a
    test can make."""
    return (
        "import dnsserve.zones.parse as _parse\n"
        "_open = _parse.open_zone_text\n"
        "def _held(path, rules, *, cited):\n"
        f"    if path.name == {name!r}:\n"
        "        return open(path, encoding='utf-8')\n"
        "    return _open(path, rules, cited=cited)\n"
        "_parse.open_zone_text = _held\n"
    )


def _config_sets(args: tuple[str, ...], key: str) -> bool:
    """Whether the ``-c``/``--config`` file among ``args`` sets ``[server] key``."""
    for flag in ("-c", "--config"):
        if flag in args[:-1]:
            path = Path(args[args.index(flag) + 1])
            with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
                return key in tomllib.loads(path.read_text()).get("server", {})
    return False


def start_server(
    tmp_path: Path,
    *args: str,
    zones: Path | None = SHIPPED_ZONES,
    host: str = "127.0.0.1",
    cwd: Path | None = None,
    nofile: int | None = None,
    workers: int = 1,
    ready_seconds: float = READY_SECONDS,
    port: int | None = None,
    preload: str | None = None,
) -> ServerProc:
    """Start ``python -m dnsserve serve`` on a random loopback port.

    ``nofile``: the server's file descriptor limit (RLIMIT_NOFILE, soft and
    hard), set in the child before it starts, as ``prlimit --nofile`` does.
    ``workers``: ``--workers`` (answering processes), unless ``args`` or the
    config file say; 1 (one process, as before workers) unless a test asks.
    ``ready_seconds``: how long it may take to answer (a big zone loads first).
    ``preload``: Python code the server process runs first (not with ``nofile``).
    """
    port = port or free_port(host)
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    limited = [] if nofile is None else ["-c", LIMITED, str(nofile)]
    if preload is not None:
        assert nofile is None, "preload and nofile do not combine"
        cmd = [sys.executable, "-c", PRELOADED, preload, "serve", "--listen", listen]
    else:
        cmd = [sys.executable, *limited, "-m", "dnsserve", "serve", "--listen", listen]
    if zones is not None:
        cmd += ["--zones", str(zones)]
    control = ""
    if "--workers" not in args and not _config_sets(args, "workers"):
        cmd += ["--workers", str(workers)]
    if "--control" not in args and not _config_sets(args, "control"):
        # the built-in default (127.0.0.1:8053) would clash between servers
        control = f"127.0.0.1:{free_port()}"
        cmd += ["--control", control]
    cmd += list(args)
    log = tmp_path / f"server-{port}.log"
    # faulthandler: a server that never answers is made to print where each
    # thread is (SIGABRT) before it is stopped, so the failure says why
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd or tmp_path,
                                env=env)
    srv = ServerProc(proc, host, port, log, control)
    try:
        wait_ready(host, port, proc, ready_seconds)
    except Exception as exc:
        waited = time.monotonic() - started
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGABRT)  # faulthandler's dump, then the end
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        srv.stop()
        raise RuntimeError(
            f"server failed to start ({type(exc).__name__}: {exc}; after {waited:.1f} s;"
            f" command {cmd}):\n{log.read_text(errors='replace')}"
        ) from None
    return srv
