"""The Prometheus text renderer: naming rules, escaping, and output a strict parser accepts."""

from __future__ import annotations

import math
import re

import pytest

from dnsserve.metrics import (
    CONTENT_TYPE,
    Registry,
    escape_label_value,
    format_value,
    server_metrics,
)

# One sample line of text format 0.0.4: name, optional {label="value",...}, value.
_LABEL_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    rf"(?:\{{(?P<labels>{_LABEL_PAIR}(?:,{_LABEL_PAIR})*)\}})?"
    r" (?P<value>[-+]?(?:[0-9.]+(?:e[-+]?[0-9]+)?|Inf|NaN))\Z"
)
HELP = re.compile(r"# HELP (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?:[^\\\n]|\\[\\n])*\Z")
TYPE = re.compile(r"# TYPE (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)\Z")
PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), text)


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A strict reader of the format: every line must be HELP, TYPE or a sample of
    the family announced last, HELP and TYPE once per family; returns the samples."""
    assert text.endswith("\n")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    family, kind, seen = "", "", set()
    for line in text[:-1].split("\n"):
        if m := HELP.match(line):
            family = m["name"]
            assert family not in seen, f"family {family} twice"
            seen.add(family)
            continue
        if m := TYPE.match(line):
            assert m["name"] == family, line
            kind = m[2]
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        assert any(m["name"] == family + s for s in suffixes), line
        labels = tuple((k, unescape(v)) for k, v in PAIR.findall(m["labels"] or ""))
        key = (m["name"], labels)
        assert key not in samples, f"sample twice: {line}"
        samples[key] = float(m["value"].replace("Inf", "inf"))
    return samples


def test_content_type_names_the_version() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (3.0, "3"), (0.25, "0.25"), (-2, "-2"), (math.inf, "+Inf"),
     (-math.inf, "-Inf"), (math.nan, "NaN"), (2.0**60, "1.152921504606847e+18")],
)
def test_values(value: float, text: str) -> None:
    assert format_value(value) == text


def test_label_values_are_escaped() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_server_metrics_render_and_parse() -> None:
    registry = Registry()
    m = server_metrics(registry)
    m.queries.labels(rcode="NOERROR", qtype="A", transport="udp").inc()
    m.queries.labels(rcode="NOERROR", qtype="A", transport="udp").inc(2)
    m.check_duration.labels(monitor="web").observe(0.003)
    m.check_duration.labels(monitor="web").observe(99.0)
    m.check_lateness.labels(monitor="web").observe(0.03)
    m.zone_serial.labels(zone='odd"zone\\\n.').set(2024010101)
    m.engine_errors.set_total(5)
    text = registry.render()
    samples = parse(text)
    assert samples[("dnsserve_queries_total",
                    (("rcode", "NOERROR"), ("qtype", "A"), ("transport", "udp")))] == 3
    assert samples[("dnsserve_zone_serial", (("zone", 'odd"zone\\\n.'),))] == 2024010101
    assert samples[("dnsserve_engine_errors_total", ())] == 5
    # unlabelled families render 0 before their first increment
    assert samples[("dnsserve_state_write_failures_total", ())] == 0
    web = (("monitor", "web"),)
    assert samples[("dnsserve_check_duration_seconds_bucket", (*web, ("le", "0.0025")))] == 0
    assert samples[("dnsserve_check_duration_seconds_bucket", (*web, ("le", "0.005")))] == 1
    assert samples[("dnsserve_check_duration_seconds_bucket", (*web, ("le", "10")))] == 1
    assert samples[("dnsserve_check_duration_seconds_bucket", (*web, ("le", "+Inf")))] == 2
    assert samples[("dnsserve_check_duration_seconds_count", web)] == 2
    assert samples[("dnsserve_check_duration_seconds_sum", web)] == pytest.approx(99.003)
    assert samples[("dnsserve_check_lateness_seconds_bucket", (*web, ("le", "0.025")))] == 0
    assert samples[("dnsserve_check_lateness_seconds_bucket", (*web, ("le", "0.05")))] == 1
    assert all(name.startswith("dnsserve_") for name, _ in samples)


def test_children_render_sorted_and_clear_forgets_them() -> None:
    registry = Registry()
    up = registry.gauge("x_up", "Up.", ("member",))
    up.labels(member="b").set(1)
    up.labels(member="a").set(0)
    assert registry.render().splitlines()[2:] == ['x_up{member="a"} 0', 'x_up{member="b"} 1']
    up.clear()
    assert registry.render() == "# HELP x_up Up.\n# TYPE x_up gauge\n"


def test_help_is_escaped() -> None:
    registry = Registry()
    registry.gauge("x", "two\nlines \\ here")
    assert registry.render().splitlines()[0] == "# HELP x two\\nlines \\\\ here"


def test_labels_returns_the_same_child() -> None:
    c = Registry().counter("x_total", "X.", ("a",))
    assert c.labels(a="1") is c.labels(a=1)


@pytest.mark.parametrize(
    ("kind", "name", "labels", "message"),
    [
        ("counter", "x", (), "must end in _total"),
        ("gauge", "x_total", (), "must not end in _total"),
        ("histogram", "x_seconds_count", (), "must not end in"),
        ("histogram", "x_seconds", ("le",), "'le' is the histogram's own label"),
        ("gauge", "0x", (), "is not"),
        ("gauge", "x", ("__a",), "label name '__a'"),
        ("gauge", "x", ("a-b",), "label name 'a-b'"),
        ("gauge", "x", ("a", "a"), "label names repeat"),
    ],
)
def test_naming_rules(kind: str, name: str, labels: tuple[str, ...], message: str) -> None:
    registry = Registry()
    make = {"counter": registry.counter, "gauge": registry.gauge,
            "histogram": registry.histogram}[kind]
    with pytest.raises(ValueError, match=re.escape(message)):
        make(name, "Help.", labels)


def test_misuse_is_refused() -> None:
    registry = Registry()
    c = registry.counter("x_total", "X.", ("a",))
    with pytest.raises(ValueError, match="is registered already"):
        registry.counter("x_total", "X.")
    with pytest.raises(ValueError, match="expected"):
        c.labels(b="1")
    with pytest.raises(ValueError, match=r"use \.labels\(\)"):
        c.inc()
    with pytest.raises(ValueError, match="only goes up"):
        c.labels(a="1").inc(-1)
    with pytest.raises(ValueError, match="distinct and finite"):
        registry.histogram("h_seconds", "H.", buckets=(1.0, 1.0))


def test_empty_registry_renders_nothing() -> None:
    assert Registry().render() == ""
