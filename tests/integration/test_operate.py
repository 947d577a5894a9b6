"""Operating a running server, end to end: the control API and its token, status,
answers with their explanation, drain/force-up/undrain, events, /metrics and
overrides.toml.

Each test builds a site of its own in its temporary directory (``site``
fixture, ``testkit.site``): a zones directory with ``operate.example.``, a
config with a free control port on loopback, real HTTP backends on 127.0.7.x
(``testkit.backends``) and the real server process. The tests act as an
operator does: through the control API (httpx, the token from
``<state>.token``), edits of overrides.toml, reloads and restarts; they observe
through DNS (dnspython), the API and the server's log. Reloads, the deletion
guard and safe start: test_guard_reload.py.

Waits are bounded polls (``testkit.wait``); nothing asserts how long anything
took. Every backend and server a test starts is stopped by the ``harness``
fixture's exit stack, server first. Behaviour the server gets wrong today is
marked ``xfail(strict=True, reason="BUG: ...")``: the fix flips it.
"""

from __future__ import annotations

import datetime
import stat
import time
from pathlib import Path

import dns.message
import dns.rdatatype
import httpx
import pytest

from testkit.harness import addresses, monitor, pool, wait_answer
from testkit.ports import free_port
from testkit.site import POOL, RECORDS, ZONE, Site, run_serve, soa_serial, zone_text
from testkit.wait import wait_for


def ip(x: int) -> str:
    return f"127.0.7.{x}"


def web(x: int) -> str:
    return f"web/{ip(x)}"


# == 1. the control API: where it listens and who may change things ==============================


def test_reads_are_open_and_every_post_needs_the_bearer_token(site: Site) -> None:
    site.backend_pool(ip(1), ip(2))
    site.serve()
    token_file = Path(f"{site.h.state}.token")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(token_file.read_text().strip()) >= 16
    for path in ("/api/v1/status", "/api/v1/events", "/healthz", "/metrics",
                 f"/api/v1/answer?name={POOL}"):
        assert site.h.api("GET", path, token=False).status_code == 200, path

    posts = [f"/api/v1/members/{web(1)}/drain", f"/api/v1/members/{web(1)}/force-up",
             f"/api/v1/members/{web(1)}/undrain", "/api/v1/reload"]
    with httpx.Client(base_url=f"http://{site.h.control}", timeout=10.0,
                      trust_env=False) as client:
        for path in posts:
            none = client.post(path, json={})
            assert none.status_code == 401, (path, none.text)
            assert none.headers["www-authenticate"].startswith("Bearer")
            basic = client.post(path, json={}, headers={"Authorization": "Basic dXNlcjpwdw=="})
            assert basic.status_code == 401, path
            wrong = client.post(path, json={}, headers={"Authorization": "Bearer " + "x" * 43})
            assert wrong.status_code == 403, (path, wrong.text)
    # nothing of that changed anything; each refusal is logged, the token never is
    assert site.member(web(1))["override"] is None
    log = site.server.log_text()
    assert log.count("POST /api/v1/reload from 127.0.0.1") == 3
    assert ": 401" in log and ": 403" in log
    assert token_file.read_text().strip() not in log
    assert site.status()["last_reload"]["message"] == "serving generation 1"
    assert [e for e in site.events() if e["member"] == web(1)] == []


def test_the_token_file_is_kept_across_restarts(site: Site) -> None:
    site.backend_pool(ip(3), ip(4))
    site.serve()
    token_file = Path(f"{site.h.state}.token")
    first = token_file.read_text()
    site.restart()
    assert token_file.read_text() == first
    assert site.override(web(3), "drain", {"reason": "same token"}).status_code == 200


def test_a_token_file_readable_by_others_refuses_posts_and_says_so(site: Site) -> None:
    """docs/control-api.md: DNS and the API's reads go on, every POST is refused, and the
    reason is logged and shown in status."""
    a, b = site.backend_pool(ip(5), ip(6))
    site.serve()
    site.stop()
    token_file = Path(f"{site.h.state}.token")
    token_file.chmod(0o644)
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    assert site.h.api("POST", f"/api/v1/members/{web(5)}/drain").status_code == 403
    problems = site.status()["problems"]
    assert any("control API token" in p and str(token_file) in p for p in problems), problems


@pytest.mark.parametrize("how", ["config", "flag"])
def test_an_empty_control_address_turns_the_api_off(site: Site, how: str) -> None:
    if how == "config":
        site.configure([], [], control="")
        srv = site.serve()
    else:
        site.configure([], [])
        srv = site.serve("--control", "")
    assert soa_serial(srv) == 1  # DNS serves
    assert "control API on" not in srv.log_text()
    assert not Path(f"{site.h.state}.token").exists()  # the token belongs to the API


def test_a_non_loopback_control_address_in_the_config_is_a_config_error(site: Site) -> None:
    site.configure([], [], control="0.0.0.0:8053")
    done = run_serve(site.h, "-c", str(site.h.config))
    assert done.returncode == 1, done.stderr
    assert "server.control" in done.stderr and "0.0.0.0:8053" in done.stderr, done.stderr
    assert "listening on" not in done.stderr  # refused before anything was bound


def test_a_non_loopback_control_flag_is_refused_before_anything_is_bound(site: Site) -> None:
    site.configure([], [])
    done = run_serve(site.h, "-c", str(site.h.config), "--control", f"0.0.0.0:{free_port()}")
    assert done.returncode == 1, done.stderr
    assert "listening on" not in done.stderr, done.stderr
    assert "--control" in done.stderr or "server.control" in done.stderr, done.stderr


# == 2. GET /api/v1/status ========================================================================


def test_status_shows_zones_pools_members_and_the_last_reload(site: Site) -> None:
    a, b = site.backend_pool(ip(10), ip(11))
    srv = site.serve()
    site.wait_checked_up(web(10), web(11))
    wait_answer(srv, POOL, {a, b})
    doc = site.status()
    assert [(z["name"], z["serial"], z["records"], z["ok"], z["result"]) for z in doc["zones"]] \
        == [(ZONE, 1, RECORDS, True, "loaded")]
    assert doc["zones"][0]["file"].endswith(f"{ZONE}zone")
    assert doc["zones"][0]["loaded_at"] <= doc["now"]
    [p] = doc["pools"]
    assert (p["owner"], p["type"], p["policy"], sorted(p["answer"])) == (POOL, "A", "all", [a, b])
    assert p["reason"]
    for m in doc["members"]:
        assert (m["real"], m["effective"], m["ok"], m["override"]) == ("up", "up", True, None)
        assert m["result"] == "HTTP 200" and m["checked"] <= doc["now"]
        assert m["latency"] is not None and m["latency"] >= 0
    assert {m["member"] for m in doc["members"]} == {web(10), web(11)}
    assert doc["suspect"] is None
    assert doc["last_reload"]["ok"] is True
    assert doc["problems"] == []

    site.backends[a].stop()
    wait_answer(srv, POOL, {b})
    down = site.wait_member(web(10), "down", lambda m: m["real"] == "down")
    assert (down["effective"], down["reason"], down["ok"]) == ("down", "connect refused", False)
    assert down["since"] is not None and down["since"] <= site.status()["now"]
    [p] = site.status()["pools"]
    assert p["answer"] == [b]


def test_a_member_checked_up_has_a_since_and_a_reason(site: Site) -> None:
    site.backend_pool(ip(14), ip(15))
    site.serve()
    site.wait_checked_up(web(14))
    m = site.member(web(14))
    assert m["since"] is not None and m["reason"] == "HTTP 200", m


def test_status_lists_events_newest_first(site: Site) -> None:
    site.backend_pool(ip(12), ip(13))
    site.serve()
    for action, body in (("drain", {"reason": "first"}), ("undrain", None),
                         ("force-up", {"reason": "third"})):
        assert site.override(web(12), action, body).status_code == 200
    mine = [e for e in site.status()["events"] if e["member"] == web(12)]
    assert [e["to_state"] for e in mine] == ["force-up", "drain-removed", "drain"]
    times = [e["time"] for e in mine]
    assert times == sorted(times, reverse=True)


def test_status_names_a_state_file_that_cannot_be_written(site: Site) -> None:
    a, b = site.backend_pool(ip(16), ip(17))
    blocker = site.h.tmp_path / "not-a-dir"
    blocker.write_text("a file where the state file's directory should be\n")
    site.configure([monitor(port=site.backends[a].port)],
                   [pool(POOL, [{"address": a}, {"address": b}])],
                   state=str(blocker / "state.db"))
    srv = site.serve()
    assert soa_serial(srv) == 1  # DNS is not stopped by it
    problems = site.status()["problems"]
    assert any("state file" in p and "not written" in p for p in problems), problems
    health = site.get("/healthz")  # 200: a state-file problem does not fail /healthz
    assert health["state_file"] != "ok"
    site.backends[a].stop()  # a flip: health goes on in memory, its record fails
    wait_answer(srv, POOL, {b})
    assert site.events(member=web(16))[0]["reason"] == "connect refused"
    wait_for("a failed state-file write counted",
             lambda: site.metric("dnsserve_state_write_failures_total"),
             lambda n: n is not None and n >= 1)


# == 3. GET /api/v1/answer ========================================================================


def test_answer_explains_a_pool_name_with_each_members_state(site: Site) -> None:
    a, b = site.backend_pool(ip(20), ip(21))
    srv = site.serve()
    site.wait_checked_up(web(20), web(21))
    site.backends[b].stop()
    wait_answer(srv, POOL, {a})
    doc = site.get("/api/v1/answer", name=POOL, type="A")
    assert (doc["name"], doc["type"], doc["rcode"], doc["aa"]) == (POOL, "A", "NOERROR", True)
    assert (doc["zone"], doc["source"]) == (ZONE, "pool")
    assert [line.split()[-1] for line in doc["answer"]] == [a]
    [p] = doc["pools"]
    assert (p["owner"], p["type"], p["policy"], p["when_all_down"]) == (POOL, "A", "all", "all")
    assert doc["pool"] == p  # the pool of the name asked
    assert (p["answer"], p["all_down_rule_applied"]) == ([a], False)
    assert p["reason"]
    states = {m["member"]: (m["real"], m["effective"]) for m in p["members"]}
    assert states == {web(20): ("up", "up"), web(21): ("down", "down")}
    assert doc["what_if_down"] is None


def test_answer_for_a_static_name_a_missing_name_and_a_name_in_no_zone(site: Site) -> None:
    site.backend_pool(ip(22), ip(23))
    site.serve()
    static = site.get("/api/v1/answer", name=f"static.{ZONE}")  # type A by default
    assert (static["rcode"], static["source"], static["pools"]) == ("NOERROR", "static", [])
    assert static["answer"] == [f"static.{ZONE} 60 IN A 192.0.2.90"]
    missing = site.get("/api/v1/answer", name=f"nothing.{ZONE}", type="A")
    assert (missing["rcode"], missing["source"], missing["answer"]) == ("NXDOMAIN", "none", [])
    nodata = site.get("/api/v1/answer", name=f"static.{ZONE}", type="AAAA")
    assert (nodata["rcode"], nodata["source"], nodata["answer"]) == ("NOERROR", "none", [])
    reply = site.h.api("GET", "/api/v1/answer?name=www.elsewhere.test.&type=A", token=False)
    assert reply.status_code == 404, reply.text
    assert "no served zone" in reply.json()["error"]


def test_answer_through_a_cname_to_a_pool_names_the_pool(site: Site) -> None:
    site.zone.write_text(zone_text(1, extra="alias IN CNAME www\n"))
    a, b = site.backend_pool(ip(26), ip(27))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    doc = site.get("/api/v1/answer", name=f"alias.{ZONE}")
    assert (doc["rcode"], doc["source"]) == ("NOERROR", "pool")
    assert doc["answer"][0] == f"alias.{ZONE} 60 IN CNAME {POOL}"
    assert [p["owner"] for p in doc["pools"]] == [POOL]
    hyp = site.get("/api/v1/answer", name=f"alias.{ZONE}", what_if_down=web(26))
    assert hyp["what_if_down"]["answer"] == [b]


def test_what_if_down_shows_the_hypothetical_selection_and_changes_nothing(site: Site) -> None:
    fallback = ["192.0.2.201"]
    a, b = site.backend_pool(ip(24), ip(25), when_all_down="fallback", fallback=fallback)
    srv = site.serve()
    site.wait_checked_up(web(24), web(25))
    wait_answer(srv, POOL, {a, b})
    before = site.events()
    one = site.get("/api/v1/answer", name=POOL, what_if_down=web(24))
    assert one["what_if_down"]["down"] == [web(24)]
    hyp = one["what_if_down"]
    assert (hyp["answer"], hyp["all_down_rule_applied"]) == ([b], False)
    both = site.get("/api/v1/answer", name=POOL, what_if_down=[web(24), web(25)])
    hyp = both["what_if_down"]
    assert (hyp["answer"], hyp["all_down_rule_applied"], hyp["when_all_down"]) == (
        fallback, True, "fallback")
    assert {m["member"]: m["effective"] for m in hyp["members"]} == {
        web(24): "down", web(25): "down"}
    # the live part of the same document, the DNS answer and the status are untouched
    [live] = both["pools"]
    assert (sorted(live["answer"]), live["all_down_rule_applied"]) == (sorted([a, b]), False)
    assert addresses(srv, POOL) == {a, b}
    assert all(m["override"] is None and m["effective"] == "up"
               for m in site.status()["members"])
    assert site.events() == before
    unknown = site.h.api("GET", f"/api/v1/answer?name={POOL}&what_if_down=web/127.0.7.99",
                         token=False)
    assert unknown.status_code == 404, unknown.text


# == 4. drain, force-up, undrain ==================================================================


def test_drain_takes_a_member_out_and_shows_in_status_and_answers(site: Site) -> None:
    a, b, c = site.backend_pool(ip(30), ip(31), ip(32))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b, c})
    reply = site.override(web(30), "drain", {"reason": "kernel upgrade"})
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert (doc["member"], doc["effective"]) == (web(30), "down")
    assert (doc["override"]["kind"], doc["override"]["reason"], doc["override"]["until"]) == (
        "drain", "kernel upgrade", None)
    wait_answer(srv, POOL, {b, c})
    m = site.member(web(30))
    assert (m["real"], m["effective"]) == ("up", "down")
    assert (m["override"]["kind"], m["override"]["reason"]) == ("drain", "kernel upgrade")
    [p] = site.get("/api/v1/answer", name=POOL)["pools"]
    explained = {s["member"]: s for s in p["members"]}
    assert explained[web(30)]["override"]["kind"] == "drain"
    assert explained[web(30)]["effective"] == "down"
    assert sorted(p["answer"]) == sorted([b, c])

    reply = site.override(web(30), "undrain")
    assert reply.status_code == 200 and reply.json() == {"member": web(30), "removed": True}
    wait_answer(srv, POOL, {a, b, c})
    assert site.member(web(30))["override"] is None
    again = site.override(web(30), "undrain")
    assert again.status_code == 200 and again.json()["removed"] is False


def test_a_drain_leaving_no_member_up_is_409_unless_forced(site: Site) -> None:
    fallback = ["192.0.2.202"]
    a, b = site.backend_pool(ip(33), ip(34), when_all_down="fallback", fallback=fallback)
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    assert site.override(web(33), "drain", {"reason": "one"}).status_code == 200
    wait_answer(srv, POOL, {b})
    refused = site.override(web(34), "drain", {"reason": "two"})
    assert refused.status_code == 409, refused.text
    [entry] = refused.json()["detail"]["pools"]
    assert entry["pool"] == f"{POOL} A"
    assert (entry["when_all_down"], entry["would_serve"]) == ("fallback", fallback)
    assert entry["reason"]
    assert site.member(web(34))["override"] is None  # nothing changed
    assert addresses(srv, POOL) == {b}

    forced = site.override(web(34), "drain", {"reason": "two", "force": True})
    assert forced.status_code == 200, forced.text
    wait_answer(srv, POOL, set(fallback))


def test_force_up_serves_a_failing_member_until_undrained(site: Site) -> None:
    a, b = site.backend_pool(ip(35), ip(36))
    srv = site.serve()
    site.wait_checked_up(web(35), web(36))
    site.backends[b].stop()
    wait_answer(srv, POOL, {a})
    reply = site.override(web(36), "force-up", {"reason": "checks are wrong"})
    assert reply.status_code == 200 and reply.json()["effective"] == "up"
    wait_answer(srv, POOL, {a, b})
    m = site.member(web(36))
    assert (m["real"], m["effective"], m["override"]["kind"]) == ("down", "up", "force-up")
    assert site.override(web(36), "undrain").status_code == 200
    wait_answer(srv, POOL, {a})


@pytest.mark.parametrize("action", ["drain", "force-up", "undrain"])
def test_an_unknown_member_is_404(site: Site, action: str) -> None:
    site.backend_pool(ip(37), ip(38))
    site.serve()
    for member in ("web/127.0.7.99", "nomonitor/127.0.7.37"):
        reply = site.override(member, action, {"reason": "typo"} if action != "undrain" else None)
        assert reply.status_code == 404, (member, reply.text)
    assert all(m["override"] is None for m in site.status()["members"])


def test_a_timed_drain_expires_by_itself(site: Site) -> None:
    a, b = site.backend_pool(ip(40), ip(41))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    reply = site.override(web(40), "drain", {"for": 1.5, "reason": "short"})
    assert reply.status_code == 200
    until = reply.json()["override"]["until"]
    assert until is not None and until > reply.json()["override"]["set_at"]
    wait_answer(srv, POOL, {b})
    # only DNS is asked from here on: the expiry must happen without any API call
    wait_answer(srv, POOL, {a, b})
    expired = [e for e in site.events(member=web(40)) if e["to_state"] == "drain-expired"]
    assert len(expired) == 1
    assert site.member(web(40))["override"] is None


def test_overrides_survive_a_restart(site: Site) -> None:
    a, b, c = site.backend_pool(ip(42), ip(43), ip(44))
    srv = site.serve()
    site.wait_checked_up(web(42), web(43), web(44))
    site.backends[c].stop()
    wait_answer(srv, POOL, {a, b})
    assert site.override(web(42), "drain", {"reason": "until removed"}).status_code == 200
    assert site.override(web(44), "force-up", {"for": 3600, "reason": "an hour"}).status_code \
        == 200
    wait_answer(srv, POOL, {b, c})
    before = {m["member"]: m["override"] for m in site.status()["members"]}

    history = site.events(member=web(42))
    srv = site.restart()
    wait_answer(srv, POOL, {b, c})
    after = {m["member"]: m["override"] for m in site.status()["members"]}
    assert after == before
    assert [(e["to_state"], e["reason"]) for e in site.events(member=web(42))] == [
        (e["to_state"], e["reason"]) for e in history]
    assert after[web(42)]["kind"] == "drain" and after[web(44)]["kind"] == "force-up"
    assert site.override(web(42), "undrain").status_code == 200
    wait_answer(srv, POOL, {a, b, c})
    srv = site.restart()
    wait_answer(srv, POOL, {a, b, c})  # the undrain was kept too
    assert site.member(web(42))["override"] is None


def test_a_timed_override_restored_at_start_still_expires_by_itself(site: Site) -> None:
    a, b = site.backend_pool(ip(47), ip(48))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    reply = site.override(web(47), "drain", {"for": 6, "reason": "across a restart"})
    assert reply.status_code == 200
    srv = site.restart()
    until = reply.json()["override"]["until"]
    if time.time() < until:  # (a slow restart may outlast it: then only the end is checked)
        assert addresses(srv, POOL) == {b}
    wait_answer(srv, POOL, {a, b})  # DNS only: the restored drain's timer ends it


def test_a_timed_override_that_ended_while_stopped_is_not_applied(site: Site) -> None:
    a, b = site.backend_pool(ip(45), ip(46))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    reply = site.override(web(45), "drain", {"for": 1, "reason": "brief"})
    assert reply.status_code == 200
    wait_answer(srv, POOL, {b})
    site.stop()
    # stopped until the drain has ended; then the first answers come without it
    until = reply.json()["override"]["until"]
    wait_for("the drain's end to pass", time.time, lambda now: now > until + 0.1)
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    assert site.member(web(45))["override"] is None


# == 5. events ====================================================================================


def test_flips_and_overrides_are_events_with_reasons(site: Site) -> None:
    a, b = site.backend_pool(ip(50), ip(51))
    srv = site.serve()
    site.wait_checked_up(web(50), web(51))
    site.backends[a].stop()
    wait_answer(srv, POOL, {b})
    site.backends[a].start()
    wait_answer(srv, POOL, {a, b})
    assert site.override(web(50), "drain", {"reason": "disk swap"}).status_code == 200
    assert site.override(web(50), "force-up", {"reason": "checks lie"}).status_code == 200
    assert site.override(web(50), "undrain").status_code == 200
    assert site.override(web(50), "drain", {"for": 1, "reason": "brief"}).status_code == 200
    wait_for("the drain to expire", lambda: site.events(member=web(50)),
             lambda ev: bool(ev) and ev[0]["to_state"] == "drain-expired")
    events = site.events(member=web(50))
    got = [(e["from_state"], e["to_state"]) for e in reversed(events)]
    assert got == [("up", "down"), ("down", "up"), (None, "drain"), (None, "force-up"),
                   (None, "force-up-removed"), (None, "drain"), (None, "drain-expired")]
    reasons = [e["reason"] for e in reversed(events)]
    assert reasons[0] == "connect refused" and reasons[1] == "HTTP 200"
    assert "disk swap" in reasons[2] and "checks lie" in reasons[3] and "brief" in reasons[5]
    assert all(e["member"] == web(50) and e["monitor"] == "web" for e in events)


def test_events_filter_by_time_member_and_limit(site: Site) -> None:
    site.backend_pool(ip(52), ip(53))
    site.serve()
    assert site.override(web(52), "drain", {"reason": "one"}).status_code == 200
    assert site.override(web(53), "drain", {"reason": "two", "force": True}).status_code == 200
    newest = site.events(limit=1)
    assert len(newest) == 1 and newest[0]["member"] == web(53)
    mark = newest[0]["time"]
    assert site.override(web(52), "undrain").status_code == 200
    later = site.events(since=mark)
    assert [(e["member"], e["to_state"]) for e in later] == [(web(52), "drain-removed")]
    only = site.events(member=web(53))
    assert [(e["member"], e["to_state"]) for e in only] == [(web(53), "drain")]


# == 6. /metrics =================================================================================


def test_metrics_count_queries_members_reloads_and_serials(site: Site) -> None:
    a, b = site.backend_pool(ip(90), ip(91))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    site.wait_checked_up(web(90), web(91))

    def queries(rcode: str, qtype: str, transport: str) -> float:
        return site.metric("dnsserve_queries_total", rcode=rcode, qtype=qtype,
                      transport=transport) or 0.0

    before = {k: queries(*k) for k in [("NOERROR", "TXT", "udp"), ("NOERROR", "TXT", "tcp"),
                                       ("NXDOMAIN", "A", "udp"), ("NOERROR", "OTHER", "udp")]}
    for _ in range(5):
        srv.udp(dns.message.make_query(ZONE, "TXT"))
    for _ in range(3):
        srv.tcp(dns.message.make_query(ZONE, "TXT"))
    srv.udp(dns.message.make_query(f"nothing.{ZONE}", "A"))
    srv.udp(dns.message.make_query(ZONE, dns.rdatatype.RdataType.make(65400)))
    after = {k: queries(*k) for k in before}
    assert {k: after[k] - before[k] for k in before} == {
        ("NOERROR", "TXT", "udp"): 5, ("NOERROR", "TXT", "tcp"): 3,
        ("NXDOMAIN", "A", "udp"): 1, ("NOERROR", "OTHER", "udp"): 1}

    def up(member: str, view: str) -> float | None:
        return site.metric("dnsserve_member_up", member=member, view=view)

    assert (up(web(90), "real"), up(web(90), "effective")) == (1, 1)
    assert site.override(web(90), "drain", {"reason": "metrics"}).status_code == 200
    assert (up(web(90), "real"), up(web(90), "effective")) == (1, 0)
    assert site.metric("dnsserve_member_override", member=web(90), kind="drain") == 1
    site.backends[b].stop()
    wait_for(f"{web(91)} down in /metrics", lambda: up(web(91), "real"), lambda v: v == 0)
    assert up(web(91), "effective") == 0

    assert site.metric("dnsserve_zone_serial", zone=ZONE) == 1
    assert site.metric("dnsserve_zone_records", zone=ZONE) == RECORDS
    assert site.metric("dnsserve_reloads_total", result="accepted") == 1  # the start
    assert site.metric("dnsserve_reloads_total", result="refused") == 0
    site.zone.write_text(zone_text(5))
    assert site.reload().status_code == 200
    site.zone.write_text(zone_text(6, drop=("mx",)))
    assert site.reload().status_code == 422
    assert site.metric("dnsserve_reloads_total", result="accepted") == 2
    assert site.metric("dnsserve_reloads_total", result="refused") == 1
    assert site.metric("dnsserve_zone_serial", zone=ZONE) == 5
    assert site.metric("dnsserve_state_write_failures_total") == 0
    # the query counters are not reset by a reload
    assert queries("NOERROR", "TXT", "udp") == after[("NOERROR", "TXT", "udp")]


# == 7. overrides.toml ===========================================================================


def toml_time(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_overrides_file_is_applied_at_start_and_followed_on_reload(site: Site) -> None:
    a, b, c = site.backend_pool(ip(100), ip(101), ip(102))
    site.overrides.write_text(f'[[drain]]\nmember = "{web(100)}"\nreason = "rack 12"\n')
    srv = site.serve()
    site.wait_checked_up(web(101), web(102))
    wait_answer(srv, POOL, {b, c})
    m = site.member(web(100))
    assert (m["effective"], m["override"]["kind"], m["override"]["reason"]) == (
        "down", "drain", "rack 12")
    assert m["override"]["until"] is None
    site.backends[c].stop()
    wait_answer(srv, POOL, {b})

    # the drain leaves the file, a force-up of the failing member comes in
    site.overrides.write_text(f'[[force_up]]\nmember = "{web(102)}"\n')
    assert site.reload().status_code == 200
    wait_answer(srv, POOL, {a, b, c})
    assert site.member(web(100))["override"] is None
    assert site.member(web(102))["override"]["kind"] == "force-up"
    kinds = [e["to_state"] for e in reversed(site.events(member=web(100)))]
    assert kinds == ["drain", "drain-removed"]

    site.overrides.unlink()
    assert site.reload().status_code == 200
    wait_answer(srv, POOL, {a, b})
    assert all(m["override"] is None for m in site.status()["members"])


def test_overrides_file_until_in_the_past_is_ignored_and_in_the_future_expires(
    site: Site,
) -> None:
    a, b = site.backend_pool(ip(103), ip(104))
    past = toml_time(time.time() - 3600)
    site.overrides.write_text(f'[[drain]]\nmember = "{web(103)}"\nuntil = {past}\n')
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    assert site.member(web(103))["override"] is None

    until = time.time() + 2
    site.overrides.write_text(f'[[drain]]\nmember = "{web(103)}"\nreason = "soon over"\n'
                              f"until = {toml_time(until)}\n")
    assert site.reload().status_code == 200
    wait_answer(srv, POOL, {b})
    assert site.member(web(103))["override"]["until"] == pytest.approx(until, abs=0.01)
    wait_answer(srv, POOL, {a, b})  # expired by itself, with the file unchanged
    assert next(e["to_state"] for e in site.events(member=web(103))) == "drain-expired"


def test_overrides_file_is_not_written_to_the_state_file(site: Site) -> None:
    a, b = site.backend_pool(ip(105), ip(106))
    site.overrides.write_text(f'[[drain]]\nmember = "{web(105)}"\n')
    srv = site.serve()
    wait_answer(srv, POOL, {b})
    site.stop()
    site.overrides.unlink()  # gone from git while the server was down: gone after the start
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    assert site.member(web(105))["override"] is None


BROKEN_OVERRIDES = {
    "syntax": "[[drain]\nmember = 'x'\n",
    "until-without-zone": '[[drain]]\nmember = "web/127.0.7.107"\nuntil = 2030-01-01T00:00:00\n',
    "unknown-table": '[[maintenance]]\nmember = "web/127.0.7.107"\n',
}


@pytest.mark.parametrize("kind", list(BROKEN_OVERRIDES))
def test_a_broken_overrides_file_is_reported_by_the_reload(site: Site, kind: str) -> None:
    _, b = site.backend_pool(ip(107), ip(108))
    site.overrides.write_text(f'[[drain]]\nmember = "{web(107)}"\n')
    srv = site.serve()
    wait_answer(srv, POOL, {b})
    site.overrides.write_text(BROKEN_OVERRIDES[kind])
    reply = site.reload()
    assert addresses(srv, POOL) == {b}  # the file's last good entries stay
    said = site.said(reply)
    assert any("overrides.toml" in line for line in said), (reply.json(), said)


def test_a_broken_overrides_file_at_start_does_not_stop_dns(site: Site) -> None:
    a, b = site.backend_pool(ip(109), ip(110))
    site.overrides.write_text(BROKEN_OVERRIDES["syntax"])
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    assert "overrides.toml" in srv.log_text()


def test_an_overrides_file_entry_for_no_member_is_reported(site: Site) -> None:
    a, b = site.backend_pool(ip(111), ip(112))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    site.overrides.write_text('[[drain]]\nmember = "web/127.0.7.211"\nreason = "typo"\n')
    reply = site.reload()
    assert reply.status_code in (200, 422), reply.text
    assert addresses(srv, POOL) == {a, b}
    said = site.said(reply)
    assert any("web/127.0.7.211" in line for line in said) or \
        "web/127.0.7.211: no pool" in srv.log_text(), (reply.json(), said)
