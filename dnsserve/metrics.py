"""Prometheus text exposition (format 0.0.4): counters, gauges and histograms with labels.

Owns the registry of metric families, the naming rules and the text format
(``Registry.render``), and the catalogue of dnsserve's own metrics
(``server_metrics``). Pure: no I/O, no clock, no locks and no logging; the
app increments, ``control`` serves what ``render`` returns. No
prometheus_client: the format is small and written down here.

Rules (the naming ones follow https://prometheus.io/docs/practices/naming/):
1. A name matches ``[a-zA-Z_:][a-zA-Z0-9_:]*``; a label name
   ``[a-zA-Z_][a-zA-Z0-9_]*`` and does not start with ``__``. Names are
   unique in a registry.
2. A counter's name ends in ``_total``; a gauge's and a histogram's do not.
   A histogram reserves the label ``le`` and the suffixes ``_bucket``,
   ``_sum`` and ``_count``. Units are in the name, base units: ``_seconds``,
   ``_bytes``.
3. ``family.labels(**values)`` names every label of the family, no more, no
   fewer, and returns the child for those values (the same child every time:
   keep it for hot paths). An unlabelled family has one child from the start,
   so it renders ``0`` before its first increment; its ``inc``/``set``/
   ``observe`` work on the family itself.
4. A counter only goes up (``inc`` of a negative amount is a ValueError),
   except ``set_total``: a count kept elsewhere (``net.NetStats``) copied in
   at scrape time.
5. Text: ``# HELP`` (``\\`` and newline escaped), ``# TYPE``, then one line per
   sample; label values escape ``\\``, ``"`` and newline. Families render in
   registration order, children sorted by label values; a histogram's
   buckets are cumulative and end with ``le="+Inf"``, then ``_sum`` and
   ``_count``.

Threads: ``render`` copies each family's children before reading them, so it
may run on another thread than the increments; two threads incrementing the
same child can lose an increment (``+=`` is not atomic), so give each metric
one writing thread.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "gauge", "histogram"]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count", "_total")

DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds, for the durations of checks (timeouts are about 0.5 s)."""


def format_value(value: float) -> str:
    """A sample value as the text format writes it (``+Inf``, ``-Inf``, ``NaN``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"a counter only goes up (inc by {amount})")
        self.value += amount

    def set_total(self, total: float) -> None:
        """Copy in a count kept elsewhere (rule 4); a lower value reads as a reset."""
        self.value = float(total)


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


C = TypeVar("C", CounterChild, GaugeChild, HistogramChild)
S = TypeVar("S", CounterChild, GaugeChild)


class Family(Generic[C]):
    """One metric name with its help, kind and label names; children per label values."""

    kind: Kind

    def __init__(self, name: str, help: str, labels: Sequence[str]) -> None:
        self.name = name
        self.help = help
        self.label_names = tuple(labels)
        self._children: dict[tuple[str, ...], C] = {}
        if not self.label_names:
            self._children[()] = self._new_child()

    def _new_child(self) -> C:
        raise NotImplementedError

    def labels(self, **values: object) -> C:
        """The child for these label values (rule 3); values are turned into text."""
        if set(values) != set(self.label_names):
            raise ValueError(
                f"{self.name}: labels {sorted(values)} given, {list(self.label_names)} expected"
            )
        key = tuple(str(values[n]) for n in self.label_names)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        return child

    def clear(self) -> None:
        """Forget every labelled child (before refilling a gauge at scrape time)."""
        if self.label_names:
            self._children.clear()

    def _only(self) -> C:
        if self.label_names:
            raise ValueError(f"{self.name} has labels {list(self.label_names)}: use .labels()")
        return self._children[()]

    def samples(self) -> Iterator[tuple[str, str, float]]:
        """(name, label text, value) per line, in rule 5's order."""
        for key, child in sorted(list(self._children.items())):
            yield from self._child_samples(key, child)

    def _child_samples(
        self, key: tuple[str, ...], child: C
    ) -> Iterator[tuple[str, str, float]]:
        raise NotImplementedError


class _Scalar(Family[S]):
    """A family whose children hold one value each (counters and gauges)."""

    def _child_samples(
        self, key: tuple[str, ...], child: S
    ) -> Iterator[tuple[str, str, float]]:
        yield self.name, _labels_text(self.label_names, key), child.value


class Counter(_Scalar[CounterChild]):
    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def set_total(self, total: float) -> None:
        self._only().set_total(total)


class Gauge(_Scalar[GaugeChild]):
    kind = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        self._only().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only().dec(amount)


class Histogram(Family[HistogramChild]):
    kind = "histogram"

    def __init__(
        self, name: str, help: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        bounds = tuple(sorted(float(b) for b in buckets if not math.isinf(b)))
        if not bounds or len(set(bounds)) != len(bounds):
            raise ValueError(f"{name}: buckets must be distinct and finite, got {list(buckets)}")
        self.bounds = bounds
        super().__init__(name, help, labels)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def observe(self, value: float) -> None:
        self._only().observe(value)

    def _child_samples(
        self, key: tuple[str, ...], child: HistogramChild
    ) -> Iterator[tuple[str, str, float]]:
        names = (*self.label_names, "le")
        counts = list(child.counts)  # one copy: the buckets and _count agree
        running = 0
        for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
            running += count
            yield self.name + "_bucket", _labels_text(names, (*key, format_value(bound))), running
        labels = _labels_text(self.label_names, key)
        yield self.name + "_sum", labels, child.sum
        yield self.name + "_count", labels, running


def _check_names(kind: Kind, name: str, labels: Sequence[str]) -> None:
    """Rules 1 and 2."""
    if not _NAME.match(name):
        raise ValueError(f"metric name {name!r} is not [a-zA-Z_:][a-zA-Z0-9_:]*")
    if kind == "counter" and not name.endswith("_total"):
        raise ValueError(f"counter {name!r} must end in _total")
    if kind == "gauge" and name.endswith("_total"):
        raise ValueError(f"gauge {name!r} must not end in _total (that says counter)")
    if kind == "histogram" and name.endswith(_HISTOGRAM_SUFFIXES):
        raise ValueError(f"histogram {name!r} must not end in {'/'.join(_HISTOGRAM_SUFFIXES)}")
    for label in labels:
        if not _LABEL.match(label) or label.startswith("__"):
            raise ValueError(f"{name}: label name {label!r} is not allowed")
        if kind == "histogram" and label == "le":
            raise ValueError(f"{name}: 'le' is the histogram's own label")
    if len(set(labels)) != len(labels):
        raise ValueError(f"{name}: label names repeat: {list(labels)}")


F = TypeVar("F", Counter, Gauge, Histogram)


class Registry:
    """The families of one process, rendered together for /metrics."""

    def __init__(self) -> None:
        self._families: dict[str, Counter | Gauge | Histogram] = {}

    def _add(self, family: F) -> F:
        if family.name in self._families:
            raise ValueError(f"metric {family.name!r} is registered already")
        self._families[family.name] = family
        return family

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        _check_names("counter", name, labels)
        return self._add(Counter(name, help, labels))

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        _check_names("gauge", name, labels)
        return self._add(Gauge(name, help, labels))

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        _check_names("histogram", name, labels)
        return self._add(Histogram(name, help, labels, buckets))

    def render(self) -> str:
        """The whole registry in text format 0.0.4 (rule 5), ending in a newline."""
        lines: list[str] = []
        for family in list(self._families.values()):
            lines.append(f"# HELP {family.name} {escape_help(family.help)}")
            lines.append(f"# TYPE {family.name} {family.kind}")
            lines.extend(
                f"{name}{labels} {format_value(value)}"
                for name, labels, value in family.samples()
            )
        return "\n".join(lines) + "\n" if lines else ""


@dataclass(frozen=True, slots=True)
class ServerMetrics:
    """dnsserve's metrics, one attribute per family; see ``server_metrics`` for labels.

    Label values must come from bounded sets: ``qtype`` is a known type's
    mnemonic or ``OTHER`` (a client chooses the qtype), ``rcode`` the
    rcode's mnemonic, ``transport`` ``udp`` or ``tcp``, ``member`` a member
    of the config (``MONITOR/ADDRESS``), ``zone`` a served origin.
    """

    queries: Counter
    truncated: Counter
    dropped: Counter
    malformed: Counter
    engine_errors: Counter
    tcp_connections: Gauge
    tcp_closed: Counter
    member_up: Gauge
    member_override: Gauge
    check_duration: Histogram
    check_lateness: Histogram
    check_failures: Counter
    state_changes: Counter
    suspect: Gauge
    suspicions: Counter
    reloads: Counter
    zone_serial: Gauge
    zone_records: Gauge
    signature_expiry: Gauge
    state_write_failures: Counter
    worker_queries: Counter
    worker_restarts: Counter
    worker_change_delay: Gauge
    secondary_expired: Gauge
    secondary_refreshes: Counter
    secondary_transfers: Counter
    transfers_out: Counter
    notify_out: Counter
    published: Counter
    rrl: Counter
    cookies: Counter


def server_metrics(registry: Registry) -> ServerMetrics:
    """Register dnsserve's metrics in ``registry`` (once per registry)."""
    r = registry
    return ServerMetrics(
        queries=r.counter("dnsserve_queries_total", "DNS queries answered, by response code, "
                          "query type and transport.", ("rcode", "qtype", "transport")),
        truncated=r.counter("dnsserve_responses_truncated_total",
                            "UDP responses sent truncated (TC set)."),
        dropped=r.counter("dnsserve_dropped_packets_total", "Packets given no answer: "
                          "reason=engine (not worth an answer) or shed (send buffer full).",
                          ("transport", "reason")),
        malformed=r.counter("dnsserve_malformed_packets_total",
                            "Queries that could not be parsed (FORMERR or dropped).",
                            ("transport",)),
        engine_errors=r.counter("dnsserve_engine_errors_total",
                                "Queries not answered because the answer engine raised."),
        tcp_connections=r.gauge("dnsserve_tcp_connections", "Open DNS TCP connections."),
        tcp_closed=r.counter("dnsserve_tcp_closed_total", "DNS TCP connections the server "
                             "closed: reason=idle (idle timeout), evicted (the longest idle, "
                             "to make room at a limit) or refused (at a limit, none could go).",
                             ("reason",)),
        member_up=r.gauge("dnsserve_member_up", "1 when a member is up, else 0; view=real "
                          "(its checks) or effective (with overrides: what answers use).",
                          ("monitor", "member", "view")),
        member_override=r.gauge("dnsserve_member_override", "1 while an override is active on "
                                "a member; kind=drain or force-up.", ("monitor", "member", "kind")),
        check_duration=r.histogram("dnsserve_check_duration_seconds",
                                   "Time one health check took, by monitor.", ("monitor",)),
        check_lateness=r.histogram("dnsserve_check_lateness_seconds",
                                   "How long after its scheduled time a health check started, "
                                   "by monitor (a monitor that falls behind).", ("monitor",)),
        check_failures=r.counter("dnsserve_check_failures_total",
                                 "Health checks that failed, by monitor.", ("monitor",)),
        state_changes=r.counter("dnsserve_member_state_changes_total",
                                "Member state flips, by monitor and the state flipped to.",
                                ("monitor", "to")),
        suspect=r.gauge("dnsserve_suspect", "1 while the monitor suspects its own network and "
                        "holds member states."),
        suspicions=r.counter("dnsserve_suspicions_total",
                             "Times the monitor began to suspect its own network."),
        reloads=r.counter("dnsserve_reloads_total",
                          "Reloads, by result: accepted or refused.", ("result",)),
        zone_serial=r.gauge("dnsserve_zone_serial", "SOA serial served, by zone.", ("zone",)),
        zone_records=r.gauge("dnsserve_zone_records", "Records served, by zone.", ("zone",)),
        signature_expiry=r.gauge(
            "dnsserve_dnssec_signature_expiry_seconds", "When the first RRSIG of a signed "
            "zone expires (seconds since the epoch), pre-signed or signed online.", ("zone",)),
        state_write_failures=r.counter("dnsserve_state_write_failures_total",
                                       "Writes to the state file that failed."),
        worker_queries=r.counter("dnsserve_worker_queries_total",
                                 "DNS queries received, by answering worker (workers >= 2).",
                                 ("worker",)),
        worker_restarts=r.counter("dnsserve_worker_restarts_total",
                                  "Answering workers started again after one exited, by worker.",
                                  ("worker",)),
        worker_change_delay=r.gauge("dnsserve_worker_change_delay_seconds",
                                    "From the owner's swap (a flip, drain, expiry) to the worker "
                                    "answering with it, for the last such change, by worker.",
                                    ("worker",)),
        secondary_expired=r.gauge("dnsserve_secondary_expired", "1 while a secondary zone is "
                                  "past its expire (or has no copy yet) and answers SERVFAIL.",
                                  ("zone",)),
        secondary_refreshes=r.counter("dnsserve_secondary_refreshes_total",
                                      "Refreshes of a secondary zone, by result: ok or failed.",
                                      ("zone", "result")),
        secondary_transfers=r.counter("dnsserve_secondary_transfers_total",
                                      "Transfers served, by zone and kind (axfr, ixfr); held: "
                                      "held back by the deletion guard.", ("zone", "kind")),
        transfers_out=r.counter("dnsserve_transfers_out_total",
                                "Transfer requests as a primary, by result: axfr, ixfr (served), "
                                "refused (no rule allows), notauth (a bad TSIG).", ("result",)),
        notify_out=r.counter("dnsserve_notify_out_total", "NOTIFY messages sent to secondaries, "
                             "by result: sent (every try), acknowledged, given_up.", ("result",)),
        published=r.counter("dnsserve_published_total",
                            "Publish mode: zone versions published with pool answers."),
        rrl=r.counter("dnsserve_rrl_responses_total", "UDP responses over their rate limit, "
                      "by action: limited (all of them), slipped (sent truncated), dropped.",
                      ("action",)),
        cookies=r.counter("dnsserve_cookies_total", "DNS Cookies: server cookies made (made), "
                          "queries with a valid server cookie of ours (accepted).", ("result",)),
    )
