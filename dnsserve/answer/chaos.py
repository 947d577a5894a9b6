"""The CHAOS identity answers: version.bind, id.server and their aliases.

Owns which names are answered in class CHAOS, which configured text each
carries (``version`` or ``identity``), and their TXT answers prebuilt. A name
whose text is not configured gets no answer here, so the slow path REFUSES
it as any other class but IN.

Must not: answer anything in class IN, or read the config (the snapshot
build passes the texts in). Pure: no I/O, no clock.
"""

from __future__ import annotations

import dns.name
import dns.rdtypes.ANY.TXT
import dns.rrset
from dns.rcode import Rcode
from dns.rdataclass import RdataClass
from dns.rdatatype import RdataType

from dnsserve.answer.lookup import answer_key
from dnsserve.answer.prebuilt import Prebuilt, render
from dnsserve.zones.table import Result, ResultKind

# Names answered in class CHAOS, and which configured text each carries.
CHAOS_VERSION = ("version.bind.", "version.server.")
CHAOS_IDENTITY = ("id.server.", "hostname.bind.")


def chaos_answers(
    version: str | bytes | None, identity: str | bytes | None
) -> dict[bytes, Prebuilt]:
    """CHAOS TXT answers for version.bind and friends; a name left out is REFUSED."""
    out: dict[bytes, Prebuilt] = {}
    for names, text in ((CHAOS_VERSION, version), (CHAOS_IDENTITY, identity)):
        if not text:
            continue
        for name_text in names:
            name = dns.name.from_text(name_text)
            rrset = dns.rrset.RRset(name, RdataClass.CH, RdataType.TXT)
            octets = text if isinstance(text, bytes) else text.encode()
            rrset.add(dns.rdtypes.ANY.TXT.TXT(RdataClass.CH, RdataType.TXT, [octets]), 0)
            result = Result(ResultKind.ANSWER, Rcode.NOERROR, True, (rrset,))
            out[answer_key(name, RdataType.TXT, RdataClass.CH)] = render(
                name, RdataType.TXT, RdataClass.CH, result
            )
    return out
