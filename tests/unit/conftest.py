"""Unit tests run without the network and without subprocesses, and this makes sure.

An autouse fixture replaces the socket calls that reach a peer or an address
(connect, bind, listen, sendto) and process creation with a failure that
names the test's mistake: such a test belongs in tests/integration. A
``socketpair`` (trio's wake-up channel) is still allowed: it has no address.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable

import pytest

BLOCKED_SOCKET_CALLS = ("connect", "connect_ex", "bind", "listen", "sendto")


class NotAUnitTest(AssertionError):
    """A unit test used the network or started a process."""


def _refuse(what: str) -> Callable[..., object]:
    def refuse(*args: object, **kwargs: object) -> object:
        raise NotAUnitTest(f"a unit test must not {what}: move it to tests/integration")

    return refuse


@pytest.fixture(autouse=True)
def no_network_no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in BLOCKED_SOCKET_CALLS:
        monkeypatch.setattr(socket.socket, name, _refuse(f"call socket.{name}()"))
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse("start a process"))
