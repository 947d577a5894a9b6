"""Reading one zone file (and what it includes) fast, into ``ParsedRecords``.

Owns the fast zone-file reader: a line loop that takes the common forms
(one record per line or in parentheses, relative and absolute names, TTL and
class in either order, ``$ORIGIN``, ``$TTL``, ``$INCLUDE``, ``$GENERATE``)
and the common types (``zones.fastrdata``) straight to wire-format rdata,
and hands every other record, one entry at a time, to dnspython's own
zone-file reader (through ``zones.dnspython_adapter``). Errors are
``ZoneError``s with the same file, line and message as ``zones.load`` gives
for the same text: whatever the fast path is unsure of, dnspython judges.

Rules it shares with ``zones.load``: files are opened under ``zones.files``'
rules (where, what, how much; a line or a record in parentheses longer than
``FileRules.max_line`` is refused before it is all read); ``$INCLUDE`` paths
are relative to the zones directory, at most ``MAX_INCLUDE_DEPTH`` deep,
without loops; a
``$GENERATE`` makes at most ``MAX_GENERATE`` names; a record whose owner is
outside the origin is left out with a warning (``ParsedRecords.warnings``);
rdata is at most 65,535 octets; a file is its bytes (``zones.files``: a raw
octet past ASCII is that octet, as BIND and NSD read it; the first of a
file outside a comment is a warning, at the end of the file, since Knot DNS
refuses such a file). Everything else about a zone's meaning
(an SOA below the apex, two CNAMEs at a name, a CNAME beside other data) is
the builder's to judge, not this reader's.

Must not: judge a zone's semantics, keep per-record Python objects beyond
``ParsedRecords``' columns, change the working directory, or keep state
between calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO, cast

import dns.exception
import dns.grange
import dns.name
import dns.rdata
import dns.rdataclass
import dns.transaction
import dns.ttl

from dnsserve.errors import ZoneError
from dnsserve.zones import fastrdata as fr
from dnsserve.zones.dnspython_adapter import Tokenizer, ZoneFileReader
from dnsserve.zones.fastscan import (
    first_raw,
    generate_text,
    is_plain,
    match_plain,
    quoted_template,
    scan,
)
from dnsserve.zones.files import (
    DEFAULT_RULES,
    FileRules,
    check_include,
    include_path,
    inside,
    line_too_long,
    open_zone_text,
    real_path,
    record_too_long,
    safe_message,
    show_path,
)
from dnsserve.zones.records import ParsedRecords

MAX_INCLUDE_DEPTH = 8  # the same as zones.load's
MAX_GENERATE = 65536  # the same as zones.load's
_SOA = 6
MAX_RDATA = 65535
# the posture rule ids of the reader's warnings (posture.findings.RULES)
OUTSIDE = "owner-outside-zone"
RAW_OCTET = "raw-octet"
_CHUNK = 1 << 20  # characters of text split into lines at a time
# Class mnemonics other than IN (dnspython reads CLASSnnn too): dnspython judges them.
# IN as written (any other class, CLASSnnn included, is dnspython's to judge)
_IN = frozenset({"IN", "in", "In", "iN"})
# type mnemonics as usually written; fr.TYPES (upper case) for the rest
_TYPES = {**fr.TYPES, **{name.lower(): code for name, code in fr.TYPES.items()}}
# an IPv4 address's octets as dnspython reads them (no sign, no leading zero)
_OCTET = {str(i): i for i in range(256)}


def parse_zone_file(
    path: Path, origin: dns.name.Name, *, include_dir: Path, rules: FileRules = DEFAULT_RULES
) -> ParsedRecords:
    """The records of ``path`` (zone ``origin``) and of the files it includes, in file order.

    Raises ``ZoneError`` naming the file and line of the first syntax error,
    missing include, include loop, over-long ``$GENERATE`` or owner outside
    the origin, as ``zones.load.load_zone_file`` does.
    """
    records = ParsedRecords(origin=fr.name_wire(origin).lower())
    path = Path(path)
    check_zone_file(path, include_dir)
    parser = _Parser(origin, include_dir, records, path, rules)
    parser.read(path, open_zone_text(path, rules, cited=(str(path), 0)))
    return records


def check_zone_file(path: Path, include_dir: Path) -> None:
    """A zone file must resolve inside its own directory (or the zones directory):
    a symlink in the zones directory cannot make a zone of ``/etc/shadow``.

    ``rules.roots`` (``server.include_paths``) widen ``$INCLUDE`` targets only,
    never where a zone file itself may resolve."""
    if not inside(path, (path.parent, include_dir)):
        raise ZoneError(f"{show_path(path)} resolves outside the zones directory: refused",
                        file=str(path))


def _ttl(text: str) -> int:
    if text.isdigit() and text.isascii():
        value = int(text)
        if value > fr.MAX_UINT32:
            raise fr.NotFast
        return value
    return fr.ttl(text)


class _Manager:
    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin

    def origin_information(self) -> tuple[dns.name.Name, bool, dns.name.Name]:
        return self.origin, False, self.origin


class _Collector:
    """Stands in for a zone transaction: keeps what dnspython's reader adds, in order."""

    def __init__(self, origin: dns.name.Name) -> None:
        self.manager = _Manager(origin)
        self.added: list[tuple[dns.name.Name, int, dns.rdata.Rdata]] = []

    def check_put_rdataset(self, check: Any) -> None:
        """Semantic checks belong to the builder."""

    def add(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        self.added.append((name, ttl, rdata))


def _ignore(name: dns.name.Name, rdata: dns.rdata.Rdata) -> None:
    """The builder, not the reader, judges SOA placement and singletons."""


class _Parser:
    """One zone file and its includes; the reader state dnspython's reader keeps too."""

    def __init__(
        self,
        apex: dns.name.Name,
        include_dir: Path,
        records: ParsedRecords,
        path: Path,
        rules: FileRules,
    ) -> None:
        self.apex = apex
        self.rules = rules
        self.apex_low = fr.name_wire(apex).lower()
        self.include_dir = include_dir
        self.records = records
        self.files = [real_path(path)]
        self.codec = fr.NameCodec(apex)
        self.origin_inside = True
        self.last_wire = self.codec.origin
        self.last_text: str | None = None
        self.owner_outside = False  # the last owner is outside the zone (left out)
        self.last_ttl = 0
        self.last_ttl_known = False
        self.default_ttl = 0
        self.default_ttl_known = False
        self.default_ttl_from_soa = False
        self.file_name = str(path)
        self.file = records.file_index(self.file_name)
        self.at_open_end = False
        self.collector = _Collector(apex)
        self.zf = ZoneFileReader(
            cast(dns.transaction.Transaction, self.collector),
            Tokenizer("", self.file_name),
            _ignore,
        )

    # -- the line loop ---------------------------------------------------------

    def read(self, path: Path, file: TextIO) -> None:
        """Read the open zone file ``path`` entry by entry (a chunk at a time); its
        first raw octet past ASCII, if any, is a warning at its end (as ``zones.load``)."""
        raw: list[tuple[int, int]] = []
        with file:
            self._read_lines(self._lines(file, raw))
        if raw:
            self.records.warn(self.file, raw[0][0], raw_octet_message(raw[0][1]), RAW_OCTET)

    def _lines(self, file: TextIO, raw: list[tuple[int, int]]) -> Iterator[str]:
        """The lines of ``file`` without their newlines; ``at_open_end`` is set
        before a last line that has none is given. A line longer than the
        rules' ``max_line`` is an error (before it is all read). The first raw
        octet past ASCII outside a comment goes to ``raw`` as (line, octet)."""
        self.at_open_end = False
        rest = ""
        seen = 0  # lines given so far
        max_line = self.rules.max_line
        while True:  # bounded by the file's size
            chunk = file.read(_CHUNK)
            if not chunk:
                break
            block = rest + chunk if rest else chunk
            lines = block.split("\n")
            rest = lines.pop()
            if lines and max(map(len, lines)) > max_line:
                at = next(i for i, line in enumerate(lines) if len(line) > max_line)
                raise line_too_long(max_line, self.file_name, seen + at + 1)
            if len(rest) > max_line:
                raise line_too_long(max_line, self.file_name, seen + len(lines) + 1)
            if not raw and not block.isascii():
                found = first_raw(block[: len(block) - len(rest)], seen + 1)
                if found is not None:
                    raw.append(found)
            seen += len(lines)
            yield from lines
        if rest:
            if not raw:
                found = first_raw(rest, seen + 1)
                if found is not None:
                    raw.append(found)
            self.at_open_end = True
            yield rest

    def _read_lines(self, lines: Iterator[str]) -> None:
        lineno = 0
        record = self._record
        for line in lines:
            lineno += 1
            if not line or line[0] == ";":
                continue
            if match_plain(line) is not None:
                tokens = line.split()
                if not tokens:
                    continue
                if tokens[0][0] == "$" and line[0] not in " \t":
                    self._directive(tokens, [line], lineno, lineno)
                else:
                    record(tokens, line[0] in " \t", line, lineno, lineno)
                continue
            tokens = []
            raw = [line]
            depth = scan(line, 0, tokens)
            here = lineno if tokens or line[0] in " \t" else 0
            size = len(line)
            while depth:  # inside parentheses: the entry goes on
                more = next(lines, None)
                if more is None:
                    depth = None
                    break
                size += len(more) + 1
                if size > self.rules.max_line:
                    raise record_too_long(self.rules.max_line, self.file_name, lineno)
                raw.append(more)
                had = len(tokens)
                depth = scan(more, depth, tokens)
                if not here and len(tokens) > had:
                    here = lineno + len(raw) - 1
            if depth is None:
                # dnspython's error (or, should it read on, the rest of the file)
                rest = "\n".join([*raw, *lines]) + ("" if self.at_open_end else "\n")
                self._slow(rest, lineno, end="")
                return
            if tokens:
                if tokens[0][0] == "$" and line[0] not in " \t(":
                    self._directive(tokens, raw, lineno, here)
                else:
                    record(tokens, line[0] in " \t", raw, lineno, here)
            lineno += len(raw) - 1

    def _record(
        self, t: list[str], leading: bool, raw: str | list[str], lineno: int, here: int
    ) -> None:
        """One record's tokens to the columns; dnspython reads what this cannot."""
        try:
            if leading:
                if self.owner_outside:
                    raise fr.NotFast  # dnspython skips it; _take says so
                owner = self.last_wire
                k = 0
            else:
                text = t[0]
                if text == self.last_text:
                    owner = self.last_wire
                else:
                    owner = self.codec.owner(text)
                    # a relative name under an origin inside the zone is inside
                    if (
                        text[-1] == "." or "\\" in text or not self.origin_inside
                    ) and not self._inside(owner):
                        raise fr.NotFast  # dnspython skips it; _take says so
                k = 1
            ttl: int | None = None
            tok = t[k]
            if "0" <= tok[0] <= "9":
                ttl = _ttl(tok)
                k += 1
                tok = t[k]
            if tok in _IN:
                k += 1
                tok = t[k]
                if ttl is None and "0" <= tok[0] <= "9":
                    ttl = _ttl(tok)
                    k += 1
                    tok = t[k]
            rtype = _TYPES.get(tok) or fr.TYPES[tok.upper()]  # KeyError: dnspython
            if rtype == 1:  # A, the most common, inline
                if len(t) != k + 2:
                    raise fr.NotFast
                octets = t[k + 1].split(".")
                if len(octets) != 4:
                    raise fr.NotFast
                rdata = bytes(
                    [_OCTET[octets[0]], _OCTET[octets[1]], _OCTET[octets[2]], _OCTET[octets[3]]]
                )
            else:
                args = t[k + 1 :]
                if args and args[0] == "\\#":
                    raise fr.NotFast  # RFC 3597 generic rdata: dnspython
                rdata = fr.ENCODERS[rtype](args, self.codec)
                if len(rdata) > MAX_RDATA:
                    raise fr.NotFast  # dnspython reads it, _take refuses it
        except (fr.NotFast, IndexError, KeyError):
            self._slow(raw, lineno)
            return
        if rtype == _SOA and not self.default_ttl_known:
            # dnspython: without $TTL, the SOA's minimum is the default TTL
            self.default_ttl = int.from_bytes(rdata[-4:], "big")
            self.default_ttl_known = True
            self.default_ttl_from_soa = True
        if ttl is not None:
            self.last_ttl = ttl
            self.last_ttl_known = True
        elif self.last_ttl_known and (not self.default_ttl_known or self.default_ttl_from_soa):
            ttl = self.last_ttl  # dnspython's Reader._implicit_ttl, inline
        elif self.default_ttl_known:
            ttl = self.default_ttl
        else:
            self._slow(raw, lineno)  # "Missing default TTL value"
            return
        if not leading:
            self.last_wire = owner
            self.last_text = t[0]
            self.owner_outside = False
        records = self.records
        records.owners.append(owner)
        records.types.append(rtype)
        records.ttls.append(ttl)
        records.rdatas.append(rdata)
        records.files.append(self.file)
        records.lines.append(here)

    def _set_origin(self, origin: dns.name.Name) -> None:
        self.codec = fr.NameCodec(origin)
        self.origin_inside = origin.is_subdomain(self.apex)

    def _error(self, message: str, line: int) -> ZoneError:
        return ZoneError(message, file=self.file_name, line=line)

    def _implicit_ttl(self) -> int | None:
        """dnspython's rule for a record without a TTL (``Reader._implicit_ttl``)."""
        if self.last_ttl_known and (not self.default_ttl_known or self.default_ttl_from_soa):
            return self.last_ttl
        if self.default_ttl_known:
            return self.default_ttl
        return None

    def _inside(self, wire: bytes) -> bool:
        low = wire.lower()
        apex = self.apex_low
        if not low.endswith(apex):
            return False
        cut = len(low) - len(apex)
        i = 0
        while i < cut:  # bounded: every step moves past one label
            i += low[i] + 1
        return i == cut

    # -- directives --------------------------------------------------------------

    def _directive(self, t: list[str], raw: list[str], lineno: int, here: int) -> None:
        if t[0].upper() == "$GENERATE" and self._generate(t, here):
            return
        self._slow(raw, lineno)

    def _generate(self, t: list[str], here: int) -> bool:
        """A ``$GENERATE`` line expanded here; False when dnspython must read it."""
        # only the right-hand side may be quoted (BIND refuses quotes elsewhere)
        if len(t) < 5 or len(t) > 7 or any(x[0] == '"' for x in t[:-1]):
            return False
        try:
            start, stop, step = dns.grange.from_text(t[1])
        except (ValueError, AssertionError, dns.exception.DNSException):
            return False
        if (stop - start) // step + 1 > MAX_GENERATE:
            raise ZoneError(
                f"$GENERATE makes more than {MAX_GENERATE} names", file=self.file_name, line=here
            )
        lhs = t[2]
        k = 3
        ttl: int | None = None
        try:
            if "0" <= t[k][0] <= "9":
                ttl = fr.ttl(t[k])
                k += 1
            explicit = ttl is not None
            if t[k] in _IN:
                k += 1
            rtype = _TYPES.get(t[k]) or fr.TYPES[t[k].upper()]
        except (fr.NotFast, IndexError, KeyError):
            return False
        if k + 2 != len(t):
            return False  # more after the rdata: dnspython reads it as it does
        rhs = t[k + 1]
        if rhs[0] == '"':
            rhs = quoted_template(rhs[1:])
        if ttl is None:
            ttl = self._implicit_ttl()
            if ttl is None:
                return False
        encode = fr.ENCODERS[rtype]
        made: list[tuple[bytes, bytes]] = []
        owner = self.last_wire
        try:
            for i in range(start, stop + 1, step):
                name = generate_text(lhs, i)
                data = generate_text(rhs, i)
                if name is None or data is None or not is_plain(data) or not data.strip():
                    return False
                owner = self.codec.wire(name)
                if not self._inside(owner):
                    return False  # dnspython stops there; _take says so
                made.append((owner, encode(data.split(), self.codec)))
        except fr.NotFast:
            return False
        if explicit:
            self.last_ttl = ttl
            self.last_ttl_known = True
        self.last_wire = owner
        self.last_text = None
        self.owner_outside = False
        records = self.records
        for owner, rdata in made:
            records.add(owner, rtype, ttl, rdata, self.file, here)
        return True

    # -- dnspython, for what the fast path does not take ---------------------------

    def _slow(self, raw: str | list[str], lineno: int, end: str | None = None) -> None:
        """Entries read by dnspython's reader, as ``zones.load`` drives it.

        ``raw`` is their lines; ``end`` what follows the last (a newline,
        unless it is the file's last line and has none)."""
        if end is None:
            end = "" if self.at_open_end else "\n"
        text = raw if isinstance(raw, str) else "\n".join(raw)
        tok = Tokenizer(text + end, self.file_name, lineno)
        zf = self.zf
        zf.restore_state(
            {
                "tok": tok,
                "current_origin": self.codec.origin_name,
                "last_name": dns.name.from_wire(self.last_wire, 0)[0],
                "last_ttl": self.last_ttl,
                "last_ttl_known": self.last_ttl_known,
                "default_ttl": self.default_ttl,
                "default_ttl_known": self.default_ttl_known,
                "default_ttl_from_soa": self.default_ttl_from_soa,
            }
        )
        here = lineno
        while True:  # bounded: every step reads at least one token of finite text
            try:
                token = tok.get(want_leading=True, want_comment=True)
                if token.is_eof():
                    break
                if token.is_eol():
                    continue
                if token.is_comment():
                    tok.get_eol()
                    continue
                here = tok.token_line
                if token.is_identifier() and token.value.startswith("$"):
                    self._slow_directive(tok, token.value.upper(), here)
                else:
                    tok.unget(token)
                    zf.read_record()
                    self._take(here)
            except ZoneError:
                raise
            except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
                raise ZoneError(
                    _syntax_message(exc, tok, here), file=self.file_name, line=tok.token_line
                ) from None
        self._sync_from_zf()

    def _sync_from_zf(self) -> None:
        state = self.zf.save_state()
        origin = state["current_origin"]
        if origin != self.codec.origin_name or origin.labels != self.codec.origin_name.labels:
            self._set_origin(origin)
        self.last_wire = fr.name_wire(state["last_name"])
        self.owner_outside = not state["last_name"].is_subdomain(self.apex)
        self.last_text = None
        self.last_ttl = state["last_ttl"]
        self.last_ttl_known = state["last_ttl_known"]
        self.default_ttl = state["default_ttl"]
        self.default_ttl_known = state["default_ttl_known"]
        self.default_ttl_from_soa = state.get("default_ttl_from_soa", False)

    def _take(self, here: int) -> None:
        """What dnspython's reader added, to the columns; a record it skipped because
        its owner is outside the zone is a warning (``outside_message``)."""
        added = self.collector.added
        for name, ttl, rdata in added:
            wire = fr.rdata_wire(rdata)
            check_rdata_length(wire, self.file_name, here)
            self.records.add(fr.name_wire(name), rdata.rdtype, ttl, wire, self.file, here)
        added.clear()
        owner = self.zf.owner
        if not owner.is_subdomain(self.apex):
            self.records.warn(self.file, here, outside_message(owner, self.apex), OUTSIDE)

    def _slow_directive(self, tok: Tokenizer, directive: str, here: int) -> None:
        """``zones.load``'s directive handling, on dnspython's tokenizer."""
        zf = self.zf
        if directive == "$TTL":
            token = tok.get()
            if not token.is_identifier():
                raise dns.exception.SyntaxError("$TTL needs a TTL")
            zf.set_default_ttl(dns.ttl.from_text(token.value))
            tok.get_eol()
        elif directive == "$ORIGIN":
            zf.set_origin(tok.get_name(zf.origin))
            tok.get_eol()
        elif directive == "$INCLUDE":
            self._include(tok, here)
        elif directive == "$GENERATE":
            token = tok.get()
            try:
                start, stop, step = dns.grange.from_text(token.value)
            except (ValueError, AssertionError):
                raise dns.exception.SyntaxError(f"bad $GENERATE range {token.value!r}") from None
            if (stop - start) // step + 1 > MAX_GENERATE:
                raise self._error(f"$GENERATE makes more than {MAX_GENERATE} names", here)
            tok.unget(token)
            zf.read_generate()
            self._take(here)
        else:
            raise dns.exception.SyntaxError(f"unknown directive {directive}")

    def _include(self, tok: Tokenizer, here: int) -> None:
        zf = self.zf
        token = tok.get()
        if not (token.is_identifier() or token.is_quoted_string()):
            raise dns.exception.SyntaxError("$INCLUDE needs a file name")
        token_origin = tok.get()
        origin = zf.origin
        if token_origin.is_identifier():
            origin = dns.name.from_text(token_origin.value, zf.origin)
            tok.get_eol()
        elif not token_origin.is_eol_or_eof():
            raise dns.exception.SyntaxError("bad origin in $INCLUDE")
        path = include_path(token.value)
        if not path.is_absolute():
            path = self.include_dir / path
        if len(self.files) > MAX_INCLUDE_DEPTH:
            raise self._error(f"$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep", here)
        check_include(path, self.include_dir, self.rules, cited=(self.file_name, here))
        real = real_path(path)
        if real in self.files:
            raise self._error(f"$INCLUDE loop: {show_path(path)} is already being read", here)
        file = open_zone_text(path, self.rules, cited=(self.file_name, here))
        # the included file starts from this reader's state, and leaves it as it was
        self._sync_from_zf()
        saved = zf.save_state()
        outer = (self.file_name, self.file, self.at_open_end)
        self.files.append(real)
        self.file_name = str(path)
        self.file = self.records.file_index(self.file_name)
        if origin != self.codec.origin_name or origin.labels != self.codec.origin_name.labels:
            self._set_origin(origin)
        self.read(path, file)
        self.files.pop()
        self.file_name, self.file, self.at_open_end = outer
        zf.restore_state(saved)


def outside_message(owner: dns.name.Name, apex: dns.name.Name) -> str:
    """The warning for a record left out: its owner is outside the zone (``zones.load`` too)."""
    return f"owner {owner} is outside the zone {apex}: record left out (as BIND and Knot do)"


def raw_octet_message(octet: int) -> str:
    """The warning for a file's first raw octet past ASCII (``zones.load`` too)."""
    return (f"a raw octet 0x{octet:02x} (the file's first past ASCII outside a comment): read"
            f" as that octet, as BIND and NSD read it; Knot DNS refuses the file (\\{octet:03d}"
            " loads everywhere)")


def check_rdata_length(rdata: bytes, file: str, line: int) -> None:
    """A record's rdata is at most 65,535 octets (its length is 16 bits); both readers."""
    if len(rdata) > MAX_RDATA:
        raise ZoneError(
            f"rdata of {len(rdata):,} octets: a record holds at most {MAX_RDATA:,}",
            file=file, line=line,
        )


def _syntax_message(exc: Exception, tok: Tokenizer, here: int) -> str:
    """``zones.load``'s wording of a dnspython error."""
    message = str(exc) or type(exc).__name__
    if message == type(exc).__doc__:  # dnspython's "Text input is malformed."
        message = f"syntax error at {tok.token_value!r}"
    if tok.in_parentheses and tok.token_line != here:
        message += f" (inside parentheses opened at line {here})"
    return safe_message(message)
