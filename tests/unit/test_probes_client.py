"""health.probes: an HTTP probe uses the client it is given and never builds its own.

The composition root builds one httpx client per monitor and passes it in
(DESIGN.md); a probe called without one refuses, before any connection.
Probes against real backends are in tests/integration/test_probes.py.
"""

from __future__ import annotations

import pytest
import trio

from dnsserve.health.probes import CheckKind, CheckSpec, probe


def http(port: int, path: str, **kw: object) -> CheckSpec:
    return CheckSpec(kind=CheckKind.HTTP, port=port, path=path, timeout=2.0, **kw)  # type: ignore[arg-type]


def test_http_probe_needs_an_injected_client() -> None:
    with pytest.raises(ValueError, match=r"httpx\.AsyncClient"):
        trio.run(probe, http(80, "/"), "127.0.0.1")
