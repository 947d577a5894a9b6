"""health.clients: one httpx client per TLS setting, none for other kinds of check.

Building a client opens no connection; the clients' use against real HTTP(S)
backends is in tests/integration/test_probes.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from dnsserve.health.clients import HttpClients
from dnsserve.health.probes import CheckKind, CheckSpec


def test_one_client_per_tls_setting() -> None:
    clients = HttpClients()
    http = clients.for_spec(CheckSpec(kind=CheckKind.HTTP, port=80))
    https = clients.for_spec(CheckSpec(kind=CheckKind.HTTPS, host="a.example.test"))
    unverified = clients.for_spec(CheckSpec(kind=CheckKind.HTTPS, tls_verify=False))
    assert http is not None and http is https  # same (tls_verify, ca_file)
    assert unverified is not None and unverified is not http
    assert clients.for_spec(CheckSpec(kind=CheckKind.TCP, port=22)) is None
    trio.run(clients.aclose)
    assert http.is_closed and unverified.is_closed


def test_a_bad_ca_file_raises_each_time(tmp_path: Path) -> None:
    clients = HttpClients()
    spec = CheckSpec(kind=CheckKind.HTTPS, ca_file=str(tmp_path / "missing.pem"))
    for _ in range(2):
        with pytest.raises(OSError):
            clients.for_spec(spec)
