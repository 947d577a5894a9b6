"""zones.files: what a message may quote, line bounds, and where a file may be."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnsserve.errors import ZoneError
from dnsserve.zones.files import FileRules, check_lines, excerpt, inside, safe_message


def test_messages_quote_a_short_escaped_excerpt() -> None:
    assert excerpt("short") == "'short'"
    assert excerpt("\x01" + "y" * 100) == "'\\x01" + "y" * 36 + "'..."
    message = safe_message(f"bad {'root:' * 50!r} and \x1b[2J")
    assert "root:" * 9 not in message and "\x1b" not in message and "\\x1b" in message


def test_the_first_long_line_is_named() -> None:
    check_lines("a\nbb\n", 2, "f")
    with pytest.raises(ZoneError) as raised:
        check_lines("a\nbbb\ncccc", 2, "f")
    assert (raised.value.file, raised.value.line) == ("f", 2)


def test_inside_follows_symlinks(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "out").symlink_to(tmp_path)
    assert inside(tmp_path / "zones" / "a.inc", (tmp_path / "zones",))
    assert not inside(tmp_path / "zones" / "out" / "x", (tmp_path / "zones",))
    assert FileRules().max_line == 1 << 20
