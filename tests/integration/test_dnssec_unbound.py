"""Unbound validates dnsserve's DNSSEC answers: AD set for signed answers and denials.

Owns the second validating resolver of issue 8 §1 (``test_dnssec_validation``
runs BIND's ``delv``): Unbound (Debian ``unbound``) on loopback, with
``module-config: "validator iterator"``, the test zone's KSK as its only
trust anchor, a stub-zone pointing at dnsserve, ``do-not-query-localhost:
no``, no remote control, and every other name refused locally (``local-zone:
"." refuse``), so it sends nothing off loopback and needs no root hints.
Asked with DO, a name, NXDOMAIN, NODATA and a wildcard must come back with
AD set; the control: a zone whose RRSIG over www A was altered gives
SERVFAIL for that name (the check can fail). Every process is stopped by PID.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from testkit.peers import required_binary
from testkit.ports import free_port
from testkit.server import ServerProc, answers, start_server
from testkit.signing import ORIGIN, SignedZone, sign_zone, tamper
from testkit.wait import wait_for

# (name, type, rcode): each must validate (AD).
SECURE = [("www", "A", "NOERROR"), ("nx", "A", "NXDOMAIN"), ("www", "MX", "NOERROR"),
          ("x.wild", "A", "NOERROR"), ("c.ent", "A", "NOERROR")]


@dataclass
class Unbound:
    proc: subprocess.Popen[bytes]
    port: int

    def ask(self, name: str, rdtype: str) -> dns.message.Message:
        q = dns.message.make_query(f"{name}.{ORIGIN}", rdtype, want_dnssec=True)
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_unbound(work: Path, zone: SignedZone, srv: ServerProc) -> Unbound:
    binary = required_binary("unbound", "validating resolver")
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    key = next(line for line in zone.ksk.read_text().splitlines() if " DNSKEY " in line)
    (work / "anchor").write_text(key + "\n")
    conf = work / "unbound.conf"
    conf.write_text(f"""server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-not-query-localhost: no
    username: ""
    chroot: ""
    directory: "{work}"
    pidfile: "{work}/unbound.pid"
    use-syslog: no
    logfile: "{work}/unbound.log"
    module-config: "validator iterator"
    trust-anchor-file: "{work}/anchor"
    trust-anchor-signaling: no
    root-key-sentinel: no
    access-control: 127.0.0.0/8 allow
    local-zone: "." refuse
    local-zone: "{ORIGIN}" transparent
remote-control:
    control-enable: no
stub-zone:
    name: "{ORIGIN}"
    stub-addr: 127.0.0.1@{srv.port}
""")
    proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    unbound = Unbound(proc, port)
    try:
        wait_for("unbound to answer", lambda: answers("127.0.0.1", port), lambda ok: ok,
                 seconds=20)
    except BaseException:
        unbound.stop()
        raise
    return unbound


@pytest.fixture(params=[1, 2], ids=["workers1", "workers2"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SignedZone, Unbound]]:
    zone = sign_zone(tmp_path / "keys", nsec3_salt="aabbcc")
    srv = start_server(tmp_path, zones=zone.path.parent, workers=request.param)
    try:
        unbound = start_unbound(tmp_path / "unbound", zone, srv)
        yield zone, unbound
        unbound.stop()
    finally:
        srv.stop()


def test_unbound_validates_answers_and_denials(served: tuple[SignedZone, Unbound]) -> None:
    _, unbound = served
    for name, rdtype, rcode in SECURE:
        r = unbound.ask(name, rdtype)
        assert dns.rcode.to_text(r.rcode()) == rcode, (name, rdtype, r)
        assert r.flags & dns.flags.AD, f"{name} {rdtype} not validated:\n{r}"


def test_unbound_rejects_a_tampered_signature(tmp_path: Path) -> None:
    zone = sign_zone(tmp_path / "keys")
    srv = start_server(tmp_path, zones=tamper(zone, "www." + ORIGIN, "A", tmp_path / "bad").parent)
    try:
        unbound = start_unbound(tmp_path / "unbound", zone, srv)
        try:
            bad, good = unbound.ask("www", "A"), unbound.ask("mail", "A")
        finally:
            unbound.stop()
    finally:
        srv.stop()
    assert bad.rcode() == dns.rcode.SERVFAIL and not bad.answer
    assert good.flags & dns.flags.AD  # the rest of the zone still validates
