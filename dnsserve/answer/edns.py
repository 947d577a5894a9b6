"""The EDNS options we answer, and our OPT record carrying them.

Owns which options of a query's OPT get an answer and what it holds:

    option                         answered when                      value
    NSID (3, RFC 5001)             asked with an empty option, and    the configured NSID
                                   an NSID is configured
    edns-tcp-keepalive (11, 7828)  asked over TCP, and the engine     the idle timeout net
                                   knows the timeout                  applies, in 100 ms
    EXPIRE (9, RFC 7314)           asked, and the engine's ``expire`` hook says (a secondary
                                   zone): the engine's, not here

Over UDP a keepalive option is ignored (RFC 7828 §3.3.1: a server that gets
it over UDP must ignore it; BIND does the same): the answer is the usual one,
without the option. A keepalive option with a value (a client must send it
empty) is answered as an empty one, as BIND does. An NSID option with a value
is not answered (RFC 5001 §2.1: a query's NSID is empty).

Must not: parse anything but the OPT's options (``wire`` walks the records),
or know where the NSID or the timeout come from (the config, net's setting):
the engine is given bytes and numbers. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dnsserve import wire

MAX_KEEPALIVE = 0xFFFF  # the option's TIMEOUT is 16 bits of 100 ms (about 1.8 hours)


# What a query's OPT asks of us (``asked``): bits, so a query that asks for
# nothing (a cookie alone, say) costs one walk of its options and a test.
NSID = 1
KEEPALIVE = 2
EXPIRE = 4


def asked(data: bytes, start: int, end: int) -> int:
    """What the options in ``data[start:end]`` (a query's OPT RDATA) ask of us: bits."""
    bits = 0
    for code, length in wire.options(data, start, end):
        if code == wire.OPTION_NSID:
            if length == 0:
                bits |= NSID
        elif code == wire.OPTION_TCP_KEEPALIVE:
            bits |= KEEPALIVE
        elif code == wire.OPTION_EXPIRE:
            bits |= EXPIRE
    return bits


def keepalive_units(idle_timeout: float) -> int:
    """An idle timeout in seconds as the option's TIMEOUT: units of 100 ms, 16 bits."""
    return max(0, min(MAX_KEEPALIVE, int(idle_timeout * 10)))


def answer_options(asked: int, *, nsid: bytes, keepalive: int | None, tcp: bool) -> bytes:
    """The NSID and keepalive options of our OPT for a query that ``asked``
    (EXPIRE is the engine's: it depends on the zone)."""
    out = b""
    if asked & NSID and nsid:
        out += wire.option(wire.OPTION_NSID, nsid)
    if asked & KEEPALIVE and tcp and keepalive is not None:
        out += wire.option(wire.OPTION_TCP_KEEPALIVE, keepalive.to_bytes(2, "big"))
    return out
