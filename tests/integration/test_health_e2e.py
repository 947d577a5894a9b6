"""Health-based answers end to end: the real server process, real backends on 127.0.0.x.

Each test writes its own config (a short interval: 0.2 s, timeout 0.15 s,
rise 2, fall 2) with members on 127.0.0.x addresses no other test here uses,
starts real HTTP or TCP backends (``testkit.backends``) and the server
(``testkit.server.start_server``), breaks and mends backends, and polls the
server with dnspython until the expected answer appears. The polls have
deadlines (``testkit.wait``): they check behaviour, never speed; failover time
is the benchmarks' business. Every backend and server a test starts is stopped
by the ``harness`` fixture's exit stack (``testkit.harness``), server first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from testkit import SHIPPED_ZONES
from testkit.backends import HttpBackend, Mode, close_all
from testkit.harness import (
    FALL,
    Harness,
    addresses,
    monitor,
    pool,
    query,
    rdatas,
    render_config,
    steady,
    wait_answer,
)
from testkit.ports import free_port
from testkit.wait import WAIT, wait_for

# The tests that start no server (config checks) run once.
ONE_PROCESS = {"test_check_warns_about_nodata", "test_good_config_passes_check",
               "test_bad_config_is_named_and_exits_1"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.function.__name__ not in ONE_PROCESS:
        metafunc.parametrize("workers", [1, 2], ids=["workers1", "workers2"], indirect=True)


@pytest.fixture(autouse=True)
def workers(harness: Harness, request: pytest.FixtureRequest) -> int:
    """Every test here that starts the server runs with one answering process
    and with two workers (``[server] workers``)."""
    harness.workers = getattr(request, "param", 1)
    return harness.workers


def ip(x: int) -> str:
    return f"127.0.0.{x}"


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
    # The state file is written after the answers change (a writer thread), and
    # the four flips may come in one pass of the monitor: wait for the last write.
    want = {f"web/{h}" for h in down}
    harness.wait_states("the four members down in the state file", lambda states: {
        m for m, s in states.items() if s["state"] == "down"} == want)
    assert {m for m, s in harness.states().items() if s["state"] == "down"} == want


def six_in_three_pools(harness: Harness, first: int, *, when_all_down: str = "all",
                       interval: float = 0.5, timeout: float = 0.3,
                       ) -> tuple[dict[str, str], dict[str, list[str]], dict[str, HttpBackend]]:
    """Three pools of two members each (the guard's smallest case is 4 members in 2 pools)."""
    names = {k: f"held-{k}.example.com." for k in "abc"}
    hosts = {k: [ip(first + 2 * i), ip(first + 2 * i + 1)] for i, k in enumerate("abc")}
    everyone = [h for hs in hosts.values() for h in hs]
    backends = harness.http(*everyone)
    harness.write_config(
        [monitor(port=backends[everyone[0]].port, interval=interval, timeout=timeout)],
        [pool(names[k], [{"address": h} for h in hosts[k]], when_all_down=when_all_down)
         for k in names],
    )
    return names, hosts, backends


def alarms(harness: Harness) -> list[str]:
    return [e["to_state"] for e in harness.events("*")]


def down_events(harness: Harness, hosts: list[str]) -> dict[str, list[str]]:
    """Each member's "down" events (reasons): a state the server published."""
    return {f"web/{h}": [e["reason"] for e in harness.events(f"web/{h}")
                         if e["to_state"] == "down"] for h in hosts}


# Regression (a fixed bug): guard applies the first DOWN flips (5 of 6 with
# suspect_fraction=1.0) before suspicion triggers, then restores them: answers change (NODATA
# for nodata pools) for up to about one interval
def test_guard_publishes_no_down_flip_before_suspicion(harness: Harness) -> None:
    names, hosts, backends = six_in_three_pools(harness, 201, when_all_down="nodata")
    everyone = [h for hs in hosts.values() for h in hs]
    srv = harness.serve()
    harness.wait_up([f"web/{h}" for h in everyone])
    for k in names:
        wait_answer(srv, names[k], set(hosts[k]))

    for backend in backends.values():  # every check fails from now on, all at once
        backend.mode = Mode.ERROR
    wrong: list[tuple[str, frozenset[str] | None]] = []
    deadline = time.monotonic() + WAIT
    for _ in range(2000):
        for k in names:
            got = addresses(srv, names[k])
            if got is not None and got != frozenset(hosts[k]):
                wrong.append((k, got))  # an empty set is NODATA
        if alarms(harness) or time.monotonic() > deadline:
            break
    assert alarms(harness) == ["suspicion"]
    assert down_events(harness, everyone) == {f"web/{h}": [] for h in everyone}
    assert wrong == []


# Regression (a fixed bug): after an operator forces a state, suspicion is cleared
# but the held members' next failures re-trigger it within one interval (flips applied, then
# restored again)
def test_operator_force_ends_suspicion(harness: Harness) -> None:
    names, hosts, backends = six_in_three_pools(harness, 211)
    everyone = [h for hs in hosts.values() for h in hs]
    members = [f"web/{h}" for h in everyone]
    srv = harness.serve()
    harness.wait_up(members)
    for k in names:
        wait_answer(srv, names[k], set(hosts[k]))
    for backend in backends.values():
        backend.mode = Mode.ERROR
    wait_for("a suspicion alarm", lambda: alarms(harness), lambda a: a == ["suspicion"])
    harness.wait_states("members failing while held",
                        lambda s: all(s[m]["failures"] >= FALL + 1 for m in members))

    harness.cli("drain", members[0], "-c", str(harness.config), "--yes")  # the operator acts
    wait_for("suspicion to clear", lambda: alarms(harness),
             lambda a: a[:2] == ["suspicion", "suspicion-cleared"])
    base = {m: s["failures"] for m, s in harness.states().items()}
    # Every member fails FALL + 2 more checks: enough for every one of them to flip.
    harness.wait_states("every member failing again after the drain",
                        lambda s: all(s[m]["failures"] >= base[m] + FALL + 2 for m in members))
    assert alarms(harness) == ["suspicion", "suspicion-cleared"]


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
    cfg = ("-c", str(harness.config))

    # drain by bare address (resolved through the config), expiring; the first
    # drain lasts long enough to be seen in status however slow the machine,
    # the second replaces it with a short one that must expire
    harness.cli("drain", a, *cfg, "--for", "10m", "--reason", "maintenance")
    wait_answer(srv, owner, {b, c})
    entry = harness.status()["members"][web(141)]
    assert (entry["state"], entry["override"]) == ("up", "drain")  # real state next to it
    assert entry["override_until"] is not None
    harness.cli("drain", a, *cfg, "--for", "2s")
    wait_answer(srv, owner, {a, b, c})  # the drain expired

    # force-up of a failing member, by MONITOR/ADDRESS, expiring
    backends[b].stop()
    wait_answer(srv, owner, {a, c})
    harness.cli("force-up", web(142), *cfg, "--for", "10m")
    wait_answer(srv, owner, {a, b, c})
    entry = harness.status()["members"][web(142)]
    assert (entry["state"], entry["override"]) == ("down", "force-up")
    harness.cli("force-up", web(142), *cfg, "--for", "2s")
    wait_answer(srv, owner, {a, c})  # the force-up expired; the checks still fail

    # a drain without expiry lasts until undrain
    harness.cli("drain", web(143), *cfg)
    wait_answer(srv, owner, {a})
    assert harness.status()["members"][web(143)]["override_until"] is None
    harness.cli("undrain", web(143), *cfg)
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
    # the writer thread records the flip just after the answer changes
    harness.wait_states("the probed member recorded down",
                        lambda states: states[web(181)]["state"] == "down")
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
    harness.cli("drain", web(192), "-c", str(harness.config))
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
    harness.cli("undrain", b, "-c", str(harness.config))
    wait_answer(srv, owner, {a, b, c})


# -- shutdown ------------------------------------------------------------------------------------


def test_sigterm_with_checks_in_flight_exits_cleanly(harness: Harness,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A hanging HTTP check and exec checks (with a child of their own) in flight: SIGTERM
    ends the server with 0, kills every probe process, and closes the state file."""
    a, b = ip(221), ip(222)
    backends = harness.http(a, b)
    for backend in backends.values():
        backend.mode = Mode.HANG
    pids = harness.tmp_path / "probe-pids"
    script = harness.tmp_path / "probe.sh"
    script.write_text(f"#!/bin/sh\necho $$ >> {pids}\nsleep 60 &\necho $! >> {pids}\nwait\n")
    script.chmod(0o755)
    slow = {"interval": 2.0, "timeout": 1.9}
    harness.write_config(
        [monitor(port=backends[a].port, **slow),
         {"name": "probe", "kind": "exec", "command": [str(script)], "rise": 2, "fall": 2,
          **slow}],
        [pool("sigterm-http.example.com.", [{"address": a}, {"address": b}]),
         pool("sigterm-exec.example.com.", [{"address": ip(223)}, {"address": ip(224)}],
              monitor="probe")],
    )
    srv = harness.serve()
    wait_for("both exec checks and both HTTP checks in flight",
             lambda: (len(pids.read_text().split()) if pids.exists() else 0,
                      sum(be.requests for be in backends.values())),
             lambda n: n[0] >= 4 and n[1] >= 2)
    probes = [int(p) for p in pids.read_text().split()]
    started = time.monotonic()
    os.kill(srv.proc.pid, signal.SIGTERM)
    code = srv.proc.wait(timeout=30)
    took = time.monotonic() - started

    def running(pid: int) -> bool:  # a zombie waiting for init is dead
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            return "\nState:\tZ" not in status
        return False

    left = wait_for("every probe process to end", lambda: [p for p in probes if running(p)],
                    lambda still: not still, seconds=5.0)
    with capsys.disabled():
        print(f"\n[shutdown] SIGTERM with hanging http + exec checks in flight: exit {code} "
              f"after {took:.2f} s")
    assert code == 0
    assert left == []
    assert not Path(f"{harness.state}-wal").exists()  # closed: SQLite removes the WAL
    assert "stopping" in srv.log_text()


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
