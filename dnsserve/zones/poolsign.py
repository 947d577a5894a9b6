"""Pool answers in an online-signed zone, signed when a selection changes (issue 8 §2).

Owns the owner's side of signing pool answers: for each pool inside a zone
with ``[[zone]] dnssec`` keys, the RRSIGs of every variant of its selection
(``PoolSigner.sign``), made when the selection's answers change (a flip, a
drain, a reload) and kept while they do not and are fresh (more than the
zone's ``refresh`` left). The signatures travel inside the ``Selection``
(``signatures``), so the workers get them with the existing Select message
and never hold a private key. The rest of the zone (the pool's name and its
NSEC records) is signed at load (``zones.load``): a pool's names never change
with health, only its RRsets' signatures.

Must not: read the clock (``now`` is given), or sign anything per query.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import dns.name

from dnsserve.answer.policies import Selection
from dnsserve.answer.snapshot import PoolKey, pool_rrset
from dnsserve.zones.dnskeys import read_keys
from dnsserve.zones.online import Signing, ZoneKey, signatures_expiry
from dnsserve.zones.rrsign import sign_rrset


@dataclass(frozen=True, slots=True)
class PoolSigner:
    """The keys of the online-signed zones, by origin, with how long signatures last."""

    zones: Mapping[dns.name.Name, tuple[list[ZoneKey], Signing]]

    @classmethod
    def read(cls, signing: Mapping[dns.name.Name, Signing]) -> PoolSigner:
        """The keys of every zone in ``signing`` (raises ``ConfigError`` naming a bad file)."""
        return cls({o: (read_keys(Path(s.keys), o, s.algorithm), s) for o, s in signing.items()})

    def zone_of(self, owner: dns.name.Name) -> dns.name.Name | None:
        best = None
        for origin in self.zones:
            if owner.is_subdomain(origin) and (best is None or len(origin) > len(best)):
                best = origin
        return best

    def sign(
        self,
        selections: Mapping[PoolKey, Selection],
        previous: Mapping[PoolKey, Selection],
        now: float,
    ) -> dict[PoolKey, Selection]:
        """``selections`` with each signed zone's pools signed (kept from ``previous``
        when its answers are the same and its signatures fresh)."""
        if not self.zones:
            return dict(selections)
        out = dict(selections)
        for pool, selection in selections.items():
            origin = self.zone_of(pool[0])
            if origin is None:
                continue
            keys, signing = self.zones[origin]
            before = previous.get(pool)
            if (before is not None and before.signatures
                    and before.values_variants == selection.values_variants
                    and before.ttl == selection.ttl
                    and _left(before.signatures, now) > signing.refresh):
                out[pool] = replace(selection, signatures=before.signatures)
                continue
            signatures = []
            for k in range(len(selection.values_variants)):
                rrset = pool_rrset(pool, selection, k)
                sigs = [] if rrset is None else sign_rrset(rrset, keys, origin, now=now,
                                                           validity=signing.validity)
                signatures.append(tuple(sigs))
            out[pool] = replace(selection, signatures=tuple(signatures))
        return out


def pool_expiry(
    signer: PoolSigner, selections: Mapping[PoolKey, Selection], now: float
) -> dict[dns.name.Name, float]:
    """The first expiry of the pools' signatures, by signed zone."""
    out: dict[dns.name.Name, float] = {}
    for pool, selection in selections.items():
        origin = signer.zone_of(pool[0]) if selection.signatures else None
        first = signatures_expiry(itertools.chain.from_iterable(selection.signatures), now)
        if origin is not None and first is not None:
            out[origin] = min(first, out.get(origin, first))
    return out


def _left(signatures: tuple[tuple[bytes, ...], ...], now: float) -> float:
    """Seconds until the first of ``signatures`` expires (0 when there are none)."""
    first = signatures_expiry(itertools.chain.from_iterable(signatures), now)
    return 0 if first is None else first - now
