"""A zone's DNSSEC keys on disk: made by ``dnsserve dnssec-keygen``, read at load.

Owns the key directory of an online-signed zone (``[[zone]] dnssec.keys``):
making a KSK and a ZSK (``generate``, the randomness ``cryptography`` draws)
and writing them in BIND's key file format, so that ``dnssec-signzone`` and
``dnssec-dsfromkey`` accept them, and reading the keys of one zone back
(``read_keys``: every ``K<zone>.+<alg>.+<tag>.key`` with its ``.private``).
The formats themselves are ``zones.online``'s.

Must not: sign anything, or write anywhere but the directory it is given.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dns.name
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from dns.dnssectypes import Algorithm

from dnsserve.errors import ConfigError
from dnsserve.zones.online import (
    ALGORITHMS,
    KeyFormatError,
    PrivateKey,
    ZoneKey,
    key_from_text,
    key_to_text,
    make_key,
    private_to_text,
)


def _new_private(algorithm: str) -> PrivateKey:
    if ALGORITHMS.get(algorithm) == Algorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if ALGORITHMS.get(algorithm) == Algorithm.ECDSAP256SHA256:
        return ec.generate_private_key(ec.SECP256R1())
    raise ConfigError(f"algorithm {algorithm!r}: use {' or '.join(ALGORITHMS)}")


def generate(origin: dns.name.Name, algorithm: str, directory: Path) -> list[Path]:
    """Make a KSK and a ZSK for ``origin`` in ``directory``; the ``.key`` files written."""
    directory.mkdir(parents=True, exist_ok=True)
    created = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    written = []
    for ksk in (True, False):
        key = make_key(_new_private(algorithm), ksk=ksk)
        base = directory / key.base_name(origin)
        base.with_name(base.name + ".key").write_text(key_to_text(key, origin))
        private = base.with_name(base.name + ".private")
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(private_to_text(key, created))
        written.append(base.with_name(base.name + ".key"))
    return written


def read_keys(directory: Path, origin: dns.name.Name,
              algorithm: str | None = None) -> list[ZoneKey]:
    """The keys of ``origin`` in ``directory``; raises ``ConfigError`` naming the file
    when one cannot be read, when there is no key at all, or (``algorithm``: the
    zone's ``dnssec.algorithm``) naming the files whose keys are of another one."""
    prefix = f"K{origin.to_text()}+"
    keys = []
    try:
        files = sorted(p for p in directory.iterdir()
                       if p.name.startswith(prefix) and p.name.endswith(".key"))
    except OSError as exc:
        raise ConfigError(f"dnssec keys of {origin}: {directory}: {exc.strerror}") from None
    for path in files:
        private = path.with_name(path.name.removesuffix(".key") + ".private")
        try:
            keys.append(key_from_text(path.read_text(), private.read_text()))
        except (OSError, KeyFormatError, ValueError) as exc:
            raise ConfigError(f"dnssec key {path}: {exc}") from None
    if not keys:
        raise ConfigError(f"dnssec keys of {origin}: no {prefix}*.key files in {directory} "
                          f"(make them with: dnsserve dnssec-keygen {origin})")
    wanted = ALGORITHMS.get(algorithm) if algorithm is not None else None
    other = [(p.name, k) for p, k in zip(files, keys, strict=True)
             if wanted is not None and k.dnskey.algorithm != wanted]
    if other:
        found = sorted({Algorithm.make(k.dnskey.algorithm).name for _, k in other})
        raise ConfigError(
            f"dnssec keys of {origin}: dnssec.algorithm is {algorithm} but "
            f"{', '.join(n for n, _ in other)} in {directory} are {' and '.join(found)} "
            f"(make {algorithm} keys with: dnsserve dnssec-keygen {origin} --algorithm "
            f"{algorithm}, or set algorithm = \"{found[0]}\")")
    return keys
