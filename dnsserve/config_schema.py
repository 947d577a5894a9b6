"""The schema of ``dnsserve.toml``: its shape as frozen msgspec Structs.

Owns the Structs (keys, types, defaults), the file's spelling of the record
types a pool answers (``PoolType``), and the constants a default or a rule
names (``DEFAULT_VERSION``, ``TSIG_ALGORITHMS``).

Pure: no I/O, no clock. Must not: check values beyond their types
(``config_validate`` does: one error line per problem, naming file, key and
value), read files or decode TOML (``config`` does), or build the core's
objects (``config`` maps these Structs to them).
"""

from __future__ import annotations

import enum

import dns.rdatatype
import msgspec

from dnsserve import __version__
from dnsserve.answer.policies import AllDown, Policy
from dnsserve.health.model import DEFAULT_PORTS, CheckKind

DEFAULT_VERSION = f"dnsserve {__version__}"
MAX_WORKERS = 64  # [server] workers: the most answering processes
DEFAULT_MAX_WORKERS = 8  # without [server] workers: one per CPU, at most this many
# Zone files are untrusted input (zones.files): the bounds every file is read under.
DEFAULT_MAX_ZONE_FILE_BYTES = 1 << 30  # a zone file or an included file: 1 GiB
DEFAULT_MAX_ZONE_LINE_BYTES = 1 << 20  # a line, or a record in parentheses: 1 MiB
MIN_MAX_ZONE_LINE_BYTES = 1 << 18  # the longest rdata as \DDD escapes (262,140) fits
TSIG_ALGORITHMS = frozenset(
    {"hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5"}
)


class PoolType(enum.Enum):
    """The record types a pool answers: the file's spelling of an RdataType."""

    A = "A"
    AAAA = "AAAA"
    CNAME = "CNAME"

    @property
    def rdtype(self) -> dns.rdatatype.RdataType:
        return dns.rdatatype.RdataType[self.value]


class ServerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    listen: tuple[str, ...] = ("127.0.0.1:5300",)
    zones: str = "zones"
    state: str = "dnsserve.db"
    control: str = "127.0.0.1:8053"  # "" turns the control API off
    version: str | None = DEFAULT_VERSION  # CHAOS TXT version.bind; None: REFUSED
    identity: str | None = None  # CHAOS TXT id.server; None (the default): nsid, else REFUSED
    nsid: str | None = None  # RFC 5001 NSID: text, "hex:...", or "hostname"; None: off
    tcp_idle_timeout: float = 10.0
    tcp_max_connections: int = 1000
    tcp_max_connections_per_prefix: int = 100  # per client prefix (below), per server
    tcp_ipv4_prefix_length: int = 24
    tcp_ipv6_prefix_length: int = 56
    suspect_fraction: float = 1.0
    control_allow_remote: bool = False  # allow a non-loopback control address
    max_delete_fraction: float = 0.1  # the deletion guard: records a reload may remove
    reload_timeout: float = 300.0  # seconds a reload may take before it is abandoned
    workers: int | None = None  # answering processes; None: one per CPU, at most 8 (worker_count)
    include_paths: tuple[str, ...] = ()  # directories $INCLUDE may read besides the zones dir
    max_zone_file_bytes: int = DEFAULT_MAX_ZONE_FILE_BYTES  # per zone file or included file
    max_zone_line_bytes: int = DEFAULT_MAX_ZONE_LINE_BYTES  # per line or record (bytes)


HOSTNAME = "hostname"  # nsid / identity: the host's name, read when the config is loaded
HEX_PREFIX = "hex:"  # nsid / identity: the octets written in hex
MAX_IDENTITY = 255  # octets of an NSID or identity: one TXT string holds 255


def identity_bytes(text: str) -> bytes:
    """An ``nsid`` or ``identity`` value as octets: ``hex:...`` decoded, else
    the text's UTF-8 (``"hostname"`` is replaced by the name when the config
    is loaded: ``settings``). Raises ValueError for bad hex."""
    if text.startswith(HEX_PREFIX):
        return bytes.fromhex(text[len(HEX_PREFIX):])
    return text.encode()


def worker_count(workers: int | None, cpus: int) -> int:
    """How many processes answer: ``workers`` as configured, else one per CPU
    (``cpus``, the CPUs this process may run on), at most ``DEFAULT_MAX_WORKERS``."""
    if workers is not None:
        return workers
    return max(1, min(cpus, DEFAULT_MAX_WORKERS))


def share(limit: int, count: int) -> int:
    """One worker's share of a limit of the whole server (a TCP connection cap, an RRL
    rate; SO_REUSEPORT spreads clients over the workers): ``limit / count`` rounded
    up, at least 1."""
    return max(1, -(-limit // max(count, 1)))


class MonitorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    kind: CheckKind
    port: int | None = None  # None: the kind's default (http 80, https 443, dns 53)
    path: str = "/"
    host: str | None = None
    expect_status: tuple[int, ...] = (200,)
    expect_body: str | None = None
    interval: float = 1.0
    timeout: float = 0.5
    rise: int = 2
    fall: int = 2
    tls_verify: bool = True
    ca_file: str | None = None
    query_name: str | None = None
    query_type: str = "SOA"
    expect_rcode: str = "NOERROR"
    expect_answer: bool = False
    command: str | tuple[str, ...] | None = None  # argv, or a shell command line

    @property
    def probe_port(self) -> int | None:
        return self.port if self.port is not None else DEFAULT_PORTS.get(self.kind)


class MemberConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    address: str  # the answer (A/AAAA) or, for CNAME pools, what is probed
    weight: int = 1
    priority: int = 1
    region: str = ""
    target: str | None = None  # CNAME pools: the answer
    probe: str | None = None  # check this address instead of `address`


class PoolConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    owner: str
    type: PoolType
    monitor: str
    policy: Policy = Policy.ALL
    max_answers: int = 8
    ttl: int = 20
    when_all_down: AllDown = AllDown.ALL
    fallback: tuple[str, ...] = ()
    members: tuple[MemberConfig, ...]
    publish: bool = False  # write the answer set into the zone secondaries transfer


class KeyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    algorithm: str = "hmac-sha256"
    secret: str | None = None
    key_file: str | None = None


class DnssecConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[[zone]] dnssec``: dnsserve signs the zone itself with these keys (issue 8 §2)."""

    keys: str  # the key directory (``dnsserve dnssec-keygen``); relative to the config file
    algorithm: str = "ECDSAP256SHA256"  # of every key in keys: ECDSAP256SHA256 | ED25519
    nsec3: bool = False  # NSEC3 is not there yet: true is refused
    validity: str = "14d"  # how long a signature is valid (BIND TTL syntax: 14d, 2w, 1209600)
    refresh: str = "7d"  # re-sign when a signature has less than this left


class ZoneConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    dnssec: DnssecConfig | None = None  # sign online with these keys
    allow_transfer: tuple[str, ...] = ()
    transfer_keys: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    primaries: tuple[str, ...] = ()
    key: str | None = None
    allow_notify: tuple[str, ...] = ()
    publish: bool = False  # publish every pool inside this zone (see PoolConfig.publish)
    publish_min_interval: float = 5.0  # seconds: publications of this zone at most this often
    guard: bool = True  # the deletion guard holds back a transfer that deletes too much

    @property
    def secondary(self) -> bool:
        """A zone we take from ``primaries`` by zone transfer (no file in zones/)."""
        return bool(self.primaries)


class RegionConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[[region]]``: the address prefixes of one region (posture's single-region rules)."""

    name: str
    prefixes: tuple[str, ...] = ()


class PostureConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[posture]``: what ``dnsserve check`` holds the zones and pools to."""

    failover_budget: int = 60  # seconds: a pool's TTL (or a CNAME's to it) above it warns
    ignore: tuple[str, ...] = ()  # rule ids left out of the findings


class WatchConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[watch]``: what ``dnsserve watch`` asks, how often, and whom it tells."""

    interval: float = 5.0  # seconds between rounds
    servers: tuple[str, ...] = ()  # ADDRESS:PORT of every other server of every zone
    ns: bool = True  # also ask the addresses of each zone's in-zone NS targets
    ns_port: int = 53  # the port asked there (another one for loopback tests)
    control: str = ""  # http://ADDRESS:PORT of our server's control API: its pools' answers
    on_deviation: str = ""  # a command (argv by shlex.split, no shell) run at each start/clear
    hook_timeout: float = 10.0  # seconds the command may run before it is killed
    timeout: float = 1.0  # seconds for one query
    max_queries: int = 200  # (name, type) queries per zone per server per round, without AXFR
    full_every: int = 12  # compare content every Nth round even when the serial is ours
    metrics: str = ""  # ADDRESS:PORT (loopback) of watch's own /metrics; "" off


class RrlConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[rrl]``: response rate limiting of UDP answers (``answer.rrl``)."""

    enabled: bool | None = None  # None: on when any listen address is not loopback
    rate: int = 20  # responses per second per bucket, for the whole server (split over workers)
    slip: int = 2  # every slip-th limited response truncated (TC), the rest dropped; 0: drop all
    ipv4_prefix: int = 24
    ipv6_prefix: int = 56
    exempt: tuple[str, ...] = ()  # address prefixes never limited
    table_size: int = 65536  # buckets counted per second and process, at most


class CookiesConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[cookies]``: DNS Cookies (RFC 7873, RFC 9018 server cookies; ``answer.cookies``)."""

    enabled: bool = True
    secret: str | None = None  # 32 hex digits; None: a random one made at start
    previous_secret: str | None = None  # still accepted (the one before a rotation)


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    rrl: RrlConfig = msgspec.field(default_factory=RrlConfig)
    cookies: CookiesConfig = msgspec.field(default_factory=CookiesConfig)
    monitor: tuple[MonitorConfig, ...] = ()
    pool: tuple[PoolConfig, ...] = ()
    key: tuple[KeyConfig, ...] = ()
    zone: tuple[ZoneConfig, ...] = ()
    node: tuple[NodeConfig, ...] = ()
    region: tuple[RegionConfig, ...] = ()
    posture: PostureConfig = msgspec.field(default_factory=PostureConfig)
    watch: WatchConfig = msgspec.field(default_factory=WatchConfig)


class NodeConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A server the CLI's live commands act on (``[[node]]``): a fleet of anycast nodes."""

    name: str
    url: str  # its control API: http://ADDRESS:PORT (its [server] control)
    token_file: str | None = None  # its control token; relative to this file
    dns: str | None = None  # ADDRESS:PORT `dnsserve query` asks; None: url's address, listen's port
