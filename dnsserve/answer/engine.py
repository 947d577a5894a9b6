"""The answer engine: query bytes in, response bytes out (None = drop).

Owns the protocol outcome of every query, decided at this one boundary:
short header or QR set -> drop; malformed -> FORMERR; with a hand-off
wired (``hand_off``), AXFR/IXFR, NOTIFY and TSIG-signed queries ->
``wire.HAND_OFF`` (the caller's transfer code answers them), and so are
queries with RFC 7314's EXPIRE when ``expire`` is ``expire_elsewhere`` (a
worker, whose owner holds the secondary zones' timers); opcode other than
QUERY -> NOTIMP; signed with a TSIG key we do not have -> NOTAUTH with BADKEY
(``answer.tsig``, a slow path only signed queries take); EDNS version above
0 -> BADVERS; not our zone -> REFUSED; anything unexpected -> SERVFAIL and a
counter, never an exception out.

Per query it parses only header, question and OPT (``wire``), looks up a
prebuilt answer by (lower-cased qname, qtype, qclass) in the current
snapshot, and patches ID, flags, the client's question bytes (case kept) and
OPT around it. A miss (a name or type with no prebuilt answer) is answered by
the snapshot's miss index (``answer.misses``: the closest encloser found
with dict lookups, a body shared by every name with the same outcome), so a
flood of random names costs about what hits cost. What the index leaves to
the slow path (names below a DNAME, DS at existing names, names in an
expired secondary zone) is computed once by the snapshot's slow path and
kept in a bounded cache that lives as long as the snapshot.

It also remembers the keys whose answer the miss index gave with NOERROR
(a lazy zone's answers among them), at most ``HOT_KEYS`` twice over:
``hot_keys`` hands them to a reload, which answers them once from the new
snapshot before it is served, so the names asked now are not all asked of a
cold index at once (each first answer costs the slow path). A flood of
random names (NXDOMAIN) is not remembered.

Pure: no sockets, no awaits, no clock, no logging per query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import dns.name

from dnsserve import wire
from dnsserve.answer import edns, tsig
from dnsserve.answer.dnssec import DoForms, SignedPool
from dnsserve.answer.lookup import key_parts
from dnsserve.answer.misses import MissIndex, Outside, build_index
from dnsserve.answer.policies import Selection
from dnsserve.answer.prebuilt import Prebuilt
from dnsserve.answer.snapshot import Entry, PoolKey, Snapshot, pool_rrset
from dnsserve.errors import Dropped, FormError, Signed
from dnsserve.zones.table import ZoneTable

log = logging.getLogger(__name__)

CACHE_SIZE = 20_000
HOT_KEYS = 50_000  # keys remembered per generation of ``Engine._hot`` (two are kept)
EXPIRE_ELSEWHERE = -1  # what ``expire_elsewhere`` says: hand the query off
_TRANSFERS = (wire.TYPE_IXFR, wire.TYPE_AXFR)  # low bytes of the qtype (high byte 0)
_NEED_QUESTION = (wire.OPCODE_QUERY, wire.OPCODE_NOTIFY, wire.OPCODE_UPDATE)
_SOA = b"\x00\x06"  # the qtype SOA, as the key's bytes hold it


class Engine:
    """Answers queries from the snapshot it holds; ``swap`` replaces it whole."""

    __slots__ = (
        "_answers", "_cache", "_dnssec", "_hot", "_hot_before", "_misses", "_nsid",
        "_signed_pools", "_snapshot",
        "_zones", "answered", "cache_size", "cookies", "expire", "formerr", "hand_off", "keyring",
        "last", "servfails", "tcp_keepalive", "truncated",
    )
    _snapshot: Snapshot
    _answers: Mapping[bytes, Entry]
    _cache: dict[bytes, Prebuilt]
    _misses: MissIndex | Outside
    _zones: Mapping[dns.name.Name, ZoneTable]
    _dnssec: DoForms | None  # None: no zone served is signed (DO changes nothing)

    def __init__(
        self,
        snapshot: Snapshot,
        *,
        cache_size: int = CACHE_SIZE,
        keyring: tsig.Keyring = tsig.NO_KEYS,
    ) -> None:
        self.cache_size = cache_size
        self.keyring = keyring  # TSIG keys; none until zone transfers use them
        # True when the caller has a hand-off (``wire.HAND_OFF``): transfers,
        # NOTIFY and signed queries are returned to it instead of answered here
        self.hand_off = False
        # RFC 7314 EXPIRE: the seconds a secondary zone's copy has left, by the
        # query's answer key (None: not a secondary zone). Set by the app when
        # it has secondary zones; asked only for queries that carry the option.
        self.expire: Callable[[bytes], int | None] | None = None
        # RFC 7828: the TCP idle timeout net applies, in units of 100 ms
        # (``edns.keepalive_units``), answered to a TCP query that carries the
        # option; None: not known here (the engine answers no keepalive).
        self.tcp_keepalive: int | None = None
        self._nsid = b""  # RFC 5001: the snapshot's NSID; empty: not answered
        # DNS Cookies (``answer.cookies.Cookies``): (query, question end, our OPT)
        # -> the OPT to answer with; asked only for queries whose OPT has options.
        self.cookies: Callable[[bytes, int, bytes], bytes] | None = None
        # the prebuilt answer of the last query answered from one (``answer.guard``
        # resets it and keys the rate limiter's buckets by its body)
        self.last: Prebuilt | None = None
        self.servfails = 0  # unexpected exceptions answered with SERVFAIL
        self.formerr = 0
        self.truncated = 0  # answers sent with TC set
        # answers by (rcode, qtype, tcp), packed in one int (``count_key``): one
        # dict update per query, read by the metrics (``answered_by``)
        self.answered: dict[int, int] = {}
        self._hot: dict[bytes, None] = {}  # miss-index answers with NOERROR, latest last
        self._hot_before: dict[bytes, None] = {}  # the generation before (``HOT_KEYS``)
        self._dnssec = None
        self._signed_pools: SignedPools = {}
        self.swap(snapshot)

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def swap(self, snapshot: Snapshot) -> None:
        """Serve ``snapshot`` from the next query on.

        Misses are recomputed unless the new snapshot reads the same zones
        (a change of reasons only), whose misses are the same.
        """
        same_zones = getattr(self, "_snapshot", None) is not None and (
            snapshot.zones is self._snapshot.zones and snapshot.expired == self._snapshot.expired
        )
        self._snapshot = snapshot
        self._answers = snapshot.answers
        self._nsid = snapshot.nsid
        self._zones = snapshot.zones
        if snapshot.misses is not None:
            self._misses = snapshot.misses
        elif not same_zones or not hasattr(self, "_misses"):
            # a snapshot made without one (built by hand): index its zones here
            self._misses = build_index(snapshot.zones, snapshot.selections)
        if snapshot.expired:
            # a secondary zone past its expire answers SERVFAIL: the slow path
            # knows, the miss index does not, so misses at or below it take the
            # slow path (the others, lazy zones' answers among them, do not)
            index = self._misses
            base = index.index if isinstance(index, Outside) else index
            self._misses = Outside(base, snapshot.expired)
        if not same_zones:
            self._cache = {}
            self._signed_pools = signed_pools(snapshot, self._signed_pools)
            forms = DoForms(snapshot.zones, snapshot.expired, earlier=self._dnssec,
                            pools={p: s for p, (_, s) in self._signed_pools.items()})
            self._dnssec = forms if forms.any_signed else None
        elif self._dnssec is not None and snapshot.expired != self._dnssec.expired:
            self._dnssec = DoForms(snapshot.zones, snapshot.expired, earlier=self._dnssec,
                                   pools={p: s for p, (_, s) in self._signed_pools.items()})

    def hot_keys(self) -> list[bytes]:
        """Answer keys the miss index answered lately with NOERROR, most recent first
        (at most twice ``HOT_KEYS``): what a reload warms its new snapshot with."""
        return [*reversed(self._hot), *(k for k in reversed(self._hot_before)
                                        if k not in self._hot)]

    def respond(self, data: bytes, *, tcp: bool) -> bytes | None:
        try:
            flags, qend, key, payload, do, version = wire.parse_query(data)
        except Dropped:
            return None
        except FormError:
            return self._refuse_malformed(data, tcp)
        except Signed as signed:
            return self._signed(data, signed)
        try:
            if flags & wire.OPCODE_MASK:
                return self._other_opcode(data, flags, qend, key, payload, do, tcp)
            if version:
                return wire.badvers(data, flags, data[12:qend], do)
            entry = self._answers.get(key)
            if do and self._dnssec is not None:  # a signed zone is served: its DO form
                entry = self._dnssec.answer(key, entry) or entry
            if entry is None:
                entry = self._cache.get(key)
                if entry is None:
                    if self.hand_off and key[-4] == 0 and key[-3] in _TRANSFERS:
                        return wire.HAND_OFF
                    entry = self._misses.answer(key, self._zones)
                    if entry is None:
                        entry = self._miss(key)
                    elif not entry.rcode:
                        hot = self._hot
                        hot[key] = None
                        if len(hot) >= HOT_KEYS:
                            self._hot_before, self._hot = hot, {}
            elif entry.__class__ is not Prebuilt:
                # a pool's Variants draws one; a Prebuilt is its own pick, so
                # static answers skip the call
                entry = entry.pick()
            self.last = entry
            # the index layout of wire.flag_variants (RD -> bit 1, CD -> bit 0), inline
            fb = entry.flags[((flags >> 7) & 2) | ((flags >> 4) & 1)]
            # count_key, inline: rcode, then qtype (the key's last four bytes are
            # qtype and qclass), then the transport
            k = (entry.rcode << 17) | (key[-4] << 9) | (key[-3] << 1) | tcp
            answered = self.answered
            answered[k] = answered.get(k, 0) + 1
            if payload < 0:
                out = data[:2] + fb + entry.counts + data[12:qend] + entry.body
                if tcp or len(out) <= 512:
                    return out
                return self._truncate(data, fb, entry, qend, 512, b"")
            opt = wire.OPT_DO if do else wire.OPT_PLAIN
            if len(data) - qend > 11 and (
                self.expire is not None or self._nsid or (tcp and self.tcp_keepalive is not None)
            ):  # an OPT with options, and an option we answer is on
                opt = self._options_opt(data, qend, key, do, tcp)
                if not opt:  # expire_elsewhere: the owner answers it
                    return wire.HAND_OFF
            if self.cookies is not None and len(data) - qend > 11:
                opt = self.cookies(data, qend, opt)  # FormError: a malformed COOKIE
            out = data[:2] + fb + entry.counts_edns + data[12:qend] + entry.body + opt
            if tcp:
                return out
            limit = payload if payload < wire.OUR_PAYLOAD else wire.OUR_PAYLOAD
            if len(out) <= limit:
                return out
            return self._truncate(data, fb, entry, qend, limit, opt)
        except FormError:  # RFC 7873 §5.2.2: a COOKIE option of a bad length
            self.formerr += 1
            return wire.header_only(data, flags, wire.FORMERR, data[12:qend],
                                    wire.OPT_DO if do else wire.OPT_PLAIN)
        except Exception:
            return self._servfail(data, flags, qend)

    def _options_opt(self, data: bytes, qend: int, key: bytes, do: bool, tcp: bool) -> bytes:
        """Our OPT with the options the query asks for (``answer.edns``), or
        ``wire.HAND_OFF`` when its EXPIRE is the owner's to answer."""
        span = wire.opt_span(data, qend)
        if span is None:
            return wire.OPT_DO if do else wire.OPT_PLAIN
        asked = edns.asked(data, *span)
        if not asked:
            return wire.OPT_DO if do else wire.OPT_PLAIN
        options = b""
        if asked & edns.EXPIRE and self.expire is not None:
            seconds = self.expire(key)
            if seconds == EXPIRE_ELSEWHERE:
                if self.hand_off:
                    return wire.HAND_OFF
            elif seconds is not None:
                options = wire.expire_option(seconds)
        options += edns.answer_options(asked, nsid=self._nsid, keepalive=self.tcp_keepalive,
                                       tcp=tcp)
        return wire.opt_with(do, options)

    def error_opt(self, data: bytes, tcp: bool) -> bytes:
        """``_error_opt``, for the hand-off's own answers (NOTIFY, refused transfers)."""
        return self._error_opt(data, tcp)

    def _error_opt(self, data: bytes, tcp: bool) -> bytes:
        """Our OPT for an error response to ``data`` (RFC 6891 §7: a query with
        an OPT gets one back, errors included), with NSID and keepalive when
        asked; empty when the message carries no OPT we could find."""
        found = wire.error_opt(data)
        if found is None:
            return b""
        do, start, end = found
        return self._opt_for(data, start, end, do, tcp)

    def _opt_for(self, data: bytes, start: int, end: int, do: bool, tcp: bool) -> bytes:
        """Our OPT with NSID and keepalive as the options in ``data[start:end]`` ask."""
        asked = edns.asked(data, start, end)
        return wire.opt_with(do, edns.answer_options(
            asked, nsid=self._nsid, keepalive=self.tcp_keepalive, tcp=tcp))

    def _refuse_malformed(self, data: bytes, tcp: bool) -> bytes:
        """A message ``wire.parse_query`` refused, answered as BIND answers it.

        No question (QDCOUNT 0) with an opcode other than QUERY, NOTIFY and
        UPDATE: NOTIMP (the opcode is what we do not do); anything else:
        FORMERR (a NOTIFY or an UPDATE needs its one question, RFC 1996 §3.7,
        RFC 2136 §3.1.1). RD and CD are copied for QUERY only; no question is
        echoed; our OPT when the message carries one.
        """
        flags = (data[2] << 8) | data[3]
        opcode = flags & wire.OPCODE_MASK
        if data[4] == data[5] == 0 and opcode not in _NEED_QUESTION:
            rcode = wire.NOTIMP
        else:
            rcode = wire.FORMERR
            self.formerr += 1
        kept = flags if opcode == wire.OPCODE_QUERY else opcode
        return wire.header_only(data, kept, rcode, b"", self._error_opt(data, tcp))

    def _other_opcode(
        self, data: bytes, flags: int, qend: int, key: bytes, payload: int, do: bool, tcp: bool
    ) -> bytes:
        """A well-formed message with an opcode other than QUERY, as BIND answers it.

        NOTIFY goes to the hand-off when there is one. UPDATE: REFUSED (we take
        no dynamic updates), NOTAUTH for a zone we do not serve, FORMERR when
        its zone section is not an SOA question (RFC 2136 §3.1.1); each echoes
        the question. Any other opcode: NOTIMP with no question. RD and CD are
        not copied. Our OPT when the message has one (NSID, keepalive as asked).
        """
        opcode = flags & wire.OPCODE_MASK
        if self.hand_off and opcode == wire.OPCODE_NOTIFY:
            return wire.HAND_OFF
        opt = b""
        if payload >= 0:
            span = wire.opt_span(data, qend)
            opt = (wire.OPT_DO if do else wire.OPT_PLAIN) if span is None else self._opt_for(
                data, span[0], span[1], do, tcp)
        if opcode == wire.OPCODE_UPDATE:
            if key[-4:-2] != _SOA:
                rcode = wire.FORMERR
            elif key_parts(key)[0] in self._zones:
                rcode = wire.REFUSED
            else:
                rcode = wire.NOTAUTH  # not a zone we serve
            return wire.header_only(data, opcode, rcode, data[12:qend], opt)
        return wire.header_only(data, opcode, wire.NOTIMP, b"", opt)

    def _signed(self, data: bytes, signed: Signed) -> bytes:
        """A query signed with TSIG: the opcode is judged first (as NSD does), then the key."""
        flags, qend = signed.flags, signed.qend
        if self.hand_off:
            return wire.HAND_OFF
        try:
            if flags & wire.OPCODE_MASK:
                opt = b"" if signed.payload < 0 else (wire.OPT_DO if signed.do else wire.OPT_PLAIN)
                return wire.header_only(data, flags, wire.NOTIMP, data[12:qend], opt)
            return tsig.answer(data, signed, self.keyring)
        except FormError:
            self.formerr += 1
            return wire.header_only(data, flags, wire.FORMERR)
        except Exception:
            return self._servfail(data, flags, qend)

    def _servfail(self, data: bytes, flags: int, qend: int) -> bytes:
        """Called from an ``except``: count, log the 1st, 2nd, 4th, 8th, … time, SERVFAIL."""
        self.servfails += 1
        if self.servfails & (self.servfails - 1) == 0:
            log.exception("unexpected error answering a query (%d so far)", self.servfails)
        return wire.header_only(data, flags, wire.SERVFAIL, data[12:qend])

    def _miss(self, key: bytes) -> Prebuilt:
        qname, qtype, qclass = key_parts(key)
        entry = self._snapshot.compute(qname, qtype, qclass)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()  # bounded: a random-name flood only costs recomputation
        self._cache[key] = entry
        return entry

    def _truncate(
        self, data: bytes, fb: bytes, entry: Prebuilt, qend: int, limit: int, opt: bytes
    ) -> bytes:
        """Cut at an rrset boundary to fit ``limit``; TC when an essential rrset is left out."""
        question = data[12:qend]
        body, counts, truncated = entry.cut(limit - 12 - len(question) - len(opt))
        if truncated:
            self.truncated += 1
            fb = (int.from_bytes(fb, "big") | wire.TC).to_bytes(2, "big")
        if opt:
            counts = counts[:6] + (int.from_bytes(counts[6:], "big") + 1).to_bytes(2, "big")
        return data[:2] + fb + counts + question + body + opt


def expire_elsewhere(key: bytes) -> int:
    """An ``Engine.expire`` for an engine without the secondary zones' timers (a
    worker's): with ``hand_off`` set, a query that carries EXPIRE is handed off."""
    return EXPIRE_ELSEWHERE


def count_key(rcode: int, qtype: int, tcp: bool) -> int:
    """The key ``Engine.answered`` counts under (``respond`` packs it inline)."""
    return (rcode << 17) | (qtype << 1) | tcp


def answered_by(counts: dict[int, int]) -> dict[tuple[int, int, bool], int]:
    """``Engine.answered`` unpacked: (rcode, qtype, tcp) -> answers."""
    return {(k >> 17, (k >> 1) & 0xFFFF, bool(k & 1)): n for k, n in counts.items()}


SignedPools = dict[PoolKey, tuple[Selection, SignedPool]]


def signed_pools(snapshot: Snapshot, before: SignedPools) -> SignedPools:
    """The pools whose selections carry signatures (online-signed zones): each
    variant's RRset beside its RRSIGs, for the DO forms of their answers; a pool
    whose selection is the one ``before`` had keeps what was made for it (a flip
    of one pool among thousands makes one)."""
    out: SignedPools = {}
    for pool, selection in snapshot.selections.items():
        if not selection.signatures:
            continue
        kept = before.get(pool)
        if kept is None or kept[0] is not selection:
            kept = (selection, SignedPool.make(
                tuple(pool_rrset(pool, selection, k)
                      for k in range(len(selection.values_variants))),
                selection.signatures, selection.cum_weights))
        out[pool] = kept
    return out
