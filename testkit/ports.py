"""Free loopback ports: one for UDP and TCP on one address, or one TCP port on several.

A port is probed free and the probe closed; the server that is handed it binds
it a moment later. Two things could take it in between: a client socket (the
kernel gives clients ports from its ephemeral range) and a server of another
pytest-xdist worker probing at the same time. So ports are drawn at random
below the ephemeral range, from a block of their own for each xdist worker
(``PYTEST_XDIST_WORKER``, gw0, gw1, ...): neither can take them.

Must not: keep a socket open (every probe socket is closed before returning),
or try without bound.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
from collections.abc import Iterable
from pathlib import Path

TRIES = 50
FIRST = 10_000  # the lowest port drawn
BLOCK = 4_000  # ports per xdist worker


def _block() -> range | None:
    """This process's ports: its xdist worker's block below the ephemeral range, or
    None (the kernel's own choice) when that block would reach into it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        index = int(worker)
    except (OSError, ValueError, IndexError):
        return None
    start = FIRST + index * BLOCK
    return range(start, start + BLOCK) if start + BLOCK <= low else None


_BLOCK = _block()
_RANDOM = random.Random()  # not the tests' seeded one


def _candidate(family: socket.AddressFamily, host: str) -> int:
    if _BLOCK is not None:
        return _RANDOM.choice(_BLOCK)
    with socket.socket(family, socket.SOCK_STREAM) as t:
        t.bind((host, 0))
        return int(t.getsockname()[1])


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` (bounded tries)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(TRIES):
        port = _candidate(family, host)
        try:
            with socket.socket(family, socket.SOCK_STREAM) as t, \
                    socket.socket(family, socket.SOCK_DGRAM) as u:
                t.bind((host, port))
                u.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port found on {host}")


def common_port(hosts: Iterable[str]) -> int:
    """A TCP port free on every one of ``hosts`` (a monitor has one port for all members)."""
    hosts = list(hosts)
    for _ in range(TRIES):
        port = free_port(hosts[0])
        with contextlib.ExitStack() as stack:
            try:
                for host in hosts[1:]:
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no port free on all of {hosts}")
