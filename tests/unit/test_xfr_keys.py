"""xfr.keys: BIND key syntax read and written, keys generated from given bytes."""

from __future__ import annotations

import base64

import dns.tsig
import pytest

from dnsserve.xfr.keys import (
    KeySyntaxError,
    TsigKey,
    algorithm_name,
    from_text,
    generate,
    to_text,
)
from testkit import ROOT

SECRET = base64.b64encode(bytes(range(32))).decode()


def test_round_trip() -> None:
    key = TsigKey("xfr.example", "hmac-sha256", SECRET)
    assert from_text(to_text(key)) == [key]


def test_a_secret_with_comment_markers_in_it_round_trips() -> None:
    # base64 has "/": about one generated secret in seventy holds "//"
    for secret in ("Q3DcHVsW//8+AAAA/////w==", "//8A"):
        key = TsigKey("xfr.example", "hmac-sha256", secret)
        assert from_text(to_text(key) + "// after\n") == [key]


def test_a_file_written_by_bind_tsig_keygen() -> None:
    # tests/data/tsig-keygen.key was written by `tsig-keygen -a hmac-sha512 xfr-test.example`
    text = (ROOT / "tests" / "data" / "tsig-keygen.key").read_text()
    [key] = from_text(text)
    assert key.name == "xfr-test.example"
    assert key.algorithm == "hmac-sha512"
    assert len(base64.b64decode(key.secret)) == 64
    assert to_text(key) == text


def test_comments_and_several_keys() -> None:
    text = f"""
    # a comment
    key "a" {{ algorithm HMAC-SHA384; secret "{SECRET}"; }};  // another
    /* a block
       comment */
    key b {{ secret "{SECRET}"; algorithm hmac-sha512; }};
    """
    a, b = from_text(text)
    assert (a.name, a.algorithm, b.name, b.algorithm) == ("a", "hmac-sha384", "b", "hmac-sha512")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('key "a" { algorithm hmac-sha256; };', "needs both"),
        ('key "a" { algorithm hmac-foo; secret "AAAA"; };', "unknown TSIG algorithm"),
        ('key "a" { algorithm hmac-sha256; secret "not base64!"; };', "not base64"),
        ('key "a" { algorithm hmac-sha256; secret "AAAA" };', "expected ';'"),
        ('key "a" { algorithm hmac-sha256; secret "AAAA"; }', "ends inside"),
        ('options { };', "expected 'key'"),
        ('key "a" { algorithm hmac-sha256; secret "AAAA"; owner x; };', "unknown statement"),
    ],
)
def test_bad_files_say_why(text: str, problem: str) -> None:
    with pytest.raises(KeySyntaxError, match=problem):
        from_text(text)


@pytest.mark.parametrize(("algorithm", "size"), [("hmac-sha256", 32), ("hmac-sha384", 48),
                                                  ("hmac-sha512", 64)])
def test_generate_uses_the_digest_size(algorithm: str, size: int) -> None:
    key = generate("k", algorithm, bytes(range(64)))
    assert base64.b64decode(key.secret) == bytes(range(size))
    assert key.to_dnspython().algorithm == algorithm_name(algorithm)


def test_generate_needs_enough_bytes() -> None:
    with pytest.raises(ValueError, match="needs 64"):
        generate("k", "hmac-sha512", b"x" * 10)


def test_to_dnspython() -> None:
    key = TsigKey("xfr", "hmac-sha256", SECRET).to_dnspython()
    assert key.algorithm == dns.tsig.HMAC_SHA256
    assert key.secret == bytes(range(32))
