"""Reloads of a running server, end to end: zones and config reloaded through the
API and SIGHUP, all or nothing; the deletion guard at a reload and at start;
safe start; and every answer wholly one version while reloads run under load.

Each test builds a site of its own in its temporary directory (``site``
fixture, ``testkit.site``): a zones directory with ``operate.example.`` (and
``other.example.`` where a second zone is needed), a config with a free
control port on loopback, real HTTP backends on 127.0.8.x and the real server
process. The tests edit zone and config files as an operator does, reload
through ``POST /api/v1/reload`` or SIGHUP, restart, and observe through DNS,
the API, the state file and the log. Overrides, events and the rest of the
API: test_operate.py.

Waits are bounded polls (``testkit.wait``); nothing asserts how long anything
took. Every backend and server a test starts is stopped by the ``harness``
fixture's exit stack, server first. Behaviour the server gets wrong today is
marked ``xfail(strict=True, reason="BUG: ...")``: the fix flips it.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.message
import dns.rdatatype
import pytest

from testkit.harness import addresses, monitor, pool, query, wait_answer
from testkit.ports import free_port
from testkit.server import ServerProc, wait_ready
from testkit.site import (
    BROKEN,
    MANY,
    OTHER,
    POOL,
    RECORDS,
    ZONE,
    Site,
    other_text,
    rcode_of,
    run_serve,
    soa_serial,
    wait_serial,
    zone_text,
)
from testkit.wait import wait_for


def ip(x: int) -> str:
    return f"127.0.8.{x}"


def web(x: int) -> str:
    return f"web/{ip(x)}"


# == 1. reloads of zones and config, all or nothing, with the deletion guard =====================


def test_reload_through_the_api_and_sighup_serves_the_edited_zone(site: Site) -> None:
    site.configure([], [])
    srv = site.serve()
    site.zone.write_text(zone_text(2, extra="added IN A 192.0.2.111\n"))
    reply = site.reload()
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert (doc["ok"], doc["forced"], doc["zones"], doc["errors"]) == (True, False, {ZONE: 2}, [])
    assert soa_serial(srv) == 2  # served when the reply came
    assert addresses(srv, f"added.{ZONE}") == {"192.0.2.111"}

    site.zone.write_text(zone_text(3, extra="added IN A 192.0.2.112\n"))
    os.kill(srv.proc.pid, signal.SIGHUP)
    wait_serial(srv, 3)
    assert addresses(srv, f"added.{ZONE}") == {"192.0.2.112"}
    status = site.status()
    assert status["last_reload"]["ok"] is True
    assert [(z["name"], z["serial"]) for z in status["zones"]] == [(ZONE, 3)]


BAD_CONFIGS = {  # kind -> what the refusal names
    "syntax": "TOML",
    "negative weight": "weight",
    "unknown monitor": "monitor",
    "pool in no zone": "not inside a loaded zone",
    "pool beside a CNAME": "CNAME",
}


def _bad_config(site: Site, kind: str, hosts: list[str]) -> None:
    mon = [monitor(port=site.backends[hosts[0]].port)]
    members = [{"address": h} for h in hosts]
    if kind == "syntax":
        site.h.config.write_text(site.h.config.read_text() + "[[pool]\nowner = 'x'\n")
    elif kind == "negative weight":
        site.configure(mon, [pool(POOL, [{**members[0], "weight": -2}, members[1]])])
    elif kind == "unknown monitor":
        site.configure(mon, [pool(POOL, members, monitor="nosuch")])
    elif kind == "pool in no zone":
        site.configure(mon, [pool(POOL, members), pool("www.elsewhere.test.", members)])
    else:
        site.configure(mon, [pool(POOL, members), pool(f"alias.{ZONE}", members)])


@pytest.mark.parametrize("kind", list(BAD_CONFIGS))
def test_a_reload_with_a_bad_config_is_refused_and_nothing_of_it_applies(
    site: Site, kind: str
) -> None:
    a, b = site.backend_pool(ip(60), ip(61))
    site.zone.write_text(zone_text(1, extra="alias IN CNAME static\n"))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    good_config = site.h.config.read_text()
    _bad_config(site, kind, [a, b])
    site.zone.write_text(zone_text(2, extra="alias IN CNAME static\nadded IN A 192.0.2.9\n"))
    assert site.reload(force=True).status_code == 422  # force is the guard's override only
    reply = site.reload()
    assert reply.status_code == 422, reply.text
    doc = reply.json()
    errors = doc["detail"]["errors"]
    assert errors and any(BAD_CONFIGS[kind] in line for line in errors), errors
    assert doc["detail"]["ok"] is False
    # all or nothing: the zone edit made with it is not served either
    assert soa_serial(srv) == 1 and rcode_of(srv, f"added.{ZONE}") == "NXDOMAIN"
    assert addresses(srv, POOL) == {a, b}
    status = site.status()
    assert status["last_reload"]["ok"] is False
    assert BAD_CONFIGS[kind] in status["last_reload"]["message"]
    assert site.metric("dnsserve_reloads_total", result="refused") == 2

    site.h.config.write_text(good_config)
    assert site.reload().status_code == 200
    assert soa_serial(srv) == 2
    assert site.status()["last_reload"]["ok"] is True


# (name, how the zone file changes, what the refusal names)
GUARDED = [
    ("pool-name", {"drop": ("www",)}, f"www.{ZONE} (pool A)"),
    ("rrset-emptied", {"drop": ("mx",)}, f"{ZONE} MX"),
    ("too-many-records", {"many": MANY - 4}, f"4 of {RECORDS} records would go"),
]


@pytest.mark.parametrize(("case", "edit", "named"), GUARDED, ids=[g[0] for g in GUARDED])
def test_the_deletion_guard_refuses_a_reload_and_force_applies_it_once(
    site: Site, case: str, edit: dict[str, Any], named: str
) -> None:
    a, b = site.backend_pool(ip(62), ip(63))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    site.zone.write_text(zone_text(2, **edit))
    reply = site.reload()
    assert reply.status_code == 422, reply.text
    errors = reply.json()["detail"]["errors"]
    assert any(named in line and ZONE in line for line in errors), errors
    assert "--force" in reply.json()["error"] or "force" in reply.json()["error"]
    assert soa_serial(srv) == 1  # the old version keeps serving
    mx = query(srv, ZONE, "MX")
    assert mx is not None and len(mx.answer) == 1
    assert len(addresses(srv, f"many.{ZONE}") or ()) == MANY
    # SIGHUP is refused alike
    os.kill(srv.proc.pid, signal.SIGHUP)
    wait_for("the SIGHUP reload to be refused",
             lambda: site.metric("dnsserve_reloads_total", result="refused"), lambda n: n == 2)
    assert soa_serial(srv) == 1
    last = site.status()["last_reload"]
    assert last["ok"] is False and named in last["message"], last

    forced = site.reload(force=True)
    assert forced.status_code == 200, forced.text
    assert forced.json()["forced"] is True
    assert soa_serial(srv) == 2
    assert addresses(srv, POOL) == {a, b}  # the pool still answers its name
    # once: the next deletion is guarded again, against the forced version
    site.zone.write_text(zone_text(3, drop=("static", *edit.get("drop", ())),
                                   many=edit.get("many", MANY)))
    assert site.reload().status_code == 422
    assert soa_serial(srv) == 2


def test_small_deletions_pass_the_guard(site: Site) -> None:
    site.configure([], [])
    srv = site.serve()
    # three records may always go (one RRset thinned, nothing emptied)
    site.zone.write_text(zone_text(2, many=MANY - 3))
    reply = site.reload()
    assert reply.status_code == 200, reply.text
    assert len(addresses(srv, f"many.{ZONE}") or ()) == MANY - 3
    # a replaced address counts as one gone; a TTL change is no deletion
    site.zone.write_text(zone_text(3, many=MANY - 3).replace(
        "static IN A 192.0.2.90", "static 120 IN A 192.0.2.91"))
    assert site.reload().status_code == 200
    assert addresses(srv, f"static.{ZONE}") == {"192.0.2.91"}


def test_max_delete_fraction_is_read_from_the_config(site: Site) -> None:
    site.configure([], [], max_delete_fraction=0.5)
    srv = site.serve()
    site.zone.write_text(zone_text(2, many=MANY - 10))  # 10 of 27: over 10 %, under 50 %
    assert site.reload().status_code == 200
    assert len(addresses(srv, f"many.{ZONE}") or ()) == MANY - 10


def test_a_zone_file_without_its_apex_ns_keeps_the_served_version(site: Site) -> None:
    site.configure([], [])
    srv = site.serve()
    site.zone.write_text(zone_text(2, drop=("ns",)))
    reply = site.reload()
    # not served either way: accepted-but-reported (README) or refused (the guard)
    ns = query(srv, ZONE, "NS")
    assert ns is not None and [rr.to_text() for rr in ns.answer[0]] == [f"ns1.{ZONE}"]
    assert soa_serial(srv) == 1
    doc = reply.json()
    said = doc.get("warnings", []) + doc.get("detail", {}).get("errors", [])
    assert any(ZONE in line for line in said), doc
    [z] = site.status()["zones"]
    assert (z["serial"], z["ok"]) == (1, False)


def test_a_zone_that_fails_to_reload_is_reported_with_its_error(site: Site) -> None:
    site.configure([], [])
    site.serve()
    site.zone.write_text(zone_text(2, drop=("ns",)))
    reply = site.reload()
    said = site.said(reply) + [z["result"] for z in site.status()["zones"]]
    assert any("no NS records" in line for line in said), said


def test_a_content_change_without_a_serial_change_is_a_warning(site: Site) -> None:
    site.configure([], [])
    srv = site.serve()
    site.zone.write_text(zone_text(1, extra="added IN A 192.0.2.120\n"))
    reply = site.reload()
    assert reply.status_code == 200, reply.text
    warnings = reply.json()["warnings"]
    assert any(ZONE in w and "serial" in w for w in warnings), warnings
    assert addresses(srv, f"added.{ZONE}") == {"192.0.2.120"}  # served all the same


def test_a_config_reload_adds_and_removes_pools_and_members_keep_their_history(
    site: Site,
) -> None:
    a, b, c, d = (ip(x) for x in (64, 65, 66, 67))
    site.backends.update(site.h.http(a, b, c, d))
    mon = [monitor(port=site.backends[a].port)]
    kept = pool(POOL, [{"address": a}, {"address": b}])
    site.configure(mon, [kept, pool(f"old.{ZONE}", [{"address": c}])])
    srv = site.serve()
    site.wait_checked_up(web(64), web(65), web(66))
    site.backends[a].stop()
    wait_answer(srv, POOL, {b})
    wait_answer(srv, f"old.{ZONE}", {c})
    down = site.wait_member(web(64), "down", lambda m: m["real"] == "down")
    history = site.events(member=web(64))
    assert [e["to_state"] for e in history] == ["down"]

    site.configure(mon, [kept, pool(f"new.{ZONE}", [{"address": d}])])
    reply = site.reload()
    assert reply.status_code == 200, reply.text
    assert addresses(srv, f"new.{ZONE}") == {d}  # the added pool answers at once
    assert rcode_of(srv, f"old.{ZONE}") == "NXDOMAIN"  # the removed pool's name is gone
    assert addresses(srv, POOL) == {b}  # a is still down: its state was kept
    assert site.member(web(64))["since"] == down["since"]
    assert site.events(member=web(64)) == history
    status = site.status()
    assert [p["owner"] for p in status["pools"]] == [POOL, f"new.{ZONE}"]
    assert {m["member"] for m in status["members"]} == {web(64), web(65), web(67)}
    site.wait_checked_up(web(67))
    site.backends[a].start()
    wait_answer(srv, POOL, {a, b})


def test_a_config_reload_applies_changed_monitors_and_pool_settings(site: Site) -> None:
    fallback = ["192.0.2.203"]
    a, b = site.backend_pool(ip(56), ip(57), when_all_down="fallback", fallback=fallback)
    srv = site.serve()
    site.wait_checked_up(web(56), web(57))
    wait_answer(srv, POOL, {a, b})
    members = [{"address": a}, {"address": b}]
    # a new TTL and policy for the pool; the monitor now expects a body no backend sends
    site.configure([monitor(port=site.backends[a].port)],
                   [pool(POOL, members, ttl=33, policy="priority",
                         when_all_down="fallback", fallback=fallback)])
    assert site.reload().status_code == 200
    msg = query(srv, POOL)
    assert msg is not None and msg.answer[0].ttl == 33
    assert site.status()["pools"][0]["policy"] == "priority"
    site.configure([monitor(port=site.backends[a].port, expect_body="never sent")],
                   [pool(POOL, members, ttl=33, when_all_down="fallback", fallback=fallback)])
    assert site.reload().status_code == 200
    wait_answer(srv, POOL, set(fallback))  # both fail the changed check
    assert site.member(web(56))["result"] == "body mismatch"


def test_a_reload_keeps_api_overrides(site: Site) -> None:
    a, b = site.backend_pool(ip(58), ip(59))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    assert site.override(web(58), "drain", {"reason": "kept"}).status_code == 200
    wait_answer(srv, POOL, {b})
    site.zone.write_text(zone_text(2))
    assert site.reload().status_code == 200
    assert addresses(srv, POOL) == {b}
    assert site.member(web(58))["override"]["reason"] == "kept"


def test_settings_that_take_a_restart_are_reported(site: Site) -> None:
    site.configure([], [])
    srv = site.serve()
    moved = f"127.0.0.1:{free_port()}"
    site.configure([], [], control=moved, state=str(site.h.tmp_path / "elsewhere.db"))
    reply = site.reload()
    assert reply.status_code == 200, reply.text
    warnings = reply.json()["warnings"]
    for key in ("server.control", "server.state"):
        assert any(key in w and "takes a restart" in w for w in warnings), (key, warnings)
    assert site.status()["last_reload"]["ok"] is True  # the API answers where it was
    assert soa_serial(srv) == 1


def test_a_changed_listen_address_is_reported_as_taking_a_restart(site: Site) -> None:
    port = free_port()
    site.configure([], [], listen=[f"127.0.0.1:{port}"])
    log = site.h.tmp_path / "listen-from-config.log"
    with log.open("wb") as out:  # no --listen flag: the address comes from the file
        proc = subprocess.Popen(
            [sys.executable, "-m", "dnsserve", "serve", "-c", str(site.h.config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=site.h.tmp_path)
    srv = ServerProc(proc, "127.0.0.1", port, log)
    site.h.stack.callback(srv.stop)
    wait_ready(srv.host, port, proc)
    site.configure([], [], listen=[f"127.0.0.1:{free_port()}"])
    reply = site.reload()
    assert reply.status_code == 200, reply.text
    assert any("server.listen" in w and "takes a restart" in w
               for w in reply.json()["warnings"]), reply.json()
    assert soa_serial(srv) == 1  # still on the old address


def test_a_refused_reload_keeps_the_old_config_too(site: Site) -> None:
    a, b = site.backend_pool(ip(68), ip(69))
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    site.configure([monitor(port=site.backends[a].port)],
                   [pool(POOL, [{"address": a}]), pool(f"new.{ZONE}", [{"address": b}])])
    site.zone.write_text(zone_text(2, drop=("mx",)))  # the guard refuses this
    assert site.reload().status_code == 422
    assert rcode_of(srv, f"new.{ZONE}") == "NXDOMAIN"
    assert addresses(srv, POOL) == {a, b}
    assert [p["owner"] for p in site.status()["pools"]] == [POOL]


# == 2. the deletion guard at start ===============================================================


def test_each_accepted_version_is_recorded_in_the_state_file(site: Site) -> None:
    site.configure([], [])
    site.serve()
    wait_for("the first version recorded", site.zone_versions, lambda rows: len(rows) == 1)
    site.zone.write_text(zone_text(2, extra="added IN A 192.0.2.130\n"))
    assert site.reload().status_code == 200
    site.zone.write_text(zone_text(3, drop=("mx",)))
    assert site.reload().status_code == 422  # a refused version is not recorded
    rows = wait_for("the second version recorded", site.zone_versions,
                    lambda rows: len(rows) >= 2)
    assert rows == [(ZONE, 1, RECORDS), (ZONE, 2, RECORDS + 1)]
    assert site.zone_contents() == [ZONE]


def test_at_start_a_file_that_deletes_what_was_served_is_not_served(site: Site) -> None:
    a, b = site.backend_pool(ip(70), ip(71))
    srv = site.serve()
    wait_for("the first version recorded", site.zone_versions, lambda rows: len(rows) == 1)
    wait_answer(srv, POOL, {a, b})
    site.stop()
    site.zone.write_text(zone_text(2, drop=("mx",)))  # edited while the server was down

    srv = site.serve()
    assert soa_serial(srv) == 1  # the last accepted version, from the state file
    mx = query(srv, ZONE, "MX")
    assert mx is not None and [rr.to_text() for rr in mx.answer[0]] == [f"10 mail.{ZONE}"]
    assert addresses(srv, POOL) == {a, b}
    assert "serving the last accepted version" in srv.log_text()
    assert "--force" in srv.log_text()
    [z] = site.status()["zones"]
    assert z["serial"] == 1

    srv = site.restart("--force")
    assert soa_serial(srv) == 2
    mx = query(srv, ZONE, "MX")
    assert mx is not None and mx.answer == []
    srv = site.restart()  # the forced version is the accepted one now
    assert soa_serial(srv) == 2


def test_at_start_a_harmless_edit_is_served_and_recorded(site: Site) -> None:
    site.configure([], [])
    site.serve()
    wait_for("the first version recorded", site.zone_versions, lambda rows: len(rows) == 1)
    site.stop()
    site.zone.write_text(zone_text(2, extra="added IN A 192.0.2.131\n"))
    srv = site.serve()
    assert soa_serial(srv) == 2
    assert "last accepted version" not in srv.log_text()
    wait_for("the second version recorded", site.zone_versions, lambda rows: len(rows) == 2)


def test_a_zone_file_gone_at_start_is_not_dropped_silently(site: Site) -> None:
    site.configure([], [])
    site.other.write_text(other_text(1))
    site.serve()
    wait_for("both zones recorded", site.zone_versions, lambda rows: len(rows) == 2)
    site.stop()
    site.other.unlink()
    srv = site.serve()
    if soa_serial(srv, OTHER) == 1:
        return  # served from the last accepted version: nothing was lost
    told = [*site.status()["problems"], *(z["result"] for z in site.status()["zones"]
                                         if z["name"] == OTHER)]
    assert any(OTHER in line for line in told) or OTHER in srv.log_text(), told


def test_a_reload_after_a_guarded_start_is_guarded_against_the_served_version(
    site: Site,
) -> None:
    site.configure([], [])
    site.serve()
    wait_for("the first version recorded", site.zone_versions, lambda rows: len(rows) == 1)
    site.stop()
    site.zone.write_text(zone_text(2, drop=("mx",)))
    srv = site.serve()
    assert soa_serial(srv) == 1
    assert site.reload().status_code == 422  # the same file, the same verdict
    site.zone.write_text(zone_text(3))  # the operator puts the MX back
    assert site.reload().status_code == 200
    assert soa_serial(srv) == 3


# == 3. safe start ================================================================================


def test_a_broken_zone_is_set_aside_with_its_pools_and_the_rest_serves(site: Site) -> None:
    a, b, c = (ip(x) for x in (80, 81, 82))
    site.backends.update(site.h.http(a, b, c))
    site.other.write_text(other_text(1, BROKEN))
    site.configure([monitor(port=site.backends[a].port)],
                   [pool(POOL, [{"address": a}, {"address": b}]),
                    pool(f"app.{OTHER}", [{"address": c}])])
    srv = site.serve()
    wait_answer(srv, POOL, {a, b})
    assert rcode_of(srv, f"app.{OTHER}") == "REFUSED"  # not served at all
    status = site.status()
    zones = {z["name"]: z for z in status["zones"]}
    assert zones[ZONE]["ok"] is True
    assert (zones[OTHER]["ok"], zones[OTHER]["serial"]) == (False, None)
    assert "192.0.2.999" in zones[OTHER]["result"] or OTHER in zones[OTHER]["result"]
    assert [p["owner"] for p in status["pools"]] == [POOL]
    assert any(f"app.{OTHER}" in p and "set aside" in p for p in status["problems"]), \
        status["problems"]
    health = site.h.api("GET", "/healthz", token=False)
    assert health.status_code == 503
    assert OTHER in health.json()["zones_not_loaded"]

    site.other.write_text(other_text(2))
    reply = site.reload()
    assert reply.status_code == 200, reply.text
    wait_answer(srv, f"app.{OTHER}", {c})
    assert site.h.api("GET", "/healthz", token=False).status_code == 200
    assert site.status()["problems"] == []


def test_a_zone_broken_at_start_does_not_block_reloads_of_the_others(site: Site) -> None:
    a, c = ip(83), ip(84)
    site.backends.update(site.h.http(a, c))
    site.other.write_text(other_text(1, BROKEN))
    site.configure([monitor(port=site.backends[a].port)],
                   [pool(POOL, [{"address": a}]), pool(f"app.{OTHER}", [{"address": c}])])
    srv = site.serve()
    wait_answer(srv, POOL, {a})
    site.zone.write_text(zone_text(2, extra="added IN A 192.0.2.140\n"))
    reply = site.reload()
    assert reply.status_code == 200, reply.text
    assert soa_serial(srv) == 2


def test_healthz_is_200_when_every_zone_loaded(site: Site) -> None:
    site.other.write_text(other_text(1))
    site.configure([], [])
    site.serve()
    reply = site.h.api("GET", "/healthz", token=False)
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert (doc["listeners"], doc["zones_not_loaded"], doc["zones"]) == ("up", {}, 2)


@pytest.mark.parametrize("how", ["empty dir", "missing dir", "every zone broken"])
def test_no_zone_at_all_is_an_error_unless_allow_empty(site: Site, how: str) -> None:
    site.zone.unlink()
    if how == "missing dir":
        site.zones.rmdir()
    elif how == "every zone broken":
        site.other.write_text(other_text(1, BROKEN))
    site.configure([], [])
    done = run_serve(site.h, "-c", str(site.h.config))
    assert done.returncode == 1, done.stderr
    assert "no zone" in done.stderr and str(site.zones) in done.stderr, done.stderr
    if how == "every zone broken":
        assert "192.0.2.999" in done.stderr or f"{OTHER}zone" in done.stderr, done.stderr

    srv = site.serve("--allow-empty")
    assert rcode_of(srv, f"static.{ZONE}") == "REFUSED"
    status = site.status()
    assert all(z["ok"] is False for z in status["zones"])


def test_allow_empty_then_a_zone_appears_on_reload(site: Site) -> None:
    site.zone.unlink()
    site.configure([], [])
    srv = site.serve("--allow-empty")
    assert rcode_of(srv, f"static.{ZONE}") == "REFUSED"
    site.zone.write_text(zone_text(1))
    assert site.reload().status_code == 200
    assert soa_serial(srv) == 1


def test_a_pool_beside_a_cname_is_a_config_error_at_start(site: Site) -> None:
    site.zone.write_text(zone_text(1, extra="alias IN CNAME static\n"))
    backends = site.h.http(ip(85))
    site.configure([monitor(port=backends[ip(85)].port)],
                   [pool(f"alias.{ZONE}", [{"address": ip(85)}])])
    done = run_serve(site.h, "-c", str(site.h.config))
    assert done.returncode == 1, done.stderr
    assert "pool[0]" in done.stderr and f"alias.{ZONE}" in done.stderr, done.stderr
    assert "CNAME" in done.stderr


def test_check_exits_non_zero_for_a_broken_zone_and_its_set_aside_pool(site: Site) -> None:
    site.other.write_text(other_text(1, BROKEN))
    site.configure([monitor(port=8080)], [pool(f"app.{OTHER}", [{"address": ip(86)}])])
    done = site.h.cli("check", "-c", str(site.h.config), check=False)
    assert done.returncode == 1, done.stdout
    assert f"{OTHER}zone" in done.stdout and "error" in done.stdout, done.stdout
    assert "pool[0]" in done.stdout, done.stdout
    site.other.write_text(other_text(2))
    assert site.h.cli("check", "-c", str(site.h.config), check=False).returncode == 0


# == 4. reloads under load: every answer wholly one version =======================================

SWAP = "swap.example."
RELOADS = 20
MAX_QUERIES = 100_000  # per client: the bound, far above what 20 reloads take


def swap_text(version: int, serial: int) -> str:
    """Two versions whose answers have parts that depend on each other: the MX target
    and its A in the additional section; two TXT records that both carry the version."""
    return (f"$ORIGIN {SWAP}\n$TTL 60\n@ IN SOA ns1 hostmaster {serial} 60 60 600 60\n"
            f"  IN NS ns1\n  IN MX 10 mail-{version}\nns1 IN A 192.0.2.1\n"
            "mail-1 IN A 192.0.2.11\nmail-2 IN A 192.0.2.12\n"
            f't IN TXT "v{version} first"\nt IN TXT "v{version} second"\n')


def version_of(msg: dns.message.Message, qtype: str) -> int | str:
    """The one version a response belongs to, or a description of the mix."""
    if qtype == "MX":
        [mx] = [rr for rrset in msg.answer for rr in rrset]
        targets = {rr.exchange.to_text() for rr in [mx]}
        glue = {(rrset.name.to_text(), rr.address) for rrset in msg.additional
                if rrset.rdtype == dns.rdatatype.A for rr in rrset}
        n = int(mx.exchange.labels[0].decode().removeprefix("mail-"))
        if glue != {(f"mail-{n}.{SWAP}", f"192.0.2.1{n}")}:
            return f"MX {targets} with additional {glue}"
        return n
    texts = sorted(b"".join(rr.strings).decode() for rrset in msg.answer for rr in rrset)
    versions = {t.split()[0] for t in texts}
    if len(texts) != 2 or len(versions) != 1:
        return f"TXT {texts}"
    return int(versions.pop().removeprefix("v"))


@dataclass
class Client:
    """Sends MX and TXT queries one after the other until told to stop (bounded)."""

    srv: ServerProc
    tcp: bool
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    timeouts: int = 0
    mixed: list[str] = field(default_factory=list)
    seen: collections.Counter[int] = field(default_factory=collections.Counter)
    last: int = 0

    def wait_for(self, version: int) -> None:
        wait_for(f"the {'TCP' if self.tcp else 'UDP'} client to see version {version}",
                 lambda: self.last, lambda last: last == version)

    def run(self) -> None:
        ask = self.srv.tcp if self.tcp else self.srv.udp
        for i in range(MAX_QUERIES):
            if self.stop.is_set():
                return
            qtype = ("MX", "TXT")[i % 2]
            name = SWAP if qtype == "MX" else f"t.{SWAP}"
            self.sent += 1
            try:
                msg = ask(dns.message.make_query(name, qtype), timeout=5.0)
            except dns.exception.Timeout:
                self.timeouts += 1
                continue
            got = version_of(msg, qtype)
            if isinstance(got, str):
                self.mixed.append(got)
            else:
                self.seen[got] += 1
                self.last = got


def test_every_answer_during_reloads_is_wholly_one_version(site: Site) -> None:
    site.configure([], [])
    swap = site.zones / f"{SWAP}zone"
    swap.write_text(swap_text(1, 1))
    srv = site.serve()
    clients = [Client(srv, tcp=False), Client(srv, tcp=True)]
    threads = [threading.Thread(target=c.run, name=f"client-{c.tcp}") for c in clients]
    for t in threads:
        t.start()
    try:
        for k in range(RELOADS):
            version, serial = 2 - k % 2, k + 2
            swap.write_text(swap_text(version, serial))
            if k % 2:
                os.kill(srv.proc.pid, signal.SIGHUP)
                wait_serial(srv, serial, SWAP)
            else:
                reply = site.reload()
                assert reply.status_code == 200, reply.text
            for c in clients:
                c.wait_for(version)
    finally:
        for c in clients:
            c.stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    for c in clients:
        assert c.mixed == [], c.mixed[:5]
        assert c.timeouts == 0, f"{c.timeouts} of {c.sent} queries unanswered"
        assert set(c.seen) == {1, 2}
    assert site.status()["last_reload"]["ok"] is True
    assert site.metric("dnsserve_reloads_total", result="accepted") == RELOADS + 1
