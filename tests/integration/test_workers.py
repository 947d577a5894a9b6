"""Answering workers end to end: ``[server] workers = 2``, the real server and backends.

The kernel spreads queries over the workers' SO_REUSEPORT sockets by the
client's address and port; dnspython opens a new socket (a new source port)
per query, so a few dozen queries reach both workers, and the tests check
from the per-worker counters in /metrics that both answered. Every wait has a
deadline (``testkit.wait``); no test measures time (bench_workers does).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.backends import HttpBackend
from testkit.harness import Harness, addresses, monitor, pool, wait_answer
from testkit.ports import free_port
from testkit.server import ServerProc, start_server
from testkit.wait import wait_for

OWNER = "workers.example.com."
SPREAD = 64  # queries, each from its own socket: enough that both workers get some


def ip(x: int) -> str:
    return f"127.0.0.{x}"


def worker_queries(harness: Harness) -> dict[str, int]:
    text = harness.api("GET", "/metrics", token=False).text
    return {w: int(float(n)) for w, n in
            re.findall(r'^dnsserve_worker_queries_total\{worker="(\d+)"\} (\S+)$', text, re.M)}


def restarts(harness: Harness) -> int:
    text = harness.api("GET", "/metrics", token=False).text
    return sum(int(float(n)) for n in
               re.findall(r"^dnsserve_worker_restarts_total\{[^}]*\} (\S+)$", text, re.M))


def every_worker_answers(harness: Harness, srv: ServerProc, expected: set[str]) -> None:
    """SPREAD queries (each from a new port) all get ``expected``, and both workers
    answered some of them."""
    wait_answer(srv, OWNER, expected)
    before = worker_queries(harness)
    seen = [addresses(srv, OWNER) for _ in range(SPREAD)]
    assert all(got == frozenset(expected) for got in seen), seen

    def grew() -> dict[str, int]:
        now = worker_queries(harness)
        return {w: now.get(w, 0) - before.get(w, 0) for w in ("0", "1")}

    wait_for("both workers to count the queries", grew,
             lambda d: sum(d.values()) >= SPREAD and all(n > 0 for n in d.values()))


def start(harness: Harness, first: int) -> tuple[ServerProc, list[str], dict[str, HttpBackend]]:
    hosts = [ip(first + i) for i in range(3)]
    backends = harness.http(*hosts)
    harness.write_config([monitor(port=backends[hosts[0]].port)],
                         [pool(OWNER, [{"address": h} for h in hosts])], workers=2)
    srv = harness.serve()
    harness.wait_up([f"web/{h}" for h in hosts])
    wait_for("two workers", srv.children, lambda pids: len(pids) == 2)
    return srv, hosts, backends


def test_a_flip_and_a_drain_reach_every_worker(harness: Harness) -> None:
    srv, (a, b, c), backends = start(harness, 151)
    every_worker_answers(harness, srv, {a, b, c})
    backends[b].stop()  # the monitor's decision
    every_worker_answers(harness, srv, {a, c})
    assert harness.api("POST", f"/api/v1/members/web/{c}/drain", {}).status_code == 200
    every_worker_answers(harness, srv, {a})


def test_a_killed_worker_is_restarted_and_serves_the_current_state(harness: Harness) -> None:
    srv, (a, b, c), _ = start(harness, 155)
    assert harness.api("POST", f"/api/v1/members/web/{b}/drain", {}).status_code == 200
    every_worker_answers(harness, srv, {a, c})
    before = srv.children()
    os.kill(before[0], signal.SIGKILL)
    wait_for("the killed worker to be replaced", srv.children,
             lambda pids: len(pids) == 2 and before[0] not in pids)
    assert before[1] in srv.children()  # the other one kept serving
    wait_for("the restart to be counted", lambda: restarts(harness), lambda n: n == 1)
    every_worker_answers(harness, srv, {a, c})  # the drain holds in the new worker
    assert "was killed by SIGKILL" in srv.log_text()


def test_a_reload_reaches_every_worker(harness: Harness) -> None:
    zones = harness.tmp_path / "zones"
    zones.mkdir()
    zone = zones / "example.com.zone"
    zone.write_text(_zone(1, "192.0.2.1"))
    harness.write_config([], [], workers=2)
    srv = _serve(harness, zones)
    wait_for("two workers", srv.children, lambda pids: len(pids) == 2)
    first = set(srv.children())
    assert _all_answer(srv, "192.0.2.1")
    zone.write_text(_zone(2, "192.0.2.2"))
    os.kill(srv.proc.pid, signal.SIGHUP)
    wait_for("every socket to answer the reloaded zone", lambda: _all_answer(srv, "192.0.2.2"))
    # New workers were forked from the new zones; the old ones are gone.
    wait_for("the old workers to go", srv.children,
             lambda pids: len(pids) == 2 and not first & set(pids))


def test_workers_go_with_the_owner(harness: Harness) -> None:
    srv, _, _ = start(harness, 159)
    pids = srv.children()
    assert len(pids) == 2
    srv.proc.send_signal(signal.SIGKILL)  # no goodbye: each worker sees its channel close
    srv.proc.wait(timeout=10)
    try:
        wait_for("every worker to exit", lambda: [p for p in pids if _alive(p)],
                 lambda alive: not alive)
        assert not [p for p in pids if _alive(p)]
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_second_server_on_the_same_address_fails_to_start(harness: Harness) -> None:
    """SO_REUSEPORT must not let a second server with workers join the first's
    sockets (and silently take a share of its queries): it fails as one process does."""
    srv, hosts, _ = start(harness, 160)
    listen = f"127.0.0.1:{srv.port}"
    second = harness.tmp_path / "second"
    second.mkdir()
    (second / "other.test.zone").write_text(
        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n")
    done = subprocess.run(
        [sys.executable, "-m", "dnsserve", "serve", "--listen", listen, "--workers", "2",
         "--zones", str(second), "--control", f"127.0.0.1:{free_port()}"],
        cwd=second, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode != 0
    assert f"cannot bind tcp {listen}" in done.stderr and "in use" in done.stderr
    every_worker_answers(harness, srv, set(hosts))  # the first still answers every query


@pytest.mark.parametrize("value", ["0", "-1", "65"])
def test_a_bad_worker_count_is_named(harness: Harness, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dnsserve", "serve", "--listen", f"127.0.0.1:{free_port()}",
         "--workers", value], cwd=harness.tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert done.returncode == 1
    assert f"--workers {value}: must be between 1 and 64" in done.stderr


# -- helpers -------------------------------------------------------------------------------------


def _zone(serial: int, address: str) -> str:
    return (f"$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 900 604800 300\n"
            f"@ NS ns1\nns1 A 192.0.2.53\nwww A {address}\n")


def _serve(harness: Harness, zones: Path) -> ServerProc:
    srv = start_server(harness.tmp_path, "-c", str(harness.config), zones=zones)
    harness.stack.callback(srv.stop)
    return srv


def _all_answer(srv: ServerProc, address: str) -> bool:
    return all(addresses(srv, "www.example.com.") == frozenset({address})
               for _ in range(SPREAD))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except OSError:
        return False
