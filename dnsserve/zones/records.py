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

Memory. While a file is read, ``owners`` and ``rdatas`` are lists of
``bytes``: two objects per record. Once read, ``compact`` turns them into
``BytesColumn``s (each one ``bytes`` and an array of ends) and frees those
objects, before the table is built: otherwise the table's long-lived keys
and blobs are spread among a million dead records and pin the allocator's
arenas (measured on a million records: about 100 MB held after the load,
with nothing in it). ``compile_records`` compacts a large zone's records.

Must not: read files, judge a zone's semantics, or keep per-record Python
objects beyond these columns. Pure: data only, no I/O, no clock.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload


class Packed(Sequence[bytes]):
    """Byte strings packed in one ``bytes`` (``_data``), with where each ends (``_ends``).

    Reading an item makes a new ``bytes`` (equal, not the same object). The
    base of ``BytesColumn`` here and of ``zones.versions.Records``.
    """

    __slots__ = ("_data", "_ends")
    _data: bytes
    _ends: array[int]

    def __len__(self) -> int:
        return len(self._ends)

    def _at(self, index: int) -> bytes:
        ends = self._ends
        if index < 0:
            index += len(ends)
        end = ends[index]  # IndexError past either end
        return self._data[ends[index - 1] if index else 0 : end]

    def __iter__(self) -> Iterator[bytes]:
        data, at = self._data, 0
        for end in self._ends:
            yield data[at:end]
            at = end


class BytesColumn(Packed):
    """A read-only column of ``bytes`` (a slice of it is a list)."""

    __slots__ = ()

    def __init__(self, items: Iterable[bytes]) -> None:
        items = items if isinstance(items, list | tuple) else list(items)
        self._data = b"".join(items)
        self._ends = array("Q", itertools.accumulate(map(len, items)))

    def append(self, item: bytes) -> None:
        raise TypeError("a compacted column is read-only: add records before compact()")

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(len(self)))]
        return self._at(index)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, bytes | str):
            return len(self) == len(other) and all(
                a == b for a, b in zip(self, other, strict=True)
            )
        return NotImplemented


@dataclass(slots=True)
class ParsedRecords:
    """The records of one zone file (and what it includes), column by column."""

    origin: bytes  # the zone's origin, uncompressed wire form, lower-cased
    file_names: list[str] = field(default_factory=list)
    owners: list[bytes] | BytesColumn = field(default_factory=list)
    types: array[int] = field(default_factory=lambda: array("H"))
    ttls: array[int] = field(default_factory=lambda: array("I"))
    rdatas: list[bytes] | BytesColumn = field(default_factory=list)
    files: array[int] = field(default_factory=lambda: array("H"))
    lines: array[int] = field(default_factory=lambda: array("I"))
    # what the reader left out, and why: (file index, line, message)
    warnings: list[tuple[int, int, str, str]] = field(default_factory=list)

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

    def compact(self) -> None:
        """Keep ``owners`` and ``rdatas`` as ``BytesColumn``s (no records are added
        after this); the per-record objects are freed when nothing else holds them."""
        if not isinstance(self.owners, BytesColumn):
            self.owners = BytesColumn(self.owners)
        if not isinstance(self.rdatas, BytesColumn):
            self.rdatas = BytesColumn(self.rdatas)

    def warn(self, file: int, line: int, message: str, rule: str) -> None:
        """Note something the reader left out or read with care (the builder reports it
        as a warning, under the posture rule id ``rule``)."""
        self.warnings.append((file, line, message, rule))

    def key(self, i: int) -> bytes:
        """Record ``i``'s owner, lower-cased (ASCII only, as DNS compares names)."""
        return self.owners[i].lower()

    def where(self, i: int) -> tuple[str, int]:
        """Record ``i``'s file and line."""
        return self.file_names[self.files[i]], self.lines[i]

    def rows(self) -> Iterator[tuple[bytes, int, int, bytes]]:
        """(owner, type, ttl, rdata) for every record, in file order."""
        return zip(self.owners, self.types, self.ttls, self.rdatas, strict=True)
