"""Who may use the control endpoint: the bearer token's file, and the address it listens on.

Owns the token file (created at first start beside the state file, mode
0600; read by the server and by the CLI) and the rule that the control API
listens on loopback unless the operator allows otherwise. Must not: serve
HTTP, log the token, or accept a token file that other users can read.

Rules:
1. The token file is ``<state file>.token``. The server creates it with
   ``O_CREAT | O_EXCL`` and mode 0600 (``secrets.token_urlsafe(32)``), or
   reads the one there; it refuses a symlink, a non-file, a mode with any
   group or other bit, and text that is not a token (16 to 512 characters
   of RFC 6750's b64token).
2. A client's token: ``--token-file``, else ``$DNSSERVE_TOKEN``, else the
   file beside the state file (``client_token``).
3. The control address must be an IP address; a non-loopback one (the
   unspecified ``0.0.0.0`` and ``::`` included) only with ``allow_remote``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from dnsserve.errors import DnsServeError

log = logging.getLogger(__name__)

TOKEN_ENV = "DNSSERVE_TOKEN"


class TokenError(DnsServeError):
    """The control token file cannot be created, read or trusted; names the file."""


_TOKEN_TEXT = re.compile(r"[A-Za-z0-9._~+/-]{16,512}=*\Z")  # RFC 6750 b64token, >= 16 chars


def token_path(state_path: Path) -> Path:
    """The token file beside the state file: ``dnsserve.db`` -> ``dnsserve.db.token``."""
    return state_path.with_name(state_path.name + ".token")


def _read_token(path: Path, *, private: bool) -> str:
    """The token in ``path``; ``private``: refuse a symlink, a non-file, or a mode beyond 0600."""
    flags = os.O_RDONLY | (os.O_NOFOLLOW if private else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise TokenError(f"{path}: cannot read the control token: {exc.strerror}") from exc
    with open(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if private and not stat.S_ISREG(st.st_mode):
            raise TokenError(f"{path}: the control token file is not a regular file")
        if private and st.st_mode & 0o077:
            raise TokenError(
                f"{path}: the control token file has mode {stat.S_IMODE(st.st_mode):04o}; other "
                f"users could read it: chmod 600 it, or delete it to get a new token"
            )
        text = f.read(1024).decode("ascii", "replace").strip()
    if not _TOKEN_TEXT.match(text):
        raise TokenError(f"{path}: no valid token in the file (16 or more characters of "
                         "A-Z a-z 0-9 . _ ~ + / -); delete it to get a new one")
    return text


def ensure_token(path: Path) -> str:
    """The server's token: read from ``path``, or created there (mode 0600) at first start."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _read_token(path, private=True)
    except OSError as exc:
        raise TokenError(f"{path}: cannot create the control token: {exc.strerror}") from exc
    token = secrets.token_urlsafe(32)
    try:
        with open(fd, "w", encoding="ascii") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        raise TokenError(f"{path}: cannot write the control token: {exc.strerror}") from exc
    log.info("created the control token in %s (mode 0600)", path)
    return token


def read_token(path: Path) -> str:
    """A client's token from ``path`` (the CLI's ``--token-file``, or the server's file)."""
    return _read_token(path, private=False)


def client_token(token_file: Path | None, state_path: Path, environ: Mapping[str, str]) -> str:
    """The CLI's token: ``--token-file``, else ``$DNSSERVE_TOKEN``, else beside the state file."""
    if token_file is not None:
        return read_token(token_file)
    from_env = environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env
    return read_token(token_path(state_path))


def _is_loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def check_control_address(host: str, allow_remote: bool) -> str | None:
    """Why the control API must not listen on ``host``, or None when it may."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"{host!r} is not an IP address"
    if _is_loopback(ip) or allow_remote:
        return None
    return (f"{host} is not a loopback address: anyone who can reach it could read the "
            "status and metrics; set control_allow_remote = true to listen there anyway")
