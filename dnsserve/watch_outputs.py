"""What ``dnsserve watch`` tells: the ``on_deviation`` hook and its /metrics endpoint.

Edge [E]: owns running the hook (an argv list from ``shlex.split``, never a
shell; the deviation only in its environment, ``DNSSERVE_WATCH_*``; killed by
PID after its timeout or when the watch stops) and the Api that the control
server's code (``control.start_control``) serves for watch: /metrics and
/healthz, the rest 404. Must not: decide what deviates (``posture.watchdiff``)
or schedule rounds (``watch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence

from dnsserve.control_routes import ControlError, Doc, OverrideKind
from dnsserve.metrics import Registry
from dnsserve.posture.watchdiff import Deviation, Event

log = logging.getLogger("dnsserve.watch")

ENV = "DNSSERVE_WATCH_"


def hook_env(event: Event, dev: Deviation) -> dict[str, str]:
    return {f"{ENV}EVENT": event.value, f"{ENV}ZONE": dev.zone, f"{ENV}SERVER": dev.server,
            f"{ENV}KIND": dev.kind.value, f"{ENV}SUBJECT": dev.subject, f"{ENV}DETAIL": dev.detail}


async def run_hook(argv: list[str], event: Event, dev: Deviation, timeout: float) -> None:
    """Run ``argv`` with the deviation in its environment; killed (by PID) after ``timeout``."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env={**os.environ, **hook_env(event, dev)}, stdin=asyncio.subprocess.DEVNULL)
    except OSError as exc:
        log.warning("on_deviation %s: %s", argv[0], exc)
        return
    try:
        async with asyncio.timeout(timeout):
            code = await proc.wait()
    except TimeoutError:
        log.warning("on_deviation %s: killed after %.1f s", argv[0], timeout)
        return
    finally:  # a timeout, or the watch stopping: the hook does not outlive it
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
    if code:
        log.warning("on_deviation %s: exit status %d", argv[0], code)


class MetricsApi:
    """The control server's Api for watch: /metrics and /healthz; the rest is 404."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _none(self) -> ControlError:
        return ControlError(404, "dnsserve watch serves /metrics and /healthz only")

    def status(self) -> Doc:
        raise self._none()

    def answer(self, name: str, qtype: str, what_if_down: Sequence[str]) -> Doc:
        raise self._none()

    def events(self, since: float | None, member: str | None, limit: int) -> Sequence[Doc]:
        raise self._none()

    def set_override(self, member: str, kind: OverrideKind, duration: float | None,
                     reason: str, force: bool) -> Doc:
        raise self._none()

    def clear_override(self, member: str) -> Doc:
        raise self._none()

    async def reload(self, force: bool) -> Doc:
        raise self._none()

    def refresh(self, zone: str) -> Doc:
        raise self._none()

    def metrics(self) -> str:
        return self.registry.render()

    def healthz(self) -> tuple[bool, Doc]:
        return True, {"watch": "running"}
