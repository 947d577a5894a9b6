"""net.parse_listen: listen addresses as the config and the command line give them; pure."""

from __future__ import annotations

import pytest

from dnsserve import net


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5300", ("127.0.0.1", 5300)),
        ("[::1]:5300", ("::1", 5300)),
        ("0.0.0.0:53", ("0.0.0.0", 53)),
        ("[::]:0", ("::", 0)),
        ("[2001:DB8::1]:65535", ("2001:db8::1", 65535)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert net.parse_listen(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1", ":5300", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1: 53", "::1:5300", "[::1]", "[::1]5300", "localhost:5300", "[127.0.0.1]:53",
        "[127.0.0.1:5300", "[fe80::zz]:53", "127.0.0.1:\u0665\u0663",
    ],
)
def test_parse_listen_rejects_and_names_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="bad listen address") as info:
        net.parse_listen(text)
    assert repr(text) in str(info.value)
