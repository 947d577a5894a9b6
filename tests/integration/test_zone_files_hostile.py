"""Zone files as untrusted input: what an attacker's pull request can put in a zones directory.

Each case is a real file in a temporary zones directory (a FIFO made by
``os.mkfifo``, ``/dev/zero``, ``/dev/urandom``, a symlink loop, a path outside
the zones directory, a huge line) beside a good zone, run through
``dnsserve check`` as CI runs it, and some through a real server start. Each
must end promptly (a hang would be killed by the guard below and fail) with
one error line naming file and line, no traceback, none of a refused file's
content, and the good zone loaded. Memory is checked only as a sanity bound
that cannot be flaky: the child's peak RSS (``wait4``) under 1 GB.

Must not: read anything outside tmp_path but the system files it names in
``$INCLUDE`` lines (never printed), or leave a process running.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import pytest

from dnsserve.zones.files import FileRules
from dnsserve.zones.offload import ChildLoad
from testkit.server import start_server

GUARD_SECONDS = 120.0  # a hang guard (the process is killed), not a timing assertion
MAX_RSS_KIB = 1 << 20  # 1 GiB, in ru_maxrss's KiB
GOOD = """$TTL 300
@   SOA ns1 hostmaster 1 7200 3600 1209600 300
@   NS  ns1
ns1 A   192.0.2.1
www A   192.0.2.2
"""
SECRET = "s3cr3t-content-never-printed"


@dataclass
class Run:
    code: int
    out: str
    max_rss_kib: int
    killed: bool


def run_check(cwd: Path, *args: str) -> Run:
    """``dnsserve check`` in a child, its exit code, output and peak RSS (wait4)."""
    out_path = cwd / "check.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dnsserve", "check", *args], cwd=cwd,
                                stdout=out, stderr=subprocess.STDOUT)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    guard = threading.Timer(GUARD_SECONDS, kill)
    guard.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        guard.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(proc.returncode, out_path.read_text(errors="replace"), usage.ru_maxrss,
               killed.is_set())


def zones_with(tmp_path: Path, text: str, *, name: str = "bad.example.zone") -> Path:
    zones = tmp_path / "zones"
    (zones / "include").mkdir(parents=True, exist_ok=True)
    (zones / "good.example.zone").write_text(GOOD)
    (zones / name).write_text(text)
    return zones


def assert_refused(run: Run, file: Path, line: int, *words: str) -> str:
    """One error line for ``file:line`` with ``words``; the good zone loaded; no traceback."""
    assert not run.killed, "dnsserve check hung"
    assert run.code == 1, run.out
    assert "Traceback" not in run.out, run.out
    errors = [x for x in run.out.splitlines() if ": error: " in x]
    assert len(errors) == 1, run.out
    where = f"{file}:{line}" if line else str(file)
    assert errors[0].startswith(f"{where}: error: "), errors[0]
    for word in words:
        assert word in errors[0], errors[0]
    assert "zone good.example.: serial 1" in run.out, run.out
    assert run.max_rss_kib < MAX_RSS_KIB
    return errors[0]


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../../etc/passwd"])
def test_include_outside_the_zones_directory_is_refused_unread(
    tmp_path: Path, target: str
) -> None:
    zones = zones_with(tmp_path, GOOD + f"$INCLUDE {target}\n")
    run = run_check(tmp_path, "--zones", str(zones))
    assert_refused(run, zones / "bad.example.zone", 6, "is outside the zones directory")
    assert "root:" not in run.out and "/bin/" not in run.out


def test_a_symlink_out_of_the_zones_directory_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{SECRET}\n")
    zones = zones_with(tmp_path, GOOD + "$INCLUDE include/link.inc\n")
    (zones / "include" / "link.inc").symlink_to(secret)
    (zones / "evil.example.zone").symlink_to(secret)  # a zone file itself, linked out
    run = run_check(tmp_path, "--zones", str(zones))
    assert SECRET not in run.out, run.out
    errors = [x for x in run.out.splitlines() if ": error: " in x]
    assert len(errors) == 2, run.out
    assert f"{zones / 'bad.example.zone'}:6: error: " in run.out
    assert "resolves outside the zones directory" in run.out
    assert "zone good.example.: serial 1" in run.out


def test_include_paths_do_not_let_a_zone_file_out(tmp_path: Path) -> None:
    """``include_paths`` widens ``$INCLUDE`` targets only: a zone file linked into one
    is still refused, unread, while an ``$INCLUDE`` of the same place is read."""
    shared = tmp_path / "shared"
    shared.mkdir()
    secret = shared / "secret.txt"
    secret.write_text(f"{SECRET}\n")
    (shared / "ok.inc").write_text("inc A 192.0.2.9\n")
    zones = zones_with(tmp_path, GOOD + f"$INCLUDE {shared / 'ok.inc'}\n")
    (zones / "evil.example.zone").symlink_to(secret)
    run = run_check(tmp_path, "-c", str(config(tmp_path, include_paths=[str(shared)])),
                    "--zones", str(zones))
    assert SECRET not in run.out, run.out
    assert_refused(run, zones / "evil.example.zone", 0,
                   "resolves outside the zones directory: refused")
    assert "zone bad.example.: serial 1" in run.out, run.out


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_at_once(tmp_path: Path, device: str) -> None:
    zones = zones_with(tmp_path, GOOD + f"$INCLUDE {device}\n")
    run = run_check(tmp_path, "-c", str(config(tmp_path, include_paths=["/dev"])),
                    "--zones", str(zones))
    assert_refused(run, zones / "bad.example.zone", 6, "is a character device: refused")


def test_a_fifo_is_refused_and_never_waited_for(tmp_path: Path) -> None:
    zones = zones_with(tmp_path, GOOD + "$INCLUDE include/pipe.inc\n")
    os.mkfifo(zones / "include" / "pipe.inc")
    run = run_check(tmp_path, "--zones", str(zones))
    assert_refused(run, zones / "bad.example.zone", 6, "is a FIFO: refused")


def test_a_unix_socket_is_refused_as_one(tmp_path: Path) -> None:
    zones = zones_with(tmp_path, GOOD + "$INCLUDE include/s.inc\n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(zones / "include" / "s.inc"))  # the socket file stays after close
    run = run_check(tmp_path, "--zones", str(zones))
    assert_refused(run, zones / "bad.example.zone", 6, "is a socket: refused")


def test_an_include_outside_the_include_paths_says_it_once(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    zones = zones_with(tmp_path, GOOD + "$INCLUDE /etc/passwd\n")
    run = run_check(tmp_path, "-c", str(config(tmp_path, include_paths=["shared"])),
                    "--zones", str(zones))
    error = assert_refused(run, zones / "bad.example.zone", 6,
                           "is outside the zones directory and server.include_paths: refused")
    assert "may allow more" not in error


def test_a_zone_file_that_is_a_fifo_or_a_loop_is_refused(tmp_path: Path) -> None:
    zones = zones_with(tmp_path, GOOD)
    os.mkfifo(zones / "fifo.example.zone")
    (zones / "loop.example.zone").symlink_to(zones / "loop.example.zone")
    run = run_check(tmp_path, "--zones", str(zones))
    assert not run.killed and run.code == 1 and "Traceback" not in run.out
    errors = sorted(x for x in run.out.splitlines() if ": error: " in x)
    assert len(errors) == 2, run.out
    assert errors[0].startswith(f"{zones / 'fifo.example.zone'}: error: ")
    assert "is a FIFO: refused" in errors[0]
    assert errors[1].startswith(f"{zones / 'loop.example.zone'}: error: ")
    assert "symlink loop" in errors[1]
    assert "zone good.example.: serial 1" in run.out


def test_a_symlink_loop_is_one_error_line(tmp_path: Path) -> None:
    zones = zones_with(tmp_path, GOOD + "$INCLUDE include/a.inc\n")
    (zones / "include" / "a.inc").symlink_to(zones / "include" / "b.inc")
    (zones / "include" / "b.inc").symlink_to(zones / "include" / "a.inc")
    run = run_check(tmp_path, "--zones", str(zones))
    assert_refused(run, zones / "bad.example.zone", 6, "symlink loop")


def test_a_huge_line_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    zones = zones_with(tmp_path, "")
    with (zones / "bad.example.zone").open("w") as out:
        out.write(GOOD + 'big TXT "')
        chunk = "x" * (1 << 20)
        for _ in range(100):  # a 100 MB line
            out.write(chunk)
        out.write('"\n')
    run = run_check(tmp_path, "--zones", str(zones))
    assert_refused(run, zones / "bad.example.zone", 6, "longer than 1,048,576 bytes")


def test_a_huge_record_in_parentheses_is_refused(tmp_path: Path) -> None:
    strings = "\n".join(f'  "{i:09d}"' for i in range(100_000))  # 1.3 MB over many lines
    zones = zones_with(tmp_path, GOOD + f"big TXT (\n{strings}\n)\n")
    run = run_check(tmp_path, "--zones", str(zones))
    assert_refused(run, zones / "bad.example.zone", 6, "a record (in parentheses")


def test_the_size_bound_names_its_key_and_include_paths_widen(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hosts.inc").write_text("host A 192.0.2.9\n")
    zones = zones_with(tmp_path, GOOD + f"$INCLUDE {shared / 'hosts.inc'}\n")
    (zones / "big.example.zone").write_text(GOOD + "".join(f"h{i} A 192.0.2.3\n"
                                                           for i in range(1000)))
    conf = config(tmp_path, include_paths=["shared"], max_zone_file_bytes=4096)
    run = run_check(tmp_path, "-c", str(conf), "--zones", str(zones))
    assert_refused(run, zones / "big.example.zone", 0, "larger than 4,096 bytes",
                   "server.max_zone_file_bytes")
    assert "zone bad.example.: serial 1" in run.out, run.out  # its include was allowed


def test_config_bounds_are_checked(tmp_path: Path) -> None:
    conf = config(tmp_path, max_zone_line_bytes=10, max_zone_file_bytes=0)
    zones = zones_with(tmp_path, GOOD)
    run = run_check(tmp_path, "-c", str(conf), "--zones", str(zones))
    assert run.code == 1
    assert "server.max_zone_line_bytes = 10: must be >= 262144" in run.out, run.out
    assert "server.max_zone_file_bytes = 0: must be >= 1" in run.out


def test_an_error_quotes_a_short_escaped_excerpt(tmp_path: Path) -> None:
    junk = "\x01\x7f" + "y" * 500 + SECRET
    zones = zones_with(tmp_path, GOOD + f"www A {junk}\n")
    run = run_check(tmp_path, "--zones", str(zones))
    line = assert_refused(run, zones / "bad.example.zone", 6)
    assert SECRET not in line and "y" * 41 not in line
    assert "'\\x01\\x7fyyy" in line, line  # non-printables escaped
    assert len(line) < 400 + len(str(zones))


def test_an_error_quotes_raw_octets_escaped(tmp_path: Path) -> None:
    """Raw 8-bit bytes (a binary file's, or Latin-1) in a bad line: escaped in the excerpt."""
    zones = zones_with(tmp_path, "")
    junk = b"\xe9\xff\x1b[2J\xc3" + b"y" * 500 + SECRET.encode()
    (zones / "bad.example.zone").write_bytes(GOOD.encode() + b"www A " + junk + b"\n")
    run = run_check(tmp_path, "--zones", str(zones))
    line = assert_refused(run, zones / "bad.example.zone", 6)
    assert SECRET not in line and "y" * 41 not in line
    assert line.isascii() and "\x1b" not in line, line  # raw octets and controls escaped
    assert len(line) < 400 + len(str(zones))


def config(tmp_path: Path, **server: object) -> Path:
    def toml(value: object) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(f'"{v}"' for v in value) + "]"
        return str(value)

    path = tmp_path / "dnsserve.toml"
    body = "".join(f"{k} = {toml(v)}\n" for k, v in server.items())
    path.write_text(f'[server]\nstate = "state.db"\n{body}')
    return path


def test_the_server_starts_and_serves_the_good_zone_beside_hostile_ones(tmp_path: Path) -> None:
    zones = zones_with(tmp_path, GOOD + "$INCLUDE include/pipe.inc\n")
    os.mkfifo(zones / "include" / "pipe.inc")
    (zones / "zero.example.zone").write_text(GOOD + "$INCLUDE /dev/zero\n")
    (zones / "passwd.example.zone").write_text(GOOD + "$INCLUDE /etc/passwd\n")
    os.mkfifo(zones / "fifo.example.zone")
    srv = start_server(tmp_path, zones=zones)
    try:
        r = srv.udp(dns.message.make_query("www.good.example.", "A"))
        assert [rr.to_text() for rr in r.answer] == ["www.good.example. 300 IN A 192.0.2.2"]
        r = srv.udp(dns.message.make_query("www.bad.example.", "A"))
        assert r.rcode() == dns.rcode.REFUSED
    finally:
        srv.stop()
    log = srv.log_text()
    assert "Traceback" not in log and "root:" not in log
    assert f"{zones / 'bad.example.zone'}:6: error: " in log
    assert "is a FIFO: refused" in log and "is outside the zones directory" in log


def test_the_reload_child_reads_under_the_same_rules(tmp_path: Path) -> None:
    """zones.offload's spawned child: the same refusals, one line each, good zones packed."""
    zones = zones_with(tmp_path, GOOD + "$INCLUDE include/pipe.inc\n")
    os.mkfifo(zones / "include" / "pipe.inc")
    (zones / "zero.example.zone").write_text(GOOD + "$INCLUDE /dev/zero\n")
    (zones / "big.example.zone").write_text(GOOD + "".join(f"h{i} A 192.0.2.3\n"
                                                           for i in range(1000)))
    rules = FileRules(roots=(Path("/dev"),), max_file_bytes=8192)
    packed = ChildLoad(zones, None, None, rules).run()
    assert set(packed.packed) == {dns.name.from_text("good.example.")}
    errors = sorted(p.to_text() for p in packed.problems if p.severity == "error")
    assert errors == sorted([
        f"{zones / 'bad.example.zone'}:6: error: {zones / 'include' / 'pipe.inc'} is a FIFO:"
        " refused (zone files and included files must be regular files)",
        f"{zones / 'big.example.zone'}: error: {zones / 'big.example.zone'} is larger than"
        " 8,192 bytes (server.max_zone_file_bytes): refused",
        f"{zones / 'zero.example.zone'}:6: error: /dev/zero is a character device: refused"
        " (zone files and included files must be regular files)",
    ])
