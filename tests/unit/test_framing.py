"""TCP two-byte length framing: pure, no sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnsserve.framing import MAX_MESSAGE, MAX_PENDING, Deframer, frame


def test_frame_prefixes_big_endian_length() -> None:
    assert frame(b"") == b"\x00\x00"
    assert frame(b"abc") == b"\x00\x03abc"
    assert frame(b"x" * 0x1234)[:2] == b"\x12\x34"


def test_frame_takes_the_largest_message_and_rejects_larger() -> None:
    assert len(frame(b"x" * MAX_MESSAGE)) == MAX_MESSAGE + 2
    with pytest.raises(ValueError, match="65536 bytes"):
        frame(b"x" * (MAX_MESSAGE + 1))


def test_one_whole_message() -> None:
    assert Deframer().feed(frame(b"hello")) == [b"hello"]


def test_several_messages_in_one_chunk() -> None:
    d = Deframer()
    stream = frame(b"a") + frame(b"bb") + frame(b"") + frame(b"ccc")
    assert d.feed(stream) == [b"a", b"bb", b"", b"ccc"]
    assert d.pending == 0


def test_partial_length_prefix() -> None:
    d = Deframer()
    stream = frame(b"query")
    assert d.feed(stream[:1]) == []
    assert d.pending == 1
    assert d.feed(stream[1:2]) == []
    assert d.feed(stream[2:]) == [b"query"]
    assert d.pending == 0


def test_message_split_over_many_chunks() -> None:
    d = Deframer()
    msg = bytes(range(256)) * 3
    got: list[bytes] = []
    for i, byte in enumerate(frame(msg)):
        got += d.feed(bytes([byte]))
        assert d.pending == (0 if got else i + 1)
    assert got == [msg]


def test_chunk_ends_inside_the_next_message() -> None:
    d = Deframer()
    stream = frame(b"first") + frame(b"second")
    assert d.feed(stream[:10]) == [b"first"]
    assert d.pending == 3
    assert d.feed(stream[10:]) == [b"second"]


def test_largest_message_split_in_two() -> None:
    d = Deframer()
    stream = frame(b"\xff" * MAX_MESSAGE)
    assert d.feed(stream[:-1]) == []
    assert d.pending == MAX_PENDING
    assert d.feed(stream[-1:]) == [b"\xff" * MAX_MESSAGE]
    assert d.pending == 0


def test_returned_messages_do_not_alias_the_buffer() -> None:
    d = Deframer()
    stream = frame(b"abc") + frame(b"de")
    first = d.feed(stream[:6])
    d.feed(stream[6:])
    assert first == [b"abc"]
    assert all(type(m) is bytes for m in first)


@given(
    messages=st.lists(
        st.one_of(st.binary(max_size=40), st.binary(min_size=300, max_size=2000)), max_size=12
    ),
    data=st.data(),
)
def test_any_split_of_a_stream_yields_the_same_messages(
    messages: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(frame(m) for m in messages)
    cuts = sorted(
        data.draw(st.sets(st.integers(min_value=0, max_value=len(stream)), max_size=40))
    )
    d = Deframer()
    got: list[bytes] = []
    start = 0
    for end in [*cuts, len(stream)]:
        got += d.feed(stream[start:end])
        assert d.pending <= MAX_PENDING
        start = end
    assert got == messages
    assert d.pending == 0
