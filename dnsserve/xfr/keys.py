"""TSIG keys in BIND's ``key`` syntax: parse, format, and generate from random bytes.

Owns the text form that ``tsig-keygen`` (BIND) writes and Knot (``keymgr``
imports it) and NSD accept::

    key "xfr" {
            algorithm hmac-sha256;
            secret "base64...";
    };

``from_text`` reads every ``key`` clause of a file (comments ``#``, ``//``
and ``/* */`` allowed, as in named.conf); ``to_text`` writes one clause as
tsig-keygen does; ``generate`` makes a key from random bytes it is given
(the caller reads the OS's randomness), as long as the algorithm's digest.

Pure: no files, no randomness of its own, no clock. Must not: know zones or
the config file (``transfers`` maps ``[[key]]`` entries to ``TsigKey``).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import dns.name
import dns.tsig

# The algorithms we accept, by the name BIND writes, with their digest size
# (a generated secret is as long as the digest, as tsig-keygen makes it).
DIGEST_SIZES = {
    "hmac-sha1": 20,
    "hmac-sha224": 28,
    "hmac-sha256": 32,
    "hmac-sha384": 48,
    "hmac-sha512": 64,
    "hmac-md5": 16,
}
_ALGORITHM_NAMES = {
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-md5": dns.tsig.HMAC_MD5,
}

# A quoted string first: a comment marker inside one ("//" in a base64 secret) is text.
_TOKEN = re.compile(
    r'"((?:[^"\\]|\\.)*)"|(/\*.*?\*/|//[^\n]*|#[^\n]*)|([{};])|([^\s{};"]+)', re.S
)


class KeySyntaxError(ValueError):
    """A key file that is not BIND ``key`` syntax; the message says where."""


@dataclass(frozen=True, slots=True)
class TsigKey:
    """One TSIG key: its name, algorithm (BIND's spelling) and secret (base64 text)."""

    name: str
    algorithm: str
    secret: str

    def to_dnspython(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, algorithm_name(self.algorithm))

    @property
    def dns_name(self) -> dns.name.Name:
        return dns.name.from_text(self.name)


def algorithm_name(algorithm: str) -> dns.name.Name:
    """The TSIG algorithm name of BIND's spelling (``hmac-sha256`` -> ``hmac-sha256.``)."""
    try:
        return _ALGORITHM_NAMES[algorithm.lower()]
    except KeyError:
        raise KeySyntaxError(f"unknown TSIG algorithm {algorithm!r}") from None


def check_secret(secret: str) -> bytes:
    """The secret's bytes; KeySyntaxError when it is not base64 or empty."""
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise KeySyntaxError(f"secret {secret!r} is not base64") from None
    if not raw:
        raise KeySyntaxError("empty secret")
    return raw


def generate(name: str, algorithm: str, random: bytes) -> TsigKey:
    """A key named ``name`` whose secret is the first digest-size bytes of ``random``."""
    size = DIGEST_SIZES.get(algorithm.lower())
    if size is None:
        raise KeySyntaxError(f"unknown TSIG algorithm {algorithm!r}")
    if len(random) < size:
        raise ValueError(f"{algorithm} needs {size} random bytes, got {len(random)}")
    return TsigKey(name, algorithm.lower(), base64.b64encode(random[:size]).decode())


def to_text(key: TsigKey) -> str:
    """One ``key`` clause, laid out as ``tsig-keygen`` writes it."""
    return (
        f'key "{key.name}" {{\n\talgorithm {key.algorithm};\n\tsecret "{key.secret}";\n}};\n'
    )


def from_text(text: str) -> list[TsigKey]:
    """Every ``key`` clause of ``text``; KeySyntaxError naming the first problem."""
    tokens = _tokens(text)
    keys: list[TsigKey] = []
    at = 0
    while at < len(tokens):
        word = tokens[at]
        if word != "key":
            raise KeySyntaxError(f"expected 'key', found {word!r}")
        key, at = _key_clause(tokens, at + 1)
        keys.append(key)
    return keys


def _tokens(text: str) -> list[str]:
    out = []
    for match in _TOKEN.finditer(text):
        quoted, comment, punct, word = match.groups()
        if comment is None:
            out.append(quoted if quoted is not None else (punct or word))
    return out


def _key_clause(tokens: list[str], at: int) -> tuple[TsigKey, int]:
    def take() -> str:
        nonlocal at
        if at >= len(tokens):
            raise KeySyntaxError("the file ends inside a key clause")
        at += 1
        return tokens[at - 1]

    name = take()
    if name in "{};":
        raise KeySyntaxError("a key clause without a name")
    if take() != "{":
        raise KeySyntaxError(f"key {name!r}: expected '{{'")
    fields: dict[str, str] = {}
    while (word := take()) != "}":
        value = take()
        if take() != ";":
            raise KeySyntaxError(f"key {name!r}: expected ';' after {word} {value}")
        if word not in ("algorithm", "secret"):
            raise KeySyntaxError(f"key {name!r}: unknown statement {word!r}")
        fields[word] = value
    if take() != ";":
        raise KeySyntaxError(f"key {name!r}: expected ';' after '}}'")
    if "algorithm" not in fields or "secret" not in fields:
        raise KeySyntaxError(f"key {name!r}: needs both algorithm and secret")
    algorithm = fields["algorithm"].lower()
    algorithm_name(algorithm)
    check_secret(fields["secret"])
    try:
        dns.name.from_text(name)
    except dns.name.NameTooLong:
        raise KeySyntaxError(f"key name {name!r} is too long") from None
    return TsigKey(name, algorithm, fields["secret"]), at
