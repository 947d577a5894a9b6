"""The answer engine asked directly, bytes in and bytes out, and its answers read as text.

Owns the helpers of the engine-level tests over the edge zones
(``tests/data/zones_edge``: ``main/``, several zones served together, and
``root/``, a small root zone): building an engine from a zone directory,
asking it (RD clear, as a resolver asks an authoritative server) with
dnspython parsing our bytes as the oracle, and a section as lower-cased
master-file lines, so a test states an answer as a set of records.

Must not: open a socket or read the clock: the engine is a function.
"""

from __future__ import annotations

from pathlib import Path

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from dnsserve.answer.engine import Engine
from dnsserve.answer.snapshot import build_snapshot
from dnsserve.config_schema import ServerConfig
from dnsserve.zones.load import load_zones
from testkit import TEST_DATA

EDGE_ZONES = TEST_DATA / "zones_edge"
EDGE_MAIN = EDGE_ZONES / "main"
EDGE_ROOT = EDGE_ZONES / "root"


def build_engine(
    directory: Path,
    *,
    chaos: bool = False,
    version: str | None = None,
    identity: str | bytes | None = None,
    nsid: bytes = b"",
) -> Engine:
    """An engine over every zone in ``directory``, no sockets. CHAOS answers:
    ``version``/``identity``, or with ``chaos`` those a server without a config gives;
    ``nsid``: the NSID it answers (RFC 5001)."""
    if chaos:
        server = ServerConfig()
        version, identity = server.version, server.identity
    tables = load_zones(directory, log_problems=False).tables
    return Engine(build_snapshot(tables, version=version, identity=identity, nsid=nsid))


def query(qname: str, qtype: str | int, **kw: object) -> dns.message.Message:
    q = dns.message.make_query(qname, qtype, **kw)  # type: ignore[arg-type]
    q.flags &= ~dns.flags.RD
    return q


def exchange(engine: Engine, wire: bytes, *, tcp: bool = False) -> bytes:
    out = engine.respond(wire, tcp=tcp)
    assert out is not None
    return out


def ask(engine: Engine, qname: str, qtype: str | int, *, tcp: bool = False,
        **kw: object) -> dns.message.Message:
    q = query(qname, qtype, **kw)
    r = dns.message.from_wire(exchange(engine, q.to_wire(), tcp=tcp))
    assert r.id == q.id
    return r


def lines(section: list[dns.rrset.RRset]) -> set[str]:
    """A section as lower-cased master-file lines, one per record."""
    return {line.lower() for rrset in section for line in rrset.to_text().splitlines()}


def order(section: list[dns.rrset.RRset]) -> list[tuple[str, str]]:
    return [(r.name.to_text().lower(), dns.rdatatype.to_text(r.rdtype)) for r in section]


def addresses(section: list[dns.rrset.RRset]) -> set[str]:
    return lines([r for r in section if r.rdtype in (RdataType.A, RdataType.AAAA)])


def aa(r: dns.message.Message) -> bool:
    return bool(r.flags & dns.flags.AA)


def tc(r: dns.message.Message) -> bool:
    return bool(r.flags & dns.flags.TC)
