"""Where a zone's owners and records were written: file and line.

Owns ``Source`` (a place in a zone file or a file it includes) and
``SourceMap``, which ``zones.load`` fills while reading and ``zones.compile``
asks so that a problem names the offending record's own line.

Must not: read files (``zones.load`` does) or judge a zone (``zones.compile``
does). Pure: data only, no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import dns.name
import dns.rdata


@dataclass(frozen=True, slots=True)
class Source:
    """A place in a zone file (or in a file it includes)."""

    file: str
    line: int


class SourceMap(Mapping[dns.name.Name, int]):
    """Where the owners and records of one zone were first written.

    As a mapping it gives each owner's first line, which is all ``check_zone``
    needs from a plain ``{name: line}`` dict. It also knows the file of each
    line (a record may come from an ``$INCLUDE``d file) and the line of each
    record, so that a problem names the offending record's own line.
    """

    __slots__ = ("_owners", "_records")

    def __init__(
        self,
        owners: Mapping[dns.name.Name, Source],
        records: Mapping[tuple[dns.name.Name, dns.rdata.Rdata], Source],
    ) -> None:
        self._owners = dict(owners)
        self._records = dict(records)

    def __getitem__(self, name: dns.name.Name) -> int:
        return self._owners[name].line

    def __iter__(self) -> Iterator[dns.name.Name]:
        return iter(self._owners)

    def __len__(self) -> int:
        return len(self._owners)

    def owner(self, name: dns.name.Name) -> Source | None:
        return self._owners.get(name)

    def record(self, name: dns.name.Name, rdata: dns.rdata.Rdata) -> Source | None:
        return self._records.get((name, rdata))

    def files(self) -> set[str]:
        """Every file a record came from: the zone file and what it included."""
        return {source.file for source in self._records.values()}
