"""Prebuilt answers: a lookup ``Result`` rendered once into wire bytes.

Owns the layout of a prebuilt response: header flags for each RD/CD
combination, section counts with and without our OPT record, and the body
(every section after the question) rendered with name compression against a
question at offset 12. A client's question has the same length whatever its
case, so the body's compression pointers stay valid when the engine puts the
client's own question bytes in front of it.

The body is kept with the end offset of every rrset, so a UDP answer that is
too large can be cut at an rrset boundary (pointers only point backwards); an
RRset and the RRSIGs after it (a DNSSEC answer) are one piece.

Pure: dnspython renders here at build time, never per query.
"""

from __future__ import annotations

import bisect

import dns.name
import dns.renderer
import dns.rrset
from dns.rcode import Rcode
from dns.rdatatype import RdataType

from dnsserve import wire
from dnsserve.zones.table import Result, ResultKind

_SECTIONS = (dns.renderer.ANSWER, dns.renderer.AUTHORITY, dns.renderer.ADDITIONAL)


class Prebuilt:
    """One response body and everything needed to patch a header onto it."""

    __slots__ = ("body", "chunks", "counts", "counts_edns", "flags", "rcode")

    def __init__(
        self,
        flags: tuple[bytes, bytes, bytes, bytes],
        counts: bytes,
        counts_edns: bytes,
        body: bytes,
        chunks: tuple[tuple[int, int, int, int, bool], ...],
        rcode: int,
    ) -> None:
        self.flags = flags  # wire.flag_variants: indexed by the query's RD and CD
        self.counts = counts  # QD, AN, NS, AR without OPT
        self.counts_edns = counts_edns  # the same with AR + 1 for our OPT
        self.body = body
        # (end offset in body, an, ns, ar, essential) after each rrset:
        # an rrset is essential when leaving it out requires TC (RFC 2181 §9,
        # RFC 9471 for referral glue).
        self.chunks = chunks
        self.rcode = rcode

    def pick(self) -> Prebuilt:
        """The answer to one query: this one (``Variants.pick`` draws among several)."""
        return self

    def cut(self, budget: int) -> tuple[bytes, bytes, bool]:
        """The longest body prefix within ``budget`` bytes: (body, counts, truncated).

        Leaving out an essential rrset truncates the whole answer (TC set,
        empty sections) so the client retries over TCP.
        """
        end, an, ns, ar = 0, 0, 0, 0
        full = True
        for chunk_end, c_an, c_ns, c_ar, essential in self.chunks:
            if chunk_end > budget:
                if essential:
                    return b"", wire.counts(1, 0, 0, 0), True
                full = False
            elif full:
                end, an, ns, ar = chunk_end, c_an, c_ns, c_ar
        return self.body[:end], wire.counts(1, an, ns, ar), False


class Variants:
    """A pool answer: several prebuilt responses, one chosen per query.

    Without weights the variants rotate (policy "all"/"priority"); with a
    cumulative weight table a deterministic low-discrepancy sequence picks
    each variant in proportion to its weight.
    """

    __slots__ = ("_n", "cum_weights", "total", "variants")

    _GOLDEN = 0.6180339887498949

    def __init__(self, variants: tuple[Prebuilt, ...], cum_weights: tuple[int, ...] | None) -> None:
        assert variants
        self.variants = variants
        self.cum_weights = cum_weights
        self.total = cum_weights[-1] if cum_weights else 0
        self._n = 0

    def pick(self) -> Prebuilt:
        self._n += 1
        if self.cum_weights is None:
            return self.variants[self._n % len(self.variants)]
        x = ((self._n * self._GOLDEN) % 1.0) * self.total
        return self.variants[bisect.bisect_right(self.cum_weights, x)]


def render(
    qname: dns.name.Name, qtype: int, rdclass: int, result: Result
) -> Prebuilt:
    """Render ``result`` as the answer to ``qname``/``qtype``/``rdclass``."""
    renderer = dns.renderer.Renderer(id=0, flags=0, max_size=65535)
    renderer.add_question(qname, RdataType(qtype), rdclass)
    start = renderer.output.tell()
    chunks: list[tuple[int, int, int, int, bool]] = []
    counts = [0, 0, 0]
    sections = (result.answer, result.authority, result.additional)
    glue_essential = result.kind is ResultKind.REFERRAL
    for index, (section, rrsets) in enumerate(zip(_SECTIONS, sections, strict=True)):
        for rrset in rrsets:
            renderer.add_rrset(section, rrset, want_shuffle=False)
            counts[index] += len(rrset)
            essential = index < 2 or (glue_essential and _is_glue(rrset, result))
            an, ns, ar = counts
            if rrset.rdtype == RdataType.RRSIG and rrset.covers and chunks:
                # an RRset and its signatures are cut as one (RFC 4035 §3.1.1)
                essential = essential or chunks.pop()[4]
            chunks.append((renderer.output.tell() - start, an, ns, ar, essential))
    body = renderer.output.getvalue()[start:]
    flags = wire.QR | (wire.AA if result.aa else 0) | (int(result.rcode) & wire.RCODE_MASK)
    return Prebuilt(
        wire.flag_variants(flags),
        wire.counts(1, *counts),
        wire.counts(1, counts[0], counts[1], counts[2] + 1),
        body,
        tuple(chunks),
        int(result.rcode),
    )


def empty(rcode: Rcode, *, aa: bool = False) -> Prebuilt:
    """A response with no records (REFUSED, NOTIMP, or an empty pool answer)."""
    flags = wire.QR | (wire.AA if aa else 0) | (int(rcode) & wire.RCODE_MASK)
    return Prebuilt(
        wire.flag_variants(flags),
        wire.counts(1, 0, 0, 0),
        wire.counts(1, 0, 0, 1),
        b"",
        (),
        int(rcode),
    )


def _is_glue(rrset: dns.rrset.RRset, result: Result) -> bool:
    """RFC 9471: glue for an in-domain name server of a referral must fit, or TC."""
    cut = result.authority[0].name if result.authority else None
    return cut is not None and rrset.name.is_subdomain(cut)
