"""Zone-file lines to tokens, by dnspython's lexical rules, fast.

Owns the line scanner of the zone parser (``zones.parse``): which lines are
plain (``str.split`` is enough), the tokens of the other lines (quoted
strings, comments, parentheses, backslash escapes), and the expansion of a
``$GENERATE`` template. Tokens keep their escapes as written; a quoted
string's token is its text with one leading ``"`` (an unquoted token never
starts with one), so a record's tokens stay one ``list[str]``.

The rules are dnspython's tokenizer's: delimiters are space, tab, newline,
``;``, ``(``, ``)`` and ``"``; a backslash takes the next character (not a
newline) into the token; a newline inside quotes or parentheses that do not
close is an error. Whatever the scanner cannot read returns ``None``: the
caller hands that text to dnspython, which names the error.

Must not: read files or know record types. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re

# A plain line: printable ASCII and tabs, without quotes, parentheses,
# semicolons or backslashes. str.split() tokenizes it exactly as dnspython.
_PLAIN = re.compile(r"[\t !#-'*-:<-\[\]-~]*")
_TOKEN = re.compile(
    r'[ \t]+|"((?:[^"\\]|\\.)*)"|(;.*)|([()])|((?:[^ \t;()"\\]|\\.)+)'
)
_MODIFIER = re.compile(r"\{(-?\d+)(?:,(\d+)(?:,([doxX]))?)?\}")
MAX_GENERATE_WIDTH = 127  # dnspython's limit (a wider field is its error)
_RAW = re.compile(r"[\x80-\xff]")  # a raw octet past ASCII (text is a byte per character)
_NO_DEPTH = 1 << 30  # a depth no ")" brings below zero: raw_octet reads any line alone


# ``match_plain(line)`` is not None for a plain line (``is_plain``, without the call)
match_plain = _PLAIN.fullmatch


def is_plain(line: str) -> bool:
    """True when ``line.split()`` gives exactly dnspython's tokens of it."""
    return _PLAIN.fullmatch(line) is not None


def scan(line: str, depth: int, tokens: list[str]) -> int | None:
    """Append the tokens of ``line`` to ``tokens``; the parenthesis depth after it.

    ``depth`` is the depth before the line (0 outside parentheses). ``None``
    when the line cannot be read (an unclosed quote, a ``)`` too many, a
    backslash at the end): dnspython must judge it.
    """
    pos = 0
    end = len(line)
    match = _TOKEN.match
    while pos < end:
        m = match(line, pos)
        if m is None:
            return None
        pos = m.end()
        quoted, comment, paren, word = m.groups()
        if word is not None:
            tokens.append(word)
        elif quoted is not None:
            tokens.append('"' + quoted)
        elif paren is not None:
            depth += 1 if paren == "(" else -1
            if depth < 0:
                return None
        elif comment is not None:
            break
    return depth


def raw_octet(line: str) -> int | None:
    """The first raw octet past ASCII in ``line`` outside a comment (a line that
    cannot be read alone counts whole), or None."""
    if line.isascii():
        return None
    first = _RAW.search(line)
    if first is None:
        return None  # past latin-1: not a zone file's byte (zones.files reads bytes)
    semicolon = line.find(";", 0, first.start())
    if semicolon < 0:
        return ord(first.group(0))  # no comment can have begun before it
    if '"' not in line[:semicolon] and "\\" not in line[:semicolon]:
        return None  # the comment begins at that ";", before any raw octet
    tokens: list[str] = []
    if scan(line, _NO_DEPTH, tokens) is None:
        tokens = [line]
    for token in tokens:
        m = _RAW.search(token)
        if m is not None:
            return ord(m.group(0))
    return None


def first_raw(text: str, line: int = 1) -> tuple[int, int] | None:
    """(line, octet) of the first ``raw_octet`` of the lines of ``text`` (the first
    of them is line ``line``), or None. Lines are split at newlines only."""
    pos = 0
    while True:  # bounded: every step moves past one line
        m = _RAW.search(text, pos)
        if m is None:
            return None
        start = text.rfind("\n", pos, m.start()) + 1 or pos
        line += text.count("\n", pos, start)
        end = text.find("\n", m.start())
        end = len(text) if end < 0 else end
        octet = raw_octet(text[start:end])
        if octet is not None:
            return line, octet
        line += 1
        pos = end + 1


def quoted_template(text: str) -> str:
    """A quoted ``$GENERATE`` right-hand side's template, as BIND reads it.

    ``text`` is the string inside the quotes, escapes as written. BIND takes
    the quotes away and reads the expanded text as rdata (so ``"v=spf1 -all"``
    makes two TXT strings); an escaped quote loses its backslash there, every
    other escape stays for the rdata to read.
    """
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:  # bounded: every step moves past one or two characters
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            out.append(nxt if nxt == '"' else c + nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def generate_text(template: str, counter: int) -> str | None:
    """A ``$GENERATE`` template with ``$`` replaced, as dnspython expands it.

    ``$`` is the counter, ``${offset,width,base}`` modifies it (bases d, o,
    x, X), ``$$`` is a literal ``$`` and a backslash escape is copied as it
    is. ``None`` for what dnspython must judge (nibble mode, a bad modifier,
    a negative value).
    """
    if "$" not in template:
        return template
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        c = template[i]
        if c == "\\":
            out.append(template[i : i + 2])
            i += 2
        elif c != "$":
            out.append(c)
            i += 1
        elif template.startswith("$", i + 1):
            out.append("$")
            i += 2
        else:
            i += 1
            offset, width, base = 0, 0, "d"
            if template.startswith("{", i):
                m = _MODIFIER.match(template, i)
                if m is None:
                    return None
                offset = int(m.group(1))
                if m.group(2) is not None:
                    width = int(m.group(2))
                    if width > MAX_GENERATE_WIDTH:
                        return None
                if m.group(3) is not None:
                    base = m.group(3)
                i = m.end()
            value = counter + offset
            if value < 0:
                return None
            out.append(format(value, base).zfill(width))
    return "".join(out)
