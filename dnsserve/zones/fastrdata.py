"""Zone-file text of the common record types straight to wire-format rdata.

Owns the fast encoders of the zone parser (``zones.parse``): names
(``NameCodec``) and the rdata of A, AAAA, NS, CNAME, PTR, MX, TXT, SRV, SOA,
CAA and DS from their tokens, giving exactly the bytes dnspython's
``rdata.to_wire()`` gives for the same text.

Text is a zone file's bytes, one character each (``zones.files`` decodes
it as latin-1): a character past ASCII is a raw octet, and stays that octet
in a label or a character-string, as BIND, NSD and RFC 1035 §5.1 have it
(not UTF-8, not IDNA). dnspython reads text as Unicode, so whatever is
handed to it goes through ``escape_octets`` first (``\\DDD`` is an octet to it).

Rule: an encoder is never more lenient than dnspython. Whatever it is not
sure of (an escape it does not handle, a form dnspython may read differently,
a value out of range) raises ``NotFast``, and the caller hands the record to
dnspython, which either reads it or names the error. So a wrong zone file
is judged by dnspython alone, and a right one gives the same bytes both ways.

Must not: read files, judge a zone's semantics, or raise anything but
``NotFast`` for bad input. Pure: no I/O, no clock.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable

import dns.exception
import dns.name
import dns.rdata
import dns.ttl

MAX_UINT32 = 0xFFFFFFFF
_LENGTH = [bytes((n,)) for n in range(64)]
_HEX6 = re.compile(r"[0-9A-Fa-f:]{2,39}")
_DIGEST_LENGTH = {1: 20, 2: 32, 4: 48}  # dnspython checks these; others go to it
_NAME_CACHE_MAX = 100_000
# a backslash pair (kept, unless it escapes a raw octet) or a raw octet past ASCII
_OCTET = re.compile(r"\\[\x80-\xff]|\\.|[\x80-\xff]", re.DOTALL)


def _escaped(m: re.Match[str]) -> str:
    found = m.group(0)
    if len(found) == 2 and found[1] < "\x80":
        return found  # an escape of an ASCII character: dnspython reads it as we do
    return f"\\{ord(found[-1]):03d}"


def escape_octets(text: str) -> str:
    """Zone-file ``text`` (a byte per character) with every raw octet past ASCII,
    escaped or not, written as a ``\\DDD`` escape: what dnspython reads as that
    octet (it would read the character as Unicode: UTF-8 in a string, IDNA in a
    name). Lines and every other character stay as they are."""
    return text if text.isascii() else _OCTET.sub(_escaped, text)


def name_wire(name: dns.name.Name) -> bytes:
    """``name`` in uncompressed wire form."""
    wire = name.to_wire()
    assert wire is not None  # to_wire() without a file returns the bytes
    return wire


def rdata_wire(rdata: dns.rdata.Rdata) -> bytes:
    """``rdata`` in uncompressed wire form, names as written."""
    wire = rdata.to_wire()
    assert wire is not None
    return wire


class NotFast(Exception):
    """The fast path does not take this record: dnspython reads it (or names the error)."""


class NameCodec:
    """Domain names as written in a zone file, relative to one origin, to wire form.

    Names without escapes or raw octets past ASCII are encoded here; the
    others go through ``dns.name.from_text`` (exactly what dnspython's
    tokenizer does, after ``escape_octets``). Case is kept as written.
    Repeated names (targets of MX, CNAME, NS) come from a bounded cache.
    """

    __slots__ = ("_cache", "origin", "origin_name")

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin_name = origin
        self.origin = name_wire(origin)
        self._cache: dict[str, bytes] = {}

    def wire(self, text: str) -> bytes:
        """The uncompressed wire form of ``text``; ``NotFast`` if dnspython must judge it."""
        found = self._cache.get(text)
        if found is not None:
            return found
        wire = self._encode(text)
        if len(self._cache) >= _NAME_CACHE_MAX:
            self._cache.clear()
        self._cache[text] = wire
        return wire

    def owner(self, text: str) -> bytes:
        """``wire`` without the cache: owners are mostly new, each written once in a row."""
        return self._encode(text)

    def _encode(self, text: str) -> bytes:
        if (
            "." not in text
            and len(text) < 64
            and len(text) + len(self.origin) < 256
            and text.isascii()
            and "\\" not in text
            and text[0] != '"'
            and text != "@"
        ):
            return _LENGTH[len(text)] + text.encode() + self.origin  # one plain label
        if text == "@":
            return self.origin
        if text[0] == '"' or "\\" in text or not text.isascii():
            return self._dnspython(text)
        if text[-1] == ".":
            if text == ".":
                return b"\x00"
            labels = text[:-1].encode().split(b".")
            tail = b"\x00"
        else:
            labels = text.encode().split(b".")
            tail = self.origin
        try:
            wire = b"".join([_LENGTH[len(label)] + label for label in labels]) + tail
        except IndexError:  # a label over 63 octets
            raise NotFast from None
        if b"" in labels or len(wire) > 255:
            raise NotFast
        return wire

    def _dnspython(self, text: str) -> bytes:
        if text[0] == '"':
            raise NotFast  # a quoted string where a name belongs: dnspython's error
        try:
            return name_wire(dns.name.from_text(escape_octets(text), self.origin_name))
        except (dns.exception.DNSException, UnicodeError, ValueError):
            raise NotFast from None


def uint(text: str, top: int) -> int:
    """A decimal integer token, 0..top, as dnspython's ``get_int`` reads it."""
    if not (text.isascii() and text.isdigit()):
        raise NotFast
    value = int(text)
    if value > top:
        raise NotFast
    return value


def ttl(text: str) -> int:
    """A TTL token (``3600``, ``1h30m``), as ``dns.ttl.from_text`` reads it."""
    if text.isascii() and text.isdigit():
        value = int(text)
        if value > MAX_UINT32:
            raise NotFast
        return value
    try:
        return dns.ttl.from_text(text)
    except dns.exception.DNSException:
        raise NotFast from None


def unescape(token: str) -> bytes:
    """A string token (``"quoted"`` tokens start with ``"``) as dnspython's
    ``unescape_to_bytes`` gives it after ``escape_octets``: ``\\DDD`` is one
    octet, ``\\X`` is X, a raw octet is itself."""
    if token[:1] == '"':
        token = token[1:]
    if not token.isascii() and max(token) > "\xff":
        raise NotFast  # not a zone file's byte (text not from zones.files): dnspython
    if "\\" not in token:
        return token.encode("latin-1")
    out = bytearray()
    i, n = 0, len(token)
    while i < n:
        c = token[i]
        i += 1
        if c != "\\":
            out.append(ord(c))
            continue
        if i >= n:
            raise NotFast
        c = token[i]
        i += 1
        if "0" <= c <= "9":
            digits = token[i - 1 : i + 2]
            if len(digits) != 3 or not (digits.isascii() and digits.isdigit()):
                raise NotFast
            value = int(digits)
            if value > 255:
                raise NotFast
            out.append(value)
            i += 2
        else:
            out.append(ord(c))
    return bytes(out)


def _plain(args: list[str]) -> None:
    for arg in args:
        if arg[:1] == '"':
            raise NotFast


# -- the encoders: (tokens after the type, names) -> rdata ---------------------

Encoder = Callable[[list[str], NameCodec], bytes]


def a(args: list[str], names: NameCodec) -> bytes:
    if len(args) != 1:
        raise NotFast
    parts = args[0].split(".")
    if len(parts) != 4:
        raise NotFast
    for part in parts:
        if not (part.isascii() and part.isdigit()) or (len(part) > 1 and part[0] == "0"):
            raise NotFast
    try:
        return bytes([int(part) for part in parts])
    except ValueError:  # over 255
        raise NotFast from None


def aaaa(args: list[str], names: NameCodec) -> bytes:
    if len(args) != 1:
        raise NotFast
    text = args[0]
    if _HEX6.fullmatch(text) is None:
        raise NotFast  # dotted-quad endings and the rest: dnspython
    head, sep, tail = text.partition("::")
    if sep:
        if "::" in tail:
            raise NotFast
        first = head.split(":") if head else []
        last = tail.split(":") if tail else []
        if len(first) + len(last) > 7:
            raise NotFast
        groups = [*first, *(["0"] * (8 - len(first) - len(last))), *last]
    else:
        groups = text.split(":")
        if len(groups) != 8:
            raise NotFast
    for group in groups:
        if not 1 <= len(group) <= 4:
            raise NotFast
    return bytes.fromhex("".join([group.rjust(4, "0") for group in groups]))


def name(args: list[str], names: NameCodec) -> bytes:
    """NS, CNAME, PTR (and DNAME): one name."""
    if len(args) != 1:
        raise NotFast
    return names.wire(args[0])


def mx(args: list[str], names: NameCodec) -> bytes:
    if len(args) != 2:
        raise NotFast
    return uint(args[0], 0xFFFF).to_bytes(2, "big") + names.wire(args[1])


def srv(args: list[str], names: NameCodec) -> bytes:
    if len(args) != 4:
        raise NotFast
    head = b"".join([uint(arg, 0xFFFF).to_bytes(2, "big") for arg in args[:3]])
    return head + names.wire(args[3])


def soa(args: list[str], names: NameCodec) -> bytes:
    if len(args) != 7:
        raise NotFast
    _plain(args)
    numbers = [uint(args[2], MAX_UINT32)] + [ttl(arg) for arg in args[3:]]
    return (
        names.wire(args[0])
        + names.wire(args[1])
        + b"".join([number.to_bytes(4, "big") for number in numbers])
    )


def txt(args: list[str], names: NameCodec) -> bytes:
    if not args:
        raise NotFast
    out = []
    for arg in args:
        data = unescape(arg)
        if len(data) > 255:
            raise NotFast
        out.append(_LENGTH[len(data)] if len(data) < 64 else bytes((len(data),)))
        out.append(data)
    return b"".join(out)


def caa(args: list[str], names: NameCodec) -> bytes:
    if len(args) != 3 or args[0][:1] == '"':
        raise NotFast
    flags = uint(args[0], 255)
    tag = unescape(args[1])
    if not tag or len(tag) > 255 or not (tag.isascii() and tag.isalnum()):
        raise NotFast
    return bytes((flags, len(tag))) + tag + unescape(args[2])


def ds(args: list[str], names: NameCodec) -> bytes:
    if len(args) < 4:
        raise NotFast
    _plain(args)
    key_tag = uint(args[0], 0xFFFF)
    algorithm = uint(args[1], 255)
    digest_type = uint(args[2], 255)
    try:
        digest = binascii.unhexlify("".join(args[3:]).encode())
    except (binascii.Error, UnicodeError, ValueError):
        raise NotFast from None
    if _DIGEST_LENGTH.get(digest_type) != len(digest):
        raise NotFast
    return key_tag.to_bytes(2, "big") + bytes((algorithm, digest_type)) + digest


# type code -> encoder; every other type goes to dnspython
ENCODERS: dict[int, Encoder] = {
    1: a, 2: name, 5: name, 6: soa, 12: name, 15: mx, 16: txt, 28: aaaa, 33: srv, 39: name,
    43: ds, 257: caa,
}
# mnemonic -> type code, for the types above
TYPES: dict[str, int] = {
    "A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
    "SRV": 33, "DNAME": 39, "DS": 43, "CAA": 257,
}
