"""The servers the CLI's live commands act on, and acting on every one of them.

Owns which nodes a command acts on, each node's control token and DNS
address, and running one action on every node at once with each node's
outcome kept apart: a node that fails is reported, the others still act.
Must not: print, or decide exit codes (``cli`` does), or speak HTTP
(``client`` does).

Rules:
1. Nodes: the ``--node`` flags (a URL, or the name of a ``[[node]]``), else
   every ``[[node]]`` of the config, else the local server at
   ``http://<[server] control>`` (an unspecified address as loopback). A URL
   must pass ``parse_node_url``.
2. A node's token, read only for a mutation: ``--token-file``, else the
   node's ``token_file`` (relative to the config file), else
   ``$DNSSERVE_TOKEN``, else the file beside the state file
   (``control_access.client_token`` from the second step on).
3. Where ``dnsserve query`` asks over DNS: ``--server``, else the node's
   ``dns``, else the local server's first ``listen`` address (an unspecified
   address as loopback), else for another node its URL's address at that
   address's port.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

from dnsserve.client import Client, ControlClientError, Node
from dnsserve.config_values import parse_hostport, parse_node_url
from dnsserve.control_access import TOKEN_ENV, TokenError, client_token
from dnsserve.settings import Settings

T = TypeVar("T")

MAX_PARALLEL = 16


@dataclass(frozen=True, slots=True)
class Target:
    """A node to act on, with where its token and its DNS answers are found (rules 2, 3)."""

    node: Node
    token_file: Path | None = None  # the [[node]]'s token_file, made absolute
    dns: tuple[str, int] | None = None  # the [[node]]'s dns, or the local listen address


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What one action did on one node: a ``result``, or the ``error`` that stopped it."""

    node: Node
    result: T | None = None
    error: ControlClientError | None = None


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _loopback_if_unspecified(host: str) -> str:
    ip = ipaddress.ip_address(host)
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return host


def local_dns(settings: Settings) -> tuple[str, int]:
    """The local server's first listen address, where a query to it goes (rule 3)."""
    host, port = parse_hostport(settings.server.listen[0])
    return _loopback_if_unspecified(host), port


def targets(settings: Settings, flags: Sequence[str]) -> list[Target]:
    """Rule 1 (and the DNS address of rule 3). Raises ValueError naming a bad ``--node``."""
    base = settings.config_path.resolve().parent if settings.config_path else Path.cwd()
    listen_port = local_dns(settings)[1]
    named = {}
    for entry in settings.config.node:
        host, _ = parse_node_url(entry.url)
        dns = parse_hostport(entry.dns) if entry.dns else (host, listen_port)
        token_file = base / entry.token_file if entry.token_file else None
        node = Node(_url(*parse_node_url(entry.url)), name=entry.name)
        named[entry.name] = Target(node, token_file, dns)
    if not flags:
        if named:
            return list(named.values())
        host, port = parse_hostport(settings.server.control)
        local = Node(_url(_loopback_if_unspecified(host), port))
        return [Target(local, None, local_dns(settings))]
    chosen = []
    for text in flags:
        if text in named:
            chosen.append(named[text])
            continue
        if "://" not in text:
            known = ", ".join(named) or "none in the config"
            raise ValueError(f"--node {text!r}: not a URL (http://ADDRESS:PORT) nor the name "
                             f"of a [[node]] ({known})")
        try:
            host, port = parse_node_url(text)
        except ValueError as exc:
            raise ValueError(f"--node {text!r}: {exc}") from None
        chosen.append(Target(Node(_url(host, port)), None, (host, listen_port)))
    return chosen


def with_token(
    target: Target, token_flag: Path | None, state_path: Path, environ: Mapping[str, str]
) -> Target:
    """The target with its node's token (rule 2); raises ControlClientError when none is found."""
    try:
        token = client_token(token_flag or target.token_file, state_path, environ)
    except TokenError as exc:
        raise ControlClientError(
            f"{exc} (give --token-file, or the token in ${TOKEN_ENV})"
        ) from None
    return replace(target, node=replace(target.node, token=token))


def run(
    chosen: Sequence[Target],
    action: Callable[[Client, Target], T],
    *,
    token_flag: Path | None = None,
    state_path: Path | None = None,
) -> list[Outcome[T]]:
    """``action`` on every target at once, in their order; with ``state_path`` a token first."""

    def one(target: Target) -> Outcome[T]:
        try:
            if state_path is not None:
                target = with_token(target, token_flag, state_path, os.environ)
            with Client(target.node) as client:
                return Outcome(target.node, action(client, target))
        except ControlClientError as exc:
            return Outcome(target.node, error=exc)

    if len(chosen) == 1:
        return [one(chosen[0])]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(chosen))) as pool:
        return list(pool.map(one, chosen))
