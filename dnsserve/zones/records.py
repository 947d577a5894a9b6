"""A zone file's records as flat columns of wire data: what parsing hands to building.

Owns ``ParsedRecords``, the one interface between reading a zone file
(``zones.load`` and its fast parser) and building the lookup table
(``zones.compile`` / ``zones.table``). One entry per record as written, in file
order: duplicates are kept (the builder drops them, as RFC 2181 §5 asks) and
so is each record's own TTL (the builder gives an RRset the smallest TTL of
its records, as dnspython and NSD do, and may warn).

Columns, all the same length:
- ``owners``: the owner name in uncompressed wire form, case as written
  (``key(i)`` gives the lower-cased form lookups use);
- ``types``, ``ttls``: RR type code and TTL (class is always IN);
- ``rdatas``: the rdata in uncompressed wire form (names in it uncompressed,
  case as written), exactly what dnspython's ``to_wire(canonicalize=False)``
  gives;
- ``files``, ``lines``: where the record was written, ``files[i]`` an index
  into ``file_names`` (``0`` is the zone file itself, others are $INCLUDEs).

Parsing is syntactic, plus one rule: a record whose owner is outside the
origin is left out, with a warning in ``warnings`` (file index, line,
message), as BIND and Knot ignore it (NSD refuses the zone). The
checks ``zones.load`` made while reading (an SOA below the apex, two
SOA/CNAME/DNAME records at one owner, a CNAME beside other data) are the
builder's, from these columns (``where(i)`` names the line).

Must not: read files, judge a zone's semantics, or keep per-record Python
objects beyond these columns. Pure: data only, no I/O, no clock.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class ParsedRecords:
    """The records of one zone file (and what it includes), column by column."""

    origin: bytes  # the zone's origin, uncompressed wire form, lower-cased
    file_names: list[str] = field(default_factory=list)
    owners: list[bytes] = field(default_factory=list)
    types: array[int] = field(default_factory=lambda: array("H"))
    ttls: array[int] = field(default_factory=lambda: array("I"))
    rdatas: list[bytes] = field(default_factory=list)
    files: array[int] = field(default_factory=lambda: array("H"))
    lines: array[int] = field(default_factory=lambda: array("I"))
    # what the reader left out, and why: (file index, line, message)
    warnings: list[tuple[int, int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.owners)

    def file_index(self, name: str) -> int:
        """The index of ``name`` in ``file_names``, added on first use."""
        try:
            return self.file_names.index(name)
        except ValueError:
            self.file_names.append(name)
            return len(self.file_names) - 1

    def add(
        self, owner: bytes, rtype: int, ttl: int, rdata: bytes, file: int, line: int
    ) -> None:
        self.owners.append(owner)
        self.types.append(rtype)
        self.ttls.append(ttl)
        self.rdatas.append(rdata)
        self.files.append(file)
        self.lines.append(line)

    def warn(self, file: int, line: int, message: str) -> None:
        """Note something the reader left out (the builder reports it as a warning)."""
        self.warnings.append((file, line, message))

    def key(self, i: int) -> bytes:
        """Record ``i``'s owner, lower-cased (ASCII only, as DNS compares names)."""
        return self.owners[i].lower()

    def where(self, i: int) -> tuple[str, int]:
        """Record ``i``'s file and line."""
        return self.file_names[self.files[i]], self.lines[i]

    def rows(self) -> Iterator[tuple[bytes, int, int, bytes]]:
        """(owner, type, ttl, rdata) for every record, in file order."""
        return zip(self.owners, self.types, self.ttls, self.rdatas, strict=True)
