"""The state file's writer thread: every write off the main loop and the monitor thread.

Owns the order of writes (one thread, first in, first done), the file's
lifecycle while the server runs (opened at start, reopened when replaced,
retried when it cannot be opened, a damaged file moved aside), and what an
operator is told when it cannot be written: one log line with the cause,
``problem`` and ``notes`` for status, ``failures`` for metrics.

Must not: decide what to write (its owner, ``healthsync``, does) or let a
state-file failure reach DNS.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dnsserve.errors import DnsServeError, StateError
from dnsserve.store import Store

log = logging.getLogger(__name__)


Write = Callable[[Store], object]  # one state-file write, run by the Writer's thread


def _REOPEN(store: Store) -> None:
    """Marks a request to reopen the state file (``Writer.reopen``)."""


class Writer:
    """One thread that applies state-file writes in the order they were submitted.

    The monitor thread and the main loop hand their writes here, so a slow,
    locked, full or read-only state file delays the record of a change, never
    the change itself, a check or an answer.

    A state file that cannot be opened or written never stops the server:
    health state lives in memory, the first failure is logged once (naming
    the cause: permission, read-only, disk full, locked), ``problem`` says it
    for status and ``failures`` counts for metrics. The writer retries: it
    reopens a file it could not open (at most every ``retry`` seconds), and
    after the first write that works again it calls ``on_recover(store)`` so
    the owner can write its current state whole, and logs the recovery.
    """

    def __init__(
        self,
        path: Path,
        *,
        on_recover: Callable[[Store], None] | None = None,
        max_pending: int = 100_000,
        retry: float = 5.0,
    ) -> None:
        self.path = path
        self.notes: list[str] = []  # what happened to the file that an operator must know
        self._on_recover = on_recover
        self._retry = retry
        self._next_open = 0.0
        self.store: Store | None = None
        self.problem: str | None = None  # why the state file is not being written
        self.failures = 0  # writes that failed or were dropped
        self.dropped = 0  # writes not queued: the queue was full
        self._queue: queue.Queue[Write | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="dnsserve-state", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, write: Write) -> None:
        """Run ``write(store)`` in the writer thread, after earlier writes.

        Pass a bound call such as ``functools.partial(Store.save_state,
        member=m, health=h)``: the method is looked up here, in the caller's
        thread, so a renamed method fails where it is named, not later.
        """
        try:
            self._queue.put_nowait(write)
        except queue.Full:
            self.dropped += 1
            self.failures += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("state file writes are %d behind; dropped %d", self._queue.qsize(),
                          self.dropped)

    def close(self, timeout: float = 5.0) -> None:
        """Finish the pending writes (bounded by ``timeout``), stop, close the file."""
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            self._thread.join(timeout)
        if self.store is not None:
            self.store.close()

    def open_now(self) -> Store | None:
        """Open the state file in the caller's thread (at start); None when it cannot be.

        A file that is not a state file (damaged, truncated, another program's)
        is moved aside, kept for a post-mortem and named in the log, and a
        fresh one started: what it held is lost, DNS is not.
        """
        try:
            self.store = Store.open(self.path)
        except StateError as exc:
            if cause(exc) != "damaged" or not self._move_aside(exc):
                self._failed(exc)
                return None
            try:
                self.store = Store.open(self.path)
            except StateError as again:
                self._failed(again)
        return self.store

    def _move_aside(self, exc: StateError) -> bool:
        aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        try:
            self.path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        except OSError as move:
            log.error("%s; cannot move it aside: %s", exc, move)
            return False
        note = f"state file {self.path} was damaged ({exc}); moved to {aside}, started afresh"
        log.error("%s", note)
        self.notes.append(note)
        return True

    def reopen(self) -> None:
        """Close and open the state file again (it was deleted or replaced), after
        the writes already queued; then write the owner's state whole."""
        self.submit(_REOPEN)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if item is _REOPEN:
                self._reopen_now()
                continue
            store = self.store or self._reopen()
            if store is None:
                self.failures += 1
                continue
            try:
                item(store)
            except DnsServeError as exc:
                self._failed(exc)
            else:
                if self.problem is not None:
                    self._recovered(store)

    def _reopen_now(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        self._next_open = 0.0
        store = self._reopen()
        if store is not None and self._on_recover is not None:
            try:
                self._on_recover(store)
            except DnsServeError as exc:
                self._failed(exc)

    def _reopen(self) -> Store | None:
        now = time.monotonic()
        if now < self._next_open:
            return None
        self._next_open = now + self._retry
        return self.open_now()

    def _failed(self, exc: DnsServeError) -> None:
        self.failures += 1
        if self.problem is None:
            self.problem = f"{cause(exc)}: {exc}"
            log.error("state file not written (%s); health state is kept in memory and the "
                      "write retried", self.problem)

    def _recovered(self, store: Store) -> None:
        log.warning("state file %s is written again (was: %s)", store.path, self.problem)
        self.problem = None
        if self._on_recover is not None:
            try:
                self._on_recover(store)
            except DnsServeError as exc:
                self._failed(exc)


def cause(exc: BaseException) -> str:
    """The kind of a state-file failure, in words an operator acts on."""
    text = str(exc).lower()
    for words, kind in (
        (("readonly", "read-only"), "read-only"),
        (("disk is full", "no space"), "disk full"),
        (("locked", "busy"), "locked"),
        (("permission", "unable to open", "access"), "permission denied"),
        (("malformed", "not a database", "corrupt"), "damaged"),
    ):
        if any(w in text for w in words):
            return kind
    return "error"
