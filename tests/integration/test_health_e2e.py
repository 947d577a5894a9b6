"""Health-based answers end to end: the real server process, real backends on 127.0.0.x.

Each test writes its own config (a short interval: 0.2 s, timeout 0.15 s,
rise 2, fall 2) with members on 127.0.0.x addresses no other test here uses,
starts real HTTP or TCP backends (``tests/backends.py``) and the server
(``conftest.start_server``), breaks and mends backends, and polls the server
with dnspython until the expected answer appears. The polls have deadlines
(``WAIT``): they check behaviour, never speed; failover time is the
benchmarks' business. Every backend and server a test starts is stopped by
the ``harness`` fixture's exit stack, server first.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from backends import HttpBackend, Mode, TcpListener, close_all, common_port
from conftest import SHIPPED_ZONES, ServerProc, free_port, start_server

WAIT = 15.0  # seconds a condition may take before the test fails
POLL = 0.05  # seconds between two polls
MAX_POLLS = 1000  # a second bound on every poll loop, besides its deadline
FALL = 2

T = TypeVar("T")


def ip(x: int) -> str:
    return f"127.0.0.{x}"


def monitor(**over: Any) -> dict[str, Any]:
    """The test monitor: HTTP GET /health, fast schedule."""
    base: dict[str, Any] = {
        "name": "web", "kind": "http", "path": "/health", "expect_body": "ok",
        "interval": 0.2, "timeout": 0.15, "rise": 2, "fall": FALL,
    }
    return {**base, **over}


def pool(owner: str, members: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    return {"owner": owner, "type": "A", "monitor": "web", "policy": "all", "ttl": 20,
            **over, "members": members}


# -- a small TOML writer (msgspec needs tomli_w to encode TOML; it is not a dependency) -----------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for this ASCII text
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def render_config(doc: dict[str, Any]) -> str:
    lines = []
    if "server" in doc:
        lines.append("[server]")
        lines += [f"{k} = {_toml(v)}" for k, v in doc["server"].items()]
    for table in ("monitor", "pool"):
        for entry in doc.get(table, []):
            lines += ["", f"[[{table}]]"]
            lines += [f"{k} = {_toml(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


# -- polling and queries --------------------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], T], ok: Callable[[T], bool],
             seconds: float = WAIT) -> T:
    """Call ``probe`` until ``ok`` holds for its result; fail at the deadline."""
    deadline = time.monotonic() + seconds
    last: T | None = None
    for _ in range(MAX_POLLS):
        last = probe()
        if ok(last):
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(POLL)
    pytest.fail(f"waited {seconds:.0f} s for {what}; last seen: {last!r}")


def query(srv: ServerProc, qname: str, rdtype: str = "A") -> dns.message.Message | None:
    """One UDP query; None when it timed out (the caller polls again)."""
    try:
        return srv.udp(dns.message.make_query(qname, rdtype), timeout=1.0)
    except dns.exception.Timeout:
        return None


def rdatas(msg: dns.message.Message | None, qname: str, rdtype: str = "A") -> frozenset[str] | None:
    """The answer's records of ``qname``/``rdtype`` as text; None unless NOERROR."""
    if msg is None or msg.rcode() != dns.rcode.NOERROR:
        return None
    name, kind = dns.name.from_text(qname), dns.rdatatype.from_text(rdtype)
    found = [rr.to_text() for rrset in msg.answer if rrset.name == name and rrset.rdtype == kind
             for rr in rrset]
    return frozenset(found)


def addresses(srv: ServerProc, qname: str, rdtype: str = "A") -> frozenset[str] | None:
    return rdatas(query(srv, qname, rdtype), qname, rdtype)


def wait_answer(srv: ServerProc, qname: str, expected: set[str] | frozenset[str],
                rdtype: str = "A") -> frozenset[str] | None:
    want = frozenset(expected)
    return wait_for(f"{qname} {rdtype} to answer {sorted(want)}",
                    lambda: addresses(srv, qname, rdtype), lambda got: got == want)


def steady(srv: ServerProc, qname: str, expected: set[str], times: int = 10) -> None:
    """Several answers in a row are exactly ``expected`` (rotation changes only the order)."""
    seen = [addresses(srv, qname) for _ in range(times)]
    assert all(got == frozenset(expected) for got in seen), seen


# -- the harness: backends, config, server, CLI and state file of one test ------------------------


class Harness:
    def __init__(self, tmp_path: Path, stack: contextlib.ExitStack) -> None:
        self.tmp_path = tmp_path
        self.stack = stack
        self.state = tmp_path / "state.db"
        self.config = tmp_path / "health.toml"  # not ./dnsserve.toml: the CLI must not find it

    def http(self, *hosts: str) -> dict[str, HttpBackend]:
        """Started HTTP backends, one per host, on one port free on all of them."""
        port = common_port(hosts)
        backends = {h: HttpBackend(h, port) for h in hosts}
        self.stack.callback(close_all, list(backends.values()))
        for backend in backends.values():
            backend.start()
        return backends

    def tcp(self, *hosts: str) -> dict[str, TcpListener]:
        port = common_port(hosts)
        listeners = {h: TcpListener(h, port) for h in hosts}
        self.stack.callback(close_all, list(listeners.values()))
        for listener in listeners.values():
            listener.open()
        return listeners

    def write_config(self, monitors: list[dict[str, Any]], pools: list[dict[str, Any]],
                     **server: Any) -> Path:
        doc = {
            "server": {"state": str(self.state), "control": f"127.0.0.1:{free_port()}", **server},
            "monitor": monitors,
            "pool": pools,
        }
        self.config.write_text(render_config(doc))
        return self.config

    def serve(self) -> ServerProc:
        srv = start_server(self.tmp_path, "-c", str(self.config))
        self.stack.callback(srv.stop)
        return srv

    def cli(self, *args: str, check: bool = True,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "dnsserve", *args], cwd=self.tmp_path,
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def status(self) -> dict[str, Any]:
        done = self.cli("status", "--state", str(self.state), "--format", "json",
                        "--events", "1000")
        doc: dict[str, Any] = json.loads(done.stdout)
        return doc

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.state, timeout=5)) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql, args)]

    def states(self) -> dict[str, dict[str, Any]]:
        """member_state rows by member text ("web/127.0.0.x")."""
        return {r["member"]: r for r in self._rows("SELECT * FROM member_state")}

    def events(self, member: str) -> list[dict[str, Any]]:
        """A member's events (or "*" for alarms), oldest first."""
        return self._rows("SELECT * FROM events WHERE member = ? ORDER BY id", (member,))

    def wait_states(self, what: str, ok: Callable[[dict[str, dict[str, Any]]], bool]) -> None:
        wait_for(what, self.states, ok)

    def wait_up(self, members: list[str]) -> None:
        """Every member has been checked and is up in the state file."""
        self.wait_states(
            f"{members} checked and up",
            lambda s: all(m in s and s[m]["state"] == "up" for m in members),
        )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with contextlib.ExitStack() as stack:
        yield Harness(tmp_path, stack)


def web(x: int) -> str:
    return f"web/{ip(x)}"


# -- a backend down in each way, and back ---------------------------------------------------------

# (way, first host number, what the event and status give as the reason, reason on recovery)
WAYS = [
    ("stopped", 101, "connect refused", "HTTP 200"),
    ("http-503", 103, "HTTP 503", "HTTP 200"),
    ("wrong-body", 105, "body mismatch", "HTTP 200"),
    ("hanging", 107, "timeout", "HTTP 200"),
    ("tcp-closed", 109, "connect refused", "connected"),
]


@pytest.mark.parametrize(("way", "x", "reason", "back"), WAYS, ids=[w[0] for w in WAYS])
def test_backend_down_leaves_the_answer_and_comes_back(
    harness: Harness, way: str, x: int, reason: str, back: str
) -> None:
    a, b = ip(x), ip(x + 1)
    owner = "ways.example.com."
    if way == "tcp-closed":
        listeners = harness.tcp(a, b)
        mon = monitor(kind="tcp", port=listeners[a].port)
        del mon["path"], mon["expect_body"]
    else:
        backends = harness.http(a, b)
        mon = monitor(port=backends[a].port)
    harness.write_config([mon], [pool(owner, [{"address": a}, {"address": b}])])
    srv = harness.serve()
    harness.wait_up([web(x), web(x + 1)])
    wait_answer(srv, owner, {a, b})

    if way == "stopped":
        backends[a].stop()
    elif way == "http-503":
        backends[a].mode = Mode.ERROR
    elif way == "wrong-body":
        backends[a].mode = Mode.WRONG_BODY
    elif way == "hanging":
        backends[a].mode = Mode.HANG
    else:
        listeners[a].close()
    wait_answer(srv, owner, {b})
    member = wait_for(f"{web(x)} recorded down", lambda: harness.status()["members"][web(x)],
                      lambda m: m["state"] == "down")
    assert (member["state"], member["reason"], member["override"]) == ("down", reason, None)

    if way == "stopped":
        backends[a].start()
    elif way == "tcp-closed":
        listeners[a].open()
    else:
        backends[a].mode = Mode.OK
    wait_answer(srv, owner, {a, b})

    # A flip reaches the answers first; its event is written just after (writer thread).
    events = wait_for(f"both transitions of {web(x)} in the state file",
                      lambda: harness.events(web(x)), lambda found: len(found) >= 2)
    got = [(e["monitor"], e["from_state"], e["to_state"], e["reason"]) for e in events]
    assert got == [("web", "up", "down", reason), ("web", "down", "up", back)]
    assert events[0]["time"] < events[1]["time"] <= time.time()
    assert harness.events(web(x + 1)) == []  # the healthy member never flipped
    status = harness.status()
    assert (status["members"][web(x)]["state"], status["members"][web(x)]["reason"]) == (
        "up", back)
    assert [e["reason"] for e in status["events"] if e["member"] == web(x)] == [back, reason]


# -- every member down, under each when_all_down mode ---------------------------------------------

FALLBACK = ["192.0.2.201", "192.0.2.202"]
# mode -> first host number; what the name answers with every member down is computed below
ALL_DOWN = [("all", 111), ("fallback", 114), ("hold", 117), ("nodata", 120)]


@pytest.mark.parametrize(("mode", "x"), ALL_DOWN, ids=[m for m, _ in ALL_DOWN])
def test_all_members_down(harness: Harness, mode: str, x: int) -> None:
    hosts = [ip(x), ip(x + 1), ip(x + 2)]
    members = [web(x), web(x + 1), web(x + 2)]
    owner = "alldown.example.com."
    backends = harness.http(*hosts)
    extra: dict[str, Any] = {"when_all_down": mode}
    if mode == "fallback":
        extra["fallback"] = FALLBACK
    harness.write_config(
        [monitor(port=backends[hosts[0]].port)],
        [pool(owner, [{"address": h} for h in hosts], **extra)],
    )
    srv = harness.serve()
    harness.wait_up(members)
    wait_answer(srv, owner, set(hosts))

    # One member after the other: the last set served before all are down is the third.
    backends[hosts[0]].stop()
    wait_answer(srv, owner, set(hosts[1:]))
    backends[hosts[1]].stop()
    wait_answer(srv, owner, {hosts[2]})
    backends[hosts[2]].stop()
    # Wait until the monitor has failed every member FALL + 2 times: it flipped
    # each down and went on checking, so the server has applied the flips.
    harness.wait_states(
        "every member down, and checked twice more",
        lambda s: all(s[m]["state"] == "down" and s[m]["failures"] >= FALL + 2 for m in members),
    )
    expected = {"all": set(hosts), "fallback": set(FALLBACK), "hold": {hosts[2]},
                "nodata": set()}[mode]
    wait_answer(srv, owner, expected)
    steady(srv, owner, expected)
    if mode == "nodata":
        msg = query(srv, owner)
        assert msg is not None and msg.rcode() == dns.rcode.NOERROR and not msg.answer
        soa = [r for r in msg.authority if r.rdtype == dns.rdatatype.SOA]
        assert [r.name.to_text() for r in soa] == ["example.com."]

    for h in hosts:
        backends[h].start()
    wait_answer(srv, owner, set(hosts))


def test_check_warns_about_nodata(harness: Harness) -> None:
    members = [{"address": ip(125)}, {"address": ip(126)}]
    harness.write_config([monitor(port=8080)],
                         [pool("alldown.example.com.", members, when_all_down="nodata")])
    done = harness.cli("check", "-c", str(harness.config), "--zones", str(SHIPPED_ZONES))
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert any("pool[0].when_all_down" in w and "nodata" in w for w in warnings), done.stdout

    harness.write_config([monitor(port=8080)],
                         [pool("alldown.example.com.", members, when_all_down="hold")])
    done = harness.cli("check", "-c", str(harness.config), "--zones", str(SHIPPED_ZONES))
    assert "when_all_down" not in done.stdout, done.stdout


# -- the self-suspicion guard ---------------------------------------------------------------------


def test_self_suspicion_guard_holds_states_but_a_partial_outage_fails_over(
    harness: Harness,
) -> None:
    # Three pools of two members each; a name whose members are all down would
    # answer its fallback, so held states show in the answers.
    names = {"a": "guard-a.example.com.", "b": "guard-b.example.com.",
             "c": "guard-c.example.com."}
    hosts = {"a": [ip(131), ip(132)], "b": [ip(133), ip(134)], "c": [ip(135), ip(136)]}
    fallback = {"a": ["192.0.2.211"], "b": ["192.0.2.212"], "c": ["192.0.2.213"]}
    everyone = [h for hs in hosts.values() for h in hs]
    members = [f"web/{h}" for h in everyone]
    backends = harness.http(*everyone)
    harness.write_config(
        [monitor(port=backends[everyone[0]].port)],
        [pool(names[k], [{"address": h} for h in hosts[k]], when_all_down="fallback",
              fallback=fallback[k]) for k in names],
    )
    srv = harness.serve()
    harness.wait_up(members)

    close_all(backends.values())  # every backend at once: the monitor's network looks cut
    wait_for("a suspicion alarm", lambda: harness.events("*"),
             lambda ev: [e["to_state"] for e in ev] == ["suspicion"])
    # Checks go on failing while suspicion holds the states.
    harness.wait_states(
        "every member failing FALL + 3 times in a row",
        lambda s: all(s[m]["failures"] >= FALL + 3 for m in members),
    )
    for k in names:
        wait_answer(srv, names[k], set(hosts[k]))
        steady(srv, names[k], set(hosts[k]))
    harness.wait_states("every state recorded up",
                        lambda states: all(s["state"] == "up" for s in states.values()))
    alarm = harness.events("*")[0]
    assert (alarm["from_state"], alarm["monitor"]) == (None, "")
    assert any(e["member"] == "*" and e["to_state"] == "suspicion"
               for e in harness.status()["events"])

    for backend in backends.values():
        backend.start()
    wait_for("the suspicion to clear", lambda: harness.events("*"),
             lambda ev: [e["to_state"] for e in ev] == ["suspicion", "suspicion-cleared"])
    harness.wait_states("every member passing", lambda s: all(
        s[m]["state"] == "up" and s[m]["failures"] == 0 for m in members))

    # A regional outage: 4 of 6 members over all three pools. Not every member
    # went down, so it is no suspicion: the answers must fail over.
    down = [hosts["a"][0], hosts["b"][0], *hosts["c"]]
    close_all(backends[h] for h in down)
    wait_answer(srv, names["a"], {hosts["a"][1]})
    wait_answer(srv, names["b"], {hosts["b"][1]})
    wait_answer(srv, names["c"], set(fallback["c"]))
    assert [e["to_state"] for e in harness.events("*")] == ["suspicion", "suspicion-cleared"]
    assert {m for m, s in harness.states().items() if s["state"] == "down"} == {
        f"web/{h}" for h in down}


# -- drain and force-up through the CLI, with expiry ----------------------------------------------


def test_drain_and_force_up_with_expiry(harness: Harness) -> None:
    a, b, c = ip(141), ip(142), ip(143)
    owner = "drain.example.com."
    backends = harness.http(a, b, c)
    harness.write_config([monitor(port=backends[a].port)],
                         [pool(owner, [{"address": h} for h in (a, b, c)])])
    srv = harness.serve()
    harness.wait_up([web(141), web(142), web(143)])
    wait_answer(srv, owner, {a, b, c})
    state = ("--state", str(harness.state))

    # drain by bare address (resolved through the config), expiring
    harness.cli("drain", a, "-c", str(harness.config), *state, "--for", "3s",
                "--reason", "maintenance")
    wait_answer(srv, owner, {b, c})
    entry = harness.status()["members"][web(141)]
    assert (entry["state"], entry["override"]) == ("up", "drain")  # real state next to it
    assert entry["override_until"] is not None
    wait_answer(srv, owner, {a, b, c})  # the drain expired

    # force-up of a failing member, by MONITOR/ADDRESS, expiring
    backends[b].stop()
    wait_answer(srv, owner, {a, c})
    harness.cli("force-up", web(142), *state, "--for", "3s")
    wait_answer(srv, owner, {a, b, c})
    entry = harness.status()["members"][web(142)]
    assert (entry["state"], entry["override"]) == ("down", "force-up")
    wait_answer(srv, owner, {a, c})  # the force-up expired; the checks still fail

    # a drain without expiry lasts until undrain
    harness.cli("drain", web(143), *state)
    wait_answer(srv, owner, {a})
    assert harness.status()["members"][web(143)]["override_until"] is None
    harness.cli("undrain", web(143), *state)
    wait_answer(srv, owner, {a, c})
    backends[b].start()
    wait_answer(srv, owner, {a, b, c})


# -- weighted shares ------------------------------------------------------------------------------


def test_weighted_shares_follow_the_weights(harness: Harness) -> None:
    """A 3:1 pool answers the first member in 75% of the answers, within ±3 points.

    The tolerance: the engine picks a variant with a deterministic low-discrepancy
    sequence (frac(n·φ) over the cumulative weights), so over any few hundred
    consecutive queries each share is within ±2 points of its weight; even a
    snapshot swap in between (restarting the sequence) keeps each run that close.
    ±3 points over 2,000 queries is also 3σ of a truly random draw
    (σ = √(0.75·0.25/2000) ≈ 0.97 points), so an engine that drew at random
    would still pass; one that ignores the weights (50%) or inverts them fails.
    """
    heavy, light = ip(151), ip(152)
    owner = "weighted.example.com."
    backends = harness.http(heavy, light)
    harness.write_config(
        [monitor(port=backends[heavy].port)],
        [pool(owner, [{"address": heavy, "weight": 3}, {"address": light, "weight": 1}],
              policy="weighted", max_answers=1)],
    )
    srv = harness.serve()
    harness.wait_up([web(151), web(152)])
    counts = {heavy: 0, light: 0}
    q = dns.message.make_query(owner, "A")
    total = 2000
    for _ in range(total):
        msg = srv.udp(q, timeout=2.0)
        got = rdatas(msg, owner)
        assert got is not None and len(got) == 1, msg
        counts[next(iter(got))] += 1
    share = counts[heavy] / total
    assert abs(share - 0.75) <= 0.03, counts


# -- priority tiers -------------------------------------------------------------------------------


def test_priority_tiers(harness: Harness) -> None:
    a, b, c = ip(161), ip(162), ip(163)
    owner = "tiers.example.com."
    backends = harness.http(a, b, c)
    harness.write_config(
        [monitor(port=backends[a].port)],
        [pool(owner, [{"address": a, "priority": 1}, {"address": b, "priority": 1},
                      {"address": c, "priority": 2}], policy="priority")],
    )
    srv = harness.serve()
    harness.wait_up([web(161), web(162), web(163)])
    wait_answer(srv, owner, {a, b})
    steady(srv, owner, {a, b})
    backends[a].stop()
    wait_answer(srv, owner, {b})  # tier 1 still has a healthy member
    backends[b].stop()
    wait_answer(srv, owner, {c})  # tier 1 all down: tier 2
    backends[a].start()
    wait_answer(srv, owner, {a})  # back to tier 1 when it recovers
    backends[b].start()
    assert wait_answer(srv, owner, {a, b}) == {a, b}


# -- CNAME pools ----------------------------------------------------------------------------------


def chain(msg: dns.message.Message | None) -> list[tuple[str, str, str]] | None:
    if msg is None or msg.rcode() != dns.rcode.NOERROR:
        return None
    return sorted((rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rr.to_text())
                  for rrset in msg.answer for rr in rrset)


def test_cname_pool_fails_over_and_follows_in_zone_targets(harness: Harness) -> None:
    first, second, third = ip(171), ip(172), ip(173)
    owner = "svc.example.com."
    backends = harness.http(first, second, third)
    harness.write_config(
        [monitor(port=backends[first].port)],
        [pool(owner, [
            {"target": "mail.example.com.", "address": first, "priority": 1},
            {"target": "sip", "address": second, "priority": 2},  # relative to the zone
            {"target": "lb.example.net.", "address": third, "priority": 3},
        ], type="CNAME", policy="priority")],
    )
    srv = harness.serve()
    harness.wait_up([web(171), web(172), web(173)])

    def wait_chain(expected: list[tuple[str, str, str]]) -> None:
        wait_for(f"{owner} A to give {expected}", lambda: chain(query(srv, owner)),
                 lambda got: got == sorted(expected))

    to_mail = [(owner, "CNAME", "mail.example.com."), ("mail.example.com.", "A", "192.0.2.25")]
    wait_chain(to_mail)
    assert rdatas(query(srv, owner, "CNAME"), owner, "CNAME") == {"mail.example.com."}
    backends[first].stop()
    wait_chain([(owner, "CNAME", "sip.example.com."), ("sip.example.com.", "A", "192.0.2.60")])
    backends[second].stop()
    wait_chain([(owner, "CNAME", "lb.example.net.")])  # out of our zones: the chain stops
    backends[first].start()
    wait_chain(to_mail)


# -- probe override -------------------------------------------------------------------------------


def test_probe_checks_another_address_than_the_answer(harness: Harness) -> None:
    probe_a, probe_b = ip(181), ip(182)
    answer_a, answer_b = "198.51.100.7", "198.51.100.8"  # nothing listens there
    owner = "probed.example.com."
    backends = harness.http(probe_a, probe_b)
    harness.write_config(
        [monitor(port=backends[probe_a].port)],
        [pool(owner, [{"address": answer_a, "probe": probe_a},
                      {"address": answer_b, "probe": probe_b}])],
    )
    srv = harness.serve()
    harness.wait_up([web(181), web(182)])
    wait_answer(srv, owner, {answer_a, answer_b})
    assert set(harness.states()) == {web(181), web(182)}  # the answer addresses are not probed
    backends[probe_a].stop()
    wait_answer(srv, owner, {answer_b})
    assert harness.states()[web(181)]["state"] == "down"
    backends[probe_a].start()
    wait_answer(srv, owner, {answer_a, answer_b})


# -- restart --------------------------------------------------------------------------------------


def test_restart_restores_states_and_overrides(harness: Harness) -> None:
    a, b, c = ip(191), ip(192), ip(193)
    owner = "restart.example.com."
    backends = harness.http(a, b, c)
    harness.write_config([monitor(port=backends[a].port)],
                         [pool(owner, [{"address": h} for h in (a, b, c)])])
    srv = harness.serve()
    harness.wait_up([web(191), web(192), web(193)])
    backends[a].stop()
    wait_answer(srv, owner, {b, c})
    harness.cli("drain", web(192), "--state", str(harness.state))
    wait_answer(srv, owner, {c})
    srv.stop()

    # Backend a is still down. Its state and b's drain come from the state file,
    # so the very first answer after the restart already leaves both out.
    srv = harness.serve()
    first = addresses(srv, owner)
    if first is None:  # a UDP loss on loopback: ask once more, still before any check result
        first = addresses(srv, owner)
    assert first == {c}
    steady(srv, owner, {c})

    backends[a].start()
    wait_answer(srv, owner, {a, c})
    harness.cli("undrain", b, "-c", str(harness.config), "--state", str(harness.state))
    wait_answer(srv, owner, {a, b, c})


# -- bad configurations through the CLI -----------------------------------------------------------


def good_config() -> dict[str, Any]:
    return {
        "server": {"state": "state.db"},
        "monitor": [{"name": "web", "kind": "http", "port": 8080, "path": "/health",
                     "interval": 1.0, "timeout": 0.5}],
        "pool": [{"owner": "www.example.com.", "type": "A", "monitor": "web",
                  "members": [{"address": "127.0.0.11"}, {"address": "127.0.0.12"}]}],
    }


def _unknown_key(doc: dict[str, Any]) -> None:
    doc["pool"][0]["members"][1]["wieght"] = 3


def _outside_zones(doc: dict[str, Any]) -> None:
    doc["pool"][0]["owner"] = "www.example.net."


def _unknown_monitor(doc: dict[str, Any]) -> None:
    doc["pool"][0]["monitor"] = "api"


def _ipv4_in_aaaa(doc: dict[str, Any]) -> None:
    doc["pool"][0]["type"] = "AAAA"
    doc["pool"][0]["members"] = [{"address": "2001:db8::1"}, {"address": "127.0.0.12"}]


def _negative_weight(doc: dict[str, Any]) -> None:
    doc["pool"][0]["policy"] = "weighted"
    doc["pool"][0]["members"][0]["weight"] = -1


def _interval_le_timeout(doc: dict[str, Any]) -> None:
    doc["monitor"][0]["interval"] = 0.5


def _missing_fallback(doc: dict[str, Any]) -> None:
    doc["pool"][0]["when_all_down"] = "fallback"


# (id, change to the good config, the key and value the error must name)
BAD = [
    ("unknown-key", _unknown_key, "pool[0].members[1].wieght = 3", "unknown key"),
    ("owner-outside-zones", _outside_zones, 'pool[0].owner = "www.example.net."',
     "not inside a loaded zone"),
    ("unknown-monitor", _unknown_monitor, 'pool[0].monitor = "api"', "no such monitor"),
    ("ipv4-in-aaaa", _ipv4_in_aaaa, 'pool[0].members[1].address = "127.0.0.12"',
     "not an IPv6 address"),
    ("negative-weight", _negative_weight, "pool[0].members[0].weight = -1", "must be >= 0"),
    ("interval-le-timeout", _interval_le_timeout, "monitor[0].interval = 0.5",
     "must be greater than timeout"),
    ("missing-fallback", _missing_fallback, "pool[0].fallback = []", "must not be empty"),
]


def test_good_config_passes_check(harness: Harness) -> None:
    """The base of the bad cases is fine, so each case fails for its one change."""
    harness.config.write_text(render_config(good_config()))
    done = harness.cli("check", "-c", str(harness.config), "--zones", str(SHIPPED_ZONES))
    assert done.stdout.strip().splitlines()[-1].startswith("ok:"), done.stdout


@pytest.mark.parametrize("command", ["check", "serve"])
@pytest.mark.parametrize(("case", "change", "key_value", "problem"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_named_and_exits_1(
    harness: Harness, command: str, case: str, change: Callable[[dict[str, Any]], None],
    key_value: str, problem: str,
) -> None:
    doc = good_config()
    change(doc)
    harness.config.write_text(render_config(doc))
    args = [command, "-c", str(harness.config), "--zones", str(SHIPPED_ZONES)]
    if command == "serve":
        args += ["--listen", f"127.0.0.1:{free_port()}"]
    try:
        done = harness.cli(*args, check=False, timeout=20)  # a server that started is killed
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} kept running with a bad config ({case})")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    line = f"{harness.config}: {key_value}: {problem}"
    assert line in output, output
