"""The HTTP clients the monitor injects into http and https probes.

Owns how a health-check client is built (TLS verification or a CA file, no
pooling, no proxies from the environment, no redirects, no timeout of its
own: the monitor cancels a check at its timeout), and keeping one client per
TLS setting (``tls_verify``, ``ca_file``), built on first use and closed
together.

Must not: run checks or name their outcome (``probes`` does), schedule or
cancel them (``monitor`` does). Used from the monitor's trio thread only.
"""

from __future__ import annotations

import ssl

import httpx

from dnsserve.health.probes import CheckKind, CheckSpec


def build_client(spec: CheckSpec) -> httpx.AsyncClient:
    """The HTTP client for a spec's TLS settings: no pooling, no proxies, no redirects."""
    verify: ssl.SSLContext | bool
    if not spec.tls_verify:
        verify = False
    elif spec.ca_file:
        verify = ssl.create_default_context(cafile=spec.ca_file)
    else:
        verify = True
    return httpx.AsyncClient(
        verify=verify,
        trust_env=False,  # a proxy in the environment must not answer health checks
        follow_redirects=False,
        timeout=None,  # the monitor cancels at the check's timeout
        # Each check opens its own connection, as a new client would.
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"User-Agent": "dnsserve-monitor"},
    )


class HttpClients:
    """One client per TLS setting, built on first use; ``aclose`` closes them all."""

    __slots__ = ("_clients",)

    def __init__(self) -> None:
        self._clients: dict[tuple[bool, str], httpx.AsyncClient] = {}

    def for_spec(self, spec: CheckSpec) -> httpx.AsyncClient | None:
        """The client a check of ``spec`` uses; None for kinds other than http/https.

        Raises OSError when ``ca_file`` is missing or not PEM (``ssl.SSLError``
        is an OSError); the next call tries again.
        """
        if spec.kind not in (CheckKind.HTTP, CheckKind.HTTPS):
            return None
        key = (spec.tls_verify, spec.ca_file)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = build_client(spec)
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
