"""A probe error of our own host is a local error, no verdict on the member.

``health.probes`` marks a result ``local_error`` when the check could not run
here: out of file descriptors, buffers or memory (``LOCAL_ERRNOS``), found
anywhere in the error's chain (trio wraps the OSError; a nursery groups it). The
monitor then keeps the member's state: tests/integration/test_monitor.py runs
that with the descriptors really exhausted.
"""

from __future__ import annotations

import errno

import pytest
import trio

from dnsserve.health import probes
from dnsserve.health.probes import ProbeResult


def os_error(code: int) -> OSError:
    return OSError(code, errno.errorcode[code])


def wrapped(exc: BaseException) -> trio.BrokenResourceError:
    """The shape trio's streams give an OSError of the socket."""
    try:
        try:
            raise exc
        except OSError as inner:
            raise trio.BrokenResourceError("socket failed") from inner
    except trio.BrokenResourceError as outer:
        return outer


@pytest.mark.parametrize("code", sorted(probes.LOCAL_ERRNOS))
@pytest.mark.parametrize(
    "shape", [lambda e: e, wrapped, lambda e: ExceptionGroup("attempts", [e])],
    ids=["bare", "trio", "group"],
)
def test_local_errnos_are_local(code: int, shape: object) -> None:
    exc = shape(os_error(code))  # type: ignore[operator]
    result = probes._failure(exc)
    assert result.local_error and not result.ok
    assert result.reason == "local error"
    assert result.detail.startswith(errno.errorcode[code] + ":")


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connect refused"),
        (os_error(errno.EHOSTUNREACH), "unreachable"),
        (os_error(errno.ECONNABORTED), "connect error"),
        (wrapped(os_error(errno.EPIPE)), "protocol error"),
    ],
)
def test_errors_of_the_member_are_not_local(exc: BaseException, reason: str) -> None:
    result = probes._failure(exc)
    assert not result.local_error and result.reason == reason


def test_memory_error_is_local() -> None:
    cause = probes.local_cause(RuntimeError("probe"))
    assert cause is None
    memory = MemoryError()
    assert probes.local_cause(memory) is memory
    assert probes.local_result(memory) == ProbeResult(
        False, "local error", "MemoryError: ", local_error=True
    )
