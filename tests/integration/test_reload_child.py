"""A reload of zone files large enough to be read in a child process (zones.offload).

The real server on a loopback port with a zone of over 1 MiB (``OFFLOAD_BYTES``)
and a small one beside it: a SIGHUP after an edit of the large zone reads it in
a child process, serves the edit, and keeps the small zone, unchanged, without
reading it again.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import dns.message
import dns.rdatatype
import pytest

from dnsserve.zones.offload import OFFLOAD_BYTES
from testkit.server import start_server
from testkit.wait import wait_for

HEAD = "$ORIGIN big.example.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 60 60 600 60\n@ NS ns1\n"
SMALL = "$ORIGIN small.example.\n$TTL 300\n@ SOA ns1 h 1 60 60 600 60\n@ NS ns1\nns1 A 192.0.2.1\n"


def big_zone(serial: int, last: str) -> str:
    lines = [HEAD.format(serial=serial), "ns1 A 192.0.2.1\n"]
    lines += [f"host-{i:06d} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n"
              for i in range(45_000)]
    lines.append(f"last A {last}\n")
    return "".join(lines)


def answer(srv: object, qname: str, qtype: str) -> list[str]:
    response = srv.udp(dns.message.make_query(qname, qtype))  # type: ignore[attr-defined]
    return sorted(rr.to_text() for rrset in response.answer for rr in rrset)


def test_a_large_zone_reloads_through_a_child_and_an_unchanged_one_is_kept(
    tmp_path: Path,
) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "big.example.zone").write_text(big_zone(1, "192.0.2.10"))
    (zones / "small.example.zone").write_text(SMALL)
    assert (zones / "big.example.zone").stat().st_size > OFFLOAD_BYTES
    srv = start_server(tmp_path, zones=zones, ready_seconds=120)
    try:
        assert answer(srv, "last.big.example.", "A") == ["192.0.2.10"]
        (zones / "big.example.zone").write_text(big_zone(2, "192.0.2.20"))
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("the edit to be served", lambda: answer(srv, "last.big.example.", "A"),
                 lambda found: found == ["192.0.2.20"], seconds=120)
        log = srv.log_text()
        assert "zone files read in a child process" in log
        assert "1 read, 1 unchanged" in log
        assert answer(srv, "ns1.small.example.", "A") == ["192.0.2.1"]
        assert answer(srv, "host-000007.big.example.", "A") == ["10.0.0.7"]
        soa = srv.udp(dns.message.make_query("big.example.", dns.rdatatype.SOA))
        assert soa.answer[0][0].serial == 2
    finally:
        srv.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_child_compares_with_what_is_served_guard_and_versions_included(
    tmp_path: Path, workers: int,
) -> None:
    """The diff and hashes made in the child: an edit of one record is recorded in the
    state file as 2 records removed (the SOA and the A) and 2 added; a file that would
    delete a fifth of the zone is refused by the guard, and the old zone keeps serving."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "big.example.zone").write_text(big_zone(1, "192.0.2.10"))
    srv = start_server(tmp_path, zones=zones, ready_seconds=120, workers=workers)
    try:
        (zones / "big.example.zone").write_text(big_zone(2, "192.0.2.20"))
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("the edit to be served", lambda: answer(srv, "last.big.example.", "A"),
                 lambda found: found == ["192.0.2.20"], seconds=120)
        wait_for("the version to be recorded", lambda: versions(tmp_path),
                 lambda found: len(found) == 2, seconds=30)
        assert versions(tmp_path)[-1] == (2, 45_004, 2, 2)
        cut = big_zone(3, "192.0.2.30").splitlines(keepends=True)
        (zones / "big.example.zone").write_text("".join(cut[: len(cut) * 4 // 5]))
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("the refusal", srv.log_text, lambda log: "reload refused" in log, seconds=120)
        assert answer(srv, "last.big.example.", "A") == ["192.0.2.20"]
        assert len(versions(tmp_path)) == 2
    finally:
        srv.stop()


def versions(state_dir: Path) -> list[tuple[int, int, int, int]]:
    """(serial, records, added, removed) of each recorded version, oldest first."""
    with contextlib.closing(sqlite3.connect(f"file:{state_dir / 'dnsserve.db'}?mode=ro",
                                            uri=True)) as db:
        try:
            rows = db.execute("SELECT serial, records, added, removed FROM zone_versions"
                              " ORDER BY id").fetchall()
        except sqlite3.OperationalError:
            return []
    return [tuple(r) for r in rows]


def test_an_online_signed_zone_reloaded_in_the_child_logs_its_signing(tmp_path: Path) -> None:
    """The child signs the large zone again; its "signed in ...: N made, M kept" line
    reaches the server's log as a small zone's does."""
    subprocess.run([sys.executable, "-m", "dnsserve", "dnssec-keygen", "big.example."],
                   cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
    zones = tmp_path / "zones"
    zones.mkdir()
    text = "x" * 250
    body = "".join(f'txt-{i:05d} TXT "{text}" "{text}"\n' for i in range(2_200))
    (zones / "big.example.zone").write_text(HEAD.format(serial=1) + "ns1 A 192.0.2.1\n" + body
                                            + "last A 192.0.2.10\n")
    assert (zones / "big.example.zone").stat().st_size > OFFLOAD_BYTES
    config = tmp_path / "dnsserve.toml"
    config.write_text('[[zone]]\nname = "big.example."\ndnssec = { keys = "keys/big.example" }\n')
    srv = start_server(tmp_path, "-c", str(config), zones=zones, ready_seconds=120)
    try:
        assert answer(srv, "last.big.example.", "A") == ["192.0.2.10"]
        (zones / "big.example.zone").write_text(HEAD.format(serial=2) + "ns1 A 192.0.2.1\n"
                                                + body + "last A 192.0.2.20\n")
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_for("the edit to be served", lambda: answer(srv, "last.big.example.", "A"),
                 lambda found: found == ["192.0.2.20"], seconds=120)
        log = srv.log_text()
    finally:
        srv.stop()
    assert "zone files read in a child process" in log
    signed = re.findall(r"zone big\.example\. signed in [0-9.]+ s: (\d+) signatures made, "
                        r"(\d+) kept", log)
    assert len(signed) == 2, log  # the start's, and the reload's in the child
    made, kept = (int(n) for n in signed[1])
    assert kept > 4_000 and 0 < made < 10, signed  # the edit, its NSECs and the SOA
