"""Reading ``<origin>.zone`` files into validated zone tables.

Owns the zones directory layout, reading each zone file with the fast
reader (``zones.parse``) and building its table (``zones.compile``), which
zones a reload reads again (each zone's fingerprint: its files' size,
modification time and inode), master-file parsing with dnspython's reader
under our own directive loop (``load_zone_file``: the reference the fast
reader is held to, with ``$INCLUDE`` resolved against the zones directory),
turning every parse failure into a ``ZoneError`` or ``ZoneProblem`` with
file and line, and remembering where each owner and
record was written so that ``zones.compile`` can name a line. It must not
validate semantics (``zones.compile`` does), except what dnspython's zone
model cannot even hold: an SOA below the apex,
two SOA/CNAME/DNAME records at one owner, a CNAME beside other data. It must
not answer queries, change the working directory, or keep state between
calls.

Layout: every regular file ``<origin>.zone`` in the directory is one zone;
the origin is the file name without ``.zone`` (``example.com.zone`` is
``example.com.``). ``root.zone`` is the root zone ``.``. Hidden files
(editor locks such as ``.#example.com.zone``) and subdirectories are
ignored, so included files can live in ``include/``; they must not end in
``.zone``. ``$INCLUDE`` paths are relative to the zones directory (as Knot
DNS resolves them relative to the zone file's directory, which is the same
place), at most ``MAX_INCLUDE_DEPTH`` deep and without loops. Every file is
opened under ``zones.files``' rules (``FileRules``: inside the zones
directory or ``include_paths``, regular files only, bounded in size and line
length; messages quote at most a short escaped excerpt).
``$GENERATE`` ranges are limited to ``MAX_GENERATE`` names each.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import dns.exception
import dns.grange
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.transaction
import dns.ttl
import dns.zone
import dns.zonefile
from dns.rdatatype import RdataType

from dnsserve.errors import ConfigError, ZoneError
from dnsserve.zones.compile import (
    Compiled,
    ZoneProblem,
    compile_records,
)
from dnsserve.zones.dnskeys import read_keys
from dnsserve.zones.dnspython_adapter import Tokenizer, ZoneFileReader
from dnsserve.zones.fastrdata import rdata_wire as fr_rdata_wire
from dnsserve.zones.fastscan import first_raw
from dnsserve.zones.files import (
    DEFAULT_RULES,
    FileRules,
    check_include,
    include_path,
    read_zone_text,
    real_path,
    safe_message,
    show_path,
)
from dnsserve.zones.online import Signing
from dnsserve.zones.parse import (
    OUTSIDE,
    RAW_OCTET,
    check_rdata_length,
    check_zone_file,
    outside_message,
    parse_zone_file,
    raw_octet_message,
)
from dnsserve.zones.rrsign import Reusable, sign_records
from dnsserve.zones.sources import Source, SourceMap
from dnsserve.zones.table import ZoneTable
from dnsserve.zones.versions import ZoneContent, zone_content

log = logging.getLogger(__name__)

ZONE_SUFFIX = ".zone"
ROOT_ZONE_FILE = "root.zone"
MAX_INCLUDE_DEPTH = 8
MAX_GENERATE = 65536


# What a zone was read from: (file, size, mtime_ns, inode) of its file and each
# file it includes, in the order read. The same fingerprint at a reload: not read again.
Fingerprint = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True)
class LoadedZones:
    """The zones of one directory that can be served, and what was wrong with the rest."""

    tables: Mapping[dns.name.Name, ZoneTable]
    problems: tuple[ZoneProblem, ...]
    files: Mapping[dns.name.Name, Path]
    # zones read from their files by this load or an earlier one it reused
    fingerprints: Mapping[dns.name.Name, Fingerprint] = field(default_factory=dict)
    reused: frozenset[dns.name.Name] = frozenset()  # tables kept: their files had not changed
    # canonical contents computed with the tables (by a child process), by origin
    contents: Mapping[dns.name.Name, ZoneContent] = field(default_factory=dict)

    @property
    def errors(self) -> tuple[ZoneProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")


def origin_from_path(path: Path) -> dns.name.Name:
    """The origin a zone file stands for: its name without ``.zone``; ``root.zone`` is ``.``."""
    if path.name == ROOT_ZONE_FILE:
        return dns.name.root
    stem = path.name.removesuffix(ZONE_SUFFIX)
    if not stem or stem == path.name:
        raise ZoneError(f"a zone file name is <origin>{ZONE_SUFFIX}", file=str(path))
    try:
        return dns.name.from_text(stem, dns.name.root)
    except dns.exception.DNSException as exc:
        raise ZoneError(f"file name is not a domain name: {exc}", file=str(path)) from None


def zone_file_name(origin: dns.name.Name) -> str:
    """The file name of a zone (the inverse of ``origin_from_path``)."""
    if origin == dns.name.root:
        return ROOT_ZONE_FILE
    return origin.to_text(omit_final_dot=True) + ZONE_SUFFIX


def load_zone_file(
    path: Path, origin: dns.name.Name, *, include_dir: Path, rules: FileRules = DEFAULT_RULES
) -> tuple[dns.zone.Zone, SourceMap]:
    """Parse one zone file (``relativize=False``) and where its owners and records are.

    The ``SourceMap`` is a ``Mapping[Name, int]`` of each owner's first line,
    and also knows the file ($INCLUDE) and line of every record. Raises
    ``ZoneError`` naming the file and line of the first syntax error, missing
    include, or CNAME beside other data (a record outside the origin is left
    out, as dnspython does, with a warning the reader keeps).
    """
    check_zone_file(Path(path), include_dir)
    text = read_text(path, Source(str(path), 0), rules)
    zone = dns.zone.Zone(origin, dns.rdataclass.IN, relativize=False)
    with zone.writer(replacement=True) as txn:
        reader = _Reader(txn, text, Path(path), include_dir, rules)
        reader.read()
        sources = SourceMap(reader.owners, reader.records)
    return zone, sources


def fingerprint(files: Sequence[str]) -> Fingerprint | None:
    """The fingerprint of a zone read from ``files``; None when one cannot be read."""
    out = []
    for file in files:
        try:
            st = os.stat(file)
        except OSError:
            return None
        out.append((file, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def load_zones(
    directory: Path,
    *,
    log_problems: bool = True,
    extra: Mapping[dns.name.Name, Path] | None = None,
    previous: LoadedZones | None = None,
    rules: FileRules = DEFAULT_RULES,
    signing: Mapping[dns.name.Name, Signing] | None = None,
    signed_before: Mapping[dns.name.Name, ZoneContent] | None = None,
) -> LoadedZones:
    """Load every zone in ``directory``; a zone that fails is left out (and logged).

    ``extra`` adds zone files from elsewhere by origin (a secondary zone's
    copy in the state directory); given (even empty: no copy yet), a zones
    directory with no zone file is no error. With ``previous`` (the load
    served now), a zone whose file and includes have the same size and
    modification time as when it was read keeps its table and its problems;
    only the others are read again. ``rules``: where and how much each file
    may be (``zones.files``). ``signing``: the zones dnsserve signs itself, read
    and signed again at every load (their signatures are refreshed that way);
    the signatures of such a zone as served before (``signed_before``, else
    ``previous``'s table) are kept where what they cover did not change and they
    are fresh (``zones.rrsign``).
    """
    loaded = _load_directory(directory, extra, previous, rules, signing or {},
                             signed_before or {})
    if log_problems:
        log_loaded(loaded, directory)
    return loaded


def log_loaded(loaded: LoadedZones, directory: Path) -> None:
    """Log every problem of a load, and what it loaded."""
    for problem in loaded.problems:
        level = logging.ERROR if problem.severity == "error" else logging.WARNING
        log.log(level, "%s", problem.to_text())
    log.info("loaded %d zone(s) from %s (%d unchanged, kept)", len(loaded.tables), directory,
             len(loaded.reused))


def check_zones(directory: Path, rules: FileRules = DEFAULT_RULES) -> list[ZoneProblem]:
    """Every error and warning of every zone in ``directory``; never raises for bad zones."""
    return list(_load_directory(directory, rules=rules).problems)


# -- the directory -------------------------------------------------------------


def _load_directory(
    directory: Path,
    extra: Mapping[dns.name.Name, Path] | None = None,
    previous: LoadedZones | None = None,
    rules: FileRules = DEFAULT_RULES,
    signing: Mapping[dns.name.Name, Signing] | None = None,
    signed_before: Mapping[dns.name.Name, ZoneContent] | None = None,
) -> LoadedZones:
    signing = signing or {}
    problems: list[ZoneProblem] = []
    tables: dict[dns.name.Name, ZoneTable] = {}
    files: dict[dns.name.Name, Path] = {}
    prints: dict[dns.name.Name, Fingerprint] = {}
    reused: set[dns.name.Name] = set()
    origins = _zone_files(directory, problems, empty_ok=extra is not None)
    for origin, path in (extra or {}).items():
        if origin in origins:
            problems.append(_whole(str(origins[origin]), origin.to_text(),
                                   f"zone {origin} is a secondary zone: its transferred copy "
                                   "is served, not this file"))
        origins[origin] = path
    used: set[str] = set()
    for origin, path in origins.items():
        kept = None if origin in signing else _unchanged(previous, origin, path)
        if previous is not None and kept is not None:
            tables[origin], files[origin] = kept, path
            prints[origin] = previous.fingerprints[origin]
            reused.add(origin)
            used.update(f for f, *_ in prints[origin])
            text = origin.to_text()
            problems.extend(p for p in previous.problems if p.zone == text)
            continue
        if origin in signing:
            old = _served_before(origin, previous, signed_before or {})
            table, found = _load_signed(path, origin, directory, problems, used, rules,
                                        signing[origin], old)
        else:
            table, found = _load_one(path, origin, directory, problems, used, rules)
        if table is not None:
            tables[origin] = table
            files[origin] = path
            if found is not None:
                prints[origin] = found
    problems.extend(_strays(directory, used))
    return LoadedZones(
        tables=MappingProxyType(tables), problems=tuple(problems), files=MappingProxyType(files),
        fingerprints=MappingProxyType(prints), reused=frozenset(reused),
    )


def _unchanged(
    previous: LoadedZones | None, origin: dns.name.Name, path: Path
) -> ZoneTable | None:
    """The table ``previous`` read from the same, unchanged files, if any."""
    if previous is None:
        return None
    table = previous.tables.get(origin)
    before = previous.fingerprints.get(origin)
    if table is None or before is None or previous.files.get(origin) != path:
        return None
    return table if fingerprint([f for f, *_ in before]) == before else None


def _zone_files(
    directory: Path, problems: list[ZoneProblem], *, empty_ok: bool = False
) -> dict[dns.name.Name, Path]:
    """Map origin -> file; files that share an origin are all left out."""
    if not directory.is_dir():
        what = "is not a directory (a file?)" if directory.exists() else "does not exist"
        problems.append(_whole(str(directory), "", f"the zones directory {what}"))
        return {}
    paths = sorted(
        p
        for p in directory.iterdir()
        # not only regular files: a FIFO or a device named <origin>.zone is refused
        # when opened (zones.files), with an error line, not passed over in silence
        if p.name.endswith(ZONE_SUFFIX) and not p.name.startswith(".") and not p.is_dir()
    )
    if not paths and not empty_ok:
        problems.append(_whole(str(directory), "", f"no <origin>{ZONE_SUFFIX} files here"))
    by_origin: dict[dns.name.Name, list[Path]] = {}
    for path in paths:
        try:
            by_origin.setdefault(origin_from_path(path), []).append(path)
        except ZoneError as exc:
            problems.append(_whole(exc.file, "", exc.message))
    origins: dict[dns.name.Name, Path] = {}
    for origin, same in by_origin.items():
        if len(same) == 1:
            origins[origin] = same[0]
            continue
        names = ", ".join(p.name for p in same)
        for path in same:
            problems.append(
                _whole(
                    str(path), origin.to_text(), f"{names} are all zone {origin}; none is served"
                )
            )
    return origins


def _strays(directory: Path, used: set[str]) -> list[ZoneProblem]:
    """Files beside the zones that are neither a zone nor included by one: most
    often a zone file misnamed (``example.com`` for ``example.com.zone``)."""
    if not directory.is_dir():
        return []
    return [
        ZoneProblem(str(p), 0, "warning", f"not named <origin>{ZONE_SUFFIX} and included by "
                    "no zone: not served (rename it, or move an included file into a "
                    "subdirectory)", "")
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(ZONE_SUFFIX)
        and str(p) not in used
    ]


def compile_file(
    path: Path, origin: dns.name.Name, directory: Path, rules: FileRules = DEFAULT_RULES
) -> Compiled:
    """Parse and compile one zone file; raises ``ZoneError`` for what stops parsing."""
    parsed = parse_zone_file(path, origin, include_dir=directory, rules=rules)
    return compile_records(parsed, origin=origin)


def _load_one(
    path: Path,
    origin: dns.name.Name,
    directory: Path,
    problems: list[ZoneProblem],
    used: set[str],
    rules: FileRules,
) -> tuple[ZoneTable | None, Fingerprint | None]:
    """The zone's table (None when it failed) and the fingerprint of what was read."""
    zone_text = origin.to_text()
    try:
        # the zone file is looked at before it is read: one changed while it
        # is read differs next time, and is read again
        before = fingerprint([str(path)])
        parsed = parse_zone_file(path, origin, include_dir=directory, rules=rules)
        includes = [f for f in dict.fromkeys(parsed.file_names) if f != str(path)]
        used.update([str(path), *includes])
        after = fingerprint(includes)
        compiled = compile_records(parsed, origin=origin)
        del parsed
    except ZoneError as exc:
        problems.append(_zone_error(exc, path, zone_text))
        return None, None
    except (MemoryError, RecursionError) as exc:
        # what no bound caught: one line, and the other zones still load
        problems.append(_whole(str(path), zone_text, f"cannot load: {type(exc).__name__}"))
        return None, None
    except Exception as exc:
        # a bug in compiling one zone must not keep the others from being served
        log.exception("unexpected failure loading %s", path)
        problems.append(_whole(str(path), zone_text, f"internal error: {exc!r}"))
        return None, None
    problems.extend(compiled.problems)
    prints = before + after if before is not None and after is not None else None
    return compiled.table, prints


def _served_before(
    origin: dns.name.Name, previous: LoadedZones | None,
    signed_before: Mapping[dns.name.Name, ZoneContent],
) -> ZoneContent | None:
    """The content of ``origin`` as served before (its signatures may be kept)."""
    content = signed_before.get(origin)
    if content is None and previous is not None:
        content = previous.contents.get(origin)
        table = previous.tables.get(origin)
        if content is None and isinstance(table, ZoneTable):  # not a child's stand-in
            content = zone_content(table)
    return content


def _load_signed(
    path: Path,
    origin: dns.name.Name,
    directory: Path,
    problems: list[ZoneProblem],
    used: set[str],
    rules: FileRules,
    signing: Signing,
    served: ZoneContent | None,
) -> tuple[ZoneTable | None, Fingerprint | None]:
    """A zone dnsserve signs itself: read with the fast reader, signed now with the
    keys of its directory (``zones.rrsign``: what did not change keeps the
    signatures ``served`` has), then compiled as a pre-signed zone is."""
    zone_text = origin.to_text()
    try:
        before = fingerprint([str(path)])
        parsed = parse_zone_file(path, origin, include_dir=directory, rules=rules)
        includes = [f for f in dict.fromkeys(parsed.file_names) if f != str(path)]
        used.update([str(path), *includes])
        after = fingerprint(includes)
        keys = read_keys(Path(signing.keys), origin, signing.algorithm)
        started = time.perf_counter()
        signed = sign_records(parsed, keys, origin, now=time.time(), validity=signing.validity,
                              refresh=signing.refresh,
                              reusable=Reusable.of(served) if served is not None else None)
        del parsed
        log.info("zone %s signed in %.2f s: %d signatures made, %d kept", zone_text,
                 time.perf_counter() - started, signed.signed, signed.reused)
        compiled = compile_records(signed.records, origin=origin)
    except ZoneError as exc:
        problems.append(_zone_error(exc, path, zone_text))
        return None, None
    except (ConfigError, ValueError, dns.exception.DNSException) as exc:
        problems.append(_whole(str(path), zone_text, f"cannot sign: {exc}"))
        return None, None
    problems.extend(compiled.problems)
    prints = before + after if before is not None and after is not None else None
    return compiled.table, prints


def _zone_error(exc: ZoneError, path: Path, zone: str) -> ZoneProblem:
    """The error that stopped a zone's load; one in an included file also names the
    zone (its own file), since the problem is grouped under the included file."""
    message = safe_message(exc.message)
    if exc.file and exc.file != str(path):
        message += f" (in zone {zone}, {show_path(path)}: the zone is not served)"
    return ZoneProblem(exc.file, exc.line, "error", message, zone)


def _whole(file: str, zone: str, message: str) -> ZoneProblem:
    return ZoneProblem(file, 0, "error", message, zone)


def _first_at(first: Source | None, here: Source) -> str:
    if first is None or first == here:
        return ""
    where = f"line {first.line}" if first.file == here.file else f"{first.file}:{first.line}"
    return f" (the first at {where})"


def read_text(path: Path, cited_at: Source, rules: FileRules = DEFAULT_RULES) -> str:
    """A whole zone file (or included file) as text, under ``rules`` (``zones.files``)."""
    try:
        return read_zone_text(path, rules, cited=(cited_at.file, cited_at.line))
    except OSError as exc:
        raise ZoneError(
            f"cannot read {show_path(path)}: {exc.strerror or type(exc).__name__}",
            file=cited_at.file, line=cited_at.line,
        ) from None


# -- one file ------------------------------------------------------------------


class _Reader:
    """Our own directive loop over dnspython's zone-file reader.

    dnspython opens ``$INCLUDE`` files relative to the working directory and
    keeps no line numbers; this loop resolves includes against the zones
    directory, records where each record starts, and turns every failure into
    a ``ZoneError`` with file and line. Records themselves are still parsed by
    dnspython, through ``zones.dnspython_adapter`` (the only code that touches
    dnspython's undocumented names).
    """

    def __init__(
        self,
        txn: dns.transaction.Transaction,
        text: str,
        path: Path,
        include_dir: Path,
        rules: FileRules = DEFAULT_RULES,
    ) -> None:
        """``text``: the zone file ``path``'s text (``read_text``)."""
        self.zf = ZoneFileReader(txn, Tokenizer(text, str(path)), self.note)
        self.include_dir = include_dir
        self.rules = rules
        self.owners: dict[dns.name.Name, Source] = {}
        self.records: dict[tuple[dns.name.Name, dns.rdata.Rdata], Source] = {}
        self.singletons: dict[tuple[dns.name.Name, int], tuple[dns.rdata.Rdata, Source]] = {}
        self.here = Source(str(path), 1)
        self.warnings: list[tuple[str, int, str, str]] = []  # (file, line, message, rule)
        self._stack: list[dict[str, Any]] = []
        self._files = [real_path(path)]
        # each file being read: its first raw octet past ASCII (line, octet), warned at its end
        self._raw = [first_raw(text)]

    @property
    def tok(self) -> Tokenizer:
        return self.zf.tokenizer

    def note(self, name: dns.name.Name, rdata: dns.rdata.Rdata) -> None:
        """Remember where a record was written, before the zone transaction sees it.

        dnspython keeps the last of two SOA, CNAME or DNAME records at one
        owner without a word, and refuses an SOA below the apex without a
        line: both are errors here.
        """
        if rdata.rdtype == RdataType.SOA and name != self.zf.apex:
            raise self._error(
                f"SOA record at {name}, not at the zone apex {self.zf.apex}", self.here.line
            )
        if dns.rdatatype.is_singleton(rdata.rdtype):
            first = self.singletons.setdefault((name, rdata.rdtype), (rdata, self.here))
            if first[0] != rdata:
                raise self._error(
                    f"more than one {RdataType(rdata.rdtype).name} record at {name}"
                    f"{_first_at(first[1], self.here)}",
                    self.here.line,
                )
        check_rdata_length(fr_rdata_wire(rdata), self.here.file, self.here.line)
        self.owners.setdefault(name, self.here)
        self.records.setdefault((name, rdata), self.here)

    def read(self) -> None:
        while True:
            try:
                if not self._step():
                    return
            except ZoneError:
                raise
            except dns.zonefile.CNAMEAndOtherData:
                raise self._error(self._cname_conflict(), self.here.line) from None
            except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
                raise self._error(self._syntax_message(exc), self.tok.token_line) from None

    def _step(self) -> bool:
        """Read one line (or one multi-line record); False at the end of the zone file."""
        token = self.tok.get(want_leading=True, want_comment=True)
        if token.is_eof():
            raw = self._raw.pop()
            if raw is not None:
                self.warnings.append(
                    (self.tok.source_file, raw[0], raw_octet_message(raw[1]), RAW_OCTET)
                )
            if not self._stack:
                return False
            self.zf.restore_state(self._stack.pop())
            self._files.pop()
            return True
        if token.is_eol():
            return True
        if token.is_comment():
            self.tok.get_eol()
            return True
        self.here = Source(self.tok.source_file, self.tok.token_line)
        if token.is_identifier() and token.value.startswith("$"):
            self._directive(token.value.upper())
        else:
            self.tok.unget(token)
            self.zf.read_record()
            self._check_owner()
        return True

    def _directive(self, directive: str) -> None:
        if directive == "$TTL":
            token = self.tok.get()
            if not token.is_identifier():
                raise dns.exception.SyntaxError("$TTL needs a TTL")
            self.zf.set_default_ttl(dns.ttl.from_text(token.value))
            self.tok.get_eol()
        elif directive == "$ORIGIN":
            self.zf.set_origin(self.tok.get_name(self.zf.origin))
            self.tok.get_eol()
        elif directive == "$INCLUDE":
            self._include()
        elif directive == "$GENERATE":
            token = self.tok.get()
            try:
                start, stop, step = dns.grange.from_text(token.value)
            except (ValueError, AssertionError):
                raise dns.exception.SyntaxError(f"bad $GENERATE range {token.value!r}") from None
            if (stop - start) // step + 1 > MAX_GENERATE:
                raise self._error(f"$GENERATE makes more than {MAX_GENERATE} names", self.here.line)
            self.tok.unget(token)
            self.zf.read_generate()
            self._check_owner()
        else:
            raise dns.exception.SyntaxError(f"unknown directive {directive}")

    def _include(self) -> None:
        token = self.tok.get()
        if not (token.is_identifier() or token.is_quoted_string()):
            raise dns.exception.SyntaxError("$INCLUDE needs a file name")
        token_origin = self.tok.get()
        origin = self.zf.origin
        if token_origin.is_identifier():
            origin = dns.name.from_text(token_origin.value, self.zf.origin)
            self.tok.get_eol()
        elif not token_origin.is_eol_or_eof():
            raise dns.exception.SyntaxError("bad origin in $INCLUDE")
        path = include_path(token.value)
        if not path.is_absolute():
            path = self.include_dir / path
        if len(self._stack) >= MAX_INCLUDE_DEPTH:
            raise self._error(f"$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep", self.here.line)
        check_include(path, self.include_dir, self.rules, cited=(self.here.file, self.here.line))
        real = real_path(path)
        if real in self._files:
            raise self._error(
                f"$INCLUDE loop: {show_path(path)} is already being read", self.here.line
            )
        text = read_text(path, self.here, self.rules)
        self._stack.append(self.zf.save_state())
        self._files.append(real)
        self._raw.append(first_raw(text))
        self.zf.switch_to(Tokenizer(text, str(path)), origin)

    def _check_owner(self) -> None:
        # dnspython skips records whose owner is outside the zone without a word:
        # left out, as BIND and Knot do, with a warning
        if not self.zf.owner.is_subdomain(self.zf.apex):
            message = outside_message(self.zf.owner, self.zf.apex)
            self.warnings.append((self.tok.source_file, self.here.line, message, OUTSIDE))

    def _cname_conflict(self) -> str:
        name = self.zf.owner
        if name == self.zf.apex:
            return f"CNAME at the zone apex {name}"
        first = self.owners.get(name)
        return f"CNAME beside other data at {name}{_first_at(first, self.here)}"

    def _syntax_message(self, exc: Exception) -> str:
        message = str(exc) or type(exc).__name__
        if message == type(exc).__doc__:  # dnspython's "Text input is malformed."
            message = f"syntax error at {self.tok.token_value!r}"
        if self.tok.in_parentheses and self.tok.token_line != self.here.line:
            message += f" (inside parentheses opened at line {self.here.line})"
        return safe_message(message)

    def _error(self, message: str, line: int) -> ZoneError:
        return ZoneError(message, file=self.tok.source_file, line=line)
