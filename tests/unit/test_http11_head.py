"""The response head an http check reads: ``http11.parse_head`` and ``body_length`` on
bytes, no sockets."""

from __future__ import annotations

import h11
import pytest

from dnsserve.health.http11 import HEAD_LIMIT, UNTIL_CLOSE, body_length, parse_head


@pytest.mark.parametrize(
    ("data", "start", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, (200, 38)),
        (b"HTTP/1.0 503\r\n\r\n", 0, (503, 16)),  # no reason phrase
        (b"HTTP/1.1 204 No Content\n\n", 0, (204, 25)),  # bare LF, as h11 takes it
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 25, (204, 52)),
        (b"HTTP/1.1 200 OK\r\nContent-Le", 0, None),  # the head goes on
        (b"HTT", 0, None),
        (b"", 0, None),
    ],
)
def test_parse_head(data: bytes, start: int, expected: tuple[int, int] | None) -> None:
    assert parse_head(data, start) == expected


@pytest.mark.parametrize(
    "data",
    [b"SSH-2.0-x", b"HTTP/1.1 2000 OK\r\n\r\n", b"HTTP/1.1 099 Low\r\n\r\n",
     b"HTTP/1.1 200 OK" + b"x" * HEAD_LIMIT],
)
def test_parse_head_refuses_what_is_no_http_head(data: bytes) -> None:
    with pytest.raises(h11.RemoteProtocolError):
        parse_head(data)


@pytest.mark.parametrize(
    ("head", "status", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", 200, 12),
        (b"HTTP/1.1 200 OK\r\ncontent-length:12 \r\nContent-Length: 12\r\n\r\n", 200, 12),
        (b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", 200, UNTIL_CLOSE),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204, 0),
        # for h11 to read: chunked, lengths that disagree, a length that is no number
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 200, None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 200, None),
    ],
)
def test_body_length(head: bytes, status: int, expected: int | None) -> None:
    assert body_length(head, status) == expected
