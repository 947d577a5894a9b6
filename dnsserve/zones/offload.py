"""Loading zone files in a spawned process, so a reload never starves the answers.

Owns running ``zones.load.load_zones`` in a child process (multiprocessing's
"spawn" context: a fresh interpreter, nothing of the server's state) and
handing back its result in compact form: each table newly read as a
``PackedTable`` (a few flat byte strings, cheap to pickle), the problems,
files and fingerprints as they are. The server's process spends no time
parsing or validating; it only rebuilds the tables' dicts, a slice at a time
(``adopt``), between answers.

Small zone files (under ``OFFLOAD_BYTES`` in all) are read in the reload's
own thread, as before: starting a child would cost more than it saves.
Zones whose files did not change are not read by the child: it is told their
fingerprints, and the tables served now are kept.

Must not: decide what is served (``staging``), touch sockets or the state
file, or leave a child running: ``ChildLoad.kill`` ends one that is abandoned,
and a child is a daemon, ended with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import cast

import dns.name

from dnsserve.errors import DnsServeError
from dnsserve.zones.compile import ZoneProblem
from dnsserve.zones.files import DEFAULT_RULES, FileRules
from dnsserve.zones.load import ZONE_SUFFIX, Fingerprint, LoadedZones, load_zones, log_loaded
from dnsserve.zones.table import PackedTable, ZoneTable, pack_table, unpack_steps
from dnsserve.zones.versions import ZoneContent, content_steps, zone_content

log = logging.getLogger("dnsserve")

# Below this many bytes of zone files a reload reads them in its own thread: a
# child costs about a second to start (an interpreter, dnspython), more than
# reading a megabyte of zone files, and holds the GIL for no time worth saving.
OFFLOAD_BYTES = 1 << 20


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


def load_packed(
    directory: Path,
    previous: Previous | None,
    extra: dict[dns.name.Name, Path] | None = None,
    rules: FileRules = DEFAULT_RULES,
) -> Packed:
    """``load_zones`` with its new tables packed (what the child runs); ``extra``:
    zone files from elsewhere (secondary zones' copies), as ``load_zones`` takes;
    ``rules``: the bounds the files are read under (``zones.files``)."""
    loaded = load_zones(
        directory, log_problems=False, extra=extra,
        previous=previous.stand_in() if previous is not None else None, rules=rules,
    )
    fresh = {o: t for o, t in loaded.tables.items() if o not in loaded.reused}
    return Packed(
        {o: pack_table(t) for o, t in fresh.items()}, loaded.problems, dict(loaded.files),
        dict(loaded.fingerprints), loaded.reused,
        {o: zone_content(t).to_wire() for o, t in fresh.items()},
    )


def _child_main(
    conn: multiprocessing.connection.Connection,
    directory: str,
    previous: Previous | None,
    extra: dict[dns.name.Name, Path] | None,
    rules: FileRules,
) -> None:
    try:
        result: object = load_packed(Path(directory), previous, extra, rules)
    except BaseException as exc:  # sent back, raised in the parent
        result = DnsServeError(f"loading zones in a child process failed: {exc!r}")
    conn.send(result)
    conn.close()


class ChildLoad:
    """One load of a zones directory in a spawned child process."""

    def __init__(
        self,
        directory: Path,
        previous: LoadedZones | None,
        extra: dict[dns.name.Name, Path] | None = None,
        rules: FileRules = DEFAULT_RULES,
    ) -> None:
        self.directory = directory
        self.extra = extra
        self.rules = rules
        self.previous = Previous.of(previous) if previous is not None else None
        self._process: multiprocessing.process.BaseProcess | None = None

    def run(self) -> Packed:
        """Start the child, wait for its result (blocking: call it from a thread)."""
        ctx = multiprocessing.get_context("spawn")
        receive, send = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_child_main,
            args=(send, str(self.directory), self.previous, self.extra, self.rules),
            name="dnsserve-zone-load", daemon=True,
        )
        self._process = process
        process.start()
        send.close()
        try:
            result = receive.recv()
        except EOFError:
            process.join(5)
            raise DnsServeError(
                f"the process loading zones ended without a result (exit code "
                f"{process.exitcode})"
            ) from None
        finally:
            receive.close()
            process.join(5)
            self.kill()
        if isinstance(result, BaseException):
            raise result
        packed = cast(Packed, result)
        log.info("zone files read in a child process (pid %s): %d read, %d unchanged",
                 process.pid, len(packed.packed), len(packed.reused))
        return packed

    def kill(self) -> None:
        """End the child if it still runs (an abandoned reload)."""
        process = self._process
        if process is not None and process.is_alive():
            process.kill()
            process.join(5)


async def adopt(packed: Packed, previous: LoadedZones | None, directory: Path) -> LoadedZones:
    """The child's load as ``LoadedZones``, its tables rebuilt on this loop a slice
    at a time (answers keep flowing between slices); problems logged."""
    tables: dict[dns.name.Name, ZoneTable] = {}
    contents: dict[dns.name.Name, ZoneContent] = {}
    for origin in packed.files:
        if origin in packed.reused:
            assert previous is not None
            tables[origin] = previous.tables[origin]
            continue
        if origin not in packed.packed:
            continue
        for step in unpack_steps(packed.packed[origin]):
            if step is None:
                await asyncio.sleep(0)
            else:
                tables[origin] = step
        for content in content_steps(origin, packed.contents[origin]):
            if content is None:
                await asyncio.sleep(0)
            else:
                contents[origin] = content
    loaded = LoadedZones(
        MappingProxyType(tables), packed.problems, MappingProxyType(packed.files),
        MappingProxyType(packed.fingerprints), packed.reused, MappingProxyType(contents),
    )
    log_loaded(loaded, directory)
    return loaded

