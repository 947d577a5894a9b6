"""DNSSEC answers of pre-signed zones: the DO form of an answer.

Owns what a query with the DO bit gets from a zone signed beforehand (with
``dnssec-signzone``, ``ldns-signzone``, Knot or BIND): the lookup's
``Result`` with the zone's own RRSIGs after every RRset they cover (answer,
authority and additional sections alike; glue and delegation NS have none)
and the denial of existence of RFC 4035 §3.1.3 (NSEC) and RFC 5155 §7.2
(NSEC3), read from the zone's own chain:

    answer kind                   NSEC                          NSEC3
    NXDOMAIN                      covers qname, covers *.CE     CE proof, covers *.CE
    NODATA (name exists)          NSEC at qname (ENT: covers)   matches qname, else CE proof
    wildcard answer               covers qname                  covers the next closer name
    wildcard NODATA               covers qname, NSEC at *.CE    CE proof, matches *.CE
    referral, DS                  DS + RRSIG                    DS + RRSIG
    referral, no DS               NSEC at the cut               matches the cut, else CE
                                                                proof (opt-out)

(CE: the closest encloser; CE proof: the NSEC3 matching the closest
provable encloser and the one covering the next closer name, RFC 5155
§7.2.1.) After a CNAME chain the proof is for the chain's last name.

``DoForms`` keeps the DO form of each answer key, built the first time it is
asked: those of prebuilt answers for the life of the zones (as many as the
prebuilt answers), the others (denials of random names) in a bounded cache.
A key of a zone that is not signed gets ``None`` (the engine's ordinary
answer: DO changes nothing there). A pool answer in an online-signed zone
gets the signatures its selection carries (``SignedPool``, made by the
owner at the flip: ``zones.poolsign``), one DO form per variant; a pool
without signatures (an unsigned zone) gets the plain answer.

The zone's chain and its signatures' expiry are read by ``zones.signed``.

Must not: sign anything (no keys here), read the clock, or change a
``ZoneTable``. Pure: built at the first DO query of a key, never per query.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rrset
from dns.rcode import Rcode
from dns.rdatatype import RdataType

from dnsserve.answer.lookup import find_zone, in_expired, key_parts
from dnsserve.answer.prebuilt import Prebuilt, Variants, empty, render
from dnsserve.wire import AA, QR, counts, flag_variants
from dnsserve.zones.blobs import key_offsets, name_key
from dnsserve.zones.signed import Chain, is_signed
from dnsserve.zones.table import Result, ResultKind, ZoneTable

CACHE_SIZE = 20_000  # DO forms of keys with no prebuilt answer (random-name denials)

_RRSIG, _NSEC, _NSEC3 = (int(t) for t in (RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3))
_WILD = b"\x01*"
_NXDOMAIN_FLAGS = flag_variants(QR | AA | int(Rcode.NXDOMAIN))
_NOERROR_FLAGS = flag_variants(QR | AA)
_QUESTION = b"\xc0\x0c"  # a compression pointer to the question's name (offset 12)
_RR_FIXED = struct.Struct("!HHIH")  # type, class, TTL, rdata length
# Wildcard types ``DoForms._denial`` leaves to the lookup: answers with additional
# records or chosen among a node's RRsets, DNSSEC types, DS (the parent's).
_SLOW_TYPES = frozenset(int(t) for t in (
    RdataType.MX, RdataType.NS, RdataType.SRV, RdataType.ANY, RdataType.RRSIG,
    RdataType.NSEC, RdataType.NSEC3, RdataType.DS, RdataType.CNAME, RdataType.DNAME,
))
# A wildcard node holding one of these is not a plain wildcard (a chain, a cut).
_NOT_PLAIN = frozenset((RdataType.CNAME, RdataType.DNAME, RdataType.NS))
# Not in a memo (None there means: the plain answer); never served: compared by identity.
_UNKNOWN = empty(Rcode.SERVFAIL)

PoolKey = tuple[dns.name.Name, RdataType]
# (owner wire, type) -> the set of a variant's rdatas (wire) -> its RRSIGs (wire)
PoolSigs = Mapping[tuple[bytes, int], Mapping[frozenset[bytes], tuple[bytes, ...]]]


@dataclass(frozen=True, slots=True)
class SignedPool:
    """A pool of an online-signed zone: its RRset and RRSIGs per variant, and weights."""

    rrsets: tuple[dns.rrset.RRset | None, ...]
    signatures: tuple[tuple[bytes, ...], ...]
    cum_weights: tuple[int, ...] | None
    # the set of a variant's rdatas (wire) -> its RRSIGs (wire): ``_Proof`` finds them so
    by_content: Mapping[frozenset[bytes], tuple[bytes, ...]]

    @classmethod
    def make(cls, rrsets: tuple[dns.rrset.RRset | None, ...],
             signatures: tuple[tuple[bytes, ...], ...],
             cum_weights: tuple[int, ...] | None) -> SignedPool:
        by_content = {
            frozenset(_rdata_wire(r) for r in rrset): sigs
            for rrset, sigs in zip(rrsets, signatures, strict=False) if rrset is not None
        }
        return cls(rrsets, signatures, cum_weights, by_content)


def _rdata_wire(rdata: dns.rdata.Rdata) -> bytes:
    wire = rdata.to_wire()
    assert wire is not None  # no file given: the bytes are returned
    return wire


def pool_signatures(pools: Mapping[PoolKey, SignedPool]) -> PoolSigs:
    """Every signed pool's signatures, found by the content of the RRset they sign."""
    return {(name_key(owner), int(rdtype)): pool.by_content
            for (owner, rdtype), pool in pools.items()}


class _Proof:
    """The records a DO answer adds: the zone's, in the order first asked, each once."""

    def __init__(self, table: ZoneTable, chain: Chain, *, decode: bool = True,
                 pool_sigs: PoolSigs | None = None) -> None:
        self.table = table
        self.pool_sigs = pool_sigs or {}
        self.chain = chain
        self.decode = decode  # False: only note the owners (``DoForms`` has them rendered)
        self.rrsets: list[dns.rrset.RRset] = []
        self.owners: list[bytes] = []
        self._seen: set[tuple[bytes, int]] = set()

    def signed(self, rrset: dns.rrset.RRset, source: bytes | None = None) -> list[dns.rrset.RRset]:
        """``rrset`` and its RRSIGs (read at ``source``, the wildcard for a synthesized one)."""
        out = [rrset]
        if rrset.rdtype == _RRSIG:
            return out
        by_content = self.pool_sigs.get((name_key(rrset.name), int(rrset.rdtype)))
        if by_content is not None:  # a pool's answer: the signatures made for it
            made = by_content.get(frozenset(_rdata_wire(r) for r in rrset), ())
            if made:
                sigs = dns.rrset.RRset(rrset.name, dns.rdataclass.IN, RdataType.RRSIG,
                                       rrset.rdtype)
                for rdata in made:
                    sigs.add(dns.rdata.from_wire(dns.rdataclass.IN, RdataType.RRSIG, rdata, 0,
                                                 len(rdata)), rrset.ttl)
                out.append(sigs)
            return out
        stored = self.table.wire_node(source if source is not None else name_key(rrset.name))
        if stored is None:
            return out
        covered = int(rrset.rdtype).to_bytes(2, "big")
        for rdtype, _, rdatas in stored[1]:
            if rdtype == _RRSIG and rdatas[0][:2] == covered:
                sigs = dns.rrset.RRset(rrset.name, dns.rdataclass.IN, RdataType.RRSIG,
                                       rrset.rdtype)
                for rdata in rdatas:
                    sigs.add(dns.rdata.from_wire(dns.rdataclass.IN, RdataType.RRSIG, rdata, 0,
                                                 len(rdata)), rrset.ttl)
                out.append(sigs)
        return out

    def add(self, owner: bytes | None) -> None:
        """The NSEC or NSEC3 record at ``owner`` (None: the chain has none), signed."""
        rdtype = _NSEC3 if self.chain.nsec3 else _NSEC
        if owner is None or (owner, rdtype) in self._seen:
            return
        self._seen.add((owner, rdtype))
        self.owners.append(owner)
        if self.decode:
            rrset = self.table.node_by_key(owner).get(RdataType(rdtype))
            if rrset is not None:
                self.rrsets += self.signed(rrset)

    def encloser(self, key: bytes) -> tuple[bytes, bytes]:
        """NSEC3 closest encloser proof of ``key`` (RFC 5155 §7.2.1): adds the record
        matching the closest provable encloser and the one covering the next
        closer name; returns (encloser, next closer)."""
        offsets = key_offsets(key)
        for i in range(1, len(offsets)):
            above = key[offsets[i] :]
            match = self.chain.match(above)
            if match is not None or len(above) <= len(name_key(self.table.origin)):
                self.add(match)
                closer = key[offsets[i - 1] :]
                self.add(self.chain.cover(closer))
                return above, closer
        return key, key  # not reached: the apex always matches

    def nxdomain(self, key: bytes, encloser: bytes) -> None:
        if self.chain.nsec3:
            provable, _ = self.encloser(key)
            self.add(self.chain.cover(_WILD + provable))
        else:
            self.add(self.chain.cover(key))
            self.add(self.chain.cover(_WILD + encloser))

    def nodata(self, key: bytes, encloser: bytes | None) -> None:
        """NODATA at ``key`` (an existing name), or at a wildcard below ``encloser``."""
        chain = self.chain
        if encloser is None:
            match = chain.match(key)
            if match is not None:
                self.add(match)
            elif chain.nsec3:
                self.encloser(key)  # opt-out: no NSEC3 of its own (RFC 5155 §7.2.4)
            else:
                self.add(chain.cover(key))  # an empty non-terminal
        elif chain.nsec3:
            self.encloser(key)
            self.add(chain.match(_WILD + encloser))
        else:
            self.add(chain.cover(key))
            self.add(chain.match(_WILD + encloser))

    def wildcard(self, key: bytes, encloser: bytes) -> None:
        """A wildcard answer: the proof that the name itself does not exist."""
        if self.chain.nsec3:
            closer = key[key_offsets(key)[-len(key_offsets(encloser)) - 1] :]
            self.add(self.chain.cover(closer))
        else:
            self.add(self.chain.cover(key))


def _negative_soa(table: ZoneTable) -> dns.rrset.RRset:
    """The SOA of a negative answer: TTL min(SOA TTL, MINIMUM) (RFC 2308 §5), as the lookup."""
    soa = table.soa
    negative = dns.rrset.RRset(soa.name, soa.rdclass, soa.rdtype)
    negative.update(soa)
    negative.ttl = min(soa.ttl, soa[0].minimum)
    return negative


def _encloser(table: ZoneTable, key: bytes) -> bytes | None:
    """The closest encloser of ``key`` when the name does not exist (None when it does)."""
    if table.exists_key(key):
        return None
    offsets = key_offsets(key)
    for at in offsets[1:]:
        if table.exists_key(key[at:]):
            return key[at:]
    return None


def signed_result(table: ZoneTable, chain: Chain, qname: dns.name.Name, result: Result,
                  pool_sigs: PoolSigs | None = None) -> Result:
    """``result`` (of ``table.lookup``) as a DO query gets it from a signed zone
    (``pool_sigs``: the signatures made for the pools' answers)."""
    proof = _Proof(table, chain, pool_sigs=pool_sigs)
    answer: list[dns.rrset.RRset] = []
    final = name_key(qname)
    previous: dns.rrset.RRset | None = None
    for rrset in result.answer:
        key = name_key(rrset.name)
        synthesized = (previous is not None and previous.rdtype == RdataType.DNAME
                       and rrset.rdtype == RdataType.CNAME)
        encloser = None if synthesized else _encloser(table, key)
        if encloser is not None:  # expanded from the wildcard at the closest encloser
            answer += proof.signed(rrset, _WILD + encloser)
            proof.wildcard(key, encloser)
        elif synthesized:
            answer.append(rrset)  # a CNAME made from a DNAME is not signed (RFC 6672 §5.3.1)
        else:
            answer += proof.signed(rrset)
        if rrset.rdtype == RdataType.CNAME:
            final = name_key(rrset[0].target)
        previous = rrset
    authority: list[dns.rrset.RRset] = []
    for rrset in result.authority:
        authority += proof.signed(rrset)
    if result.kind is ResultKind.REFERRAL and result.authority:
        cut = name_key(result.authority[0].name)
        ds = table.node_by_key(cut).get(RdataType.DS)
        if ds is not None:
            authority += proof.signed(ds)
        else:
            proof.nodata(cut, None)
    elif result.kind is ResultKind.NXDOMAIN:
        encloser = _encloser(table, final)
        proof.nxdomain(final, encloser if encloser is not None else name_key(table.origin))
    elif result.kind is ResultKind.NODATA:
        proof.nodata(final, _encloser(table, final))
    additional: list[dns.rrset.RRset] = []
    for rrset in result.additional:
        additional += proof.signed(rrset)
    return Result(
        result.kind, result.rcode, result.aa, tuple(answer),
        tuple(authority + proof.rrsets), tuple(additional), result.uses,
    )


class DoForms:
    """The DO forms of one snapshot's answers (``None`` where DO changes nothing).

    ``earlier``: the previous snapshot's ``DoForms``. Its denial chains are
    reused for tables that share their loaded data (a pool flip makes new
    table objects over the same zone), and all its forms when every signed
    table is the same object (a change elsewhere).
    """

    __slots__ = (
        "_cache", "_chains", "_kept", "_pieces", "_pool_sigs", "_pools", "_signed", "_zones",
        "cache_size", "expired",
    )

    def __init__(
        self,
        zones: Mapping[dns.name.Name, ZoneTable],
        expired: Collection[dns.name.Name] = frozenset(),
        *,
        cache_size: int = CACHE_SIZE,
        earlier: DoForms | None = None,
        pools: Mapping[PoolKey, SignedPool] | None = None,
    ) -> None:
        self._zones = zones
        self._pools = pools or {}
        self._pool_sigs = pool_signatures(self._pools)
        self.expired = expired
        self.cache_size = cache_size
        signed: dict[bytes, ZoneTable | None] = {}
        for origin, table in zones.items():
            signed[name_key(origin)] = table if is_signed(table) else None
        self._signed = signed  # every zone's origin (wire): its table when it is signed
        self._chains: dict[dns.name.Name, tuple[ZoneTable, Chain]] = {}
        if earlier is not None:
            for origin, (table, chain) in earlier._chains.items():
                now = zones.get(origin)
                if now is not None and now.same_data(table):
                    self._chains[origin] = (now, chain)
        self._kept: dict[bytes, Prebuilt | Variants | None] = {}
        self._cache: dict[bytes, Prebuilt | Variants | None] = {}
        # each zone's SOA and NSEC/NSEC3 records, signed and rendered (``_piece``)
        self._pieces: dict[bytes, dict[bytes, tuple[bytes, int]]] = {}
        if (earlier is not None and earlier.expired == expired and self._same_signed(earlier)
                and earlier._pool_sigs == self._pool_sigs):
            # the same zones, each signed one the same table (a pool flipped in an
            # unsigned zone): every DO form still holds, and stays warm
            self._kept, self._cache, self._pieces = earlier._kept, earlier._cache, earlier._pieces

    def _same_signed(self, earlier: DoForms) -> bool:
        """Whether ``earlier`` served the same origins, signed the same, from the same
        signed tables: then its DO forms (and plain-answer marks) are this one's."""
        mine, theirs = self._signed, earlier._signed
        return mine.keys() == theirs.keys() and all(
            (table is None) == (theirs[origin] is None)
            and (table is None or table is theirs[origin])
            for origin, table in mine.items()
        )

    def __len__(self) -> int:
        """Answer keys held (DO forms and plain-answer marks), kept or cached."""
        return len(self._kept) + len(self._cache)

    @property
    def any_signed(self) -> bool:
        return any(table is not None for table in self._signed.values())

    def answer(self, key: bytes, prebuilt: object) -> Prebuilt | Variants | None:
        """The DO form for answer ``key`` (``prebuilt``: its non-DO entry, if any).

        Kept for good: the forms of prebuilt answers and of data that exists
        (a lazy zone's answers), as many as the zone's RRsets; the others
        (denials, of random names too) in the bounded cache, so a flood of
        names that do not exist never evicts the answers of names that do.
        """
        form: Prebuilt | Variants | None = self._kept.get(key, _UNKNOWN)
        if form is _UNKNOWN:
            form = self._cache.get(key, _UNKNOWN)
        if form is not _UNKNOWN:
            return form
        table = self._zone_of(key)
        if table is None:  # an unsigned zone, or none: the plain answer
            if prebuilt is not None:
                self._kept[key] = None
            return None  # a miss is not remembered: the walk above is all it costs
        built: Prebuilt | Variants | None = (
            self._denial(table, key) if prebuilt is None else None)
        keep = False
        if built is None:
            built, keep = self._build(key)
        if keep or prebuilt is not None:
            self._kept[key] = built
        else:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[key] = built
        return built

    def _zone_of(self, key: bytes) -> ZoneTable | None:
        """The signed zone that answers ``key`` (None: an unsigned one, or none), found by
        a walk up the qname's labels (as ``answer.lookup.find_zone`` chooses)."""
        signed = self._signed
        end = len(key) - 4
        ds = key[-4:-2] == b"\x00\x2b"
        apex: ZoneTable | None = None
        i = 0
        while True:
            name = key[i:end]
            if name in signed:
                found = signed[name]
                if not (ds and i == 0 and key[0]):
                    return found
                apex = found  # DS at an apex is the parent's, when we serve the parent
            if key[i] == 0:
                return apex
            i += key[i] + 1

    def _build(self, key: bytes) -> tuple[Prebuilt | Variants | None, bool]:
        """The DO form of ``key`` (None: the plain answer), and whether to keep it for good."""
        qname, qtype, qclass = key_parts(key)
        if qclass != dns.rdataclass.IN or in_expired(self._zones, qname, qtype, qclass,
                                                      self.expired):
            return None, False
        table = find_zone(self._zones, qname, qtype)
        if table is None or not is_signed(table):
            return None, False
        result = table.lookup(qname, RdataType(qtype))
        if result.uses:
            return self._pool_forms(table, qname, qtype, qclass, result), True
        form = render(qname, qtype, qclass, signed_result(table, self._chain(table), qname,
                                                          result))
        return form, result.kind is ResultKind.ANSWER and table.exists_key(name_key(qname))

    def _pool_forms(self, table: ZoneTable, qname: dns.name.Name, qtype: int, qclass: int,
                    result: Result) -> Prebuilt | Variants | None:
        """The DO forms of an answer that uses pools, one per variant of its first
        pool (as ``answer.snapshot`` prebuilds the plain ones), with the signatures the
        owner made; None (the plain answer) when a pool it uses has none."""
        pools = sorted(result.uses)
        if not all(p in self._pools for p in pools):
            return None
        chain = self._chain(table)
        first = self._pools[pools[0]]
        forms = []
        for rrset in first.rrsets:
            overlay = table.with_rrsets({pools[0]: rrset})
            looked = overlay.lookup(qname, RdataType(qtype))
            forms.append(render(qname, qtype, qclass,
                                signed_result(overlay, chain, qname, looked, self._pool_sigs)))
        if len(forms) == 1:
            return forms[0]
        return Variants(tuple(forms), first.cum_weights)

    def _denial(self, table: ZoneTable, key: bytes) -> Prebuilt | None:
        """The DO form of a name that does not exist, from its wire bytes (None: not a
        case this handles; ``_build`` answers): no name object, no lookup.

        Handled when the qname does not exist and nothing at or above its
        closest encloser, up to the apex, is a zone cut or a DNAME
        (``ZoneTable.lookup``'s steps 1 and 3): NXDOMAIN (no wildcard at the
        encloser), wildcard NODATA, and a wildcard answer of a type that
        brings no additional records. The answer is joined from pieces
        rendered once per zone: the negative SOA, each NSEC/NSEC3 with its
        RRSIGs, uncompressed (no pointer leaves a piece), and a wildcard's
        RRset with its RRSIGs, owned by a pointer to the question (offset
        12): a flood of new names costs a walk and a join.
        """
        qtype = (key[-4] << 8) | key[-3]
        if key[-2:] != b"\x00\x01" or 250 < qtype < 255 or self.expired:
            return None
        qname = key[:-4]
        if table.exists_key(qname):
            return None
        apex = name_key(table.origin)
        encloser = b""
        for at in key_offsets(qname)[1:]:
            above = qname[at:]
            if not encloser and table.exists_key(above):
                encloser = above
            if encloser:
                node = table.node_by_key(above)  # decoded once, then memoized by the table
                if RdataType.DNAME in node or (RdataType.NS in node and above != apex):
                    return None
            if len(above) <= len(apex):
                break
        if not encloser:
            return None
        pieces = self._pieces.get(apex)
        if pieces is None:
            pieces = self._pieces[apex] = {}
        chain = self._chain(table)
        proof = _Proof(table, chain, decode=False)
        source = _WILD + encloser
        parts: list[tuple[bytes, int]] = []
        an = 0
        if not table.exists_key(source):
            proof.nxdomain(qname, encloser)
            rcode = Rcode.NXDOMAIN
        else:
            wild = table.node_by_key(source)
            if qtype in _SLOW_TYPES or not _NOT_PLAIN.isdisjoint(wild):
                return None
            rcode = Rcode.NOERROR
            rrset = wild.get(RdataType.make(qtype))
            if rrset is None:
                proof.nodata(qname, encloser)
            else:
                piece_key = b"\xff" + source + key[-4:-2]
                answer = pieces.get(piece_key) or self._piece(
                    pieces, piece_key, lambda: proof.signed(rrset, source), owner=_QUESTION)
                parts.append(answer)
                an = answer[1]
                proof.wildcard(qname, encloser)
        if rcode or not an:
            parts.append(pieces.get(b"") or self._piece(
                pieces, b"", lambda: proof.signed(_negative_soa(table))))
        rdtype = RdataType.NSEC3 if chain.nsec3 else RdataType.NSEC
        for owner in proof.owners:
            def rrsets(owner: bytes = owner) -> list[dns.rrset.RRset]:
                rrset = table.node_by_key(owner).get(rdtype)
                return proof.signed(rrset) if rrset is not None else []
            parts.append(pieces.get(owner) or self._piece(pieces, owner, rrsets))
        body = b""
        chunks = []
        ns = -an  # the answer's records are counted into ``ns`` below, then moved
        for wire, count in parts:
            body += wire
            ns += count
            chunks.append((len(body), an, max(ns, 0), 0, True))
        return Prebuilt(_NXDOMAIN_FLAGS if rcode else _NOERROR_FLAGS, counts(1, an, ns, 0),
                        counts(1, an, ns, 1), body, tuple(chunks), int(rcode))

    @staticmethod
    def _piece(
        pieces: dict[bytes, tuple[bytes, int]],
        key: bytes,
        rrsets: Callable[[], list[dns.rrset.RRset]],
        *,
        owner: bytes | None = None,
    ) -> tuple[bytes, int]:
        """RRsets rendered without compression, and their record count, kept in
        ``pieces``; with ``owner``, every record's owner is written as it."""
        out = io.BytesIO()
        count = 0
        for rrset in rrsets():
            if owner is None:
                count += rrset.to_wire(out)
                continue
            for rdata in rrset:
                wire = rdata.to_wire()
                out.write(owner + _RR_FIXED.pack(rrset.rdtype, rrset.rdclass, rrset.ttl,
                                                 len(wire)) + wire)
                count += 1
        piece = pieces[key] = (out.getvalue(), count)
        return piece

    def _chain(self, table: ZoneTable) -> Chain:
        held = self._chains.get(table.origin)
        if held is None or held[0] is not table:
            held = self._chains[table.origin] = (table, Chain(table))
        return held[1]
