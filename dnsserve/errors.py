"""The one exception tree of dnsserve.

    DnsServeError
     ├── ConfigError          bad configuration: names file, key path and value
     ├── ZoneError            a zone that cannot be served: names file and line
     ├── WireError            a query the fast path cannot answer from its bytes alone
     │    ├── Dropped         not worth an answer: drop silently
     │    │    ├── ShortHeader   fewer than 12 bytes
     │    │    └── NotAQuery     QR bit set (a response sent to us)
     │    ├── FormError       parseable header, malformed rest: FORMERR
     │    └── Signed          well formed, with a TSIG record last: the slow path judges it
     └── StateError           the state file cannot be read or written

Protocol outcomes are decided at one boundary (``answer.engine``); nothing
below it sends an error to a client by itself.
"""

from __future__ import annotations


class DnsServeError(Exception):
    """Base of every error dnsserve raises on purpose."""


class ConfigError(DnsServeError):
    """A configuration file or flag is wrong; the message names file, key and value."""


class ZoneError(DnsServeError):
    """A zone cannot be served.

    ``file`` and ``line`` locate the problem (``line`` is 0 when the problem
    belongs to the zone as a whole).
    """

    def __init__(self, message: str, *, file: str = "", line: int = 0) -> None:
        self.message = message
        self.file = file
        self.line = line
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{message}")


class WireError(DnsServeError):
    """A query that cannot be parsed."""


class Dropped(WireError):
    """The packet gets no answer at all."""


class ShortHeader(Dropped):
    """Less than a DNS header arrived: there is nobody to answer."""


class NotAQuery(Dropped):
    """The QR bit is set: answering a response invites loops and reflection."""


class FormError(WireError):
    """The header parsed but the rest is malformed: answer FORMERR."""


class Signed(WireError):
    """The query is well formed and its last record is a TSIG (RFC 8945).

    Not an error of the client's: the fast path answers no signed query, so
    the engine hands this one to its TSIG slow path. Carries what the parse
    found: ``flags``, ``qend`` (the offset just past the question), the
    client's EDNS ``payload`` (or ``wire.NO_EDNS``) and ``do`` bit, and
    ``tsig``, the offset of the TSIG record's owner name.
    """

    def __init__(self, flags: int, qend: int, payload: int, do: bool, tsig: int) -> None:
        super().__init__("TSIG-signed query")
        self.flags = flags
        self.qend = qend
        self.payload = payload
        self.do = do
        self.tsig = tsig


class StateError(DnsServeError):
    """The state file cannot be opened, read or written."""
