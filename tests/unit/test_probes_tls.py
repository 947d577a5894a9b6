"""health.probes: an https probe uses the TLS context it is given and never builds its own.

The monitor builds one context per TLS setting (``health.tls``) and passes it
in; an https probe called without one refuses, before any connection.
Probes against real backends are in tests/integration/test_probes.py.
"""

from __future__ import annotations

import pytest
import trio

from dnsserve.health.probes import CheckKind, CheckSpec, probe


def test_https_probe_needs_an_injected_context() -> None:
    spec = CheckSpec(kind=CheckKind.HTTPS, port=443, path="/", timeout=2.0)
    with pytest.raises(ValueError, match=r"ssl\.SSLContext"):
        trio.run(probe, spec, "127.0.0.1")
