"""The reference for the fast zone parser: ``zones.load``'s own reader, as ``ParsedRecords``.

Owns ``parse_zone_file_dnspython``: the zone file read by ``zones.load``'s
directive loop over dnspython's reader (the loader's rules, messages, file
and line numbers), each record as dnspython adds it (owner case as written,
its own TTL, rdata ``to_wire`` uncompressed), in file order. The
differential tests and the parse benchmark hold ``zones.parse`` to it.

Like the fast parser it judges syntax only: the checks ``zones.load`` makes
while reading (an SOA below the apex, two SOA/CNAME/DNAME at one owner, a
CNAME beside other data) are left to the builder, so both paths read the
same files. Must not: be used to serve zones (it is the slow path, kept as
the measure of the fast one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import dns.name
import dns.rdata
import dns.transaction

from dnsserve.zones import fastrdata as fr
from dnsserve.zones import load
from dnsserve.zones.files import DEFAULT_RULES, FileRules
from dnsserve.zones.parse import check_rdata_length, check_zone_file
from dnsserve.zones.records import ParsedRecords
from dnsserve.zones.sources import Source


class _Manager:
    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin

    def origin_information(self) -> tuple[dns.name.Name, bool, dns.name.Name]:
        return self.origin, False, self.origin


class _Collector:
    """Stands in for the zone transaction: every record, in order, where it was written."""

    def __init__(self, origin: dns.name.Name, records: ParsedRecords) -> None:
        self.manager = _Manager(origin)
        self.records = records
        self.where = Source("", 0)

    def check_put_rdataset(self, check: Any) -> None:
        """The CNAME-and-other-data check is the builder's."""

    def add(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        records = self.records
        wire = fr.rdata_wire(rdata)
        check_rdata_length(wire, self.where.file, self.where.line)
        records.add(
            fr.name_wire(name), rdata.rdtype, ttl, wire,
            records.file_index(self.where.file), self.where.line,
        )


class _Reader(load._Reader):
    """``zones.load``'s reader without its semantic checks; tells the collector where it is."""

    collector: _Collector

    def note(self, name: dns.name.Name, rdata: dns.rdata.Rdata) -> None:
        self.collector.where = self.here


def parse_zone_file_dnspython(
    path: Path, origin: dns.name.Name, *, include_dir: Path, rules: FileRules = DEFAULT_RULES
) -> ParsedRecords:
    """``parse_zone_file``'s result, the way ``zones.load`` reads the file (slow: dnspython)."""
    path = Path(path)
    records = ParsedRecords(origin=fr.name_wire(origin).lower())
    records.file_index(str(path))
    check_zone_file(path, include_dir)
    text = load.read_text(path, Source(str(path), 0), rules)
    collector = _Collector(origin, records)
    reader = _Reader(
        cast(dns.transaction.Transaction, collector), text, path, include_dir, rules,
    )
    reader.collector = collector
    reader.read()
    for file, line, message, rule in reader.warnings:
        records.warn(records.file_index(file), line, message, rule)
    return records
