"""The engine with its reflection defences in front: response rate limiting and DNS Cookies.

Owns the order of the per-query decisions that need the client's address
and the time, which the engine does not take:

1. the cookie state of the query (``answer.cookies``: the engine asks it
   for the OPT when the query's OPT has options) is set for this client;
2. the engine answers;
3. over UDP, unless the query carried a valid server cookie of ours, the
   rate limiter (``answer.rrl``) passes the answer, truncates it (a slip)
   or drops it. TCP answers are never limited (a spoofed source cannot
   complete a handshake), nor handed-off requests (transfers, NOTIFY,
   signed queries: the caller answers those).

Pure: time (``now``) and the client's address come from the caller (``net``).
"""

from __future__ import annotations

from dataclasses import dataclass

from dnsserve.answer.cookies import Cookies
from dnsserve.answer.engine import Engine
from dnsserve.answer.rrl import RateLimiter, RrlSettings


class Guard:
    """``respond_from(query, client, now, tcp)``: the engine's answer, as RRL and cookies allow."""

    __slots__ = ("cookies", "engine", "limiter")

    def __init__(
        self, engine: Engine, *, limiter: RateLimiter | None = None, cookies: Cookies | None = None
    ) -> None:
        self.engine = engine
        self.limiter = limiter
        self.cookies = cookies
        engine.cookies = cookies

    def respond_from(self, data: bytes, client: str, now: float, tcp: bool) -> bytes | None:
        engine = self.engine
        cookies = self.cookies
        if cookies is not None:
            cookies.client = client
            cookies.now = now
        limiter = self.limiter
        if tcp or limiter is None:
            return engine.respond(data, tcp=tcp)
        engine.last = None
        out = engine.respond(data, tcp=False)
        if not out or (cookies is not None and cookies.valid is data):
            return out
        last = engine.last
        return limiter.limit(out, None if last is None else last.body, client, now)

    def counts(self) -> dict[str, int]:
        """The counters ``net.NetStats`` carries for /metrics, by its field names."""
        out = {"rrl_limited": 0, "rrl_slipped": 0, "rrl_dropped": 0,
               "cookies_made": 0, "cookies_accepted": 0}
        if self.limiter is not None:
            out["rrl_limited"] = self.limiter.limited
            out["rrl_slipped"] = self.limiter.slipped
            out["rrl_dropped"] = self.limiter.dropped
        if self.cookies is not None:
            out["cookies_made"] = self.cookies.fresh
            out["cookies_accepted"] = self.cookies.accepted
        return out


@dataclass(frozen=True, slots=True)
class Defences:
    """What a process's ``Guard`` is built from (``settings.defences`` resolves the config;
    a worker is handed the owner's, so every worker shares its cookie secret)."""

    rrl: RrlSettings | None = None  # None: no rate limiting
    secret: bytes | None = None  # None: no cookies
    previous_secret: bytes | None = None

    def guard(self, engine: Engine) -> Guard:
        limiter = RateLimiter(self.rrl) if self.rrl is not None else None
        cookies = Cookies(self.secret, self.previous_secret) if self.secret is not None else None
        return Guard(engine, limiter=limiter, cookies=cookies)
