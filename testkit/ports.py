"""Free loopback ports: one for UDP and TCP on one address, or one TCP port on several.

Must not: keep a socket open (every probe socket is closed before returning),
or try without bound.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable

TRIES = 50


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` (bounded tries)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(TRIES):
        with socket.socket(family, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
            with socket.socket(family, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
            return int(port)
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
