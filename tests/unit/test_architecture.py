"""The architecture of DESIGN.md, enforced by an ast walk over dnsserve/.

Two rules:

1. Core modules ([C] in DESIGN.md, plus any module whose docstring declares
   itself pure with "[C]", "Pure:" or "is pure") import no I/O, concurrency
   or UI library, do not read the clock, and import no edge module.
2. Imports go downward only, along DESIGN.md's chain; modules on one level
   (siblings) never import each other. ``app`` connects them with callbacks.

Every import counts, including those inside functions and under
``if TYPE_CHECKING:`` (a type-only import is still a dependency of the design).
A module that is not placed on a level fails ``test_every_module_is_placed``:
add it to ``LEVELS`` (and to DESIGN.md's map) where its imports put it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit import ROOT

PACKAGE = ROOT / "dnsserve"

# DESIGN.md "Imports go downward only", top to bottom. A module may import
# modules on lower levels only. "" is the package itself (dnsserve/__init__).
LEVELS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    # change (drain, force-up, undrain, reload: the CLI's commands that change
    # a running server) builds on operate's shared options and helpers.
    {"app", "change"},
    # operate (the CLI's status, query, history, and what its commands share);
    # operations (what the control API asks of the running server; it reads
    # the reloader and health sync it is handed).
    {"operate", "operations"},
    # Split out of app (the house issue): reload/swap, health-state syncing and
    # `dnsserve check`, each wired by app; siblings, so none imports another.
    # fleet (which nodes, their tokens, acting on each) and report (the live
    # commands' tables) are the CLI's, under operate.
    # secondary (the secondary zones' refreshes) is wired by app like reload.
    # workers (the owner's side of the answering worker processes: fork,
    # restart, pass on each swap) is wired by app like its siblings here.
    # watch (dnsserve watch: the rounds, queries, hook and its /metrics) is
    # the CLI's, beside preflight; it judges with posture.watchdiff.
    {"reload", "healthsync", "preflight", "fleet", "report", "secondary", "workers", "watch"},
    # handoff (transfers, NOTIFY in, signed queries: what the engine hands
    # off) and notify (the NOTIFY sender) are wired by app; handoff reads
    # transfers below. inbound (a secondary refresh's blocking dnspython
    # calls: SOA serial, transfer, the atomic copy) is secondary's.
    {"handoff", "notify", "inbound"},
    # staging (the next state to serve, built whole: prepare), statewriter (the
    # state file's writer thread) and health_inputs (the config's monitor
    # targets, overrides.toml): what reload and healthsync build on.
    # worker (one answering worker process, forked by workers) runs net's
    # listeners and the engine.
    {"staging", "statewriter", "health_inputs", "worker"},
    # publishing (publish mode's timers and published contents) is wired by
    # app beside transfers.
    # transfers (the TSIG keyring, each zone's transfer rule and NOTIFY
    # targets) is read by handoff, app and the secondary side; an edge leaf
    # over the xfr core.
    # zones.poolsign (pool answers of online-signed zones signed in the owner
    # when a selection changes) is read by staging and reload.
    {"transfers", "publishing", "zones.poolsign"},
    # daemonthread (a blocking call in a daemon thread, as a future): reload's
    # zone loading and secondary's refreshes use it.
    # posture.sources (the takeover list, zone lines read again, the --against
    # reference from git or a directory, --resolve's queries) is check's edge,
    # under preflight, its importer.
    # watch_outputs (watch's hook runner and its /metrics Api) is watch's, over control.
    {"daemonthread", "posture.sources", "watch_outputs"},
    # demo (the `dnsserve demo` backends) is not in DESIGN's map: an edge leaf.
    # settings (the config file with flags applied) is read by the level above.
    # client (the CLI's side of the control API, over httpx) is an edge leaf
    # under cli, its importer; it decodes with statuspage's Structs (below).
    # zones.offload (zones.load in a spawned child process, tables handed back
    # packed) is an edge module under reload, its importer.
    {"net", "control", "health.monitor", "store", "demo", "settings", "client", "zones.offload"},
    # health.localerrors (checks that could not run on this host: counted, the
    # log rate-limited) is split out of health.monitor, its importer; it
    # counts in health.checklog, below.
    # health.targets (Target, its rule, CheckOutcome) is split out of it too;
    # health_inputs and healthsync read it. health.timers (one task wakes each
    # member when its check is due) too.
    {"health.localerrors", "health.targets", "health.timers"},
    # control_routes (the API as a function: routes, auth, JSON) and
    # control_access (the token file, the address rule) are split out of
    # control, their importer; the CLI uses control_access too.
    # health.tls (the TLS contexts injected into https probes) and
    # health.checklog (the monitor's counters and recent check starts) are
    # split out of health.monitor, their importer.
    # zones.parse_reference (zones.load's reader as ParsedRecords: the measure
    # of the fast parser in its tests and benchmark) reads zones.load.
    {"control_routes", "control_access", "health.tls", "health.checklog",
     "zones.parse_reference"},
    {"config", "zones.load", "health.probes"},
    # health.http11 (one GET on a trio socket, read with h11) is an edge leaf
    # under health.probes, its importer.
    # zones.parse (the fast zone-file reader, to ParsedRecords) is an edge
    # module under zones.load, which will call it; it reads the adapter.
    # posture.review (every posture rule together, lines placed, ignores) is
    # pure; preflight and posture.sources read it.
    {"health.http11", "zones.parse", "posture.review"},
    # config_validate (validate, split out of config_schema) checks the
    # Structs it imports from below; config is its importer.
    # posture.configrules (the config's risky settings: config_warnings' rules)
    # and posture.poolrules (the pools with their zones) are pure, beside it.
    {"config_validate", "posture.configrules", "posture.poolrules"},
    # config_validate_ops (the operations sections' checks: keys, zones,
    # DNSSEC, regions, posture, watch, nodes), split out of config_validate.
    {"config_validate_ops"},
    # config_values (ADDRESS:PORT and node URLs read, a problem line written)
    # under config_validate; net, settings and the CLI use parse_hostport too.
    # zones.files (zone files opened as untrusted input: where, what, how much,
    # and what a message may quote) is an edge leaf under zones.parse and
    # zones.load, its importers; it reads config_schema's bounds.
    # zones.dnskeys (an online-signed zone's key files: made, read) is an
    # edge leaf under zones.load and the CLI.
    {"config_values", "zones.files", "zones.dnskeys"},
    # zones.dnspython_adapter (every use of dnspython's undocumented zone-file
    # names) is an edge leaf under zones.load, its only importer.
    # config_schema (the Structs of dnsserve.toml, split out of config) is
    # not in DESIGN's map yet: under config and config_validate, its importers;
    # it imports the package (for __version__) and the core enums its Structs
    # decode into (answer.policies, health.model), all below it.
    {"config_schema", "zones.dnspython_adapter"},
    # answer.guard (RRL and cookies in front of the engine: the client's address
    # and the time, which the engine does not take) wraps the engine; settings
    # builds its Defences, worker and app their Guard.
    {"answer.guard"},
    # worker_protocol (the owner <-> worker messages and frames) is pure and
    # reads the snapshot below, beside the engine.
    {"answer.engine", "worker_protocol"},
    {"answer.snapshot"},
    # answer.prebuilt, answer.tsig (the engine's slow path for TSIG-signed
    # queries) and health.guard are not in DESIGN's map yet: placed where
    # their imports and importers put them.
    # zones.deletions (the deletion guard of a reload) reads zones.versions.
    # answer.lookup (answer keys, the zone for a qname, the slow path) is
    # split out of answer.snapshot, above it; the engine and preflight use it.
    # answer.chaos (the CHAOS identity answers) too, and reads answer.lookup.
    # answer.misses (the miss index: misses answered from the query's wire
    # bytes) reads answer.lookup's slow path to learn; snapshot and engine use it.
    # xfr.publish renders the published SOA answer (answer.lookup, prebuilt).
    # posture.against (check --against: the deletion guard's rules at review)
    # reads zones.deletions; posture.output (text, JSON, SARIF) the findings.
    # answer.dnssec (the DO form of an answer from a pre-signed zone) reads
    # answer.lookup and prebuilt; the engine uses it.
    {"answer.chaos", "answer.misses", "answer.dnssec", "xfr.publish", "posture.against",
     "posture.output"},
    # xfr.* (zone transfers as a primary, pure): access rules, requests
    # (TSIG verified), AXFR/IXFR streams; siblings over zones.versions,
    # answer.tsig and xfr.keys. xfr.refresh (a secondary zone's timers and
    # decisions) reads zones.versions' serial arithmetic.
    # posture.zonerules (the posture rules over the zones) reads posture.survey.
    # zones.rrsign (an online-signed zone's records signed fast, signatures kept
    # across loads) reads zones.online's keys and zones.versions' canonical forms.
    {"zones.deletions", "answer.lookup", "xfr.access", "xfr.request", "xfr.outgoing",
     "xfr.refresh", "posture.zonerules", "zones.rrsign"},
    # zones.versions: canonical zone content, diffs, serials (the reload path
    # and the store read it).
    {
        "answer.policies", "answer.prebuilt", "answer.tsig", "answer.edns", "zones.compile",
        "health.tracker",
        "health.guard", "zones.versions", "xfr.keys", "xfr.sign", "zones.signed", "posture.survey",
        # zones.online (online signing: key formats, a zone or one RRset signed
        # with ``now`` given, DS records) is pure beside zones.signed.
        "zones.online",
        # answer.rrl (the rate limiter's table) and answer.cookies (RFC 7873/9018
        # cookies, over answer.siphash) read wire; answer.guard puts them in front.
        "answer.rrl", "answer.cookies",
    },
    # zones.limits (rule 7's RRset size limits) and zones.sources (where a
    # zone's records were written; zones.load fills it) are split out of
    # zones.compile, their importer.
    # zones.fastscan and zones.fastrdata (the fast parser's line scanner and
    # rdata encoders) are pure leaves under zones.parse.
    {
        "zones.table", "zones.limits", "zones.sources", "zones.records", "health.model",
        "zones.fastscan", "zones.fastrdata",
    },
    # zones.blobs (an owner's records as one wire blob: the codec, and the
    # wire-name helpers) is split out of zones.table, a pure leaf under it.
    {"zones.blobs"},
    # metrics (the Prometheus text renderer) and statuspage (the status
    # document and its HTML) are pure leaves: any level may use them.
    # posture.findings (findings and the rule catalogue), posture.regions and
    # posture.takeover are pure leaves.
    # posture.watchdiff (watch's comparison and start/clear state machine) too.
    {"wire", "framing", "metrics", "statuspage", "posture.findings", "posture.regions",
     "posture.takeover", "answer.siphash", "posture.watchdiff"},
    {"errors", "", "zones", "health", "answer", "xfr", "posture"},
]
LEVEL = {name: i for i, names in enumerate(LEVELS) for name in names}

# Package __init__ modules run whenever a core submodule is imported: pure too.
CORE = {
    "",
    "zones",
    "health",
    "answer",
    "wire",
    "framing",
    "metrics",
    "statuspage",
    "control_routes",
    "errors",
    "config_schema",
    "config_validate",
    "config_values",
    "zones.table",
    "zones.blobs",
    "zones.compile",
    "zones.limits",
    "zones.sources",
    "zones.records",
    "zones.fastscan",
    "zones.fastrdata",
    "zones.versions",
    "zones.signed",
    "zones.online",
    "zones.rrsign",
    "zones.deletions",
    "health.model",
    "health.tracker",
    "health.guard",
    "answer.policies",
    "answer.tsig",
    "answer.edns",
    "answer.lookup",
    "answer.chaos",
    "answer.misses",
    "answer.dnssec",
    "answer.snapshot",
    "answer.engine",
    "answer.guard",
    "answer.rrl",
    "answer.cookies",
    "answer.siphash",
    "worker_protocol",
    "xfr",
    "xfr.keys",
    "xfr.sign",
    "xfr.access",
    "xfr.request",
    "xfr.outgoing",
    "xfr.publish",
    "xfr.refresh",
    "posture",
    "posture.findings",
    "posture.regions",
    "posture.takeover",
    "posture.survey",
    "posture.zonerules",
    "posture.against",
    "posture.output",
    "posture.configrules",
    "posture.poolrules",
    "posture.review",
    "posture.watchdiff",
}
EDGE = {
    "__main__",
    "demo",
    "cli",
    "client",
    "operate",
    "change",
    "fleet",
    "report",
    "app",
    "reload",
    "secondary",
    "inbound",
    "daemonthread",
    "staging",
    "statewriter",
    "health_inputs",
    "healthsync",
    "operations",
    "preflight",
    "settings",
    "net",
    "control",
    "control_access",
    "store",
    "config",
    "zones.load",
    "zones.dnspython_adapter",
    "zones.files",
    "zones.dnskeys",
    "zones.poolsign",
    "zones.parse",
    "zones.parse_reference",
    "health.probes",
    "health.localerrors",
    "health.targets",
    "health.tls",
    "health.timers",
    "health.http11",
    "health.checklog",
    "health.monitor",
    "worker",
    "workers",
    "transfers",
    "publishing",
    "handoff",
    "notify",
    "posture.sources",
    "watch",
    "watch_outputs",
}
FORBIDDEN_IN_CORE = {
    "asyncio",
    "trio",
    "anyio",
    "socket",
    "selectors",
    "ssl",
    "httpx",
    "h11",
    "sqlite3",
    "sqlite_utils",
    "typer",
    "uvloop",
    "threading",
    "multiprocessing",
    "concurrent",
    "subprocess",
    "signal",
    "time",
}
CLOCK_CALLS = {"now", "utcnow", "today", "monotonic", "perf_counter", "time_ns"}
DECLARED_CORE = re.compile(r"\[C\]|\bPure:|\bis pure\b")


@dataclass(frozen=True)
class Module:
    name: str  # dotted, relative to the package: "answer.engine"; "" for the package
    source: str
    is_package: bool = False


def module_name(path: Path) -> tuple[str, bool]:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def package_modules() -> list[Module]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name, is_package = module_name(path)
        out.append(Module(name, path.read_text(), is_package))
    return out


def resolve(mod: Module, node: ast.ImportFrom, known: set[str]) -> list[str]:
    """Internal targets of a ``from ... import ...`` (empty if not dnsserve)."""
    if node.level:
        base = mod.name.split(".") if mod.name else []
        if not mod.is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        prefix = ".".join([*base, *(node.module.split(".") if node.module else [])])
    elif node.module == "dnsserve" or (node.module or "").startswith("dnsserve."):
        prefix = node.module[len("dnsserve.") :] if node.module != "dnsserve" else ""
    else:
        return []
    out = []
    for alias in node.names:
        sub = f"{prefix}.{alias.name}" if prefix else alias.name
        out.append(sub if sub in known else prefix)
    return out


def imports(mod: Module, known: set[str]) -> tuple[set[str], set[str]]:
    """(external top-level modules, internal dnsserve modules) that ``mod`` imports."""
    external: set[str] = set()
    internal: set[str] = set()
    for node in ast.walk(ast.parse(mod.source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "dnsserve" or alias.name.startswith("dnsserve."):
                    internal.add(alias.name[len("dnsserve.") :] if alias.name != "dnsserve" else "")
                else:
                    external.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            targets = resolve(mod, node, known)
            if targets:
                internal.update(targets)
            elif node.module and not node.level:
                external.add(node.module.split(".")[0])
    internal.discard(mod.name)
    return external, internal


def is_core(mod: Module) -> bool:
    if mod.name in CORE:
        return True
    if mod.name in EDGE:
        return False
    doc = ast.get_docstring(ast.parse(mod.source)) or ""
    return bool(DECLARED_CORE.search(doc))


def clock_and_dynamic_reads(source: str) -> list[str]:
    """Clock reads (datetime.now(), time.monotonic() ...) and dynamic imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in CLOCK_CALLS:
                owner = func.value
                owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                if owner_name in {"datetime", "date", "time"}:
                    found.append(f"line {node.lineno}: clock read {owner_name}.{func.attr}()")
            if isinstance(func, ast.Name) and func.id == "__import__":
                found.append(f"line {node.lineno}: dynamic import __import__()")
            if isinstance(func, ast.Attribute) and func.attr == "import_module":
                found.append(f"line {node.lineno}: dynamic import import_module()")
    return found


def violations(mod: Module, known: set[str], *, core: bool | None = None) -> list[str]:
    """Everything ``mod`` does against the two rules; empty when clean."""
    core = is_core(mod) if core is None else core
    external, internal = imports(mod, known)
    label = mod.name or "dnsserve"
    out = []
    if core:
        for name in sorted(external & FORBIDDEN_IN_CORE):
            out.append(f"{label} (core) imports {name}")
        for name in sorted(internal & EDGE):
            out.append(f"{label} (core) imports edge module {name}")
        out += [f"{label} (core): {v}" for v in clock_and_dynamic_reads(mod.source)]
    here = LEVEL.get(mod.name)
    if here is not None:
        for target in sorted(internal):
            there = LEVEL.get(target)
            if there is None:
                continue  # reported by test_every_module_is_placed
            if there == here:
                out.append(f"{label} imports its sibling {target or 'dnsserve'} (same level)")
            elif there < here:
                out.append(f"{label} imports {target} from a level above it (upward import)")
    return out


MODULES = package_modules()
KNOWN = {m.name for m in MODULES}


def test_package_found() -> None:
    names = {m.name for m in MODULES}
    assert {"", "errors"} <= names, names


def test_every_module_is_placed() -> None:
    unplaced = sorted(m.name for m in MODULES if m.name not in LEVEL)
    assert not unplaced, (
        f"modules not on any level of DESIGN.md's import chain: {unplaced}; "
        "add each to LEVELS in tests/test_architecture.py (and to DESIGN.md)"
    )


def test_core_modules_are_known() -> None:
    """The core list of DESIGN.md exists as far as it is built; nothing in both lists."""
    assert not CORE & EDGE
    assert {"wire", "answer.engine", "zones.table"} <= KNOWN


@pytest.mark.parametrize("mod", MODULES, ids=[m.name or "dnsserve" for m in MODULES])
def test_module_follows_design(mod: Module) -> None:
    assert violations(mod, KNOWN) == []


def test_declared_core_modules_detected() -> None:
    """Modules that call themselves pure are checked as core (e.g. answer.prebuilt)."""
    declared = {m.name for m in MODULES if m.name not in CORE and is_core(m)}
    for name in declared:
        assert name not in EDGE
    fake = Module("answer.fake", '"""Fake.\n\nPure: no I/O."""\nimport socket\n')
    assert is_core(fake)
    assert violations(fake, KNOWN | {"answer.fake"}) == ["answer.fake (core) imports socket"]


# --- the checker itself can fail ----------------------------------------------

FAKE_CASES: list[tuple[str, str, bool, list[str]]] = [
    ("wire", "import socket\n", True, ["wire (core) imports socket"]),
    ("wire", "import os.path\nfrom socket import AF_INET\n", True, ["wire (core) imports socket"]),
    ("zones.table", "import time\n", True, ["zones.table (core) imports time"]),
    (
        "answer.engine",
        "def f():\n    import asyncio\n",
        True,
        ["answer.engine (core) imports asyncio"],
    ),
    (
        "answer.policies",
        "from datetime import datetime\nx = datetime.now()\n",
        True,
        ["answer.policies (core): line 2: clock read datetime.now()"],
    ),
    (
        "answer.snapshot",
        "from dnsserve import net\n",
        True,
        [
            "answer.snapshot (core) imports edge module net",
            "answer.snapshot imports net from a level above it (upward import)",
        ],
    ),
    (
        "health.tracker",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dnsserve.config import X\n",
        True,
        [
            "health.tracker (core) imports edge module config",
            "health.tracker imports config from a level above it (upward import)",
        ],
    ),
    (
        "answer.engine",
        "from ..zones import load\n",
        True,
        [
            "answer.engine (core) imports edge module zones.load",
            "answer.engine imports zones.load from a level above it (upward import)",
        ],
    ),
    ("net", "from dnsserve import store\n", False, ["net imports its sibling store (same level)"]),
    ("net", "import dnsserve.store\n", False, ["net imports its sibling store (same level)"]),
    (
        "wire",
        "from dnsserve.answer import engine\n",
        True,
        [
            "wire imports answer.engine from a level above it (upward import)",
        ],
    ),
    (
        "answer.engine",
        "import importlib\nm = importlib.import_module('socket')\n",
        True,
        [
            "answer.engine (core): line 2: dynamic import import_module()",
        ],
    ),
    # Clean sources: downward imports, stdlib, dnspython.
    (
        "answer.engine",
        "from dnsserve import wire\nfrom . import snapshot\nimport dns.name\n",
        True,
        [],
    ),
    ("app", "import asyncio, socket, time\nfrom dnsserve import net, store\n", False, []),
    ("net", "import asyncio\nfrom dnsserve.answer.engine import Engine\n", False, []),
]


@pytest.mark.parametrize(
    ("name", "source", "core", "expected"),
    FAKE_CASES,
    ids=[f"{c[0]}:{i}" for i, c in enumerate(FAKE_CASES)],
)
def test_checker_on_fake_modules(name: str, source: str, core: bool, expected: list[str]) -> None:
    mod = Module(name, source)
    assert sorted(violations(mod, KNOWN, core=core)) == sorted(expected)


def test_checker_flags_socket_in_a_core_module() -> None:
    """The self-test the brief asks for, spelled out."""
    mod = Module("answer.engine", '"""Engine."""\nimport socket\n\ndef respond(): ...\n')
    found = violations(mod, KNOWN)
    assert found == ["answer.engine (core) imports socket"]
