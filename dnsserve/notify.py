"""NOTIFY sender (RFC 1996): tell the configured secondaries a zone's serial changed.

Owns sending NOTIFY to each ``notify`` target of a zone (only those: never
addresses derived from NS records), over UDP with dnspython, signed with
the zone's TSIG key when it has one, and retrying until the secondary
acknowledges (a NOERROR NOTIFY response), the first one ``DELAY`` (1 s)
after the change: the wait for an answer grows
1, 2, 4, 8, 16 s, then stays at 16 s, ``MAX_TRIES`` tries in all. A newer
NOTIFY for the same zone and target replaces one still retrying.

Must not: decide when a zone changed (the app calls ``notify`` for each
accepted version whose serial moved), or read config (it is handed the
targets and the key).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig

log = logging.getLogger(__name__)

WAITS = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds to wait for an answer, try by try
MAX_TRIES = 8
# The first NOTIFY waits this long after the change (as BIND's notify-delay
# spaces them): a reload has then finished swapping in, worker processes
# included, before secondaries connect to fetch it.
DELAY = 1.0


@dataclass(slots=True)
class NotifyStats:
    sent: int = 0
    acknowledged: int = 0
    given_up: int = 0


def notify_message(zone: dns.name.Name, key: dns.tsig.Key | None) -> dns.message.Message:
    """A NOTIFY for ``zone`` (question ZONE SOA IN, AA set), signed with ``key`` if given."""
    message = dns.message.make_query(zone, dns.rdatatype.SOA)
    message.flags = dns.flags.AA  # and no RD; the opcode lives in the same word: set it after
    message.set_opcode(dns.opcode.NOTIFY)
    if key is not None:
        message.use_tsig({key.name: key}, key.name, algorithm=key.algorithm)
    return message


class Notifier:
    """Sends NOTIFY with retries, as tasks on the running loop."""

    def __init__(
        self, waits: tuple[float, ...] = WAITS, max_tries: int = MAX_TRIES, delay: float = DELAY
    ) -> None:
        self.delay = delay
        self.waits = waits
        self.max_tries = max_tries
        self.stats = NotifyStats()
        self._tasks: dict[tuple[dns.name.Name, str, int], asyncio.Task[bool]] = {}

    def notify(
        self,
        zone: dns.name.Name,
        targets: tuple[tuple[str, int], ...],
        key: dns.tsig.Key | None = None,
        *,
        delay: float | None = None,
    ) -> None:
        """Start (or restart) NOTIFY of ``zone`` to each target; returns at once.

        The first NOTIFY waits ``delay`` (default ``self.delay``)."""
        wait = self.delay if delay is None else delay
        for address, port in targets:
            ident = (zone, address, port)
            old = self._tasks.pop(ident, None)
            if old is not None:
                old.cancel()
            task = asyncio.get_running_loop().create_task(
                self._send(zone, address, port, key, wait)
            )
            self._tasks[ident] = task
            task.add_done_callback(functools.partial(self._done, ident))

    def _done(self, ident: tuple[dns.name.Name, str, int], task: asyncio.Task[bool]) -> None:
        if self._tasks.get(ident) is task:
            del self._tasks[ident]

    @property
    def pending(self) -> Mapping[tuple[dns.name.Name, str, int], asyncio.Task[bool]]:
        return self._tasks

    async def _send(
        self, zone: dns.name.Name, address: str, port: int, key: dns.tsig.Key | None,
        delay: float,
    ) -> bool:
        await asyncio.sleep(delay)
        for attempt in range(self.max_tries):
            wait = self.waits[min(attempt, len(self.waits) - 1)]
            message = notify_message(zone, key)
            self.stats.sent += 1
            started = asyncio.get_running_loop().time()
            try:
                response = await dns.asyncquery.udp(message, address, timeout=wait, port=port)
            except (dns.exception.DNSException, OSError, ValueError) as exc:
                log.debug("NOTIFY %s to %s:%d: %s (try %d)", zone, address, port, exc,
                          attempt + 1)
            else:
                rcode = response.rcode()
                if rcode == dns.rcode.NOERROR and response.opcode() == dns.opcode.NOTIFY:
                    self.stats.acknowledged += 1
                    log.info("NOTIFY %s to %s:%d acknowledged", zone, address, port)
                    return True
                log.info("NOTIFY %s to %s:%d answered %s", zone, address, port,
                         dns.rcode.to_text(rcode))
            # an answer that came quickly (an error, a refusal) still waits its turn
            left = wait - (asyncio.get_running_loop().time() - started)
            if left > 0:
                await asyncio.sleep(left)
        self.stats.given_up += 1
        log.warning("NOTIFY %s to %s:%d: no acknowledgement after %d tries", zone, address,
                    port, self.max_tries)
        return False

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
