"""A validating resolver checks dnsserve's DNSSEC answers: BIND's ``delv``.

Owns the end-to-end check of issue 8 §1 by code that is not ours: the test
zone (``testkit.signing``) is signed at test time, served by dnsserve on
loopback, and ``delv`` (a validating resolver in one process) asks it with
the zone's key-signing key as its only trust anchor (``+root=ZONE``), so
every answer must validate up to that key: a name, a CNAME, NXDOMAIN,
NODATA, an empty non-terminal, a wildcard answer and a wildcard NODATA, the
DS of a secure delegation and the proof that an insecure one has none. The
control: a copy of the zone with one RRSIG's signature bytes changed must
fail validation (the check can fail).

With NSEC3 opt-out, a wildcard answer's proof is an opt-out NSEC3, which
validators take as insecure (RFC 5155 §9.2; Knot's answer gets the same
verdict): there the wildcard is not asked.

Must not: query anything but the server on loopback (delv is pointed at it
with ``@127.0.0.1 -p PORT`` and needs no root hints: the anchor is the
zone's), or leave a process running.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.peers import required_binary
from testkit.server import ServerProc, start_server
from testkit.signing import ORIGIN, VALIDATED, SignedZone, sign_zone, tamper

DELV_SECONDS = 30.0
VARIANTS = {
    "nsec": {},
    "nsec3": {"nsec3_salt": "aabbcc", "algorithm": "ED25519"},
    "nsec3-optout": {"nsec3_salt": "-", "opt_out": True},
}
# (name, type, what delv must say): every answer kind a validator checks.
SECURE = [
    *VALIDATED,
    ("y.wild", "AAAA", "; negative response, fully validated"),
    ("z.wild", "TXT", "; fully validated"),
]
_WILDCARDS = {"x.wild", "y.wild", "z.wild"}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def signed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[str, SignedZone]:
    tmp = tmp_path_factory.mktemp(request.param)
    return request.param, sign_zone(tmp / "keys", **VARIANTS[request.param])  # type: ignore[arg-type]


@pytest.fixture(params=[1, 2], ids=["workers1", "workers2"])
def served(request: pytest.FixtureRequest, signed: tuple[str, SignedZone], tmp_path: Path
           ) -> Iterator[ServerProc]:
    srv = start_server(tmp_path, zones=signed[1].path.parent, workers=request.param)
    yield srv
    srv.stop()


def delv(zone: SignedZone, srv: ServerProc, work: Path, name: str, rdtype: str) -> str:
    """delv's verdict and answer for ``name``/``rdtype``, the zone's KSK the only anchor."""
    binary = required_binary("delv", "BIND tool")
    anchor = work / "anchor.conf"
    anchor.write_text(zone.anchor_text())
    done = subprocess.run(
        [binary, f"@{srv.host}", "-p", str(srv.port), "-a", str(anchor),
         f"+root={zone.origin.rstrip('.')}", f"{name}.{zone.origin}", rdtype],
        capture_output=True, text=True, timeout=DELV_SECONDS,
    )
    return done.stdout + done.stderr


def test_answers_validate(signed: tuple[str, SignedZone], served: ServerProc, tmp_path: Path
                          ) -> None:
    variant, zone = signed
    failures = []
    for name, rdtype, verdict in SECURE:
        if variant == "nsec3-optout" and name in _WILDCARDS:
            continue
        said = delv(zone, served, tmp_path, name, rdtype)
        if verdict not in said.splitlines():
            failures.append(f"{name} {rdtype}: wanted {verdict!r}, delv said:\n{said}")
    assert not failures, "\n".join(failures)


def test_tampered_signature_fails_validation(tmp_path: Path) -> None:
    """The control: the same check rejects a zone whose RRSIG over www A was altered."""
    zone = sign_zone(tmp_path / "keys")
    srv = start_server(tmp_path, zones=tamper(zone, "www." + ORIGIN, "A", tmp_path / "bad").parent)
    try:
        bad = delv(zone, srv, tmp_path, "www", "A")
        good = delv(zone, srv, tmp_path, "mail", "A")
    finally:
        srv.stop()
    assert "; fully validated" not in bad.splitlines()
    assert "resolution failed" in bad
    assert "; fully validated" in good.splitlines()  # the rest of the zone still validates
