"""Opening zone files as untrusted input: where they may be, what they may be, how much.

A zone file may come from anyone who can open a pull request, so every zone
file and every file it ``$INCLUDE``s is opened by ``open_zone_text`` under
``FileRules``, by both parse paths (``zones.parse`` and ``zones.load``'s
dnspython reader), in the server, in ``dnsserve check`` and in the reload
child alike:

1. Where: a zone file must resolve (symlinks followed) inside its own
   directory, an ``$INCLUDE``d file inside the zones directory or one of
   ``server.include_paths`` (``FileRules.roots``). Anything else is refused
   before it is opened, so none of its content can reach a message.
2. What: only regular files. The file is opened with ``O_NONBLOCK`` (a FIFO
   never blocks the open) and judged by ``fstat`` on the open descriptor (no
   race between a check and the open): a FIFO, a device (``/dev/zero``,
   ``/dev/urandom``), a directory or a socket is refused. A symlink loop is
   an error line, not a traceback.
3. How much: at most ``max_file_bytes`` (``server.max_zone_file_bytes``,
   default 1 GiB) per file, checked on the size before reading and again on
   every byte read (a file that grows while read stops at the bound), and at
   most ``max_line`` bytes (``server.max_zone_line_bytes``, default
   1 MiB) per line and per record in parentheses, far above any real record
   (the longest rdata, 65,535 octets, is 262,140 characters as ``\\DDD``
   escapes); the parsers enforce that one.
4. What a message may quote: ``excerpt`` (at most ``EXCERPT`` characters,
   non-printable characters and raw octets past ASCII escaped) and
   ``safe_message`` (every quoted part of a message cut to an excerpt, the
   whole bounded): every syntax error
   passes through it, so a file that is not a zone file never has more than
   a short escaped excerpt of it printed.

A zone file is read as its bytes, one character each (latin-1), as BIND and
NSD read it: any octet may appear (RFC 1035 §5.1), a raw octet past ASCII is
that octet in a label or a string (neither UTF-8 nor IDNA), so a line's
length in characters is its length in bytes, and no file is refused for its
encoding.

Must not: parse zone text (the parsers do) or decide what a zone means.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from dnsserve.config_schema import DEFAULT_MAX_ZONE_FILE_BYTES, DEFAULT_MAX_ZONE_LINE_BYTES
from dnsserve.errors import ZoneError
from dnsserve.zones.fastscan import scan

EXCERPT = 40  # characters of a file's content a message may quote
MESSAGE_MAX = 300  # characters of a message, at most (a path included)
PATH_MAX = 255  # characters of a path a message shows

_KINDS = {
    stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket",
}
# a backslash pair, or \DDD past ASCII (its digits in group 1)
_HIGH_ESCAPE = re.compile(r"\\(?:(12[89]|1[3-9][0-9]|2[0-4][0-9]|25[0-5])|.)", re.DOTALL)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


@dataclass(frozen=True, slots=True)
class FileRules:
    """The bounds every zone file is opened under (the module docstring)."""

    roots: tuple[Path, ...] = ()  # besides the zones directory: where $INCLUDE may read
    max_file_bytes: int = DEFAULT_MAX_ZONE_FILE_BYTES
    max_line: int = DEFAULT_MAX_ZONE_LINE_BYTES


DEFAULT_RULES = FileRules()


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """``text`` quoted as ``repr`` quotes it (non-printables escaped), cut to ``limit``
    characters inside the quotes."""
    return safe_message(repr(text), limit)


def _escape(c: str) -> str:
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def safe_message(message: str, limit: int = EXCERPT) -> str:
    """``message`` with every quoted part cut to ``limit`` characters (``...`` after
    the quote says so), non-printables and raw octets past ASCII escaped (``\\xe9``),
    at most ``MESSAGE_MAX`` characters."""
    def shorten(m: re.Match[str]) -> str:
        quoted = m.group(0)
        if len(quoted) - 2 <= limit:
            return quoted
        return quoted[: limit + 1] + quoted[0] + "..."

    out = _QUOTED.sub(shorten, message)
    out = "".join(c if c.isprintable() and c.isascii() else _escape(c) for c in out)
    return out if len(out) <= MESSAGE_MAX else out[: MESSAGE_MAX - 3] + "..."


def show_path(path: Path | str) -> str:
    """A path as a message shows it: escaped, and cut when it is absurdly long."""
    text = "".join(c if c.isprintable() else _escape(c) for c in str(path))
    return text if len(text) <= PATH_MAX else text[:PATH_MAX] + "..."


def inside(path: Path, roots: tuple[Path, ...]) -> bool:
    """Whether ``path``, symlinks resolved, is one of ``roots`` or below one."""
    real = Path(os.path.realpath(path))
    for root in roots:
        top = Path(os.path.realpath(root))
        if real == top or top in real.parents:
            return True
    return False


def check_include(path: Path, include_dir: Path, rules: FileRules, *, cited: tuple[str, int]
                  ) -> None:
    """Refuse an ``$INCLUDE`` of ``path`` outside the zones directory and ``rules.roots``."""
    if inside(path, (include_dir, *rules.roots)):
        return
    where = ("the zones directory and server.include_paths: refused" if rules.roots else
             "the zones directory: refused (server.include_paths may allow more directories)")
    raise ZoneError(f"$INCLUDE {show_path(path)} is outside {where}",
                    file=cited[0], line=cited[1])


def real_path(path: Path) -> Path:
    """``path`` with symlinks resolved; never raises (a loop is left as it is)."""
    return Path(os.path.realpath(path))


def open_zone_text(path: Path, rules: FileRules, *, cited: tuple[str, int]) -> TextIO:
    """``path`` opened to be read as text, a byte per character (latin-1, universal
    newlines), if it is a regular file within ``rules.max_file_bytes``; else a ``ZoneError``
    where it was cited (``cited``: file and line; line 0 for a zone file itself)."""
    shown = show_path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            reason = "too many levels of symbolic links (a symlink loop?)"
        elif exc.errno == errno.ENXIO and _is_socket(path):  # a socket cannot be opened
            raise _not_regular(shown, "a socket", cited) from None
        else:
            reason = exc.strerror or type(exc).__name__
        raise ZoneError(f"cannot read {shown}: {reason}", file=cited[0], line=cited[1]) from None
    try:
        st = os.fstat(fd)
        kind = _KINDS.get(stat.S_IFMT(st.st_mode))
        if kind is not None or not stat.S_ISREG(st.st_mode):
            raise _not_regular(shown, kind, cited)
        if st.st_size > rules.max_file_bytes:
            raise _too_large(shown, rules, cited)
        raw = _Bounded(fd, rules.max_file_bytes, shown, cited)
    except BaseException:
        os.close(fd)
        raise
    return io.TextIOWrapper(io.BufferedReader(raw), encoding="latin-1")


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _not_regular(shown: str, kind: str | None, cited: tuple[str, int]) -> ZoneError:
    return ZoneError(f"{shown} is {kind or 'not a regular file'}: refused (zone files and "
                     "included files must be regular files)", file=cited[0], line=cited[1])


def include_path(value: str) -> Path:
    """The path an ``$INCLUDE`` names, from dnspython's token (raw octets past ASCII
    written as ``\\DDD``, ``zones.fastrdata.escape_octets``): the file's own bytes."""
    if "\\" in value:
        value = _HIGH_ESCAPE.sub(lambda m: chr(int(m.group(1))) if m.group(1) else m.group(0),
                                 value)
    return Path(os.fsdecode(value.encode("latin-1")))


def read_zone_text(path: Path, rules: FileRules, *, cited: tuple[str, int]) -> str:
    """The whole of ``path`` as text, opened by ``open_zone_text``, every line
    within ``rules.max_line`` bytes (the dnspython reader's path)."""
    with open_zone_text(path, rules, cited=cited) as file:
        text = file.read()
    check_lines(text, rules.max_line, str(path))
    return text


def check_lines(text: str, max_line: int, file: str) -> None:
    """A ``ZoneError`` at the first line of ``text`` longer than ``max_line``, or at
    the first line of a record in parentheses longer than that (as ``zones.parse``
    counts it: its lines and the newlines between them)."""
    start = 0
    line = 1
    end = len(text)
    depth: int | None = 0
    opened = size = 0
    scratch: list[str] = []
    while start <= end:  # bounded: each step moves past one newline
        stop = text.find("\n", start)
        if stop < 0:
            stop = end
        if stop - start > max_line:
            raise line_too_long(max_line, file, line)
        if depth:
            size += stop - start + 1
            if size > max_line:
                raise record_too_long(max_line, file, opened)
        if depth is not None:
            before = depth
            depth = scan(text[start:stop], depth, scratch)
            scratch.clear()
            if not before and depth:
                opened, size = line, stop - start
        start = stop + 1
        line += 1


def line_too_long(max_line: int, file: str, line: int) -> ZoneError:
    return ZoneError(f"a line longer than {max_line:,} bytes (server.max_zone_line_bytes):"
                     " refused", file=file, line=line)


def record_too_long(max_line: int, file: str, line: int) -> ZoneError:
    return ZoneError(f"a record (in parentheses from this line) longer than {max_line:,}"
                     " bytes (server.max_zone_line_bytes): refused", file=file, line=line)


def _too_large(shown: str, rules: FileRules, cited: tuple[str, int]) -> ZoneError:
    return ZoneError(f"{shown} is larger than {rules.max_file_bytes:,} bytes "
                     "(server.max_zone_file_bytes): refused", file=cited[0], line=cited[1])


class _Bounded(io.RawIOBase):
    """A file descriptor read up to a byte bound; past it, a ``ZoneError``."""

    def __init__(self, fd: int, limit: int, shown: str, cited: tuple[str, int]) -> None:
        super().__init__()
        self._fd = fd
        self._left = limit
        self._limit = limit
        self._shown = shown
        self._cited = cited

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = os.read(self._fd, min(len(buffer), self._left + 1))
        if len(data) > self._left:
            raise _too_large(self._shown, FileRules(max_file_bytes=self._limit), self._cited)
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
