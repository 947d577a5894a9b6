"""The effective settings: the config file (if any) with the command-line flags applied.

Owns where the configuration comes from (``-c``, else ``./dnsserve.toml`` when
present, else built-in defaults), the directory relative paths in it are
resolved against (the file's own directory; flags are relative to the cwd),
and the validation of flags that override the file (``--listen``).

Must not: load zones, open the state file or sockets. Every other edge module
reads these values; nothing re-reads the file behind their back.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import dns.ttl
import msgspec

from dnsserve.answer.guard import Defences
from dnsserve.answer.rrl import RrlSettings
from dnsserve.config import Config, load_config
from dnsserve.config_schema import HOSTNAME, MAX_WORKERS, ServerConfig, share
from dnsserve.config_values import check_listen, parse_hostport
from dnsserve.errors import ConfigError
from dnsserve.zones.files import FileRules
from dnsserve.zones.load import zone_file_name
from dnsserve.zones.online import Signing

DEFAULT_CONFIG = Path("dnsserve.toml")

log = logging.getLogger("dnsserve")


@dataclass(frozen=True, slots=True)
class Settings:
    """The config file's values with flags applied, and its paths made absolute."""

    config: Config
    config_path: Path | None
    zones_dir: Path
    server: ServerConfig = field(default_factory=ServerConfig)
    state_path: Path = Path("dnsserve.db")
    include_dirs: tuple[Path, ...] = ()  # server.include_paths, made absolute

    @property
    def file_rules(self) -> FileRules:
        """The bounds zone files are read under (``zones.files``)."""
        return FileRules(self.include_dirs, self.server.max_zone_file_bytes,
                         self.server.max_zone_line_bytes)

    @property
    def secondary_dir(self) -> Path:
        """Where the copies of secondary zones are kept: beside the state file."""
        return self.state_path.parent / "secondary"

    def secondary_copies(self) -> dict[dns.name.Name, Path]:
        """Each secondary zone of the config (``primaries``) and where its copy is kept."""
        return {
            origin: self.secondary_dir / zone_file_name(origin)
            for origin in (dns.name.from_text(z.name) for z in self.config.zone if z.primaries)
        }

    def copies_to_load(self) -> tuple[dict[dns.name.Name, Path] | None, set[dns.name.Name]]:
        """The secondary zones' copies on disk, as ``load_zones(extra=...)`` takes
        them (None: no secondary zones), and the zones with no copy yet."""
        copies = self.secondary_copies()
        waiting = {o for o, path in copies.items() if not path.is_file()}
        if not copies:
            return None, waiting
        return {o: p for o, p in copies.items() if o not in waiting}, waiting

    def signing(self) -> dict[dns.name.Name, Signing]:
        """The zones dnsserve signs itself (``[[zone]] dnssec``), keys made absolute
        (relative to the config file's directory)."""
        base = self.config_path.resolve().parent if self.config_path is not None else Path.cwd()
        return {
            dns.name.from_text(z.name): Signing(
                str(base / z.dnssec.keys), dns.ttl.from_text(z.dnssec.validity),
                dns.ttl.from_text(z.dnssec.refresh), z.dnssec.algorithm)
            for z in self.config.zone if z.dnssec is not None
        }

    @property
    def config_name(self) -> str:
        """How errors name the configuration: its path, or ``<no config>``."""
        return str(self.config_path) if self.config_path is not None else "<no config>"


def rrl_enabled(settings: Settings) -> bool:
    """``[rrl] enabled``, or when unset: on unless every listen address is loopback."""
    if settings.config.rrl.enabled is not None:
        return settings.config.rrl.enabled
    hosts = [parse_hostport(text, any_port=True)[0] for text in settings.server.listen]
    return not all(ipaddress.ip_address(host.partition("%")[0]).is_loopback for host in hosts)


def defences(settings: Settings, workers: int, made_secret: bytes) -> Defences:
    """The RRL and cookie settings one answering process applies: the rate is
    split over ``workers`` (each limits its own share); without a configured
    secret, ``made_secret`` (made once at start, shared by every worker)."""
    rrl, cookies = settings.config.rrl, settings.config.cookies
    limits = None
    if rrl_enabled(settings):
        limits = RrlSettings(
            rate=share(rrl.rate, workers), slip=rrl.slip, ipv4_prefix=rrl.ipv4_prefix,
            ipv6_prefix=rrl.ipv6_prefix, exempt=rrl.exempt, size=rrl.table_size,
        )
    elif rrl.enabled is None:
        log.info("RRL off: every listen address is loopback ([rrl] enabled = true turns it on)")
    if not cookies.enabled:
        return Defences(limits)
    secret = bytes.fromhex(cookies.secret) if cookies.secret else made_secret
    previous = bytes.fromhex(cookies.previous_secret) if cookies.previous_secret else None
    return Defences(limits, secret, previous)


def load_settings(
    config_path: Path | None = None,
    *,
    zones: Path | None = None,
    listen: Sequence[str] | None = None,
    control: str | None = None,
    workers: int | None = None,
) -> Settings:
    """Read the config (``-c``, else ./dnsserve.toml when present) and apply flags.

    Paths in the file are relative to the file's directory; flags to the cwd.
    Raises ConfigError naming the file, key or flag.
    """
    if config_path is None and DEFAULT_CONFIG.is_file():
        config_path = DEFAULT_CONFIG
    if config_path is not None:
        if not config_path.is_file():
            what = "not a regular file" if config_path.exists() else "no such configuration file"
            raise ConfigError(f"{config_path}: {what}")
        config = load_config(config_path)
        base = config_path.resolve().parent
    else:
        config = Config()
        base = Path.cwd()
    server = config.server
    if listen:
        errors = check_listen(listen)
        if errors:
            raise ConfigError("\n".join(errors))
        server = msgspec.structs.replace(server, listen=tuple(listen))
    if control is not None:
        errors = [] if control == "" else check_listen([control], key="--control")
        if not errors and control and not server.control_allow_remote:
            host = parse_hostport(control)[0]
            if not ipaddress.ip_address(host).is_loopback:
                errors = [f"--control {control}: not a loopback address: the control API's "
                          "reads are open to whoever connects (set control_allow_remote = "
                          "true in the config to allow it)"]
        if errors:
            raise ConfigError("\n".join(errors))
        server = msgspec.structs.replace(server, control=control)
    if workers is not None:
        if not 1 <= workers <= MAX_WORKERS:
            raise ConfigError(f"--workers {workers}: must be between 1 and {MAX_WORKERS}")
        server = msgspec.structs.replace(server, workers=workers)
    server = with_hostname(server)
    zones_dir = zones if zones is not None else base / server.zones
    include_dirs = tuple(base / p for p in server.include_paths)
    return Settings(config, config_path, zones_dir, server, base / server.state, include_dirs)


def with_hostname(server: ServerConfig) -> ServerConfig:
    """``nsid`` / ``identity`` = ``"hostname"`` replaced by this host's name, read now
    (at config load: the answers carry the name as it was when the config was read)."""
    names = {k: socket.gethostname() for k in ("nsid", "identity")
             if getattr(server, k) == HOSTNAME}
    return msgspec.structs.replace(server, **names) if names else server


def settings_as_written(config_path: Path | None) -> Settings:
    """The server's addresses, state file, zones directory and include paths as the
    config file writes them, for a config that does not validate (the CLI must still
    reach the running server, ``check`` still checks the zones); everything else
    takes its default."""
    path = config_path if config_path is not None else DEFAULT_CONFIG
    try:
        raw = tomllib.loads(path.read_text()).get("server", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        raw = {}
    wanted: dict[str, object] = {
        k: raw[k] for k in ("control", "state", "zones") if isinstance(raw.get(k), str)
    }
    for key in ("listen", "include_paths"):
        if isinstance(raw.get(key), list) and all(isinstance(x, str) for x in raw[key]):
            wanted[key] = tuple(raw[key])
    server = msgspec.structs.replace(ServerConfig(), **wanted)
    base = path.resolve().parent if path.is_file() else Path.cwd()
    return Settings(Config(server=server), path, base / server.zones, server, base / server.state,
                    tuple(base / p for p in server.include_paths))
