"""Signing a zone's records fast, and keeping the signatures that still hold (issue 8 §2).

Owns the signing of an online-signed zone at load: from the records as read
(``ParsedRecords``: wire data, no dnspython objects) to the same records
plus the DNSKEY RRset, an NSEC chain and an RRSIG over every authoritative
RRset (``sign_records``), and one RRset (``sign_rrset``: a pool's answer at
a flip). What is signed is what ``dnssec-signzone`` and
dnspython's ``dns.dnssec.sign_zone`` sign: every RRset of every name not
below a delegation, at a delegation only the DS (and the NSEC); the DNSKEY,
CDS and CDNSKEY RRsets by the KSKs, the rest by the ZSKs; an NSEC at every
such name (types there, plus RRSIG and NSEC), its TTL the smaller of the
SOA's TTL and MINIMUM (RFC 9077).

The signed data is built here (RFC 4034 §3.1.8.1 and §6): the RRSIG rdata
up to the signature (signer name lower-cased), then each record of the
RRset with the owner lower-cased, the RRset's TTL, and rdata in canonical
form (``zones.versions.canonical_rdata``) in canonical order. Signatures
come from ``cryptography`` directly: ECDSA P-256 deterministic (RFC 6979,
as dnspython signs; the DER signature turned into r||s) and Ed25519. The
result is what ``dns.dnssec.sign`` gives, byte for byte (a unit test holds
the two together).

Reuse. Signing costs a few tens of microseconds per RRset; a reload of a
large zone re-signed whole would cost seconds for one changed record. So
the zone served before (its canonical content, ``zones.versions``) is read
into ``Reusable``: its RRSIGs by a hash of the canonical records they cover
(owner, type, TTL, rdatas: exactly the bytes signed after the RRSIG
header). An RRset whose hash is found keeps the old signature of a key
when that signature is of the same key (algorithm, tag, signer) and
window length, and has more than ``refresh`` left (and ``REFRESH_SLACK``);
otherwise it is signed again. A reload that changes one record signs that
RRset, the NSEC records whose next name or types changed, and the SOA (its
serial). Nothing is reused when the DNSKEY RRset changed.

Must not: read the clock (``now`` is given), read files, or make keys.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rrset
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from dns.rdatatype import RdataType

from dnsserve.zones.blobs import is_below
from dnsserve.zones.online import SKEW, ZoneKey, serial_delta
from dnsserve.zones.records import ParsedRecords
from dnsserve.zones.versions import ZoneContent, canonical_rdata, wire_order

_SOA, _NS, _DS, _RRSIG, _NSEC, _DNSKEY = (
    int(t) for t in (RdataType.SOA, RdataType.NS, RdataType.DS, RdataType.RRSIG,
                     RdataType.NSEC, RdataType.DNSKEY))
# what a zone file's own DNSSEC data may hold: replaced by what is made here
_REPLACED = frozenset({_RRSIG, _NSEC, int(RdataType.NSEC3), int(RdataType.NSEC3PARAM),
                       _DNSKEY})
_BY_KSK = frozenset({_DNSKEY, int(RdataType.CDS), int(RdataType.CDNSKEY)})
_IN = 1
_HEADER = struct.Struct("!HBBIIIH")  # type covered, algorithm, labels, TTL, expiration,
# inception, key tag (RFC 4034 §3.1), then the signer's name and the signature
_RECORD = struct.Struct("!HHIH")  # type, class, TTL, rdata length
_HEAD = struct.Struct("!HHI")  # type, class, TTL
_SERIAL = 1 << 32
_P256_OCTETS = 32
# A signature is kept only with more than ``refresh`` and this many seconds left: the
# re-signing timer fires when the first has ``refresh`` left, and ``now`` is read in
# whole seconds here, so one just at its refresh time is made again, not kept a turn.
REFRESH_SLACK = 2

Signer = Callable[[bytes], bytes]
Digest = bytes  # sha256 of an RRset's canonical records
# an RRset being signed: (owner lower-cased wire, type) -> (TTL, canonical rdatas)
_RRsets = dict[tuple[bytes, int], tuple[int, list[bytes]]]


@dataclass(slots=True)
class Signed:
    """What ``sign_records`` made: the zone's records with its DNSSEC data, and counts."""

    records: ParsedRecords
    signed: int = 0  # signatures made now
    reused: int = 0  # signatures kept from the zone served before


@dataclass(frozen=True, slots=True)
class Reusable:
    """The signatures of a zone served before, by the digest of what each covers."""

    by_digest: dict[Digest, list[bytes]] = field(default_factory=dict)
    dnskeys: Digest = b""  # the digest of its DNSKEY RRset: other keys, nothing reused

    @classmethod
    def of(cls, content: ZoneContent) -> Reusable:
        """Read a served zone's canonical content (RRSIGs beside what they cover)."""
        by_digest: dict[Digest, list[bytes]] = {}
        apex = content.origin.to_digestable()
        dnskeys: list[bytes] = []
        rrsets: dict[int, list[bytes]] = {}
        sigs: dict[int, list[bytes]] = {}
        owner = b""
        for record in content.records:
            end = _owner_end(record)
            if record[:end] != owner:
                _collect(rrsets, sigs, by_digest)
                owner = record[:end]
                rrsets, sigs = {}, {}
            rdtype = (record[end] << 8) | record[end + 1]
            if rdtype == _RRSIG:
                rdata = record[end + _RECORD.size:]
                sigs.setdefault((rdata[0] << 8) | rdata[1], []).append(rdata)
            else:
                rrsets.setdefault(rdtype, []).append(record)
                if rdtype == _DNSKEY and owner == apex:
                    dnskeys.append(record)
        _collect(rrsets, sigs, by_digest)
        return cls(by_digest, _digest(dnskeys) if dnskeys else b"")


def _collect(rrsets: dict[int, list[bytes]], sigs: dict[int, list[bytes]],
             by_digest: dict[Digest, list[bytes]]) -> None:
    for rdtype, covered in sigs.items():
        records = rrsets.get(rdtype)
        if records:
            by_digest[_digest(records)] = covered


def _digest(records: list[bytes]) -> Digest:
    return hashlib.sha256(b"".join(records)).digest()


def _owner_end(wire: bytes) -> int:
    at = 0
    while wire[at]:
        at += wire[at] + 1
    return at + 1


def signer_of(key: ZoneKey) -> Signer:
    """A function that signs bytes with ``key`` as RFC 6605 / RFC 8080 encode it."""
    private = key.private
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign
    ecdsa = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)

    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(private.sign(data, ecdsa))
        return r.to_bytes(_P256_OCTETS, "big") + s.to_bytes(_P256_OCTETS, "big")

    return sign


@dataclass(frozen=True, slots=True)
class _Key:
    algorithm: int
    tag: int
    sign: Signer


class _Signing:
    """One zone's signing run: keys, window, what may be reused, counts."""

    def __init__(self, origin: bytes, keys: Sequence[ZoneKey], now: float, validity: int,
                 refresh: int, reusable: Reusable | None) -> None:
        self.signer_name = origin
        self.clock = int(now) % _SERIAL
        self.inception = (int(now) - SKEW) % _SERIAL
        self.expiration = (int(now) + validity) % _SERIAL
        self.window = validity + SKEW
        self.refresh = refresh
        made = [(k.ksk, _Key(int(k.dnskey.algorithm), k.tag, signer_of(k))) for k in keys]
        self.ksks = [k for ksk, k in made if ksk] or [k for _, k in made]
        self.zsks = [k for ksk, k in made if not ksk] or [k for _, k in made]
        self.reusable = reusable
        self.signed = 0
        self.reused = 0

    def rrsigs(self, owner: bytes, rdtype: int, ttl: int, rdatas: list[bytes]) -> list[bytes]:
        """The RRSIG rdatas of one RRset (``rdatas`` canonical, deduplicated)."""
        records = _canonical_records(owner, rdtype, ttl, rdatas)
        old = None
        if self.reusable is not None:
            old = self.reusable.by_digest.get(_digest([records]))
        labels = _labels(owner)
        out = []
        for key in self.ksks if rdtype in _BY_KSK else self.zsks:
            kept = self._kept(old, key) if old else None
            if kept is not None:
                out.append(kept)
                self.reused += 1
                continue
            header = _HEADER.pack(rdtype, key.algorithm, labels, ttl, self.expiration,
                                  self.inception, key.tag) + self.signer_name
            out.append(header + key.sign(header + records))
            self.signed += 1
        return out

    def _kept(self, old: list[bytes], key: _Key) -> bytes | None:
        for rdata in old:
            _, alg, _, _, expiration, inception, tag = _HEADER.unpack_from(rdata)
            if (alg, tag) != (key.algorithm, key.tag):
                continue
            if rdata[_HEADER.size:_HEADER.size + len(self.signer_name)] != self.signer_name:
                continue
            left = serial_delta(expiration, self.clock)
            if (expiration - inception) % _SERIAL == self.window \
                    and left > self.refresh + REFRESH_SLACK \
                    and serial_delta(self.clock, inception) >= 0:
                return rdata
        return None


def _labels(owner: bytes) -> int:
    """RFC 4034 §3.1.3: the owner's labels, the root and a leading ``*`` not counted."""
    count, at = 0, 0
    while owner[at]:
        count += 1
        at += owner[at] + 1
    return count - 1 if owner[:2] == b"\x01*" else count


def type_bitmap(types: set[int]) -> bytes:
    """RFC 4034 §4.1.2: the windows of an NSEC's type bit maps field."""
    out = bytearray()
    for window in sorted({t >> 8 for t in types}):
        low = [t & 0xFF for t in types if t >> 8 == window]
        bits = bytearray(max(low) // 8 + 1)
        for t in low:
            bits[t // 8] |= 0x80 >> (t % 8)
        out += bytes((window, len(bits))) + bits
    return bytes(out)


def sign_records(
    parsed: ParsedRecords,
    keys: Sequence[ZoneKey],
    origin: dns.name.Name,
    *,
    now: float,
    validity: int,
    refresh: int,
    reusable: Reusable | None = None,
) -> Signed:
    """``parsed``'s records without their own DNSSEC data, then the DNSKEY RRset,
    the NSEC chain and the RRSIGs (made now, or kept from ``reusable``)."""
    apex = origin.to_digestable()
    out = ParsedRecords(parsed.origin, list(parsed.file_names), warnings=list(parsed.warnings))
    rrsets: _RRsets = {}
    for i, (owner, rdtype, ttl, rdata) in enumerate(parsed.rows()):
        if rdtype in _REPLACED:
            continue
        out.add(owner, rdtype, ttl, rdata, parsed.files[i], parsed.lines[i])
        key = (owner.lower(), rdtype)
        found = rrsets.get(key)
        canonical = canonical_rdata(rdtype, rdata, origin)
        if found is None:
            rrsets[key] = (ttl, [canonical])
        else:
            if canonical not in found[1]:
                found[1].append(canonical)
            if ttl < found[0]:
                rrsets[key] = (ttl, found[1])
    soa = rrsets.get((apex, _SOA))
    if soa is None:
        raise ValueError(f"zone {origin} has no SOA at its apex: it cannot be signed")
    soa_ttl, (soa_rdata, *_) = soa
    nsec_ttl = min(soa_ttl, int.from_bytes(soa_rdata[-4:], "big"))
    dnskeys = [k.dnskey.to_digestable() for k in keys]
    rrsets[(apex, _DNSKEY)] = (soa_ttl, dnskeys)
    for rdata in dnskeys:
        out.add(apex, _DNSKEY, soa_ttl, rdata, 0, 0)
    run = _Signing(apex, keys, now, validity, refresh, _checked(reusable, apex, soa_ttl,
                                                                  dnskeys))
    by_owner: dict[bytes, list[int]] = {}
    for owner, rdtype in rrsets:
        by_owner.setdefault(owner, []).append(rdtype)
    secure = _secure_names(sorted(by_owner, key=wire_order), by_owner, apex)
    for n, owner in enumerate(secure):
        types = by_owner[owner]
        cut = owner != apex and _NS in types
        for rdtype in types:
            if cut and rdtype != _DS:
                continue
            ttl, rdatas = rrsets[(owner, rdtype)]
            for sig in run.rrsigs(owner, rdtype, ttl, rdatas):
                out.add(owner, _RRSIG, ttl, sig, 0, 0)
        following = secure[n + 1] if n + 1 < len(secure) else apex
        nsec = following + type_bitmap({*types, _RRSIG, _NSEC})
        out.add(owner, _NSEC, nsec_ttl, nsec, 0, 0)
        for sig in run.rrsigs(owner, _NSEC, nsec_ttl, [nsec]):
            out.add(owner, _RRSIG, nsec_ttl, sig, 0, 0)
    return Signed(out, run.signed, run.reused)


def sign_rrset(rrset: dns.rrset.RRset, keys: Sequence[ZoneKey], origin: dns.name.Name, *,
               now: float, validity: int) -> list[bytes]:
    """The RRSIGs (rdata wire) of one RRset by the zone's ZSKs (a pool's answer at a flip)."""
    run = _Signing(origin.to_digestable(), keys, now, validity, 0, None)
    rdatas = list(dict.fromkeys(rdata.to_digestable(origin) for rdata in rrset))
    return run.rrsigs(rrset.name.to_digestable(), int(rrset.rdtype), rrset.ttl, rdatas)


def _secure_names(ordered: list[bytes], by_owner: dict[bytes, list[int]],
                  apex: bytes) -> list[bytes]:
    """The names that are signed and get an NSEC, in canonical order: every name
    but those below a delegation (glue, occluded data)."""
    out = []
    cut: bytes | None = None
    for owner in ordered:
        if cut is not None and owner != cut and is_below(owner, cut):
            continue
        cut = owner if owner != apex and _NS in by_owner[owner] else None
        out.append(owner)
    return out


def _checked(reusable: Reusable | None, apex: bytes, ttl: int,
             dnskeys: list[bytes]) -> Reusable | None:
    """``reusable`` when it was signed with the same DNSKEY RRset, else None."""
    if reusable is None:
        return None
    records = _canonical_records(apex, _DNSKEY, ttl, dnskeys)
    return reusable if _digest([records]) == reusable.dnskeys else None


def _canonical_records(owner: bytes, rdtype: int, ttl: int, rdatas: list[bytes]) -> bytes:
    """An RRset's records as RFC 4034 §3.1.8.1 signs them, rdata in canonical order
    (the bytes a zone's canonical content holds for it, ``zones.versions``)."""
    head = owner + _HEAD.pack(rdtype, _IN, ttl)
    return b"".join(head + len(r).to_bytes(2, "big") + r for r in sorted(rdatas))
