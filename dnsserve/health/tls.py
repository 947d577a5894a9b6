"""The TLS contexts the monitor injects into https probes.

Owns how a health check's ``ssl.SSLContext`` is built from a spec's TLS
settings (``tls_verify``: verify the certificate chain against the system's
trust store, or ``ca_file`` alone, and the name the check sends as SNI;
``tls_verify = false``: no verification at all), and keeping one context per
setting (``tls_verify``, ``ca_file``), built on first use: loading a trust
store costs milliseconds, far more than a check.

Must not: open connections, run checks or name their outcome (``probes`` and
``http11`` do), schedule or cancel them (``monitor`` does). Used from the
monitor's trio thread only.
"""

from __future__ import annotations

import ssl

from dnsserve.health.probes import CheckKind, CheckSpec


def build_context(spec: CheckSpec) -> ssl.SSLContext:
    """The client context for a spec's TLS settings.

    Raises OSError when ``ca_file`` is missing or not PEM (``ssl.SSLError``
    is an OSError).
    """
    if not spec.tls_verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif spec.ca_file:
        context = ssl.create_default_context(cafile=spec.ca_file)
    else:
        context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class TlsContexts:
    """One context per TLS setting, built on first use."""

    __slots__ = ("_contexts",)

    def __init__(self) -> None:
        self._contexts: dict[tuple[bool, str], ssl.SSLContext] = {}

    def for_spec(self, spec: CheckSpec) -> ssl.SSLContext | None:
        """The context a check of ``spec`` uses; None for kinds other than https.

        Raises OSError when ``ca_file`` is missing or not PEM; the next call
        tries again.
        """
        if spec.kind is not CheckKind.HTTPS:
            return None
        key = (spec.tls_verify, spec.ca_file)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = build_context(spec)
        return context
