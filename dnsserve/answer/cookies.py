"""DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018).

Owns the COOKIE option of a query and of our answer: finding it, its
length rules, the server cookie we make and the ones we accept.

Rules (RFC 7873 §5.2, RFC 9018 §4):

| query carries                          | we answer                          | valid |
|----------------------------------------|------------------------------------|-------|
| no COOKIE option                       | as without cookies                 | no    |
| length < 8, 9..15 or > 40              | FORMERR (``FormError``)            | -     |
| a client cookie only (8 bytes)         | normally, with a fresh server cookie | no  |
| a server cookie we did not make, or    | normally, with a fresh server cookie | no  |
|   one out of its time window           |   (as if it were client-only)      |       |
| our server cookie, under 30 min old    | normally, the same cookie echoed   | yes   |
| our server cookie, 30 to 60 min old    | normally, with a fresh server cookie | yes |

A server cookie is Version 1, Reserved 0, a 32-bit Timestamp (seconds of
the Unix epoch, serial arithmetic) and SipHash-2-4 over client cookie |
version | reserved | timestamp | client address, keyed with the 16-byte
secret. One is accepted while its timestamp is at most an hour old and at
most five minutes in the future, under the current secret or the previous
one (so a rotation does not void what clients hold). Nodes and workers that
share the secret accept each other's cookies. BADCOOKIE is never sent
here: a client without a valid server cookie is answered (RFC 7873 §5.2.3
leaves BADCOOKIE to a policy; ours is the rate limiter's slip).

Pure: time is passed in (``now``), the client address too (packed bytes).
Validated cookies are remembered in a bounded dict, so a client that sends
its cookie again costs a dict lookup, not a SipHash. So are the server
cookies we made: the same client cookie from the same address within
``REUSE_FOR`` seconds gets the same server cookie back (its timestamp up to
five minutes old, well inside its hour), and a server cookie we made is
known valid when it comes back. A resolver's first queries, and a flood
that repeats one client cookie, then cost a dict lookup, not a SipHash.
"""

from __future__ import annotations

import ipaddress
import struct

from dnsserve import wire
from dnsserve.answer.siphash import siphash24
from dnsserve.errors import FormError

OPTION_COOKIE = 10
SECRET_SIZE = 16
CLIENT_SIZE = 8
SERVER_SIZE = 16  # RFC 9018's layout: version, reserved, timestamp, hash
MAX_PAST = 3600  # seconds a server cookie stays valid (RFC 9018 §4.3)
MAX_FUTURE = 300
REFRESH_AFTER = 1800  # older than this: answer with a new one
CHECKED_SIZE = 10_000  # validated cookies remembered (then forgotten all at once)
PACKED_SIZE = 65536  # client addresses kept packed (then forgotten all at once)
REUSE_FOR = 300  # seconds a server cookie we made is handed out again to the same client
_VERSION = b"\x01\x00\x00\x00"
_OPTION = struct.Struct("!HH")
_RR_FIXED = struct.Struct("!HHIH")


def find_cookie(data: bytes, qend: int) -> bytes | None:
    """The COOKIE option's data in the query's OPT, or None when it has none.

    ``data`` was accepted by ``wire.parse_query`` (its records are whole); the
    first COOKIE option counts.
    """
    offset = qend
    records = sum(struct.unpack_from("!HHH", data, 6))
    for _ in range(min(records, wire.MAX_RECORDS)):
        offset = wire.skip_name(data, offset)
        rtype, _, _, rdlen = _RR_FIXED.unpack_from(data, offset)
        start, end = offset + 10, offset + 10 + rdlen
        if rtype == wire.TYPE_OPT:
            while start + 4 <= end:
                code, length = _OPTION.unpack_from(data, start)
                if code == OPTION_COOKIE:
                    if start + 4 + length > end:
                        raise FormError("COOKIE option runs past the OPT record")
                    return data[start + 4:start + 4 + length]
                start += 4 + length
            return None
        offset = end
    return None


def with_option(opt: bytes, code: int, value: bytes) -> bytes:
    """Our OPT record ``opt`` with one more option appended (RDLEN grown)."""
    rdlen = int.from_bytes(opt[9:11], "big") + 4 + len(value)
    return opt[:9] + rdlen.to_bytes(2, "big") + opt[11:] + _OPTION.pack(code, len(value)) + value


class Cookies:
    """The server's cookie secrets, and the cookie state of the query being answered.

    ``engine.Engine.cookies`` calls the instance with the query's bytes; the
    caller (``answer.guard``) sets ``client`` (the address as text) and ``now``
    before, and after compares ``valid`` with the query: ``valid`` is the
    last query that carried a valid server cookie of ours (nothing to reset
    per query).
    """

    __slots__ = (
        "_checked", "_made", "_packed", "_secrets", "accepted", "client", "fresh", "now", "valid",
    )

    def __init__(self, secret: bytes, previous: bytes | None = None) -> None:
        for s in (secret, previous):
            if s is not None and len(s) != SECRET_SIZE:
                raise ValueError(f"a cookie secret is {SECRET_SIZE} bytes, not {len(s)}")
        self._secrets = (secret,) if previous is None else (secret, previous)
        self._checked: dict[bytes, int] = {}  # cookie | client address -> its timestamp
        self._made: dict[bytes, bytes] = {}  # client cookie | address -> the cookie we made
        self._packed: dict[str, bytes] = {}
        self.client = "0.0.0.0"
        self.now = 0.0
        self.valid: bytes | None = None  # the last query with a valid server cookie of ours
        self.fresh = 0  # server cookies made (counted for /metrics)
        self.accepted = 0  # queries with a valid server cookie of ours

    def rotate(self, secret: bytes) -> None:
        """Make cookies with ``secret`` from now on; the current one is still accepted."""
        if len(secret) != SECRET_SIZE:
            raise ValueError(f"a cookie secret is {SECRET_SIZE} bytes, not {len(secret)}")
        self._secrets = (secret, self._secrets[0])
        self._checked.clear()
        self._made.clear()

    def __call__(self, data: bytes, qend: int, opt: bytes) -> bytes:
        """The OPT to answer with (``opt`` plus our COOKIE when the query has one)."""
        cookie = find_cookie(data, qend)
        if cookie is None:
            return opt
        length = len(cookie)
        if length < CLIENT_SIZE or CLIENT_SIZE < length < 16 or length > 40:
            raise FormError(f"COOKIE option of {length} bytes (RFC 7873 §5.2.2)")
        now = int(self.now)
        client = self._packed.get(self.client) or self._pack(self.client)
        if length == CLIENT_SIZE + SERVER_SIZE:
            age = self.age(cookie, client, now)
            if age is not None:
                self.valid = data
                self.accepted += 1
                if age < REFRESH_AFTER:
                    return with_option(opt, OPTION_COOKIE, cookie)
        made = self._answer_cookie(cookie[:CLIENT_SIZE], client, now)
        return with_option(opt, OPTION_COOKIE, made)

    def _answer_cookie(self, client_cookie: bytes, client: bytes, now: int) -> bytes:
        """``make``'s cookie, or the one made for this client cookie and address in the
        last ``REUSE_FOR`` seconds; what is made is remembered as checked too."""
        key = client_cookie + client
        made = self._made.get(key)
        if made is not None and (now - int.from_bytes(made[12:16], "big")) & 0xFFFFFFFF < REUSE_FOR:
            return made
        made = self.make(client_cookie, client, now)
        if len(self._made) >= CHECKED_SIZE:
            self._made.clear()
        if len(self._checked) >= CHECKED_SIZE:
            self._checked.clear()
        self._made[key] = made
        self._checked[made + client] = now
        return made

    def _pack(self, client: str) -> bytes:
        """The address the server cookie is bound to (RFC 9018 §4.2), as bytes."""
        try:
            packed = ipaddress.ip_address(client.partition("%")[0]).packed
        except ValueError:
            packed = client.encode()[:16]  # not an address: still one client's own
        if len(self._packed) >= PACKED_SIZE:
            self._packed.clear()
        self._packed[client] = packed
        return packed

    def make(self, client_cookie: bytes, client: bytes, now: int) -> bytes:
        """Client cookie | our server cookie for ``client`` at ``now`` (RFC 9018 §4.2)."""
        self.fresh += 1
        stamp = _VERSION + (now & 0xFFFFFFFF).to_bytes(4, "big")
        return client_cookie + stamp + siphash24(self._secrets[0], client_cookie + stamp + client)

    def age(self, cookie: bytes, client: bytes, now: int) -> int | None:
        """Seconds since our server cookie in ``cookie`` was made; None when it is not
        ours, not for ``client``, or outside its window (an hour back, 5 min ahead)."""
        if cookie[8:12] != _VERSION:
            return None
        stamp = int.from_bytes(cookie[12:16], "big")
        age = (now - stamp) & 0xFFFFFFFF  # serial arithmetic (RFC 1982)
        if age >= 0x80000000:
            age -= 0x100000000
        if not -MAX_FUTURE <= age <= MAX_PAST:
            return None
        key = cookie + client
        if key in self._checked:
            return age
        message = cookie[:16] + client
        if not any(siphash24(s, message) == cookie[16:] for s in self._secrets):
            return None
        if len(self._checked) >= CHECKED_SIZE:
            self._checked.clear()
        self._checked[key] = stamp
        return age
