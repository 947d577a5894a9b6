"""health.tls: one TLS context per TLS setting, none for other kinds of check.

Building a context opens no connection; the contexts' use against real HTTPS
backends is in tests/integration/test_probes.py.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from dnsserve.health.probes import CheckKind, CheckSpec
from dnsserve.health.tls import TlsContexts


def test_one_context_per_tls_setting() -> None:
    contexts = TlsContexts()
    a = contexts.for_spec(CheckSpec(kind=CheckKind.HTTPS, host="a.example.test"))
    b = contexts.for_spec(CheckSpec(kind=CheckKind.HTTPS, host="b.example.test", port=8443))
    unverified = contexts.for_spec(CheckSpec(kind=CheckKind.HTTPS, tls_verify=False))
    assert a is not None and a is b  # same (tls_verify, ca_file)
    assert a.verify_mode is ssl.CERT_REQUIRED and a.check_hostname
    assert unverified is not None and unverified is not a
    assert unverified.verify_mode is ssl.CERT_NONE and not unverified.check_hostname
    assert contexts.for_spec(CheckSpec(kind=CheckKind.HTTP, port=80)) is None
    assert contexts.for_spec(CheckSpec(kind=CheckKind.TCP, port=22)) is None


def test_a_bad_ca_file_raises_each_time(tmp_path: Path) -> None:
    contexts = TlsContexts()
    spec = CheckSpec(kind=CheckKind.HTTPS, ca_file=str(tmp_path / "missing.pem"))
    for _ in range(2):
        with pytest.raises(OSError):
            contexts.for_spec(spec)
