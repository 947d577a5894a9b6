"""The hand-off: what the engine does not answer on its pure path, answered here.

Owns the dispatch of requests ``engine.respond`` returns as ``wire.HAND_OFF``
(net calls ``HandOff.handle(data, peer, tcp)``, which returns the messages
to send):

    request                          answer
    -------------------------------  ----------------------------------------
    bad TSIG                         NOTAUTH + BADKEY/BADSIG/BADTIME (xfr.request)
    malformed                        FORMERR
    NOTIFY                           ``on_notify(zone, peer address, key)``:
                                     True -> NOERROR (AA), False -> REFUSED,
                                     None (not a secondary zone) -> NOERROR
                                     (AA) for a zone we serve (ignored, as
                                     BIND's primary does), else NOTAUTH (as
                                     BIND and Knot); no callback -> NOTIMP;
                                     RD and CD cleared, as BIND clears them
    AXFR/IXFR, zone not ours or no
      [[zone]] rule, or rule denies  REFUSED (default deny, xfr.access)
    AXFR over UDP                    REFUSED (RFC 5936 §4.2: TCP only)
    IXFR over UDP                    the current SOA alone ("use TCP", RFC 1995 §2)
    IXFR, client at our serial       the current SOA alone
    IXFR, diffs chain from its serial  the diffs (xfr.outgoing)
    IXFR, otherwise                  an AXFR-style answer (RFC 1995 §4)
    AXFR                             SOA, records, SOA, in ~16 KB messages
    signed SOA of a [[zone]]'s apex  the SOA transfers give (publish mode's serial)
    any other signed query           the engine's answer to it unsigned, signed

Every answer to a signed request is signed with its key (a transfer's
messages chained). Zone content comes from ``contents()`` (what is served
now, or with publish mode what is published), diffs from ``history``.

Must not: open sockets (net sends), parse config, or run for ordinary
queries (the engine answers those without coming here). A big transfer is
built in a thread (``handle_offloaded``, what net calls): only from
immutable zone content and the request's own signer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dns.name
from dns.rdatatype import RdataType

from dnsserve import wire
from dnsserve.errors import FormError
from dnsserve.transfers import History, Keyring, ZoneTransfer
from dnsserve.xfr.outgoing import (
    axfr_records,
    ixfr_chain,
    ixfr_records,
    messages,
    single,
    soa_record,
    soa_serial,
)
from dnsserve.xfr.request import Rejected, Request, read_request
from dnsserve.zones.versions import ZoneContent, serial_gt

log = logging.getLogger(__name__)

# A transfer answer of more records than this is built in a thread when net
# asks (``handle_offloaded``): 100k records take 0.2 s of CPU to compress, sign
# and split, which the loop's other queries would otherwise wait for.
OFFLOAD_RECORDS = 5_000

# True: taken (a refresh starts); False: refused; None: not a secondary zone of ours
OnNotify = Callable[[dns.name.Name, str, "dns.name.Name | None"], "bool | None"]


@dataclass(slots=True)
class HandOffStats:
    axfr: int = 0
    ixfr: int = 0  # incremental answers (and SOA-only ones)
    refused: int = 0
    notauth: int = 0
    notify: int = 0


class HandOff:
    """Answers handed-off requests; its fields are swapped by the app on reload."""

    def __init__(
        self,
        respond: Callable[..., bytes | None],
        contents: Callable[[], Mapping[dns.name.Name, ZoneContent]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._respond = respond
        self._contents = contents
        self._clock = clock
        self.keyring: Keyring = {}
        self.zones: Mapping[dns.name.Name, ZoneTransfer] = {}
        self.history = History()
        self.on_notify: OnNotify | None = None
        # our OPT for a request that has one (NSID, keepalive as asked; b"": none): on
        # every answer made here, as the engine's errors carry it (RFC 6891 §7)
        self.error_opt: Callable[[bytes, bool], bytes] | None = None
        self.stats = HandOffStats()
        self._offload = False  # set while handle_offloaded runs
        self._big: Callable[[], tuple[bytes, ...]] | None = None

    def handle_offloaded(
        self, data: bytes, peer: tuple[str, int], tcp: bool
    ) -> list[bytes] | asyncio.Future[tuple[bytes, ...]]:
        """``handle``, except that a transfer of more than ``OFFLOAD_RECORDS`` records is
        built in a thread (the loop goes on answering; net writes it when done)."""
        self._offload = True
        try:
            out = self.handle(data, peer, tcp)
        finally:
            self._offload = False
        big, self._big = self._big, None
        if big is None:
            return out
        return asyncio.get_running_loop().run_in_executor(None, big)

    def handle(self, data: bytes, peer: tuple[str, int], tcp: bool) -> list[bytes]:
        now = int(self._clock())
        try:
            request = read_request(data, self.keyring, now)
        except Rejected as rejected:
            self.stats.notauth += 1
            log.info("TSIG error %d from %s", rejected.error, peer[0])
            return [rejected.answer]
        except FormError:
            flags = (data[2] << 8) | data[3] if len(data) >= 4 else 0
            return [wire.header_only(data, flags, wire.FORMERR)]
        if request.opcode == wire.OPCODE_NOTIFY:
            return [self._notify(request, peer, tcp, now)]
        if request.opcode == wire.OPCODE_QUERY and request.qtype in (
            RdataType.AXFR, RdataType.IXFR
        ):
            return self._transfer(request, peer, tcp, now)
        if request.opcode != wire.OPCODE_QUERY:
            return [self._sign(request, self._header(request, wire.NOTIMP, tcp), now)]
        if request.qtype == RdataType.SOA and request.qname in self.zones:
            # a secondary's serial check: the serial transfers give (publish mode's)
            content = self._contents().get(request.qname)
            if content is not None:
                soa = single(request.id, request.flags, request.question, [soa_record(content)])
                return [self._sign(request, soa, now)]
        out = self._respond(request.unsigned, tcp=tcp)
        if not out:
            return []
        return [self._sign(request, out, now)]

    # -- NOTIFY ------------------------------------------------------------------

    def _notify(self, request: Request, peer: tuple[str, int], tcp: bool, now: int) -> bytes:
        self.stats.notify += 1
        if self.on_notify is None:
            head = self._header(request, wire.NOTIMP, tcp, recursion=False)
            return self._sign(request, head, now)
        allowed = self.on_notify(request.qname, peer[0], request.key_name)
        if allowed is None:  # not a secondary zone: one we serve (as its primary), or none
            allowed = request.qname in self._contents()
            rcode = wire.NOERROR if allowed else wire.NOTAUTH
        else:
            rcode = wire.NOERROR if allowed else wire.REFUSED
        head = self._header(request, rcode, tcp, aa=allowed, recursion=False)
        return self._sign(request, head, now)

    # -- transfers ---------------------------------------------------------------

    def _transfer(
        self, request: Request, peer: tuple[str, int], tcp: bool, now: int
    ) -> list[bytes]:
        zone = self.zones.get(request.qname)
        content = self._contents().get(request.qname)
        if (
            zone is None or content is None
            or not zone.access.allows(peer[0], request.key_name)
            or (request.qtype == RdataType.AXFR and not tcp)
        ):
            self.stats.refused += 1
            log.debug("transfer of %s refused to %s", request.qname, peer[0])
            return [self._sign(request, self._header(request, wire.REFUSED, tcp), now)]
        soa = soa_record(content)
        if request.qtype == RdataType.IXFR:
            since = request.serial
            current = soa_serial(soa)
            if not tcp or (since is not None and not serial_gt(current, since)):
                self.stats.ixfr += 1
                out = single(request.id, request.flags, request.question, [soa])
                return [self._sign(request, out, now)]
            chain = None if since is None else ixfr_chain(
                self.history.diffs(request.qname), since, current
            )
            if chain is not None:
                self.stats.ixfr += 1
                log.info("IXFR of %s from %d to %d to %s (%d diffs)", request.qname, since,
                         current, peer[0], len(chain))
                return self._stream(request, ixfr_records(soa, chain), now)
        self.stats.axfr += 1
        log.info("AXFR of %s serial %d to %s%s", request.qname, soa_serial(soa), peer[0],
                 f" (key {request.key_name})" if request.key_name else "")
        return self._stream(request, axfr_records(content), now)

    def _stream(self, request: Request, records: list[bytes], now: int) -> list[bytes]:
        def build() -> tuple[bytes, ...]:
            return tuple(messages(request.id, request.flags, request.question, records,
                                  signer=request.signer, now=now))

        if self._offload and len(records) > OFFLOAD_RECORDS:
            self._big = build  # handle_offloaded runs it in a thread
            return []
        return list(build())

    # -- answers -----------------------------------------------------------------

    def _header(
        self, request: Request, rcode: int, tcp: bool, *, aa: bool = False, recursion: bool = True
    ) -> bytes:
        """A header-only answer; ``recursion=False`` clears RD and CD (a NOTIFY's answer:
        BIND copies neither, whatever the rcode)."""
        opt = b""
        if self.error_opt is not None and request.payload != wire.NO_EDNS:
            opt = self.error_opt(request.unsigned, tcp)
        flags = request.flags if recursion else request.flags & ~(wire.RD | wire.CD)
        out = wire.header_only(request.data, flags, rcode, request.question, opt)
        if aa:
            out = out[:2] + ((out[2] << 8 | out[3]) | wire.AA).to_bytes(2, "big") + out[4:]
        return out

    @staticmethod
    def _sign(request: Request, out: bytes, now: int) -> bytes:
        return out if request.signer is None else request.signer.sign(out, now)
