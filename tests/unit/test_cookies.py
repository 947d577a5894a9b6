"""DNS Cookies (answer.cookies, RFC 7873 / RFC 9018) and SipHash-2-4 (answer.siphash)."""

from __future__ import annotations

import dns.edns
import dns.message
import pytest

from dnsserve import wire
from dnsserve.answer.cookies import OPTION_COOKIE, REUSE_FOR, Cookies, find_cookie
from dnsserve.answer.siphash import siphash24
from dnsserve.errors import FormError

SECRET = bytes(range(16))
OTHER = bytes(range(16, 32))
CLIENT = bytes.fromhex("2464c4abcf10c957")
ADDRESS = bytes([198, 51, 100, 100])
CLIENT_TEXT = "198.51.100.100"
NOW = 1_700_000_000


@pytest.mark.parametrize(("length", "tag"), [
    (0, "310e0edd47db6f72"), (1, "fd67dc93c539f874"),
    (8, "6224939a79f5f593"), (15, "e545be4961ca29a1"),
])
def test_siphash_reference_vectors(length: int, tag: str) -> None:
    """The SipHash paper's vectors: key 00..0f, message 00..(length-1)."""
    assert siphash24(bytes(range(16)), bytes(range(length))).hex() == tag


def _query(cookie: bytes | None) -> tuple[bytes, int]:
    options = [] if cookie is None else [dns.edns.GenericOption(OPTION_COOKIE, cookie)]
    data = dns.message.make_query("www.example.com.", "A", use_edns=0, options=options).to_wire()
    return data, wire.parse_query(data)[1]


def _answer(cookies: Cookies, cookie: bytes | None, *, now: int = NOW,
            client: str = CLIENT_TEXT) -> bytes | None:
    """The COOKIE option's value in our OPT (None: none); ``cookies.valid`` is the
    query when it carried a valid server cookie, else None."""
    cookies.client, cookies.now, cookies.valid = client, float(now), None
    data, qend = _query(cookie)
    opt = cookies(data, qend, wire.OPT_PLAIN)
    assert cookies.valid in (None, data)
    assert opt[:9] == wire.OPT_PLAIN[:9]
    return None if opt == wire.OPT_PLAIN else opt[15:]


def test_a_client_cookie_gets_a_server_cookie_of_rfc_9018_layout() -> None:
    cookies = Cookies(SECRET)
    got = _answer(cookies, CLIENT)
    assert got is not None and len(got) == 24 and got[:8] == CLIENT
    assert got[8:12] == b"\x01\x00\x00\x00" and int.from_bytes(got[12:16], "big") == NOW
    assert got[16:] == siphash24(SECRET, got[:16] + ADDRESS) and not cookies.valid
    assert _answer(cookies, None) is None


def test_our_server_cookie_is_accepted_echoed_then_refreshed() -> None:
    cookies = Cookies(SECRET)
    mine = _answer(cookies, CLIENT)
    assert mine is not None
    assert _answer(cookies, mine, now=NOW + 60) == mine and cookies.valid
    refreshed = _answer(cookies, mine, now=NOW + 2000)  # over half an hour: a new one
    assert cookies.valid and refreshed is not None and refreshed != mine
    assert int.from_bytes(refreshed[12:16], "big") == NOW + 2000


def test_a_client_cookie_again_gets_the_same_server_cookie_for_five_minutes() -> None:
    """One SipHash per client cookie and address per REUSE_FOR seconds, not per query."""
    cookies = Cookies(SECRET)
    first = _answer(cookies, CLIENT)
    assert _answer(cookies, CLIENT, now=NOW + REUSE_FOR - 1) == first and cookies.fresh == 1
    assert _answer(cookies, CLIENT, client="198.51.100.101") != first  # another address
    later = _answer(cookies, CLIENT, now=NOW + REUSE_FOR)
    assert later is not None and int.from_bytes(later[12:16], "big") == NOW + REUSE_FOR
    assert _answer(cookies, later, now=NOW + REUSE_FOR + 1) == later and cookies.valid
    cookies.rotate(OTHER)  # a new secret: cookies are made with it at once
    rotated = _answer(cookies, CLIENT, now=NOW + REUSE_FOR + 2)
    assert rotated is not None and rotated[16:] == siphash24(OTHER, rotated[:16] + ADDRESS)
    assert cookies.fresh == 4


@pytest.mark.parametrize(("now", "client", "secret"), [
    (NOW + 3601, CLIENT_TEXT, SECRET),  # over an hour old
    (NOW - 301, CLIENT_TEXT, SECRET),  # over five minutes in the future
    (NOW, "198.51.100.101", SECRET),  # another client's
    (NOW, CLIENT_TEXT, OTHER),  # not made with our secret
])
def test_an_invalid_server_cookie_is_answered_as_client_only(
    now: int, client: str, secret: bytes
) -> None:
    made = _answer(Cookies(secret), CLIENT)
    assert made is not None
    cookies = Cookies(SECRET)
    got = _answer(cookies, made, now=now, client=client)
    assert not cookies.valid and got is not None and got[:8] == CLIENT and got != made


def test_the_previous_secret_is_still_accepted_after_a_rotation() -> None:
    old = Cookies(OTHER)
    made = _answer(old, CLIENT)
    assert made is not None
    rotated = Cookies(SECRET, previous=OTHER)
    assert _answer(rotated, made) == made and rotated.valid
    old.rotate(SECRET)  # in place: the old one still accepted
    assert _answer(old, made) == made and old.valid


@pytest.mark.parametrize("length", [1, 7, 9, 15, 41])
def test_malformed_cookie_lengths_are_formerr(length: int) -> None:
    with pytest.raises(FormError):
        _answer(Cookies(SECRET), bytes(length))


def test_find_cookie_reads_only_the_opt_options() -> None:
    data, qend = _query(CLIENT)
    assert find_cookie(data, qend) == CLIENT
    data, qend = _query(None)
    assert find_cookie(data, qend) is None
