"""What the control API asks of the running server: the ``control_routes.Api``.

Owns the operator's view of the running server, built on the main loop from
what the parts hold in memory (never from the state file): the status
document, the live answer for a name with its explanation (and "what if these
members were down"), recent events, overrides with the rule that a drain must
not leave a pool with no member up, reloads, /metrics and /healthz.

Must not: block the loop (nothing here reads a file or waits on a lock, apart
from ``reload``, which awaits the reloader's worker thread), or change
answers except through ``HealthSync`` (overrides) and ``Reloader`` (reload).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import msgspec

from dnsserve import __version__
from dnsserve.answer.engine import answered_by
from dnsserve.answer.policies import Pool, Selection, select
from dnsserve.answer.snapshot import PoolKey
from dnsserve.control_routes import ControlError, Doc, OverrideKind
from dnsserve.health.model import HealthView, MemberHealth, MemberId, Override, OverrideEntry
from dnsserve.healthsync import HealthSync
from dnsserve.metrics import Registry, ServerMetrics
from dnsserve.net import NetStats
from dnsserve.reload import Reloader
from dnsserve.secondary import Secondaries
from dnsserve.statuspage import (
    EventDoc,
    MemberDoc,
    OverrideDoc,
    PoolDoc,
    PoolMemberDoc,
    ReloadDoc,
    SecondaryDoc,
    Status,
    SuspicionDoc,
    ZoneDoc,
)

STATUS_EVENTS = 20  # events in the status document


def _pool_key(pool: Pool) -> PoolKey:
    return (pool.owner, pool.rdtype)


def _pool_text(pool: Pool) -> str:
    return f"{pool.owner} {dns.rdatatype.to_text(pool.rdtype)}"


class Serving(Protocol):
    """What answers queries, as /healthz and /metrics read it: ``net.Listeners``
    in this process, or the answering workers (``workers.WorkerSet``)."""

    @property
    def serving(self) -> bool: ...

    @property
    def stats(self) -> NetStats: ...


class Workers(Serving, Protocol):
    """The answering workers' counters (``workers.WorkerSet``)."""

    def engine_counts(self) -> tuple[dict[int, int], int, int]: ...

    def per_worker(self) -> list[tuple[int, int, int, float]]: ...


class Operations:
    """The Api over one running server's reloader, health and listeners."""

    def __init__(
        self,
        reloader: Reloader,
        health: HealthSync,
        registry: Registry,
        metrics: ServerMetrics,
        listeners: Callable[[], Serving | None],
        secondaries: Secondaries | None = None,
        workers: Callable[[], Workers | None] = lambda: None,
        outgoing: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._secondaries = secondaries
        # transfers as a primary: counts by name (axfr, ixfr, refused, notauth,
        # notify_sent, notify_acknowledged, notify_given_up, published)
        self._outgoing = outgoing
        self._reloader = reloader
        self._health = health
        self._registry = registry
        self._metrics = metrics
        self._listeners = listeners
        self._workers = workers
        self.token_problem = ""  # why POSTs cannot be authorised (the app sets it)

    # -- members -----------------------------------------------------------------

    def _pools(self) -> tuple[Pool, ...]:
        return self._reloader.pools

    def _member(self, text: str) -> MemberId:
        try:
            member = MemberId.from_text(text)
        except ValueError as exc:
            raise ControlError(400, str(exc)) from None
        known = {pm.member for pool in self._pools() for pm in pool.members}
        if member not in known:
            listed = ", ".join(sorted(m.to_text() for m in known)) or "no pools configured"
            raise ControlError(404, f"{text}: in no pool ({listed})")
        return member

    def _selections(self) -> Mapping[PoolKey, Selection]:
        engine = self._reloader.engine
        return engine.snapshot.selections if engine is not None else {}

    def _healths(self, view: HealthView) -> Mapping[MemberId, MemberHealth]:
        """Each member's health from the source (the monitor's tracker), whose
        every check counts (since, reason); the view changes on flips only."""
        monitor = self._health.monitor
        return {**view.members, **monitor.health()} if monitor is not None else view.members

    def _member_doc(
        self, member: MemberId, view: HealthView, now: float,
        healths: Mapping[MemberId, MemberHealth],
    ) -> MemberDoc:
        health = healths.get(member)
        check = self._health.checks.get(member)
        entry = view.overrides.get(member)
        override = None
        if entry is not None and entry.active(now):
            override = OverrideDoc(kind=entry.kind.value, reason=entry.reason,
                                   until=entry.until, set_at=entry.set_at)
        return MemberDoc(
            member=member.to_text(), monitor=member.monitor, address=member.address,
            real=view.real(member).value, effective=view.effective(member, now).value,
            since=health.since if health else None,
            reason=(health.reason if health else "") or (check.result if check else ""),
            checked=check.at if check else None, ok=check.ok if check else None,
            result=check.result if check else "", latency=check.took if check else None,
            override=override, held=view.suspect,
        )

    def _pool_doc(self, pool: Pool, selection: Selection | None) -> PoolDoc:
        return PoolDoc(
            owner=pool.owner.to_text(), type=dns.rdatatype.to_text(pool.rdtype),
            monitor=pool.members[0].member.monitor, policy=pool.policy.value,
            when_all_down=pool.when_all_down.value, ttl=pool.ttl,
            members=tuple(PoolMemberDoc(member=pm.member.to_text(), value=pm.value,
                                        weight=pm.weight, priority=pm.priority)
                          for pm in pool.members),
            answer=tuple(sorted(selection.values())) if selection else (),
            reason=selection.reason if selection else "",
        )

    # -- status ----------------------------------------------------------------------

    def status(self) -> Status:
        now = time.time()
        view = self._health.view
        selections = self._selections()
        members = sorted({pm.member for pool in self._pools() for pm in pool.members})
        healths = self._healths(view)
        last = self._reloader.last
        suspect = None
        if self._health.suspect_since is not None:
            since, reason = self._health.suspect_since
            suspect = SuspicionDoc(since=since, reason=reason)
        recent = list(self._health.events)[-STATUS_EVENTS:][::-1]
        return Status(
            now=now,
            version=__version__,
            zones=self._zone_docs(),
            pools=tuple(self._pool_doc(p, selections.get(_pool_key(p))) for p in self._pools()),
            members=tuple(self._member_doc(m, view, now, healths) for m in members),
            suspect=suspect,
            last_reload=ReloadDoc(at=last.at, ok=last.ok, message="; ".join(
                (last.message, *last.errors))) if last is not None else None,
            events=tuple(_event_doc(e) for e in recent),
            problems=self._problems(),
            secondary=tuple(self._secondary_docs()),
        )

    def _secondary_docs(self) -> Sequence[SecondaryDoc]:
        return self._secondaries.status() if self._secondaries is not None else ()

    def _zone_docs(self) -> tuple[ZoneDoc, ...]:
        served = self._reloader.served
        docs = []
        expiry = self._reloader.signature_expiry
        if served is not None:
            for origin, info in sorted(served.zones.items()):
                docs.append(ZoneDoc(name=origin.to_text(), file=info.file, serial=info.serial,
                                    records=info.records, loaded_at=info.loaded_at,
                                    ok=info.ok, result=info.result or "loaded",
                                    signatures_expire=expiry.get(origin)))
        for origin, why in sorted(self._reloader.unserved.items()):
            docs.append(ZoneDoc(name=origin.to_text(), ok=False, result=why))
        return tuple(docs)

    def _problems(self) -> tuple[str, ...]:
        out: list[str] = list(self._health.writer.notes)
        if self._health.store_problem is not None:
            out.append(f"state file {self._health.settings.state_path} not written: "
                       f"{self._health.store_problem}; health state is kept in memory")
        if self._health.monitor_lost:
            out.append("the monitor thread died: health answers are frozen until a restart")
        if self.token_problem:
            out.append(f"control API token: {self.token_problem}; every POST is refused")
        served = self._reloader.served
        if served is not None:
            out.extend(served.set_aside)
            out.extend(served.notes)
        return tuple(out)

    # -- answers ---------------------------------------------------------------------

    def answer(self, name: str, qtype: str, what_if_down: Sequence[str]) -> Doc:
        try:
            qname = dns.name.from_text(name)
            rdtype = dns.rdatatype.from_text(qtype)
        except dns.exception.DNSException as exc:
            raise ControlError(400, f"{name} {qtype}: {exc}") from None
        down = [self._member(m) for m in what_if_down]
        engine = self._reloader.engine
        if engine is None:
            raise ControlError(503, "no zones loaded yet")
        query = dns.message.make_query(qname, rdtype)
        query.flags &= ~dns.flags.RD
        wire = engine.respond(query.to_wire(), tcp=True)
        if wire is None:
            raise ControlError(500, "the engine dropped the query")
        response = dns.message.from_wire(wire)
        rcode = dns.rcode.to_text(response.rcode())
        table = engine.snapshot.find_zone(qname, rdtype)
        if table is None:
            raise ControlError(404, f"{qname} is in no served zone", detail={"rcode": rcode})
        owners = {(rrset.name, rrset.rdtype) for rrset in response.answer}
        owners.add((qname, rdtype))
        pools = [p for p in self._pools()
                 if (p.owner, p.rdtype) in owners
                 or (p.rdtype == dns.rdatatype.CNAME and any(o == p.owner for o, _ in owners))]
        pools.sort(key=lambda p: p.owner != qname)  # the name asked first, then its chain
        now = time.time()
        view = self._health.view
        selections = self._selections()
        doc: dict[str, Any] = {
            "name": qname.to_text(),
            "type": dns.rdatatype.to_text(rdtype),
            "rcode": rcode,
            "aa": bool(response.flags & dns.flags.AA),
            "answer": [line for rrset in response.answer for line in rrset.to_text().split("\n")],
            "authority": [line for rrset in response.authority
                          for line in rrset.to_text().split("\n")],
            "zone": table.origin.to_text(),
            "source": "pool" if pools else ("static" if response.answer else "none"),
            "pools": [self._explain(p, selections.get(_pool_key(p)), view, now) for p in pools],
        }
        # the pool of the name asked (or of the first name in its CNAME chain)
        doc["pool"] = doc["pools"][0] if pools else None
        doc["what_if_down"] = None
        if down and pools:
            hypothetical = _with_drains(view, down, now)
            pool = pools[0]
            chosen = select(pool, hypothetical, now, selections.get(_pool_key(pool)))
            doc["what_if_down"] = self._explain(pool, chosen, hypothetical, now, down)
        return doc

    def _explain(
        self, pool: Pool, selection: Selection | None, view: HealthView, now: float,
        down: Sequence[MemberId] = (),
    ) -> dict[str, Any]:
        """One pool's selection and why: each member's state, reason and override."""
        members = []
        healths = self._healths(view)
        for pm in pool.members:
            state = msgspec.to_builtins(self._member_doc(pm.member, view, now, healths))
            members.append({
                "member": pm.member.to_text(), "value": pm.value, "weight": pm.weight,
                "priority": pm.priority, "real": state["real"], "effective": state["effective"],
                "reason": state["reason"], "override": state["override"],
            })
        return {
            "owner": pool.owner.to_text(), "type": dns.rdatatype.to_text(pool.rdtype),
            "policy": pool.policy.value, "when_all_down": pool.when_all_down.value,
            "ttl": pool.ttl,
            "all_down_rule_applied": bool(selection and selection.all_down),
            "reason": selection.reason if selection else "",
            "answer": sorted(selection.values()) if selection else [],
            "down": [m.to_text() for m in down],
            "members": members,
        }

    # -- events ----------------------------------------------------------------------

    def events(self, since: float | None, member: str | None, limit: int) -> Sequence[Doc]:
        out = []
        for event in reversed(self._health.events):  # newest first
            if since is not None and event.time <= since:
                break
            if member is not None and event.member != member:
                continue
            out.append({**msgspec.structs.asdict(_event_doc(event)), "monitor": event.monitor})
            if len(out) >= limit:
                break
        return out

    # -- overrides -------------------------------------------------------------------

    def set_override(
        self, member: str, kind: OverrideKind, duration: float | None, reason: str,
        force: bool,
    ) -> Doc:
        who = self._member(member)
        now = time.time()
        if kind == "drain" and not force:
            empty = self._left_empty(who, now)
            if empty:
                raise ControlError(
                    409, f"draining {member} leaves {len(empty)} pool(s) with no member up",
                    detail={"pools": empty},
                )
        entry = OverrideEntry(
            Override.DRAIN if kind == "drain" else Override.FORCE_UP,
            now + duration if duration is not None else None, reason,
            source="api", set_at=now,
        )
        self._health.set_override(who, entry)
        return {"member": member, "override": msgspec.to_builtins(OverrideDoc(
                    kind=entry.kind.value, reason=reason, until=entry.until, set_at=now)),
                "effective": self._health.view.effective(who, now).value}

    def _left_empty(self, member: MemberId, now: float) -> list[dict[str, Any]]:
        """The pools a drain of ``member`` leaves with no member up, and what they
        would serve then (their ``when_all_down`` rule)."""
        view = _with_drains(self._health.view, [member], now)
        selections = self._selections()
        out = []
        for pool in self._pools():
            if member not in {pm.member for pm in pool.members}:
                continue
            selection = select(pool, view, now, selections.get(_pool_key(pool)))
            if selection.all_down:
                out.append({"pool": _pool_text(pool), "when_all_down": pool.when_all_down.value,
                            "would_serve": sorted(selection.values()),
                            "reason": selection.reason})
        return out

    def clear_override(self, member: str) -> Doc:
        who = self._member(member)
        removed = self._health.clear_override(who)
        return {"member": member, "removed": removed}

    # -- reload ----------------------------------------------------------------------

    async def reload(self, force: bool) -> Doc:
        result = await self._reloader.reload(force=force)
        doc = msgspec.to_builtins(result)
        if not result.ok:
            raise ControlError(422, result.message, detail=doc)
        return doc

    def refresh(self, zone: str) -> Doc:
        try:
            origin = dns.name.from_text(zone)
        except dns.exception.DNSException as exc:
            raise ControlError(400, f"{zone}: {exc}") from None
        if self._secondaries is None or not self._secondaries.wake(origin):
            raise ControlError(404, f"{origin}: not a secondary zone")
        return {"zone": origin.to_text(), "refresh": "started"}

    # -- metrics and health ------------------------------------------------------------

    def healthz(self) -> tuple[bool, Doc]:
        listeners = self._listeners()
        unserved = {o.to_text(): why for o, why in self._reloader.unserved.items()}
        up = listeners is not None and listeners.serving
        detail: dict[str, Any] = {
            "listeners": "up" if up else "down",
            "zones_not_loaded": unserved,
            "zones": len(self._reloader.served.zones) if self._reloader.served else 0,
            "state_file": self._health.store_problem or "ok",
            "monitor": ("dead" if self._health.monitor_lost else
                        "running" if self._health.monitor is not None else "none"),
            "suspect": self._health.suspect_since is not None,
        }
        expired = [d.zone for d in self._secondary_docs() if d.expired]
        if self._secondaries is not None:
            detail["secondary_expired"] = expired
        served = self._reloader.served
        ok = (up and not unserved and not expired and served is not None
              and bool(served.zones or self._secondary_docs()))
        return ok, detail

    def metrics(self) -> str:
        m, now = self._metrics, time.time()
        engine = self._reloader.engine
        if engine is not None:
            answered, truncated, formerr = dict(engine.answered), engine.truncated, engine.formerr
            workers = self._workers()
            if workers is not None:
                more, more_truncated, more_formerr = workers.engine_counts()
                for key, n in more.items():
                    answered[key] = answered.get(key, 0) + n
                truncated += more_truncated
                formerr += more_formerr
                for index, queries, restarts, delay in workers.per_worker():
                    m.worker_queries.labels(worker=str(index)).set_total(queries)
                    m.worker_restarts.labels(worker=str(index)).set_total(restarts)
                    m.worker_change_delay.labels(worker=str(index)).set(delay)
            m.queries.clear()
            for (rcode, qtype, tcp), n in answered_by(answered).items():
                m.queries.labels(
                    rcode=dns.rcode.to_text(dns.rcode.Rcode(rcode)), qtype=_qtype(qtype),
                    transport="tcp" if tcp else "udp",
                ).set_total(n)
            m.truncated.set_total(truncated)
            m.malformed.labels(transport="any").set_total(formerr)
        listeners = self._listeners()
        if listeners is not None:
            stats = listeners.stats
            m.dropped.labels(transport="any", reason="engine").set_total(stats.dropped)
            m.dropped.labels(transport="udp", reason="shed").set_total(stats.udp_shed)
            m.engine_errors.set_total(stats.engine_errors)
            m.tcp_connections.set(stats.tcp_open)
            m.tcp_closed.labels(reason="idle").set_total(stats.tcp_idle_closed)
            m.tcp_closed.labels(reason="evicted").set_total(stats.tcp_evicted)
            m.tcp_closed.labels(reason="refused").set_total(stats.tcp_refused)
            m.rrl.labels(action="limited").set_total(stats.rrl_limited)
            m.rrl.labels(action="slipped").set_total(stats.rrl_slipped)
            m.rrl.labels(action="dropped").set_total(stats.rrl_dropped)
            m.cookies.labels(result="made").set_total(stats.cookies_made)
            m.cookies.labels(result="accepted").set_total(stats.cookies_accepted)
        view = self._health.view
        m.member_up.clear()
        m.member_override.clear()
        for member in sorted({pm.member for pool in self._pools() for pm in pool.members}):
            labels = {"monitor": member.monitor, "member": member.to_text()}
            m.member_up.labels(**labels, view="real").set(view.real(member).value == "up")
            m.member_up.labels(**labels, view="effective").set(view.is_up(member, now))
            entry = view.overrides.get(member)
            if entry is not None and entry.active(now):
                m.member_override.labels(**labels, kind=entry.kind.value).set(1)
        m.suspect.set(1 if self._health.suspect_since is not None else 0)
        m.zone_serial.clear()
        m.zone_records.clear()
        if self._reloader.served is not None:
            for origin, info in self._reloader.served.zones.items():
                m.zone_serial.labels(zone=origin.to_text()).set(info.serial)
                m.zone_records.labels(zone=origin.to_text()).set(info.records)
        m.signature_expiry.clear()
        for origin, first in self._reloader.signature_expiry.items():
            m.signature_expiry.labels(zone=origin.to_text()).set(first)
        m.reloads.labels(result="accepted").set_total(self._reloader.accepted)
        m.reloads.labels(result="refused").set_total(self._reloader.refused)
        m.state_write_failures.set_total(self._health.writer.failures)
        m.secondary_expired.clear()
        for doc in self._secondary_docs():
            m.secondary_expired.labels(zone=doc.zone).set(1 if doc.expired else 0)
            ok = doc.refreshes - doc.failures
            m.secondary_refreshes.labels(zone=doc.zone, result="ok").set_total(ok)
            m.secondary_refreshes.labels(zone=doc.zone, result="failed").set_total(doc.failures)
            for kind, n in doc.transfers.items():
                m.secondary_transfers.labels(zone=doc.zone, kind=kind).set_total(n)
            m.secondary_transfers.labels(zone=doc.zone, kind="held").set_total(doc.held)
        if self._outgoing is not None:
            counts = self._outgoing()
            for result in ("axfr", "ixfr", "refused", "notauth"):
                m.transfers_out.labels(result=result).set_total(counts.get(result, 0))
            for result in ("sent", "acknowledged", "given_up"):
                m.notify_out.labels(result=result).set_total(counts.get(f"notify_{result}", 0))
            m.published.set_total(counts.get("published", 0))
        return self._registry.render()


_KNOWN_QTYPES = frozenset(int(t) for t in dns.rdatatype.RdataType)


def _qtype(qtype: int) -> str:
    """A qtype's mnemonic for a label; unknown numbers share one label, so a
    client cannot grow the label set without bound."""
    return dns.rdatatype.to_text(dns.rdatatype.RdataType(qtype)) if qtype in _KNOWN_QTYPES \
        else "OTHER"


def _with_drains(view: HealthView, members: Sequence[MemberId], now: float) -> HealthView:
    """``view`` as if ``members`` were drained (nothing is changed)."""
    overrides = dict(view.overrides)
    for member in members:
        overrides[member] = OverrideEntry(Override.DRAIN, None, "what if down", set_at=now)
    return replace(view, overrides=MappingProxyType(overrides))


def _event_doc(event: Any) -> EventDoc:
    return EventDoc(time=event.time, member=event.member, to_state=event.to_state,
                    from_state=event.from_state, reason=event.reason)
