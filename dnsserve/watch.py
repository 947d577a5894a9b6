"""``dnsserve watch``: every nameserver of every zone, asked on an interval.

Edge [E]: owns the rounds (asyncio, on uvloop when it is installed: the
control/metrics server this reuses, ``control.start_control``, is asyncio,
and dnspython's ``asyncquery`` runs on it), the queries (SOA; then AXFR when
the server allows it, else one query per (name, type), at most
``max_queries`` per zone per server per round, in turns), the source of
truth (the zone files, loaded again when they change, and the pools'
answers from our server's control API), the log lines, the metrics, and
the queue of ``on_deviation`` runs (``watch_outputs`` runs each, and serves
/metrics). Must not judge: ``posture.watchdiff`` decides what deviates and
when it starts or clears.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.xfr
import dns.zone
from dns.rdatatype import RdataType

from dnsserve.client import Client, ControlClientError, Node
from dnsserve.config_schema import WatchConfig
from dnsserve.config_values import parse_hostport
from dnsserve.control import start_control
from dnsserve.errors import DnsServeError
from dnsserve.metrics import Registry
from dnsserve.posture.watchdiff import (
    Content,
    Deviation,
    Event,
    Key,
    Kind,
    Observation,
    Truth,
    canonical_text,
    compare,
    next_turn,
    step,
)
from dnsserve.settings import Settings
from dnsserve.statuspage import Status
from dnsserve.watch_outputs import MetricsApi, run_hook
from dnsserve.zones.load import LoadedZones, load_zones
from dnsserve.zones.table import ZoneTable
from dnsserve.zones.versions import to_rrsets, zone_content

log = logging.getLogger("dnsserve.watch")

# Types not compared: signatures and denial differ between signers; SOA is the serial's.
SKIPPED = frozenset({RdataType.SOA, RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3,
                     RdataType.NSEC3PARAM})
IN_FLIGHT = 16  # queries at once to one server for one zone
JOBS = 32  # (zone, server) pairs observed at once
HOOK_QUEUE = 1000  # events waiting for the hook; more are logged and dropped


def kept(owner: dns.name.Name, rdtype: int, apex: dns.name.Name,
         cuts: frozenset[dns.name.Name]) -> bool:
    """Whether a record is compared: not SKIPPED, not at or below a delegation
    (a query there gets a referral, not the record)."""
    if rdtype in SKIPPED:
        return False
    return not any(owner.is_subdomain(cut) for cut in cuts if cut != apex)


def _cuts(rrsets: Sequence[dns.rrset.RRset], apex: dns.name.Name) -> frozenset[dns.name.Name]:
    return frozenset(r.name for r in rrsets if r.rdtype == RdataType.NS and r.name != apex)


def _add(out: dict[Key, set[str]], rrset: dns.rrset.RRset) -> None:
    key = (rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype))
    out.setdefault(key, set()).update(canonical_text(rd) for rd in rrset)


@dataclass
class Source:
    """The source of truth, rebuilt from the files when they change."""

    settings: Settings
    loaded: LoadedZones | None = None
    static: dict[dns.name.Name, tuple[int, dict[Key, frozenset[str]]]] = field(
        default_factory=dict)
    tables: dict[dns.name.Name, ZoneTable] = field(default_factory=dict)
    recent: list[dict[Key, frozenset[str]]] = field(default_factory=list)  # the last 2 rounds

    def refresh(self) -> None:
        s = self.settings
        loaded = load_zones(s.zones_dir, log_problems=self.loaded is None,
                            previous=self.loaded, rules=s.file_rules)
        for origin, table in loaded.tables.items():
            if self.tables.get(origin) is table:
                continue
            content = zone_content(table)
            rrsets = to_rrsets(content.records)
            cuts = _cuts(rrsets, origin)
            values: dict[Key, set[str]] = {}
            for rrset in rrsets:
                if kept(rrset.name, rrset.rdtype, origin, cuts):
                    _add(values, rrset)
            self.static[origin] = (content.serial, {k: frozenset(v) for k, v in values.items()})
            self.tables[origin] = table
        for gone in set(self.tables) - set(loaded.tables):
            del self.tables[gone], self.static[gone]
        self.loaded = loaded

    def truths(self, status: Status | None) -> dict[dns.name.Name, Truth]:
        now = _pool_values(self.settings, status)
        if not self.recent:  # before the first round, any member was legitimate
            self.recent.append(_pool_values(self.settings, None))
        # a flip between our control answer and their DNS answer is no deviation:
        # what the pool could give in this round or the two before is legitimate
        pools = {k: v.union(*(r.get(k, frozenset()) for r in self.recent))
                 for k, v in now.items()}
        self.recent = [*self.recent[-1:], now]
        out = {}
        for origin, (serial, rrsets) in self.static.items():
            mine = {k: v | rrsets.get(k, frozenset()) for k, v in pools.items()
                    if dns.name.from_text(k[0]).is_subdomain(origin)}
            out[origin] = Truth(origin.to_text().lower(), serial, rrsets, mine)
        return out

    def ns_servers(self, origin: dns.name.Name, port: int) -> list[str]:
        """ADDRESS:PORT of each in-zone (in our data) address of the zone's apex NS targets."""
        out = []
        _, apex = self.static[origin]
        for target in sorted(apex.get((origin.to_text().lower(), "NS"), frozenset())):
            for rdtype in ("A", "AAAA"):
                for _, rrsets in self.static.values():
                    for address in sorted(rrsets.get((target, rdtype), frozenset())):
                        shown = f"[{address}]" if ":" in address else address
                        out.append(f"{shown}:{port}")
        return sorted(set(out))


def _canon(rdtype: str, value: str) -> str:
    text = value if rdtype != "CNAME" or value.endswith(".") else value + "."
    return canonical_text(dns.rdata.from_text(dns.rdataclass.IN, rdtype, text))


def _pool_values(settings: Settings, status: Status | None) -> dict[Key, frozenset[str]]:
    """Each pool's legitimate values (posture.watchdiff): with the control API's
    status, its answer now and its members up; without, any member or fallback."""
    out: dict[Key, frozenset[str]] = {}
    for pool in settings.config.pool:
        rdtype = pool.type.value
        key = (dns.name.from_text(pool.owner).to_text().lower(), rdtype)
        values = {m.target if rdtype == "CNAME" and m.target else m.address for m in pool.members}
        out[key] = frozenset(_canon(rdtype, v) for v in (*values, *pool.fallback))
    if status is None:
        return out
    up = {m.member for m in status.members if m.effective == "up"}
    for doc in status.pools:
        key = (dns.name.from_text(doc.owner).to_text().lower(), doc.type)
        legit = {*doc.answer, *(m.value for m in doc.members if m.member in up)}
        out[key] = frozenset(_canon(doc.type, v) for v in legit)
    return out


# --- one (zone, server) ------------------------------------------------------------


async def _ask(qname: str, rdtype: str, host: str, port: int, timeout: float
               ) -> dns.message.Message:
    q = dns.message.make_query(qname, rdtype)
    r = await dns.asyncquery.udp(q, host, port=port, timeout=timeout)
    if r.flags & dns.flags.TC:
        r = await dns.asyncquery.tcp(q, host, port=port, timeout=timeout)
    return r


async def _serial(zone: str, host: str, port: int, timeout: float) -> tuple[int | None, str]:
    try:
        r = await _ask(zone, "SOA", host, port, timeout)
    except (dns.exception.DNSException, OSError) as exc:
        return None, type(exc).__name__ if not str(exc) else str(exc)
    if r.rcode() != dns.rcode.NOERROR:
        return None, dns.rcode.to_text(r.rcode())
    if not r.flags & dns.flags.AA:
        return None, "not authoritative (AA clear)"
    for rrset in r.answer:
        if rrset.rdtype == RdataType.SOA and rrset.name == dns.name.from_text(zone):
            return int(rrset[0].serial), ""
    return None, "no SOA in the answer"


async def _axfr(origin: dns.name.Name, host: str, port: int, timeout: float) -> Content:
    zone = dns.zone.Zone(origin, relativize=False)
    async with asyncio.timeout(timeout * 10):
        await dns.asyncquery.inbound_xfr(host, zone, port=port, timeout=timeout)
    rrsets = [dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
              for name, rdataset in zone.iterate_rdatasets()]
    cuts = _cuts(rrsets, origin)
    values: dict[Key, set[str]] = {}
    for rrset in rrsets:
        if kept(rrset.name, rrset.rdtype, origin, cuts):
            _add(values, rrset)
    return Content({k: frozenset(v) for k, v in values.items()}, complete=True)


async def _queries(keys: Sequence[Key], host: str, port: int, timeout: float) -> Content:
    gate = asyncio.Semaphore(IN_FLIGHT)
    rrsets: dict[Key, frozenset[str]] = {}
    nxdomain: set[str] = set()

    async def one(key: Key) -> None:
        async with gate:
            try:
                r = await _ask(key[0], key[1], host, port, timeout)
            except (dns.exception.DNSException, OSError):
                return  # not looked at: its deviations stay as they were
        if r.rcode() == dns.rcode.NXDOMAIN:
            nxdomain.add(key[0])
            rrsets[key] = frozenset()
        elif r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA:
            got: dict[Key, set[str]] = {}
            for rrset in r.answer:
                _add(got, rrset)
            rrsets[key] = frozenset(got.get(key, set()))

    async with asyncio.TaskGroup() as tg:
        for key in keys:
            tg.create_task(one(key))
    return Content(rrsets, frozenset(nxdomain))


# --- the watcher -------------------------------------------------------------------


class Watcher:
    """The rounds, the state, the reports. ``run()`` until cancelled; ``one_round()`` once."""

    def __init__(self, settings: Settings, watch: WatchConfig, registry: Registry) -> None:
        self.settings = settings
        self.watch = watch
        self.source = Source(settings)
        self.active: dict[tuple[str, str, Kind, str], Deviation] = {}
        self.round = 0
        self.cursor: dict[tuple[str, str], int] = {}
        self.no_axfr: dict[tuple[str, str], int] = {}  # (zone, server) -> round refused
        self.hooks: asyncio.Queue[tuple[Event, Deviation]] = asyncio.Queue(HOOK_QUEUE)
        self.deviations = registry.gauge(
            "dnsserve_watch_deviations", "Deviations active now.", ("zone", "server", "kind"))
        self.server_up = registry.gauge(
            "dnsserve_watch_server_up", "1 when the server answered an SOA this round.",
            ("server",))
        self.events = registry.counter(
            "dnsserve_watch_events_total", "Deviations started and cleared.", ("kind", "event"))
        self.rounds = registry.counter("dnsserve_watch_rounds_total", "Rounds completed.")
        self.compared = registry.counter(
            "dnsserve_watch_content_total", "Content comparisons, by how (axfr or queries).",
            ("server", "method"))
        self.queries_cap = registry.gauge(
            "dnsserve_watch_max_queries", "Queries per zone per server per round, at most.")
        self.queries_cap.set(watch.max_queries)

    def _status(self) -> Status | None:
        if not self.watch.control:
            return None
        try:
            with Client(Node(self.watch.control)) as client:
                return client.status().doc
        except ControlClientError as exc:
            log.warning("control API %s: %s (pools: any member counts)", self.watch.control, exc)
            return None

    async def one_round(self) -> None:
        await asyncio.to_thread(self.source.refresh)
        truths = self.source.truths(await asyncio.to_thread(self._status))
        jobs = []
        gate = asyncio.Semaphore(JOBS)

        async def gated(origin: dns.name.Name, truth: Truth, server: str
                        ) -> tuple[Truth, Observation]:
            async with gate:
                return await self._observe(origin, truth, server)

        for origin, truth in truths.items():
            servers = list(self.watch.servers)
            if self.watch.ns:
                servers += self.source.ns_servers(origin, self.watch.ns_port)
            for server in dict.fromkeys(servers):
                jobs.append(gated(origin, truth, server))
        observed = await asyncio.gather(*jobs)
        up: dict[str, bool] = {}
        for truth, obs in observed:
            up[obs.server] = up.get(obs.server, False) or obs.serial is not None
            found, looked = compare(truth, obs)
            self.active, events = step(self.active, truth.zone, obs.server, found, looked)
            for event in events:
                self._report(*event)
        for server, ok in up.items():
            self.server_up.labels(server=server).set(1 if ok else 0)
        self._gauges()
        self.round += 1
        self.rounds.inc()

    async def _observe(self, origin: dns.name.Name, truth: Truth, server: str
                       ) -> tuple[Truth, Observation]:
        host, port = parse_hostport(server)
        timeout = self.watch.timeout
        serial, why = await _serial(truth.zone, host, port, timeout)
        if serial is None:
            return truth, Observation(truth.zone, server, None, why)
        keys = sorted(set(truth.rrsets) | set(truth.pools))
        small = len(keys) <= self.watch.max_queries
        full = serial != truth.serial or self.round % self.watch.full_every == 0 or small
        where = (truth.zone, server)
        refused = self.no_axfr.get(where)
        content: Content | None = None
        if full and (refused is None or self.round - refused >= self.watch.full_every):
            try:
                content = await _axfr(origin, host, port, timeout)
                self.no_axfr.pop(where, None)
                self.compared.labels(server=server, method="axfr").inc()
            except (dns.exception.DNSException, dns.xfr.TransferError, OSError, TimeoutError):
                self.no_axfr[where] = self.round
        if content is None:
            turn, self.cursor[where] = next_turn(keys, self.cursor.get(where, 0),
                                                 self.watch.max_queries)
            content = await _queries(turn, host, port, timeout)
            self.compared.labels(server=server, method="queries").inc()
        return truth, Observation(truth.zone, server, serial, content=content)

    def _gauges(self) -> None:
        self.deviations.clear()
        for dev in self.active.values():
            self.deviations.labels(zone=dev.zone, server=dev.server, kind=dev.kind.value).inc()

    def _report(self, event: Event, dev: Deviation) -> None:
        level = logging.WARNING if event is Event.START else logging.INFO
        log.log(level, "deviation %s: zone=%s server=%s kind=%s subject=%r: %s", event.value,
                dev.zone, dev.server, dev.kind.value, dev.subject, dev.detail)
        self.events.labels(kind=dev.kind.value, event=event.value).inc()
        if self.watch.on_deviation:
            try:
                self.hooks.put_nowait((event, dev))
            except asyncio.QueueFull:
                log.warning("on_deviation: %d events waiting; this one is not run", HOOK_QUEUE)

    async def run_hooks(self) -> None:
        """Run the hook once per event, one at a time, in order."""
        argv = shlex.split(self.watch.on_deviation)
        while True:
            event, dev = await self.hooks.get()
            await run_hook(argv, event, dev, self.watch.hook_timeout)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            if self.watch.on_deviation:
                tg.create_task(self.run_hooks())
            loop = asyncio.get_running_loop()
            while True:
                started = loop.time()
                try:
                    async with asyncio.timeout(self.watch.interval + 30 * self.watch.timeout):
                        await self.one_round()
                except TimeoutError:
                    log.warning("round %d did not finish in time", self.round)
                except (OSError, ValueError, DnsServeError):
                    # a zone directory gone, a bad answer: this round is lost, not the watch
                    log.exception("round %d failed", self.round)
                await asyncio.sleep(max(0.0, started + self.watch.interval - loop.time()))


async def watch(settings: Settings, watch: WatchConfig) -> None:
    """Watch until cancelled; /metrics on ``watch.metrics`` when set."""
    registry = Registry()
    watcher = Watcher(settings, watch, registry)
    server = None
    if watch.metrics:
        host, port = parse_hostport(watch.metrics)
        server = await start_control(MetricsApi(registry), host, port, secrets.token_hex(16))
        log.info("watch metrics on http://%s:%d/metrics", *server.address)
    try:
        await watcher.run()
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()
