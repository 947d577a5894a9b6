"""Zone transfers in: the blocking dnspython calls of one secondary zone's refresh.

Owns asking a primary for a zone's SOA serial (UDP, TCP when truncated; an
answer without AA is no serial), transferring the zone (AXFR, or IXFR onto
the copy we hold, which the primary may answer AXFR-style: ``Transferred``
says which came), and writing a copy atomically (temporary file, fsync,
rename, fsync of the directory). Each call is bounded by its timeouts and
runs in a daemon thread (``secondary`` calls them through
``daemonthread.in_daemon_thread``); a TSIG key signs every request when given.

Must not: decide anything (whether to transfer, whether to serve: that is
``secondary`` and ``xfr.refresh``), touch the event loop, or write anything
but the copy it is given.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdtypes.ANY.SOA
import dns.tsig
import dns.xfr
import dns.zone
from dns.rdatatype import RdataType

from dnsserve.errors import DnsServeError

SOA_TIMEOUT = 3.0  # one SOA query to one primary
TRANSFER_TIMEOUT = 10.0  # waiting for one message of a transfer
TRANSFER_LIFETIME = 120.0  # a whole transfer


class TransferError(DnsServeError):
    """A refresh that did not leave us with a usable version (the message says why)."""


@dataclass(frozen=True, slots=True)
class Transferred:
    zone: dns.zone.Zone
    kind: str  # "axfr", or "ixfr" when the primary sent differences


def soa_serial(origin: dns.name.Name, host: str, port: int, key: dns.tsig.Key | None) -> int:
    """The primary's SOA serial for ``origin``."""
    query = dns.message.make_query(origin, RdataType.SOA)
    query.flags &= ~dns.flags.RD
    if key is not None:
        query.use_tsig(key)
    response, _ = dns.query.udp_with_fallback(query, host, port=port, timeout=SOA_TIMEOUT)
    if response.rcode() != dns.rcode.NOERROR:
        raise TransferError(f"SOA query answered {dns.rcode.to_text(response.rcode())}")
    if not response.flags & dns.flags.AA:
        raise TransferError("SOA query answered without AA: not authoritative for the zone")
    rrset = response.get_rrset(response.answer, origin, dns.rdataclass.IN, RdataType.SOA)
    if rrset is None or not isinstance(rrset[0], dns.rdtypes.ANY.SOA.SOA):
        raise TransferError("SOA query answered without the zone's SOA")
    return int(rrset[0].serial)


def transfer(
    origin: dns.name.Name, host: str, port: int, key: dns.tsig.Key | None, copy: Path | None
) -> Transferred:
    """AXFR, or IXFR onto ``copy`` (the version we hold) when given and present."""
    zone: _Zone
    if copy is not None and copy.is_file():
        zone = dns.zone.from_file(str(copy), origin, relativize=False,
                                  zone_factory=_Zone)  # type: ignore[assignment]
        serial: int | None = 0  # dnspython: the zone's own serial, an IXFR
    else:
        zone, serial = _Zone(origin, relativize=False), None  # an AXFR
    query, _ = dns.xfr.make_query(
        zone, serial=serial,
        keyring=None if key is None else {key.name: key},
        keyname=None if key is None else key.name,
    )
    dns.query.inbound_xfr(host, zone, query, port=port, timeout=TRANSFER_TIMEOUT,
                          lifetime=TRANSFER_LIFETIME)
    return Transferred(zone, "axfr" if zone.replaced else "ixfr")


class _Zone(dns.zone.Zone):
    """A zone that remembers whether its last transfer replaced it whole (an AXFR,
    or an IXFR answered AXFR-style) or changed it (an IXFR)."""

    replaced = False

    def writer(self, replacement: bool = False) -> Any:
        self.replaced = replacement
        return super().writer(replacement)


def write_copy(path: Path, zone: dns.zone.Zone) -> None:
    """The copy, whole or not at all: a temporary file, fsync, rename, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            zone.to_file(out, relativize=False, want_origin=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def error_text(exc: BaseException) -> str:
    """A failed call, in a few words for status and the log."""
    if isinstance(exc, dns.exception.Timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return str(exc)
    return str(exc) or type(exc).__name__
