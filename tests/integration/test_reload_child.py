"""A reload of zone files large enough to be read in a child process (zones.offload).

The real server on a loopback port with a zone of over 1 MiB (``OFFLOAD_BYTES``)
and a small one beside it: a SIGHUP after an edit of the large zone reads it in
a child process, serves the edit, and keeps the small zone, unchanged, without
reading it again.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import dns.message
import dns.rdatatype

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
