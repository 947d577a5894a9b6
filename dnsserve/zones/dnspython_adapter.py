"""The one place dnsserve leans on dnspython's undocumented zone-file internals.

dnspython documents reading a whole zone (``dns.zone.from_text``) but not the
pieces ``zones.load`` needs to run its own directive loop (line numbers,
``$INCLUDE`` resolved against the zones directory, the place of every
record). This module subclasses ``dns.tokenizer.Tokenizer`` and
``dns.zonefile.Reader`` and gives ``zones.load`` public names for each
undocumented method and attribute it uses; ``zones.load`` and the rest of
dnsserve must use only those names.

Every undocumented name used here is listed below (``READER_METHODS``,
``READER_ATTRIBUTES``, ``READER_STATE_2_9``, ``TOKENIZER_ATTRIBUTES``);
``tests/test_dnspython_adapter.py`` fails, naming the attribute, when the
installed dnspython lacks one, and pyproject.toml bounds dnspython's version
from above (2.6 to 2.9 tested). A new dnspython release means: run that
test, adapt this module, raise the bound.

A zone file's text is its bytes, a character each (``zones.files``), and a
raw octet past ASCII must stay that octet (as BIND and NSD read it), where
dnspython would read Unicode (UTF-8 in strings, IDNA in names): the
``Tokenizer`` hands dnspython the text with each such octet written as a
``\\DDD`` escape (``zones.fastrdata.escape_octets``), which it reads as the octet.

Must not: open files, know the zones directory, or decide what is an error
(``zones.load`` does all three).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import dns.name
import dns.rdata
import dns.rdataclass
import dns.tokenizer
import dns.transaction
import dns.zonefile

from dnsserve.zones.fastrdata import escape_octets
from dnsserve.zones.fastscan import quoted_template

# Undocumented methods of dns.zonefile.Reader: parse one record line, one $GENERATE line.
READER_METHODS = ("_rr_line", "_generate_line")
# Undocumented attributes of a dns.zonefile.Reader; an $INCLUDEd file may change
# all but zone_origin, so they are saved and restored around it.
READER_STATE = (
    "tok",
    "current_origin",
    "last_name",
    "last_ttl",
    "last_ttl_known",
    "default_ttl",
    "default_ttl_known",
)
# The same, in dnspython 2.9 and later only (saved when present).
READER_STATE_2_9 = ("default_ttl_from_soa",)
READER_ATTRIBUTES = ("zone_origin", *READER_STATE)
# Undocumented attributes of a dns.tokenizer.Tokenizer.
TOKENIZER_ATTRIBUTES = ("filename", "line_number", "ungotten_char", "multiline")

OnRecord = Callable[[dns.name.Name, dns.rdata.Rdata], None]


class Tokenizer(dns.tokenizer.Tokenizer):
    """A tokenizer that remembers the line and text of the last token that was not a line end.

    dnspython's own line number has already moved on once a newline was read
    (as a token's delimiter, or as the end of a record that ended too early),
    so its errors can name the next line.
    """

    def __init__(self, text: str, filename: str, line: int = 1) -> None:
        """``line`` is the line of the file ``text`` starts at (a part of a file, read
        alone); raw octets past ASCII in ``text`` are read as those octets."""
        super().__init__(escape_octets(text), filename)
        self.line_number = line
        self.token_line = line
        self.token_value = ""
        self.generate_line = False  # reading a $GENERATE line's arguments

    def get(self, want_leading: bool = False, want_comment: bool = False) -> dns.tokenizer.Token:
        token = super().get(want_leading, want_comment)
        if not token.is_eol_or_eof():
            # a newline read as the token's delimiter has been counted already
            self.token_line = self.line_number - (self.ungotten_char == "\n")
            self.token_value = token.value
            if self.generate_line and token.is_quoted_string():
                token = self._generate_rhs(token)
        return token

    def _generate_rhs(self, token: dns.tokenizer.Token) -> dns.tokenizer.Token:
        """A quoted string that ends a ``$GENERATE`` line is its right-hand side, read
        as BIND reads it (dnspython refuses it); a quoted string elsewhere stays quoted,
        and dnspython refuses it, as BIND does."""
        after = super().get()
        self.unget(after)
        if not after.is_eol_or_eof():
            return token
        return dns.tokenizer.Token(dns.tokenizer.IDENTIFIER, quoted_template(token.value))

    @property
    def source_file(self) -> str:
        """The file name given at construction (what errors cite)."""
        return str(self.filename)

    @property
    def in_parentheses(self) -> bool:
        """Inside a multi-line record's parentheses."""
        return self.multiline > 0


class _RecordingTransaction:
    """Passes a reader's writes on to the zone transaction, telling ``on_record`` first."""

    def __init__(self, txn: dns.transaction.Transaction, on_record: OnRecord) -> None:
        self._txn = txn
        self._on_record = on_record
        self.manager = txn.manager

    def check_put_rdataset(self, check: Any) -> None:
        self._txn.check_put_rdataset(check)

    def add(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        self._on_record(name, rdata)
        self._txn.add(name, ttl, rdata)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._txn, attr)


class ZoneFileReader(dns.zonefile.Reader):
    """dnspython's zone-file reader, driven one line at a time from outside.

    ``on_record(name, rdata)`` hears of every record before the zone
    transaction gets it (it may raise to refuse it).
    """

    def __init__(
        self, txn: dns.transaction.Transaction, tokenizer: Tokenizer, on_record: OnRecord
    ) -> None:
        recorder = cast(dns.transaction.Transaction, _RecordingTransaction(txn, on_record))
        super().__init__(tokenizer, dns.rdataclass.IN, recorder, allow_include=True)

    @property
    def tokenizer(self) -> Tokenizer:
        return cast(Tokenizer, self.tok)

    @property
    def apex(self) -> dns.name.Name:
        """The zone's origin."""
        assert self.zone_origin is not None
        return self.zone_origin

    @property
    def origin(self) -> dns.name.Name:
        """The current $ORIGIN, against which relative names are read."""
        assert self.current_origin is not None
        return self.current_origin

    @property
    def owner(self) -> dns.name.Name:
        """The owner of the last record read (a blank owner repeats it)."""
        assert self.last_name is not None
        return self.last_name

    def set_origin(self, origin: dns.name.Name) -> None:
        self.current_origin = origin

    def set_default_ttl(self, ttl: int) -> None:
        """$TTL: the TTL of records that give none."""
        self.default_ttl = ttl
        self.default_ttl_known = True
        self.default_ttl_from_soa = False  # 2.9+: $TTL wins over the SOA's minimum

    def read_record(self) -> None:
        """Read one record (the tokenizer is at its first token) into the transaction."""
        self._rr_line()

    def read_generate(self) -> None:
        """Read a $GENERATE line's arguments (the tokenizer is at its range)."""
        tok = self.tokenizer
        tok.generate_line = True
        try:
            self._generate_line()
        finally:
            tok.generate_line = False

    def save_state(self) -> dict[str, Any]:
        """What an $INCLUDEd file may change; ``restore_state`` puts it back after."""
        state = {attr: getattr(self, attr) for attr in READER_STATE}
        state.update((a, getattr(self, a)) for a in READER_STATE_2_9 if hasattr(self, a))
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        for attr, value in state.items():
            setattr(self, attr, value)

    def switch_to(self, tokenizer: Tokenizer, origin: dns.name.Name) -> None:
        """Read on from ``tokenizer`` (an $INCLUDEd file) with ``origin``."""
        self.tok = tokenizer
        self.current_origin = origin
