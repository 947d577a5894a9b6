"""One owner's records as one string of wire data: the blob a zone table keeps per name.

Owns the blob's layout and its codec: the owner as written when its case
differs from the lookup key (``name_key``: the lower-cased, uncompressed wire
form), then each RRset as (type, TTL, count) and its rdatas, each with its
length (``encode_node``, ``encode_one``); reading it back without dnspython
(``blob_owner``, ``blob_rrsets``, ``blob_types``) or as dnspython RRsets
(``decode_node``); and the wire-name helpers the tables and their readers
share (``wire_labels``, ``name_from_wire``, ``key_offsets``, ``is_below``, ``rdatatype``).

Pure: no I/O, no clock. Must not: hold a zone (``zones.table`` does) or know
the lookup rules.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rrset
from dns.rdatatype import RdataType

# An RRset's head in an owner's blob.
_RRHEAD = struct.Struct("!HIH")  # type, TTL, record count
_U16 = struct.Struct("!H")
_RRSIG_TYPE = int(RdataType.RRSIG)
_LENGTHS = tuple(bytes((n,)) for n in range(256))
# RdataType(n) runs the enum machinery each time; the known types, looked up.
_RDATATYPES = {int(t): t for t in RdataType}


def rdatatype(value: int) -> RdataType:
    """``RdataType(value)``, without the enum's cost for the known types."""
    found = _RDATATYPES.get(value)
    return found if found is not None else RdataType(value)


def name_key(name: dns.name.Name) -> bytes:
    """The lookup key of ``name`` (absolute): its uncompressed wire form, lower-cased.

    Joined from the labels: dnspython's ``to_wire`` costs several times more.
    """
    lengths = _LENGTHS
    return b"".join([lengths[len(label)] + label for label in name.labels]).lower()


def wire_labels(wire: bytes) -> list[bytes]:
    """The labels of an uncompressed wire name, first to last, the root's left out."""
    labels = []
    at = 0
    while wire[at]:
        end = at + 1 + wire[at]
        labels.append(wire[at + 1 : end])
        at = end
    return labels


def name_from_wire(wire: bytes) -> dns.name.Name:
    """The name of an uncompressed wire form (as ``dns.name.from_wire``, faster)."""
    labels = wire_labels(wire)
    labels.append(b"")
    return dns.name.Name(labels)


def key_offsets(key: bytes) -> list[int]:
    """Where each label of the wire name ``key`` starts, the root label last.

    ``key[offsets[i]:]`` is the name without its first ``i`` labels.
    """
    offsets = [0]
    at = 0
    while key[at]:
        at += key[at] + 1
        offsets.append(at)
    return offsets


def is_below(key: bytes, apex: bytes) -> bool:
    """Whether the wire name ``key`` is ``apex`` or below it (both lower-cased)."""
    if not key.endswith(apex):
        return False
    start = len(key) - len(apex)
    at = 0
    while at < start:
        at += key[at] + 1
    return at == start


def encode_node(owner: bytes, key: bytes, rrsets: Iterable[tuple[int, int, list[bytes]]]) -> bytes:
    """One owner's blob: its name as written (empty when ``key`` spells it), then
    each RRset as (type, TTL, count) and its rdatas, each with its length."""
    parts = [bytes((len(owner),)) + owner if owner != key else b"\x00"]
    for rdtype, ttl, rdatas in rrsets:
        parts.append(_RRHEAD.pack(rdtype, ttl, len(rdatas)))
        for rdata in rdatas:
            parts.append(_U16.pack(len(rdata)))
            parts.append(rdata)
    return b"".join(parts)


_RRHEAD_ONE = struct.Struct("!HIHH")  # type, TTL, a count of 1, the rdata's length


def encode_one(owner: bytes, key: bytes, rdtype: int, ttl: int, rdata: bytes) -> bytes:
    """``encode_node`` of an owner with one record (the commonest), faster."""
    name = b"\x00" if owner == key else bytes((len(owner),)) + owner
    return name + _RRHEAD_ONE.pack(rdtype, ttl, 1, len(rdata)) + rdata


def blob_owner(key: bytes, blob: bytes) -> bytes:
    """The owner as written, in wire form."""
    return blob[1 : 1 + blob[0]] if blob[0] else key


def blob_rrsets(blob: bytes) -> Iterator[tuple[int, int, list[bytes]]]:
    """(type, TTL, rdatas) of each RRset in an owner's blob, as stored."""
    at, end = 1 + blob[0], len(blob)
    unpack, u16 = _RRHEAD.unpack_from, _U16.unpack_from
    while at < end:
        rdtype, ttl, count = unpack(blob, at)
        at += _RRHEAD.size
        rdatas = []
        for _ in range(count):
            (length,) = u16(blob, at)
            at += 2
            rdatas.append(blob[at : at + length])
            at += length
        yield rdtype, ttl, rdatas


def blob_types(blob: bytes) -> list[int]:
    """The types of an owner's RRsets, without reading their rdatas."""
    out = []
    at, end = 1 + blob[0], len(blob)
    unpack, u16 = _RRHEAD.unpack_from, _U16.unpack_from
    while at < end:
        rdtype, _, count = unpack(blob, at)
        out.append(rdtype)
        at += _RRHEAD.size
        for _ in range(count):
            at += 2 + u16(blob, at)[0]
    return out


def decode_node(key: bytes, blob: bytes) -> dict[RdataType, dns.rrset.RRset]:
    """An owner's blob as dnspython RRsets (owner as written)."""
    owner = name_from_wire(blob_owner(key, blob))
    node: dict[RdataType, dns.rrset.RRset] = {}
    for rdtype, ttl, rdatas in blob_rrsets(blob):
        rdt = rdatatype(rdtype)
        covers = RdataType.NONE
        if rdtype == _RRSIG_TYPE:
            # a pre-signed zone keeps one RRSIG RRset per covered type: the node
            # answers an RRSIG query with the lowest one, as Knot does
            covers = rdatatype((rdatas[0][0] << 8) | rdatas[0][1])
            held = node.get(RdataType.RRSIG)
            if held is not None and held.covers < covers:
                continue
        rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, rdt, covers)
        for rdata in rdatas:
            rrset.add(dns.rdata.from_wire(dns.rdataclass.IN, rdt, rdata, 0, len(rdata)), ttl)
        node[rdt] = rrset
    return node
