"""Online signing (issue 8 §2), checked by BIND's tools, not by our own code.

Keys are made with ``dnsserve dnssec-keygen`` (BIND's ``dnssec-dsfromkey``
must read them, and give the DS ``dnsserve dnssec ds`` prints); the test
zone (``testkit.signing``'s, unsigned) is served with ``[[zone]] dnssec``,
so dnsserve signs it at load; ``delv`` with the zone's KSK as its only
trust anchor validates a name, a CNAME, NXDOMAIN, NODATA, an empty
non-terminal, a wildcard and the DS proofs; ``dnssec-verify`` accepts an
AXFR of the zone.

Must not: query anything but the server on loopback, or leave a process running.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.zone
import httpx
import pytest

from testkit.backends import HttpBackend, close_all
from testkit.harness import monitor, pool, render_config, wait_answer
from testkit.peers import required_binary
from testkit.ports import common_port
from testkit.server import ServerProc, free_port, start_server
from testkit.signing import ORIGIN, SIGNED_ZONE, VALIDATED, sign_zone
from testkit.wait import wait_for

TOOL_SECONDS = 60.0
SECURE = [
    *VALIDATED,
    ("@", "DNSKEY", "; fully validated"),
]


def _now() -> float:
    return time.time()


def dnsserve(*args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "dnsserve", *args], capture_output=True,
                          text=True, timeout=TOOL_SECONDS, cwd=cwd, check=True)
    return done.stdout


@dataclass(frozen=True)
class Online:
    """An online-signed zone's setup: config, keys, the KSK file."""

    work: Path
    config: Path
    zones: Path
    keys: Path

    @property
    def ksk(self) -> Path:
        return next(p for p in sorted(self.keys.glob("*.key")) if "key-signing" in p.read_text())

    def anchor_text(self) -> str:
        line = next(x for x in self.ksk.read_text().splitlines() if " DNSKEY " in x)
        flags, protocol, algorithm, *key = line.split(" DNSKEY ", 1)[1].split()
        return (f'trust-anchors {{\n  "{ORIGIN}" static-key {flags} {protocol} {algorithm} '
                f'"{"".join(key)}";\n}};\n')


def setup_online(work: Path, algorithm: str = "ECDSAP256SHA256", extra: str = "") -> Online:
    """Keys made by ``dnsserve dnssec-keygen``, the zone unsigned, the config naming them."""
    work.mkdir(parents=True, exist_ok=True)
    dnsserve("dnssec-keygen", ORIGIN, "--algorithm", algorithm, cwd=work)
    zones = work / "zones"
    zones.mkdir()
    (zones / f"{ORIGIN.rstrip('.')}.zone").write_text(SIGNED_ZONE)
    config = work / "dnsserve.toml"
    config.write_text(
        f'[[zone]]\nname = "{ORIGIN}"\nallow_transfer = ["127.0.0.1/32"]\n'
        f'dnssec = {{ keys = "keys/{ORIGIN.rstrip(".")}", algorithm = "{algorithm}" }}\n'
        + extra)
    return Online(work, config, zones, work / "keys" / ORIGIN.rstrip("."))


def delv(online: Online, srv: ServerProc, name: str, rdtype: str) -> str:
    binary = required_binary("delv", "BIND tool")
    anchor = online.work / "anchor.conf"
    anchor.write_text(online.anchor_text())
    qname = ORIGIN if name == "@" else f"{name}.{ORIGIN}"
    done = subprocess.run(
        [binary, f"@{srv.host}", "-p", str(srv.port), "-a", str(anchor),
         f"+root={ORIGIN.rstrip('.')}", qname, rdtype],
        capture_output=True, text=True, timeout=TOOL_SECONDS,
    )
    return done.stdout + done.stderr


@pytest.fixture(scope="module", params=["ECDSAP256SHA256", "ED25519"])
def online(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Online:
    return setup_online(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def served(online: Online) -> Iterator[ServerProc]:
    srv = start_server(online.work, "-c", str(online.config), zones=online.zones, workers=2)
    yield srv
    srv.stop()


def test_keys_are_read_by_bind(online: Online) -> None:
    """dnssec-dsfromkey reads the KSK dnsserve made, and gives the DS ``dnssec ds`` prints."""
    tool = required_binary("dnssec-dsfromkey", "BIND tool")
    theirs = subprocess.run([tool, "-2", str(online.ksk)], capture_output=True, text=True,
                            timeout=TOOL_SECONDS, check=True).stdout.split()
    ours = dnsserve("dnssec", "ds", ORIGIN, "-c", str(online.config), cwd=online.work).split()
    assert [w.upper() for w in ours] == [w.upper() for w in theirs]


def test_online_signed_answers_validate(online: Online, served: ServerProc) -> None:
    failures = []
    for name, rdtype, verdict in SECURE:
        said = delv(online, served, name, rdtype)
        if verdict not in said.splitlines():
            failures.append(f"{name} {rdtype}: wanted {verdict!r}, delv said:\n{said}")
    assert not failures, "\n".join(failures)


def test_axfr_of_an_online_signed_zone_verifies(online: Online, served: ServerProc) -> None:
    verify = required_binary("dnssec-verify", "BIND tool")
    xfr = dns.query.xfr(served.host, dns.name.from_text(ORIGIN), port=served.port, timeout=10,
                        relativize=False)
    copy = dns.zone.from_xfr(xfr, relativize=False)
    signatures = sum(1 for node in copy.values() for rds in node
                     if rds.rdtype == dns.rdatatype.RRSIG)
    assert signatures > 20
    out = online.work / "axfr.zone"
    copy.to_file(str(out), relativize=False)
    done = subprocess.run([verify, "-o", ORIGIN, str(out)], capture_output=True, text=True,
                          timeout=TOOL_SECONDS, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Zone fully signed" in done.stdout + done.stderr


POOL = """
[[monitor]]
name = "web"
kind = "tcp"
port = 9

[[pool]]
owner = "{origin}"
type = "A"
monitor = "web"
members = [{{ address = "127.0.0.41" }}, {{ address = "127.0.0.42" }}]
"""


def test_pool_in_a_presigned_zone_is_refused(tmp_path: Path) -> None:
    """A pool in a zone signed beforehand (no keys in the config) is refused by
    ``check`` and at start, saying why."""
    zone = sign_zone(tmp_path / "zones")
    config = tmp_path / "dnsserve.toml"
    config.write_text('[server]\ncontrol = ""\n' + POOL.format(origin="www." + ORIGIN))
    checked = subprocess.run(
        [sys.executable, "-m", "dnsserve", "check", "-c", str(config), "--zones",
         str(zone.path.parent)], capture_output=True, text=True, timeout=TOOL_SECONDS)
    assert checked.returncode == 1
    assert "has no [[zone]] dnssec keys" in checked.stdout + checked.stderr
    started = subprocess.run(
        [sys.executable, "-m", "dnsserve", "serve", "-c", str(config), "--zones",
         str(zone.path.parent), "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=TOOL_SECONDS, cwd=tmp_path)
    assert started.returncode != 0
    assert "has no [[zone]] dnssec keys" in started.stdout + started.stderr


def test_pool_answers_validate_before_and_after_a_flip(tmp_path: Path) -> None:
    """A pool in an online-signed zone: its answer is signed when its selection is
    made, so delv validates it with both members up and after one goes down."""
    a, b = "127.0.0.151", "127.0.0.152"
    port = common_port([a, b])
    backends = {h: HttpBackend(h, port) for h in (a, b)}
    try:
        for backend in backends.values():
            backend.start()
        online = setup_online(tmp_path, extra=render_config({
            "monitor": [monitor(port=port)],
            "pool": [pool(f"www.{ORIGIN}", [{"address": a}, {"address": b}])],
        }))
        srv = start_server(tmp_path, "-c", str(online.config), zones=online.zones, workers=2)
        try:
            wait_answer(srv, f"www.{ORIGIN}", {a, b})
            before = delv(online, srv, "www", "A")
            backends[a].stop()
            wait_answer(srv, f"www.{ORIGIN}", {b})
            after = delv(online, srv, "www", "A")
            other = delv(online, srv, "www", "TXT")  # the pool's name, another type
        finally:
            srv.stop()
    finally:
        close_all(list(backends.values()))
    assert "; fully validated" in before.splitlines(), before
    assert a in before and b in before
    assert "; fully validated" in after.splitlines(), after
    assert b in after and a not in after
    assert "; fully validated" in other.splitlines(), other


def _expiration(srv: ServerProc, name: str, rdtype: str) -> int | None:
    query = dns.message.make_query(f"{name}.{ORIGIN}", rdtype, want_dnssec=True)
    try:
        reply = dns.query.udp(query, srv.host, port=srv.port, timeout=2)
    except dns.exception.Timeout:
        return None
    sigs = [r for rrset in reply.answer if rrset.rdtype == dns.rdatatype.RRSIG for r in rrset]
    return min(s.expiration for s in sigs) if sigs else None


def test_signatures_are_refreshed_without_a_restart(tmp_path: Path) -> None:
    """With a short validity, the owner's timer re-signs the zone and its pool: later
    expirations are served, and they still validate."""
    a = "127.0.0.153"
    port = common_port([a])
    backend = HttpBackend(a, port)
    try:
        backend.start()
        online = setup_online(tmp_path, extra=render_config({
            "monitor": [monitor(port=port)],
            "pool": [pool(f"www.{ORIGIN}", [{"address": a}])],
        }))
        text = online.config.read_text().replace(
            'algorithm = "ECDSAP256SHA256" }',
            'algorithm = "ECDSAP256SHA256", validity = "100", refresh = "85" }')
        online.config.write_text(text)
        srv = start_server(tmp_path, "-c", str(online.config), zones=online.zones)
        try:
            wait_answer(srv, f"www.{ORIGIN}", {a})
            first = {(n, t): _expiration(srv, n, t) for n, t in (("mail", "A"), ("www", "A"))}
            assert None not in first.values()
            later = {
                k: wait_for(f"{k} signed again", lambda k=k: _expiration(srv, *k),
                            lambda got, k=k: got is not None and got > first[k], seconds=120)
                for k in first
            }
            mail = delv(online, srv, "mail", "A")
            www = delv(online, srv, "www", "A")
        finally:
            srv.stop()
    finally:
        close_all([backend])
    assert all((later[k] or 0) > (first[k] or 0) for k in first)
    assert "; fully validated" in mail.splitlines(), mail
    assert "; fully validated" in www.splitlines(), www


def _signatures(srv: ServerProc, name: str, rdtype: str) -> tuple[bytes, ...]:
    """The RRSIGs (rdata wire) answered with ``name``/``rdtype``, and its rdatas' text."""
    query = dns.message.make_query(f"{name}.{ORIGIN}" if name != "@" else ORIGIN, rdtype,
                                   want_dnssec=True)
    reply = dns.query.tcp(query, srv.host, port=srv.port, timeout=5)
    return tuple(sorted(r.to_wire() or b"" for rrset in reply.answer
                        if rrset.rdtype == dns.rdatatype.RRSIG for r in rrset))


def test_a_reload_keeps_the_signatures_of_what_did_not_change(tmp_path: Path) -> None:
    """One record changed and the serial bumped: a reload signs that RRset and the SOA
    again, keeps every other signature byte for byte, and the answers validate."""
    online = setup_online(tmp_path)
    srv = start_server(tmp_path, "-c", str(online.config), zones=online.zones)
    try:
        before = {k: _signatures(srv, *k) for k in (("mail", "A"), ("www", "A"), ("@", "SOA"))}
        assert all(before.values())
        time.sleep(1.1)  # signatures made now would have another inception (whole seconds)
        zone = online.zones / f"{ORIGIN.rstrip('.')}.zone"
        zone.write_text(SIGNED_ZONE.replace("2026120201", "2026120202")
                        .replace("www A 192.0.2.3", "www A 192.0.2.33"))
        srv.proc.send_signal(signal.SIGHUP)
        wait_answer(srv, f"www.{ORIGIN}", {"192.0.2.33"})
        after = {k: _signatures(srv, *k) for k in before}
        www = delv(online, srv, "www", "A")
        mail = delv(online, srv, "mail", "A")
    finally:
        srv.stop()
    assert after[("mail", "A")] == before[("mail", "A")]  # kept
    assert after[("www", "A")] != before[("www", "A")]  # its RRset changed
    assert after[("@", "SOA")] != before[("@", "SOA")]  # the serial changed
    assert "; fully validated" in www.splitlines(), www
    assert "; fully validated" in mail.splitlines(), mail


def test_status_and_metrics_show_signature_expiry(tmp_path: Path) -> None:
    """``status`` and ``/metrics`` show when the zone's first signature expires."""
    control = f"127.0.0.1:{free_port()}"
    online = setup_online(tmp_path, extra=f'\n[server]\ncontrol = "{control}"\n')
    srv = start_server(tmp_path, "-c", str(online.config), zones=online.zones)
    try:
        metrics = httpx.get(f"http://{control}/metrics", timeout=10).text
        shown = json.loads(dnsserve("status", "-c", str(online.config), "--format", "json",
                                    cwd=tmp_path))
    finally:
        srv.stop()
    expiring = [line for line in metrics.splitlines()
                if line.startswith("dnsserve_dnssec_signature_expiry_seconds{")]
    assert expiring and f'zone="{ORIGIN}"' in expiring[0]
    at = float(expiring[0].split()[-1])
    docs = shown[0]["zones"]
    (zone,) = [z for z in docs if z["name"] == ORIGIN]
    assert zone["signatures_expire"] == at
    assert at - _now() > 13 * 86400  # the default validity: 14 days from the load


def test_another_key_as_anchor_fails_validation(online: Online, served: ServerProc,
                                                tmp_path: Path) -> None:
    """The control: with a KSK the zone is not signed by as the anchor, delv rejects
    the same answers (the check can fail)."""
    dnsserve("dnssec-keygen", ORIGIN, "--dir", str(tmp_path / "other"), cwd=tmp_path)
    stranger = Online(tmp_path, online.config, online.zones, tmp_path / "other")
    said = delv(stranger, served, "www", "A")
    assert "; fully validated" not in said.splitlines()
    assert "resolution failed" in said, said


def test_pool_name_missing_from_an_online_signed_zone_is_refused(tmp_path: Path) -> None:
    """The denial chain is made at load: a pool whose name is not in the zone file
    would be denied by it, so ``check`` refuses it, saying why."""
    online = setup_online(tmp_path, extra=POOL.format(origin="nowhere." + ORIGIN))
    checked = subprocess.run(
        [sys.executable, "-m", "dnsserve", "check", "-c", str(online.config)],
        capture_output=True, text=True, timeout=TOOL_SECONDS, cwd=tmp_path)
    assert checked.returncode == 1
    assert "is not in its zone file" in checked.stdout + checked.stderr
