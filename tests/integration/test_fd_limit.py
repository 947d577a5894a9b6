"""The real server under a small file descriptor limit, flooded with TCP connections.

Issue "Survive faults" item 4: under LimitNOFILE=1024, 2,000 TCP connections
took the process to its descriptor limit; exec checks then failed with "exec
failed" and members were taken out of answers although every backend was
fine. Now the TCP cap is derived from the limit (``net.tcp_cap``: it keeps
``net.FD_RESERVE`` descriptors, or three quarters of a small limit, for the
checks, the state file and the control API), and a check that fails for want
of a descriptor is a local error that leaves the member's state alone
(the monitor's side of that, with the descriptors really exhausted, is in
tests/integration/test_monitor.py).

The server runs with RLIMIT_NOFILE 128 (soft and hard, set in the child, as
``prlimit --nofile=128:128`` does), three members behind an exec check that
always passes, and ``when_all_down = "nodata"`` so a member taken out shows
in the answer. Waits are bounded polls; nothing is timed.
"""

from __future__ import annotations

import contextlib
import resource
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from testkit.harness import Harness, addresses, pool, wait_answer
from testkit.wait import wait_for

NOFILE = 128
FLOOD = 400  # TCP connections opened and held: three times the server's whole limit
MEMBERS = ["127.0.0.191", "127.0.0.192", "127.0.0.193"]
OWNER = "fd.example.com."



def exec_check(runs: Path) -> dict[str, object]:
    """An exec check that passes and notes each run (the member's address) in ``runs``."""
    return {"name": "web", "kind": "exec",
            "command": ["sh", "-c", f'echo "$DNSSERVE_ADDRESS" >> {runs}'],
            "interval": 0.5, "timeout": 0.4, "rise": 2, "fall": 2}


def checks_run(runs: Path) -> Counter[str]:
    return Counter(runs.read_text().split()) if runs.exists() else Counter()


@contextlib.contextmanager
def held_connections(host: str, port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` TCP connections to ``host:port``, opened one after another and held open."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            try:
                socks.append(socket.create_connection((host, port), timeout=2.0))
            except OSError:
                break  # refused or timed out: the server's backlog is full
        yield socks
    finally:
        for sock in socks:
            sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True  # reset


def test_a_tcp_flood_at_the_fd_limit_takes_no_member_out(harness: Harness) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == resource.RLIM_INFINITY or soft >= FLOOD + 100, "the test's own limit"
    members = [f"web/{a}" for a in MEMBERS]
    runs = harness.tmp_path / "check-runs"
    harness.write_config(
        [exec_check(runs)],
        [pool(OWNER, [{"address": a} for a in MEMBERS], when_all_down="nodata")],
    )
    srv = harness.serve(nofile=NOFILE)
    harness.wait_up(members)
    wait_answer(srv, OWNER, set(MEMBERS))
    assert "tcp_max_connections lowered from 1000 to 32" in srv.log_text()

    with held_connections(srv.host, srv.port, FLOOD) as socks:
        assert len(socks) > NOFILE
        # Past the cap the server closes a new connection at once.
        wait_for("connections past the cap closed by the server",
                 lambda: sum(closed_by_server(s) for s in socks), lambda n: n >= FLOOD - 64)
        # While they are held, checks go on and pass: every member stays in the answer.
        for _ in range(3):
            before = checks_run(runs)
            wait_for("every member checked twice more while the connections are held",
                     lambda: checks_run(runs),
                     lambda now, before=before: all(now[a] >= before[a] + 2 for a in MEMBERS))
            assert addresses(srv, OWNER) == frozenset(MEMBERS)

    assert all(s["state"] == "up" for s in harness.states().values())
    log = srv.log_text()
    assert " is down" not in log and "exec failed" not in log, log[-3000:]
    for member in members:
        assert [e["new"] for e in harness.events(member)] in ([], ["up"]), member
