"""Online signing: a zone signed by dnsserve itself with its own keys (issue 8 §2).

Owns the keys of a zone as BIND writes them (``K<zone>.+<alg>.+<tag>.key``
and ``.private``, read and written as text: ``key_to_text``,
``private_to_text``, ``key_from_text``), the DS records of the KSK
(``ds_records``), and when signatures expire. The signing itself is
``zones.rrsign``'s (a whole zone at load, one RRset at a flip). A zone
signed online holds what a pre-signed zone holds (DNSKEY, RRSIG and NSEC
records in its data), so ``zones.signed`` and ``answer.dnssec`` serve it
the same way.

Signatures start an hour before ``now`` (clock skew between us and a
validator) and end ``validity`` seconds after it.

Must not: read the clock (``now`` is given), read or write files
(``zones.dnskeys`` does), or make keys (randomness is the edge's).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

import dns.dnssec
import dns.dnssectypes
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from dns.dnssectypes import Algorithm

from dnsserve.zones.table import ZoneTable

_RRSIG = int(dns.rdatatype.RRSIG)
ALGORITHMS = {"ECDSAP256SHA256": Algorithm.ECDSAP256SHA256, "ED25519": Algorithm.ED25519}
DEFAULT_ALGORITHM = "ECDSAP256SHA256"
SKEW = 3600  # signatures start this long before now
KSK_FLAGS = 257  # ZONE | SEP
_SEP = 1
ZSK_FLAGS = 256  # ZONE

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class KeyFormatError(ValueError):
    """A key file that is not one of BIND's ECDSA P-256 or Ed25519 key files."""


@dataclass(frozen=True, slots=True)
class ZoneKey:
    """One key of a zone: its private half and its DNSKEY record."""

    private: PrivateKey
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY

    @property
    def ksk(self) -> bool:
        return bool(self.dnskey.flags & _SEP)

    @property
    def tag(self) -> int:
        return dns.dnssec.key_id(self.dnskey)

    def base_name(self, origin: dns.name.Name) -> str:
        """BIND's file name without its suffix: ``K<zone>.+<alg>.+<tag>``."""
        return f"K{origin.to_text()}+{int(self.dnskey.algorithm):03d}+{self.tag:05d}"


def make_key(private: PrivateKey, *, ksk: bool) -> ZoneKey:
    """The ``ZoneKey`` of a private key made at the edge."""
    dnskey = dns.dnssec.make_dnskey(
        private.public_key(), _algorithm_of(private), flags=KSK_FLAGS if ksk else ZSK_FLAGS)
    assert isinstance(dnskey, dns.rdtypes.ANY.DNSKEY.DNSKEY)
    return ZoneKey(private, dnskey)


def _algorithm_of(private: PrivateKey) -> Algorithm:
    return Algorithm.ED25519 if isinstance(private, ed25519.Ed25519PrivateKey) else \
        Algorithm.ECDSAP256SHA256


def key_to_text(key: ZoneKey, origin: dns.name.Name) -> str:
    """The ``.key`` file: the DNSKEY record, as ``dnssec-keygen`` writes it."""
    kind = "key-signing" if key.ksk else "zone-signing"
    return (f"; This is a {kind} key, keyid {key.tag}, for {origin.to_text()}\n"
            f"{origin.to_text()} IN DNSKEY {key.dnskey.to_text()}\n")


def private_to_text(key: ZoneKey, created: str) -> str:
    """The ``.private`` file (v1.3); ``created``: YYYYMMDDHHMMSS."""
    alg = _algorithm_of(key.private)
    if isinstance(key.private, ed25519.Ed25519PrivateKey):
        raw = key.private.private_bytes(serialization.Encoding.Raw,
                                        serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
    else:
        raw = key.private.private_numbers().private_value.to_bytes(32, "big")
    return (f"Private-key-format: v1.3\nAlgorithm: {int(alg)} ({alg.name})\n"
            f"PrivateKey: {base64.b64encode(raw).decode()}\n"
            f"Created: {created}\nPublish: {created}\nActivate: {created}\n")


def key_from_text(key_text: str, private_text: str) -> ZoneKey:
    """A key from its ``.key`` and ``.private`` files' text; raises ``KeyFormatError``."""
    fields = {}
    for line in private_text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    try:
        alg = Algorithm(int(fields["Algorithm"].split()[0]))
        raw = base64.b64decode(fields["PrivateKey"], validate=True)
    except (KeyError, ValueError, IndexError) as exc:
        raise KeyFormatError(f"not a BIND private key file ({exc})") from None
    private: PrivateKey
    if alg == Algorithm.ED25519 and len(raw) == 32:
        private = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
    elif alg == Algorithm.ECDSAP256SHA256 and len(raw) == 32:
        private = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    else:
        raise KeyFormatError(f"algorithm {alg.name} is not supported "
                             f"(use {' or '.join(ALGORITHMS)})")
    dnskey = _dnskey_from_text(key_text)
    made = make_key(private, ksk=bool(dnskey.flags & _SEP))
    if made.dnskey != dnskey:
        raise KeyFormatError("the .key file's DNSKEY is not the public half of the .private key")
    return made


def _dnskey_from_text(text: str) -> dns.rdtypes.ANY.DNSKEY.DNSKEY:
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if "DNSKEY" not in words:
            continue
        at = words.index("DNSKEY")
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY,
                                    " ".join(words[at + 1:]))
        assert isinstance(rdata, dns.rdtypes.ANY.DNSKEY.DNSKEY)
        return rdata
    raise KeyFormatError("no DNSKEY record in the .key file")


def ds_records(keys: list[ZoneKey], origin: dns.name.Name) -> list[str]:
    """The DS records (SHA-256) of the zone's KSKs, as the parent publishes them."""
    ksks = [k for k in keys if k.ksk] or keys
    return [f"{origin.to_text()} IN DS "
            f"{dns.dnssec.make_ds(origin, k.dnskey, dns.dnssectypes.DSDigest.SHA256).to_text()}"
            for k in ksks]


@dataclass(frozen=True, slots=True)
class Signing:
    """How one zone is signed online (``[[zone]] dnssec``, durations in seconds)."""

    keys: str  # the key directory, absolute
    validity: int
    refresh: int
    algorithm: str = DEFAULT_ALGORITHM  # every key in ``keys`` must be of it


_SERIAL = 1 << 32


def signature_expiry(table: ZoneTable, now: float) -> float | None:
    """When the first RRSIG of ``table`` expires (seconds since the epoch; RFC 4034
    §3.1.5 serial arithmetic around ``now``), or None: the zone has no signatures."""
    clock = int(now) % _SERIAL
    first: int | None = None
    for key in table.loaded_keys():
        stored = table.wire_node(key)
        if stored is None:
            continue
        for rdtype, _, rdatas in stored[1]:
            if rdtype != _RRSIG:
                continue
            for rdata in rdatas:
                first = _earlier(first, rdata, clock)
    return None if first is None else int(now) + first


def signatures_expiry(signatures: Iterable[bytes], now: float) -> float | None:
    """When the first of these RRSIGs (rdata wire) expires, as ``signature_expiry``."""
    clock = int(now) % _SERIAL
    first: int | None = None
    for rdata in signatures:
        first = _earlier(first, rdata, clock)
    return None if first is None else int(now) + first


def serial_delta(a: int, b: int) -> int:
    """``a - b`` of two signature times in RFC 4034 §3.1.5's serial arithmetic."""
    delta = (a - b) % _SERIAL
    return delta - _SERIAL if delta >= _SERIAL // 2 else delta


def _earlier(first: int | None, rdata: bytes, clock: int) -> int:
    seconds = serial_delta(int.from_bytes(rdata[8:12], "big"), clock)
    return seconds if first is None else min(first, seconds)
