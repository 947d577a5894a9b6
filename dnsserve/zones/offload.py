"""Loading zone files in a spawned process, so a reload never starves the answers.

Owns running ``zones.load.load_zones`` in a child process (multiprocessing's
"spawn" context: a fresh interpreter, nothing of the server's state) and
handing back its result in compact form: each table newly read as a
``PackedTable`` (a few flat byte strings, cheap to pickle), the problems,
files and fingerprints as they are. The server's process spends no time
parsing or validating; it only rebuilds the tables' dicts, a slice at a time
(``adopt``), between answers.

The child runs at a lower CPU priority (``CHILD_NICE``): on a machine whose
cores the answering processes need, the scheduler gives them the CPU first
and the load takes longer instead of the answers.

Small zone files (under ``OFFLOAD_BYTES`` in all) are read in the reload's
own thread, as before: starting a child would cost more than it saves.
Zones whose files did not change are not read by the child: it is told their
fingerprints, and the tables served now are kept. An online-signed zone is
signed in the child; it first asks for the zone's content as served, whose
signatures that still hold are kept (``zones.rrsign``). What the child
logs (a signed zone's "signed in" line) is handed back with its result and
logged by the server, as the same load in the server's process logs it.

Must not: decide what is served (``staging``), touch sockets or the state
file, or leave a child running: ``ChildLoad.kill`` ends one that is abandoned,
and a child is a daemon, ended with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import cast

import dns.name

from dnsserve.errors import DnsServeError
from dnsserve.zones.compile import ZoneProblem
from dnsserve.zones.files import DEFAULT_RULES, FileRules
from dnsserve.zones.load import ZONE_SUFFIX, Fingerprint, LoadedZones, load_zones, log_loaded
from dnsserve.zones.online import Signing
from dnsserve.zones.table import PackedTable, ZoneTable, pack_table, unpack_steps
from dnsserve.zones.versions import (
    ZoneContent,
    content_hash,
    content_steps,
    diff,
    zone_content,
)

log = logging.getLogger("dnsserve")

# Below this many bytes of zone files a reload reads them in its own thread: a
# child costs about a second to start (an interpreter, dnspython), more than
# reading a megabyte of zone files, and holds the GIL for no time worth saving.
OFFLOAD_BYTES = 1 << 20
CHILD_NICE = 10  # added to the child's nice value: answers come before a reload
# ``adopt`` holds the loop at most about this long at a time (its steps: owners of
# a table, records of a content, each about a millisecond's work)
ADOPT_SLICE = 0.002
ADOPT_PAUSE = 0.004  # and sleeps this long between two (``reload.warm`` says why)
ADOPT_OWNERS = 500
ADOPT_RECORDS = 1_000
# the child asks for served contents at most twice: the online-signed zones' before
# it signs them, the other zones read again after
_ASKS = 2


def worth_a_child(directory: Path, extra: Mapping[dns.name.Name, Path] | None) -> bool:
    """Whether the zone files (without their includes) are large enough to read in a child."""
    total = 0
    paths = [*directory.glob(f"*{ZONE_SUFFIX}"), *(extra or {}).values()]
    for path in paths:
        with contextlib.suppress(OSError):
            total += path.stat().st_size
        if total >= OFFLOAD_BYTES:
            return True
    return False


# A stand-in for a table the child need not have: only its identity is used.
_KEPT = cast(ZoneTable, object())


@dataclass(frozen=True, slots=True)
class Previous:
    """What the child needs of the load served now to skip unchanged zones."""

    problems: tuple[ZoneProblem, ...]
    files: dict[dns.name.Name, Path]
    fingerprints: dict[dns.name.Name, Fingerprint]

    @classmethod
    def of(cls, loaded: LoadedZones) -> Previous:
        prints = {o: f for o, f in loaded.fingerprints.items() if o in loaded.tables}
        return cls(loaded.problems, dict(loaded.files), prints)

    def stand_in(self) -> LoadedZones:
        return LoadedZones(
            MappingProxyType(dict.fromkeys(self.fingerprints, _KEPT)), self.problems,
            MappingProxyType(self.files), MappingProxyType(self.fingerprints),
        )


@dataclass(frozen=True, slots=True)
class Packed:
    """The child's load, tables packed; ``reused`` zones' tables stay the parent's."""

    packed: dict[dns.name.Name, PackedTable]
    problems: tuple[ZoneProblem, ...]
    files: dict[dns.name.Name, Path]
    fingerprints: dict[dns.name.Name, Fingerprint]
    reused: frozenset[dns.name.Name]
    # each packed table's canonical content (``ZoneContent.to_wire``): computed
    # here, it costs the answering process no sorting of a million records
    contents: dict[dns.name.Name, bytes]
    # each packed zone that was served, compared here with the content served
    # (the parent sent it): what the guard and the state file need of the diff
    compared: dict[dns.name.Name, Compared] = field(default_factory=dict)
    # what the child logged ((level, message): an online-signed zone's "signed in"
    # line), logged again by the parent: a spawned child has no logging of its own
    logged: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Compared:
    """A zone's new content beside the one served: the diff and both hashes."""

    removed: tuple[bytes, ...]
    added: tuple[bytes, ...]
    old_hash: str  # ``content_hash`` of the content served
    new_hash: str


def compare(old_wire: bytes, new: ZoneContent) -> Compared:
    """``new`` beside the content served (``old_wire``: its ``to_wire``)."""
    changes = diff(ZoneContent.from_wire(new.origin, old_wire), new)
    return Compared(tuple(changes.removed), tuple(changes.added),
                    hashlib.sha256(old_wire).hexdigest(),
                    content_hash(new))


def load_packed(
    directory: Path,
    previous: Previous | None,
    extra: dict[dns.name.Name, Path] | None = None,
    rules: FileRules = DEFAULT_RULES,
    served: Callable[[list[dns.name.Name]], dict[dns.name.Name, bytes]] | None = None,
    signing: dict[dns.name.Name, Signing] | None = None,
) -> Packed:
    """``load_zones`` with its new tables packed (what the child runs); ``extra``:
    zone files from elsewhere (secondary zones' copies), as ``load_zones`` takes;
    ``rules``: the bounds the files are read under (``zones.files``); ``served``
    gives the served content (``to_wire``) of the zones read again, each
    compared with its new content here."""
    asked: dict[dns.name.Name, bytes] = {}
    if signing and served is not None:
        # the online-signed zones as served: their signatures that still hold are kept
        asked = served(list(signing))
    loaded = load_zones(
        directory, log_problems=False, extra=extra,
        previous=previous.stand_in() if previous is not None else None, rules=rules,
        signing=signing,
        signed_before={o: ZoneContent.from_wire(o, w) for o, w in asked.items() if w},
    )
    fresh = {o: t for o, t in loaded.tables.items() if o not in loaded.reused}
    contents = {o: zone_content(t) for o, t in fresh.items()}
    missing = [o for o in fresh if o not in asked]
    old = {**asked, **served(missing)} if served is not None and missing else asked
    return Packed(
        {o: pack_table(t) for o, t in fresh.items()}, loaded.problems, dict(loaded.files),
        dict(loaded.fingerprints), loaded.reused,
        {o: c.to_wire() for o, c in contents.items()},
        {o: compare(old[o], contents[o]) for o in contents if old.get(o)},
    )


def _child_main(
    conn: multiprocessing.connection.Connection,
    back: multiprocessing.connection.Connection,
    directory: str,
    previous: Previous | None,
    extra: dict[dns.name.Name, Path] | None,
    rules: FileRules,
    signing: dict[dns.name.Name, Signing] | None = None,
) -> None:
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICE)

    def served(origins: list[dns.name.Name]) -> dict[dns.name.Name, bytes]:
        conn.send(_Ask(tuple(origins)))  # the parent sends each in chunks, b"" after
        out: dict[dns.name.Name, bytes] = {}
        for origin in origins:
            chunks = list(iter(back.recv_bytes, b""))
            out[origin] = b"".join(chunks)
        return out

    logged = _Kept()
    log.addHandler(logged)
    log.setLevel(logging.INFO)
    log.propagate = False  # nothing of the child's reaches its stderr: the parent logs it
    try:
        result: object = replace(
            load_packed(Path(directory), previous, extra, rules, served, signing),
            logged=tuple(logged.lines))
    except BaseException as exc:  # sent back, raised in the parent
        result = DnsServeError(f"loading zones in a child process failed: {exc!r}")
    conn.send(result)
    conn.close()


class _Kept(logging.Handler):
    """The child's log records, kept as (level, message) to send to the parent."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


@dataclass(frozen=True, slots=True)
class _Ask:
    """The child asks for the served content of the zones it read again."""

    origins: tuple[dns.name.Name, ...]


class ChildLoad:
    """One load of a zones directory in a spawned child process."""

    def __init__(
        self,
        directory: Path,
        previous: LoadedZones | None,
        extra: dict[dns.name.Name, Path] | None = None,
        rules: FileRules = DEFAULT_RULES,
        served: Mapping[dns.name.Name, ZoneContent] | None = None,
        signing: dict[dns.name.Name, Signing] | None = None,
    ) -> None:
        self.directory = directory
        self.signing = signing or {}
        self.extra = extra
        self.rules = rules
        self.served = served or {}  # what is served now: compared in the child
        self.previous = Previous.of(previous) if previous is not None else None
        self._process: multiprocessing.process.BaseProcess | None = None

    def run(self) -> Packed:
        """Start the child, wait for its result (blocking: call it from a thread)."""
        ctx = multiprocessing.get_context("spawn")
        receive, send = ctx.Pipe(duplex=False)
        back_receive, back = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_child_main,
            args=(send, back_receive, str(self.directory), self.previous, self.extra,
                  self.rules, self.signing),
            name="dnsserve-zone-load", daemon=True,
        )
        self._process = process
        process.start()
        send.close()
        back_receive.close()
        try:
            result = receive.recv()
            for _ in range(_ASKS):
                if not isinstance(result, _Ask):
                    break
                self._send_served(back, result.origins)
                result = receive.recv()
        except EOFError:
            process.join(5)
            raise DnsServeError(
                f"the process loading zones ended without a result (exit code "
                f"{process.exitcode})"
            ) from None
        finally:
            receive.close()
            back.close()
            process.join(5)
            self.kill()
        if isinstance(result, BaseException):
            raise result
        packed = cast(Packed, result)
        for level, message in packed.logged:
            log.log(level, "%s", message)
        log.info("zone files read in a child process (pid %s): %d read, %d unchanged",
                 process.pid, len(packed.packed), len(packed.reused))
        return packed

    def _send_served(
        self, back: multiprocessing.connection.Connection, origins: tuple[dns.name.Name, ...]
    ) -> None:
        """Each asked zone's served content (its stored bytes: no copy is made
        here), in one message (none when it was not served), then b""."""
        for origin in origins:
            content = self.served.get(origin)
            if content is not None and len(content):
                back.send_bytes(content.to_wire())
            back.send_bytes(b"")

    def kill(self) -> None:
        """End the child if it still runs (an abandoned reload)."""
        process = self._process
        if process is not None and process.is_alive():
            process.kill()
            process.join(5)


async def adopt(packed: Packed, previous: LoadedZones | None, directory: Path) -> LoadedZones:
    """The child's load as ``LoadedZones``, its tables rebuilt on this loop a slice
    at a time (answers keep flowing between slices); problems logged."""
    until = time.perf_counter() + ADOPT_SLICE
    for step in adopt_steps(packed, previous, directory):
        if step is not None:
            return step
        if time.perf_counter() >= until:
            await asyncio.sleep(ADOPT_PAUSE)  # asleep, the process is woken by a query
            until = time.perf_counter() + ADOPT_SLICE
    raise AssertionError("adopt_steps ends with the load")  # pragma: no cover


def adopt_now(packed: Packed, previous: LoadedZones | None, directory: Path) -> LoadedZones:
    """``adopt`` in one go (a thread of a process that answers no query)."""
    for step in adopt_steps(packed, previous, directory):
        if step is not None:
            return step
    raise AssertionError("adopt_steps ends with the load")  # pragma: no cover


def adopt_steps(
    packed: Packed, previous: LoadedZones | None, directory: Path
) -> Iterator[LoadedZones | None]:
    """The child's load rebuilt a slice at a time: None after each slice, the load last."""
    tables: dict[dns.name.Name, ZoneTable] = {}
    contents: dict[dns.name.Name, ZoneContent] = {}
    for origin in packed.files:
        if origin in packed.reused:
            assert previous is not None
            tables[origin] = previous.tables[origin]
            continue
        if origin not in packed.packed:
            continue
        for step in unpack_steps(packed.packed[origin], ADOPT_OWNERS):
            if step is None:
                yield None
            else:
                tables[origin] = step
        for content in content_steps(origin, packed.contents[origin], ADOPT_RECORDS):
            if content is None:
                yield None
            else:
                contents[origin] = content
    loaded = LoadedZones(
        MappingProxyType(tables), packed.problems, MappingProxyType(packed.files),
        MappingProxyType(packed.fingerprints), packed.reused, MappingProxyType(contents),
    )
    log_loaded(loaded, directory)
    yield loaded
