"""Config values as text: ADDRESS:PORT and node URLs read, and a problem written.

Owns ``parse_hostport``, the one parser of an address with a port (the
config, ``net`` and the ``--listen``/``--control`` flags use it),
``parse_node_url`` (``[[node]] url`` and ``--node``), ``ip_problem`` and
``name_problem`` (an address or a DNS name checked), and the form of an
error line, which names file, key and value:

    dnsserve.toml: pool[1].members[0].weight = -1: must be >= 0
    dnsserve.toml: pool[0].members[0].target: missing: required in a CNAME pool

A TSIG secret is never written into a line. Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import ipaddress
import json
from collections.abc import Sequence
from typing import Any

import dns.exception
import dns.name

# -- error lines ---------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    else:
        text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def problem_line(file: str, key: str, value: Any, problem: str) -> str:
    """``file: key = value: problem``, the value as TOML would write it."""
    tsig, _, field = key.partition(".")
    hide = ((tsig.startswith("key[") and field not in ("name", "algorithm", "key_file"))
            or (tsig == "cookies" and field.endswith("secret")))
    shown = "(hidden)" if hide else _show(value)  # a TSIG secret never reaches a log
    return f"{file}: {key} = {shown}: {problem}"


def key_problem_line(file: str, key: str, problem: str) -> str:
    """``file: key: problem``, for a key that is missing or has no one value."""
    return f"{file}: {key}: {problem}"


# -- value checks (None = fine, else the problem) -------------------------------


def parse_hostport(
    text: str, default_port: int | None = None, *, any_port: bool = False
) -> tuple[str, int]:
    """``"127.0.0.1:53"`` / ``"[::1]:53"`` (or a bare address with a default
    port) -> (address, port). Raises ValueError naming the problem.

    The one parser of addresses with a port, for the config file, the
    ``--listen`` flag and ``net``. Port 0 (the kernel picks a free one) is
    refused unless ``any_port``: a server address in a config file or a flag
    must be one clients can be told; only code that reads back the bound
    port (``net.serve`` for tests and benchmarks) passes ``any_port``.
    """
    if text.startswith("["):
        host, sep, port = text[1:].partition("]")
        if sep and port.startswith(":"):
            port = port[1:]
        elif sep and not port and default_port is not None:
            port = str(default_port)
        else:
            raise ValueError("expected [IPV6]:PORT")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    elif default_port is not None:
        host, port = text, str(default_port)
    else:
        raise ValueError("expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    if text.startswith("[") and address.version != 6:
        raise ValueError("brackets are for IPv6 only")
    lowest = 0 if any_port else 1
    if not (port.isascii() and port.isdigit()) or not lowest <= int(port) <= 65535:
        raise ValueError(f"port {port!r} is not {lowest}..65535")
    return address.compressed, int(port)


def hostport_problem(text: str, default_port: int | None = None) -> str | None:
    try:
        parse_hostport(text, default_port)
    except ValueError as exc:
        return f"not an ADDRESS:PORT ({exc})"
    return None


def check_listen(
    addresses: Sequence[str], *, file: str = "command line", key: str = "--listen"
) -> list[str]:
    """Error lines for listen addresses: at least one, each ``parse_hostport``'s.

    ``validate`` calls it for ``server.listen``; the app for ``--listen``
    flags, which replace ``server.listen`` after the file was validated.
    """
    if not addresses:
        return [problem_line(file, key, addresses, "at least one address")]
    return [
        problem_line(file, f"{key}[{i}]", text, problem)
        for i, text in enumerate(addresses)
        if (problem := hostport_problem(text))
    ]


# -- [[node]]: the servers the CLI's live commands act on -------------------------


def parse_node_url(text: str) -> tuple[str, int]:
    """``"http://127.0.0.1:8053"`` (a node's control API) -> (address, port).

    The one rule for a node's URL, for ``[[node]] url`` and the CLI's
    ``--node``: plain HTTP (the control API speaks nothing else), an IP
    address and a port, nothing after them but an optional "/". Raises
    ValueError naming the problem.
    """
    scheme, sep, rest = text.partition("://")
    if not sep or scheme != "http":
        raise ValueError("expected http://ADDRESS:PORT (the control API is plain HTTP)")
    rest = rest[:-1] if rest.endswith("/") else rest
    if any(c in rest for c in "/?#@"):
        raise ValueError("expected http://ADDRESS:PORT, with no path, query or user")
    return parse_hostport(rest)


def node_url_problem(text: str) -> str | None:
    try:
        parse_node_url(text)
    except ValueError as exc:
        return f"not a node URL ({exc})"
    return None


def ip_problem(text: str, version: int | None = None) -> str | None:
    """Why ``text`` is not an IP address (of ``version``), or None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    want = {4: "an IPv4", 6: "an IPv6", None: "an IP"}[version]
    if address is None or "%" in text or (version and address.version != version):
        return f"not {want} address"
    return None


def name_problem(text: str, *, absolute: bool) -> str | None:
    """Why ``text`` is not a DNS name (an absolute one), or None."""
    if absolute and not text.endswith("."):
        return "must be an absolute name (end with '.')"
    try:
        dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        return f"not a DNS name ({exc})"
    return None
