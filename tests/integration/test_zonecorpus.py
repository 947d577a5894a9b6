"""The zone corpus (tests/data/zonecorpus): loaded as the peers load it, served as Knot serves it.

Owns three checks of ``manifest.toml``, the corpus's list of cases:

1. the peers' checkers (``knotc zone-check``, offline, for Knot 3.2, which
   ships no ``kzonecheck``; ``nsd-checkzone``; ``named-checkzone``) load or
   refuse each case as the manifest says, so the manifest cannot go stale;
2. dnsserve's loader does what the manifest says (clean, loaded with a
   warning at a line, or refused with an error at a line) and follows the
   rule: what all three peers load it loads, what all three refuse it
   refuses;
3. every case dnsserve loads is served (a real server on loopback, over TCP)
   as knotd serves it: every owner of the file, occluded ones included (a
   name below a cut gets the referral, below a DNAME the DNAME synthesis),
   with its types and a few more, and a name below each.

Must not: write into the corpus, talk to anything but loopback, or leave a
process running.
"""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.zone
import pytest

from dnsserve.zones.load import load_zones, origin_from_path
from testkit import TEST_DATA
from testkit.answers import aa, addresses, lines, query
from testkit.peers import Peer, canonical_zone_file, load_zone, required_binary, start_knot
from testkit.server import ServerProc, start_server

CORPUS = TEST_DATA / "zonecorpus"
MANIFEST: list[dict[str, Any]] = tomllib.loads((CORPUS / "manifest.toml").read_text())["case"]
PEERS = ("knot", "nsd", "bind")
CHECK_SECONDS = 30.0
TIMEOUT = 3.0


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["file"].removesuffix(".zone") for c in cases]


def test_manifest_names_every_case() -> None:
    on_disk = {p.name for p in CORPUS.glob("*.zone")}
    assert on_disk == {c["file"] for c in MANIFEST}
    for case in MANIFEST:
        assert {case[p] for p in PEERS} <= {"load", "refuse"}
        assert case["dnsserve"] in ("load", "warn", "refuse")
        agreed = {case[p] for p in PEERS}
        if len(agreed) > 1:
            assert case.get("note"), f"{case['file']}: the peers disagree: say why in a note"


# -- 1. the peers' checkers ------------------------------------------------------


def _knot_check(origin: str, path: Path, tmp: Path) -> bool:
    knotc = required_binary("knotc", "Knot DNS control tool")
    conf = tmp / "knot.conf"
    conf.write_text(
        f'server:\n    rundir: "{tmp}"\ndatabase:\n    storage: "{tmp}"\n'
        f'template:\n  - id: default\n    storage: "{path.parent}"\n    semantic-checks: on\n'
        f'zone:\n  - domain: "{origin}"\n    file: "{path}"\n'
    )
    return _run([knotc, "-c", str(conf), "zone-check", origin], path.parent)


def _nsd_check(origin: str, path: Path, tmp: Path) -> bool:
    return _run([required_binary("nsd-checkzone", "NSD checker"), origin, str(path)], path.parent)


def _bind_check(origin: str, path: Path, tmp: Path) -> bool:
    return _run([required_binary("named-checkzone", "BIND checker"), origin, str(path)],
                path.parent)


def _run(cmd: list[str], cwd: Path) -> bool:
    # $INCLUDE paths are relative to the zones directory: run there
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=CHECK_SECONDS, check=False)
    return done.returncode == 0


CHECKERS = {"knot": _knot_check, "nsd": _nsd_check, "bind": _bind_check}


@pytest.mark.parametrize("case", MANIFEST, ids=_ids(MANIFEST))
def test_peers_load_as_the_manifest_says(case: dict[str, Any], tmp_path: Path) -> None:
    path = CORPUS / case["file"]
    origin = origin_from_path(path).to_text()
    found = {
        peer: "load" if check(origin, path, tmp_path) else "refuse"
        for peer, check in CHECKERS.items()
    }
    assert found == {p: case[p] for p in PEERS}


# -- 2. dnsserve's loader ----------------------------------------------------------


@pytest.fixture(scope="module")
def loaded() -> Any:
    return load_zones(CORPUS, log_problems=False)


@pytest.mark.parametrize("case", MANIFEST, ids=_ids(MANIFEST))
def test_dnsserve_loads_as_the_manifest_says(case: dict[str, Any], loaded: Any) -> None:
    path = CORPUS / case["file"]
    origin = origin_from_path(path)
    problems = [p for p in loaded.problems if p.zone == origin.to_text()]
    severities = {p.severity for p in problems}
    if case["dnsserve"] == "refuse":
        assert origin not in loaded.tables
        assert "error" in severities
    else:
        assert origin in loaded.tables, [p.to_text() for p in problems]
        assert severities == ({"warning"} if case["dnsserve"] == "warn" else set())
    assert all(p.line > 0 or p.message.startswith("no SOA") for p in problems), problems
    agreed = {case[p] for p in PEERS}
    if agreed == {"load"}:
        assert case["dnsserve"] != "refuse"
    if agreed == {"refuse"}:
        assert case["dnsserve"] == "refuse"


# -- 3. served as Knot serves it ----------------------------------------------------

SERVED = [c for c in MANIFEST if c["dnsserve"] != "refuse"]
EXTRA_TYPES = ("A", "AAAA", "TXT", "NS", "DS", "MX")


def _named_expanded(path: Path, tmp: Path) -> Path:
    """``path`` as named-checkzone -D writes it: BIND's own reading, $GENERATE expanded."""
    origin = origin_from_path(path).to_text()
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / path.name
    subprocess.run(
        [required_binary("named-checkzone", "BIND checker"), "-D", "-o", str(out), origin,
         str(path)],
        cwd=path.parent, capture_output=True, timeout=CHECK_SECONDS, check=True,
    )
    return out


def _knot_file(case: dict[str, Any], tmp: Path) -> Path:
    path = CORPUS / case["file"]
    how = case.get("knot_file")
    if how == "expand":
        return canonical_zone_file(origin_from_path(path).to_text(), path, tmp)
    if how == "named":
        return _named_expanded(path, tmp)
    return CORPUS / how if how else path


@pytest.fixture(scope="module")
def knot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    tmp = tmp_path_factory.mktemp("knot-corpus")
    zones = {origin_from_path(CORPUS / c["file"]).to_text(): _knot_file(c, tmp / "zones")
             for c in SERVED}
    peer = start_knot(zones, tmp)
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    srv = start_server(tmp_path_factory.mktemp("corpus-server"), zones=CORPUS)
    try:
        yield srv
    finally:
        srv.stop()


def _questions(case: dict[str, Any], tmp: Path) -> list[tuple[str, str]]:
    """Every owner written in the file (occluded ones too) with its types and a few
    more, and a name below each owner."""
    path = CORPUS / case["file"]
    origin = origin_from_path(path)
    if case.get("knot_file") == "named":  # what dnspython cannot read, BIND expands
        path = _named_expanded(path, tmp)
    # dnspython keeps occluded data (it judges no placement) and skips outside owners
    zone = load_zone(origin.to_text(), path)
    out: set[tuple[str, str]] = set()
    for name, node in zone.items():
        types = {dns.rdatatype.to_text(r.rdtype) for r in node} | set(EXTRA_TYPES)
        out.update((name.to_text(), t) for t in types)
        if name.labels[0] != b"*":
            out.add((dns.name.from_text("below", name).to_text(), "A"))
    return sorted(out)


def _normal(r: dns.message.Message) -> tuple[object, ...]:
    return (r.rcode(), aa(r), sorted(lines(r.answer)), sorted(lines(r.authority)),
            sorted(addresses(r.additional)))


@pytest.mark.parametrize("case", SERVED, ids=_ids(SERVED))
def test_served_as_knot_serves_it(
    case: dict[str, Any], corpus_server: ServerProc, knot: Peer, tmp_path: Path
) -> None:
    questions = _questions(case, tmp_path)
    assert questions
    differ = []
    for qname, qtype in questions:
        q = query(qname, qtype)
        ours = dns.query.tcp(q, corpus_server.host, port=corpus_server.port, timeout=TIMEOUT)
        theirs = dns.query.tcp(q, knot.host, port=knot.port, timeout=TIMEOUT)
        if _normal(ours) != _normal(theirs):
            differ.append(f"{qname} {qtype}:\n  ours  {_normal(ours)}\n  knot  {_normal(theirs)}")
    assert not differ, "\n".join(differ)


def test_occluded_names_get_the_referral_and_the_synthesis(corpus_server: ServerProc) -> None:
    """The point of the corpus's first cases, stated by hand."""
    r = corpus_server.tcp(query("www.sub.occluded-cut.", "A"))
    assert not aa(r) and not r.answer
    assert lines(r.authority) == {"sub.occluded-cut. 3600 in ns ns.sub.occluded-cut."}
    r = corpus_server.tcp(query("www.old.occluded-dname.", "A"))
    assert aa(r)
    assert "www.old.occluded-dname. 3600 in cname www.new.example.net." in lines(r.answer)
    # the warnings are in the server's log, with file and line
    log = corpus_server.log_text()
    assert f"{CORPUS / 'occluded-cut.zone'}:8: warning: A at www.sub.occluded-cut." in log
    assert f"{CORPUS / 'out-of-zone.zone'}:7: warning: owner stray.example.net." in log


def test_generate_quoted_right_hand_side_served(corpus_server: ServerProc) -> None:
    """The quoted $GENERATE case, stated by hand (named-checkzone -D prints the same)."""
    r = corpus_server.tcp(query("host2.generate-quoted.", "TXT"))
    assert [rd.strings for rd in r.answer[0]] == [(b"v=spf1", b"-all")]
    r = corpus_server.tcp(query("g3.generate-quoted.", "TXT"))
    assert [rd.strings for rd in r.answer[0]] == [(b"g3",)]
    r = corpus_server.tcp(query("mx2.generate-quoted.", "MX"))
    assert lines(r.answer) == {"mx2.generate-quoted. 3600 in mx 10 mail2.generate-quoted."}


def test_raw_bytes_are_served_as_their_octets(corpus_server: ServerProc) -> None:
    """The raw-byte cases, stated by hand: each byte written is one octet on the wire."""
    r = corpus_server.tcp(query("latin1.raw8-txt.", "TXT"))
    assert [rd.strings for rd in r.answer[0]] == [(b"caf\xe9", b"caf\xe9", b'na\xefve "\xe0" \xff')]
    r = corpus_server.tcp(query("full.raw8-txt.", "TXT"))
    assert [rd.strings for rd in r.answer[0]] == [(b"\xe9" + b"\xe8" * 254,)]
    owner = dns.name.Name([b"CAF\xe9", b"raw8-owner", b""])  # ASCII case folds, 0xE9 stays
    r = corpus_server.tcp(query(owner.to_text(), "A"))
    assert addresses(r.answer) == {f"caf\\233.raw8-owner. 3600 in a 192.0.2.{i}" for i in (10, 11)}
    r = corpus_server.tcp(query("caf\\201.raw8-owner.", "A"))  # 0xC9 is not 0xE9's upper case
    assert addresses(r.answer) == {"caf\\201.raw8-owner. 3600 in a 192.0.2.12"}
    r = corpus_server.tcp(query("\\195\\169t\\195\\169.utf8-txt.", "A"))  # UTF-8 é, not IDNA
    assert addresses(r.answer) == {"\\195\\169t\\195\\169.utf8-txt. 3600 in a 192.0.2.20"}
    r = corpus_server.tcp(query("utf8.utf8-txt.", "TXT"))
    assert r.answer[0][0].strings == ("café ☃ 日本".encode(), "naïve".encode())
    log = corpus_server.log_text()
    assert f"{CORPUS / 'raw8-txt.zone'}:6: warning: a raw octet 0xe9" in log
