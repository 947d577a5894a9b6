"""Hosting suffixes known for subdomain takeover: the list is data (``takeover.json``).

Pure [C]: owns reading that list from its text (``Suffixes.from_json``) and
whether a CNAME target falls under one (``Suffixes.match``). A CNAME into
such a suffix points at a resource (a bucket, an app, a site) that someone
else may create once it is deleted, and then serve content under our name.
Must not: read the file (``posture.sources`` does) or resolve a target.

``takeover.json``: ``{"sources": [...], "suffixes": [{"suffix", "service",
"status", "source"}]}``; a suffix matches itself and every name below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dns.name
import msgspec


class Entry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    suffix: str  # a domain name: the service's hosting suffix
    service: str
    status: str = "vulnerable"  # as the source rates it: vulnerable | edge case
    source: str = ""


class TakeoverList(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sources: tuple[str, ...] = ()
    suffixes: tuple[Entry, ...] = ()


@dataclass(frozen=True, slots=True)
class Suffixes:
    entries: tuple[tuple[dns.name.Name, Entry], ...] = ()

    @classmethod
    def from_json(cls, text: str | bytes) -> Suffixes:
        """The list from ``takeover.json``'s text; ``msgspec.ValidationError`` when malformed."""
        data = msgspec.json.decode(text, type=TakeoverList)
        return cls.from_entries(data.suffixes)

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> Suffixes:
        return cls(tuple((dns.name.from_text(e.suffix), e) for e in entries))

    def match(self, target: dns.name.Name) -> Entry | None:
        """The entry whose suffix is ``target`` or one of its ancestors, or None."""
        for suffix, entry in self.entries:
            if target.is_subdomain(suffix):
                return entry
        return None
