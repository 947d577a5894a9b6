"""Response rate limiting (RRL) of UDP answers, as NSD, Knot DNS and BIND have it.

Owns the table of recent answers per (client prefix, response kind, name)
and the verdict for one more: send it, send it truncated (a slip), or drop it.

Rules:
- A bucket is (the client's prefix: /24 IPv4, /56 IPv6 by default; the kind
  of the response; what it is about). Kinds, from the response's header as
  BIND classifies them:

  | rcode    | answer count | AA    | kind     | "what it is about"               |
  |----------|--------------|-------|----------|----------------------------------|
  | NOERROR  | > 0          | any   | ANSWER   | the answer's records (its body)  |
  | NOERROR  | 0            | set   | NODATA   | the zone (its SOA's owner)       |
  | NOERROR  | 0            | clear | REFERRAL | the delegation (its NS owner)    |
  | NXDOMAIN | any          | any   | NXDOMAIN | the zone (its SOA's owner)       |
  | other    | any          | any   | ERROR    | nothing: one bucket per prefix   |

  So a flood of random names under one zone fills one bucket (the peers key
  those kinds by zone too), and the names of one wildcard share one, as NSD
  keys them by the wildcard. An answer is keyed by its records as sent
  (the prebuilt body, compressed against the question): names whose answers
  are the same bytes share a bucket.
- A bucket allows ``rate`` responses per second (a window per whole second
  of ``now``). Beyond it a response is *limited*: every ``slip``-th limited
  response of the bucket is sent truncated (TC set, the question only, so a
  real client retries over TCP); the others are dropped. ``slip = 1``
  truncates every limited response, ``slip = 0`` drops them all.
- Exempt prefixes are never limited; neither is TCP, nor a query with a
  valid server cookie (the caller, ``answer.guard``, decides those).
- The table holds at most ``size`` buckets (this second's): memory never
  grows with the number of clients, and a flood of spoofed prefixes (more
  than ``size`` buckets in one second) can only make counts restart, as a
  bucket does in NSD's fixed-size table when another lands on its slot.
  (NODATA and NXDOMAIN bodies that are the same bytes in two zones would
  share the first one's zone: a bucket too many limited, never too few.)

Pure: time is passed in (``now``, seconds); the client as its address text.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dnsserve import wire

ANSWER, NODATA, REFERRAL, NXDOMAIN, ERROR = range(5)
DEFAULT_SIZE = 65536
CACHE_SIZE = 65536  # clients' prefixes, bodies' zones remembered (then forgotten at once)
EXEMPT = ""  # the prefix of an exempt client: never limited
_HASH = (1 << 30) - 1  # a bucket's hash: 30 bits, a small int
MAX_RATE = 100_000  # [rrl] rate at most (config_validate)


@dataclass(frozen=True, slots=True)
class RrlSettings:
    """What ``[rrl]`` configures, as the limiter takes it (``config`` builds it)."""

    rate: int = 20  # responses per second per bucket (this process's share)
    slip: int = 2
    ipv4_prefix: int = 24
    ipv6_prefix: int = 56
    exempt: tuple[str, ...] = ()  # prefixes ("192.0.2.0/24") never limited
    size: int = DEFAULT_SIZE  # buckets counted per second, at most


def slipped(out: bytes) -> bytes:
    """The truncated stand-in for ``out``: its header with TC, its question, nothing else."""
    i = 12
    n = len(out)
    while i < n and out[i]:  # our own response: uncompressed question labels
        i += out[i] + 1
    qend = i + 5 if (out[4] or out[5]) else 12
    flags = ((out[2] << 8) | out[3] | wire.TC).to_bytes(2, "big")
    return out[:2] + flags + wire.counts(1 if qend > 12 else 0, 0, 0, 0) + out[12:qend]


def first_owner(out: bytes, body: bytes) -> bytes:
    """The owner of the body's first record (lower case), where it points into the
    question: the zone of an SOA, the delegation of an NS; else the body itself."""
    if body[0] >= 0xC0:
        at = ((body[0] & 0x3F) << 8) | body[1]
        end = out.find(b"\x00", at)
        if end >= 0:
            return out[at:end].lower()
    return body


class RateLimiter:
    """The RRL table: ``limit(out, body, client, now)`` -> what to send (None: drop).

    Written for the hot path (every UDP answer passes here, and its cost is
    mostly memory it touches): a client's prefix is looked up once per
    address and kept as 30 bits of its hash; a NODATA, NXDOMAIN or referral
    body's zone once per body; a bucket is 30 bits of the hash of (prefix,
    kind, name) (two buckets with one hash share a count: one more limited,
    never one less), counted in a dict of this second's buckets, which a
    new second of ``now`` (or a clock that went back) empties. At most
    ``size`` buckets are kept: a second that brings more starts every count
    again (the bound on memory; NSD's table, a fixed size with replacement,
    restarts the counts a new bucket lands on).
    """

    __slots__ = (
        "_counts", "_exempt", "_from", "_prefixes", "_size", "_until", "_zones", "dropped",
        "limited", "rate", "settings", "slip", "slipped",
    )

    def __init__(self, settings: RrlSettings) -> None:
        if settings.rate < 1 or settings.slip < 0:
            raise ValueError("rate must be >= 1 and slip >= 0")
        self.settings = settings
        self.rate = min(settings.rate, MAX_RATE)
        self.slip = settings.slip
        self._size = max(settings.size, 1)
        self._counts: dict[int, int] = {}  # this second's buckets -> their counts
        self._from = self._until = 0.0  # the current second: [from, until)
        self._exempt = tuple(ipaddress.ip_network(p, strict=False) for p in settings.exempt)
        self._prefixes: dict[str, int] = {}  # client address -> its prefix's hash (0: exempt)
        self._zones: dict[bytes, int] = {}  # body -> the hash of its zone or delegation
        self.limited = 0  # responses over their bucket's rate
        self.slipped = 0  # of those, sent truncated
        self.dropped = 0  # of those, not sent

    def prefix(self, client: str) -> str:
        """The bucket prefix of the address ``client`` (``EXEMPT`` for an exempt one)."""
        try:
            address = ipaddress.ip_address(client.partition("%")[0])
        except ValueError:
            return client  # not an address (a test's fake peer): its own bucket
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in net for net in self._exempt):
            return EXEMPT
        bits = self.settings.ipv4_prefix if address.version == 4 else self.settings.ipv6_prefix
        return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))

    def _learn(self, client: str) -> int:
        prefix = self.prefix(client)
        h = ((hash(prefix) & _HASH) or 1) if prefix else 0
        if len(self._prefixes) >= CACHE_SIZE:
            self._prefixes.clear()
        self._prefixes[client] = h
        return h

    def _zone(self, out: bytes, body: bytes, kind: int) -> int:
        h = (hash(first_owner(out, body)) & _HASH) ^ kind
        if len(self._zones) >= CACHE_SIZE:
            self._zones.clear()
        self._zones[body] = h
        return h

    def _tick(self, now: float) -> None:
        second = float(int(now))
        self._from, self._until = second, second + 1.0
        self._counts = {}

    def limit(self, out: bytes, body: bytes | None, client: str, now: float) -> bytes | None:
        """``out``, its truncated stand-in, or None (drop), by ``client``'s bucket.

        ``body`` is the prebuilt body ``out`` was made from (None: none, as
        for an error made on the spot). The kind (the table above) is read
        inline.
        """
        ph = self._prefixes.get(client)
        if ph is None:
            ph = self._learn(client)
        if not ph:  # exempt
            return out
        rcode = out[3] & 0x0F
        if rcode == wire.NOERROR and (out[6] or out[7]):
            h = ph ^ (hash(body) & _HASH)  # ANSWER (0)
        elif body and (rcode == wire.NOERROR or rcode == wire.NXDOMAIN):
            kind = NXDOMAIN if rcode else (NODATA if out[2] & 0x04 else REFERRAL)
            zone = self._zones.get(body)
            h = ph ^ (zone if zone is not None else self._zone(out, body, kind))
        else:
            h = ph ^ ERROR
        if not self._from <= now < self._until:
            self._tick(now)
        counts = self._counts
        count = counts.get(h, 0) + 1
        counts[h] = count
        if count == 1 and len(counts) > self._size:  # the bound: every count again
            self._counts = {h: 1}
        if count <= self.rate:
            return out
        self.limited += 1
        if self.slip and (count - self.rate) % self.slip == 0:
            self.slipped += 1
            return slipped(out)
        self.dropped += 1
        return None

    def counts(self) -> dict[str, int]:
        return {"limited": self.limited, "slipped": self.slipped, "dropped": self.dropped}
