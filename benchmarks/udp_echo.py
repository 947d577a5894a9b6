"""The floor under bench_workers: a Python UDP server on uvloop that does nothing.

Owns one measuring tool: ``python -m benchmarks.udp_echo PORT N`` runs N
processes, each with its own SO_REUSEPORT socket on 127.0.0.1:PORT (as
dnsserve's workers), that answer every datagram with itself, QR set and
REFUSED, through the same uvloop ``DatagramProtocol`` path as ``net._Udp``.
What one process costs per query against what two cost at the same rate is
what the interpreter and the event loop add per wake-up, with no engine.

The parent waits for SIGTERM, then stops its children by PID.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import uvloop


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.transport.sendto(data[:2] + b"\x81\x05" + data[4:], addr)  # type: ignore[attr-defined]


async def _serve(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.setblocking(False)
    await asyncio.get_running_loop().create_datagram_endpoint(_Echo, sock=sock)
    await asyncio.Event().wait()


def main(argv: list[str]) -> int:
    port, count = int(argv[0]), int(argv[1])
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
            uvloop.run(_serve(port))
            os._exit(0)
        children.append(pid)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for pid in children:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    raise SystemExit(main(sys.argv[1:]))
