"""zones.files: what a message may quote, line bounds, and where a file may be."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dns.name
import pytest

from dnsserve.errors import ZoneError
from dnsserve.zones.files import (
    FileRules,
    check_lines,
    excerpt,
    include_path,
    inside,
    safe_message,
)
from dnsserve.zones.load import load_zone_file
from dnsserve.zones.parse import parse_zone_file


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


def test_messages_escape_raw_octets() -> None:
    """Zone text is a byte per character: a raw octet past ASCII is quoted as ``\\xNN``."""
    # cut to 40 characters of repr (caf, é, \\x85 and 32 ÿ), then each raw octet escaped
    assert excerpt("caf\xe9\x85" + "\xff" * 100) == "'caf\\xe9\\x85" + "\\xff" * 32 + "'..."
    message = safe_message("syntax error at 'x\xe9\xc3\xa9\x1b'")
    assert message == "syntax error at 'x\\xe9\\xc3\\xa9\\x1b'"
    assert message.isascii() and message.isprintable()


@pytest.mark.parametrize("reader", [parse_zone_file, load_zone_file])
def test_a_line_is_measured_in_bytes(tmp_path: Path, reader: Any) -> None:
    """``max_line`` (server.max_zone_line_bytes) counts a line's bytes: 20 two-byte
    characters are 40 bytes, over a bound of 30, though only 20 characters."""
    head = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\n"
    rules = FileRules(max_line=30)
    path = tmp_path / "bytes.example.zone"
    origin = dns.name.from_text("bytes.example.")
    path.write_text(head + 'a TXT "' + "\u00e9" * 11 + '"\n', encoding="utf-8")  # 30 bytes
    reader(path, origin, include_dir=tmp_path, rules=rules)
    path.write_text(head + 'a TXT "' + "\u00e9" * 20 + '"\n', encoding="utf-8")  # 48 bytes
    with pytest.raises(ZoneError, match="longer than 30 bytes") as raised:
        reader(path, origin, include_dir=tmp_path, rules=rules)
    assert raised.value.line == 4
    path.write_text(head + 'a TXT ( "x"\n "' + "\u00e9" * 10 + '" )\n', encoding="utf-8")
    with pytest.raises(ZoneError, match=r"record .* longer than 30 bytes") as raised:
        reader(path, origin, include_dir=tmp_path, rules=rules)  # 11 + 1 + 25 bytes
    assert raised.value.line == 4


def test_an_include_path_keeps_its_raw_octets(tmp_path: Path) -> None:
    assert include_path("inc/caf\\233.inc") == Path(os.fsdecode(b"inc/caf\xe9.inc"))
    assert include_path("a\\\\233\\065") == Path("a\\\\233\\065")  # escapes below 128 stay
