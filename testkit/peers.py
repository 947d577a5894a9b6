"""Reference DNS servers (Knot DNS, NSD, gdnsd, PowerDNS) run as subprocesses on loopback.

Owns: writing a loopback-only config for Knot and NSD, starting a peer,
waiting (bounded) until it serves every zone, and stopping it by PID. Used
by the differential tests and by the benchmark scripts. gdnsd and PowerDNS
are started from a config their caller wrote (the health benchmarks' own).

Must not: send traffic anywhere but loopback, configure anything that acts by
itself (NOTIFY, transfers, DNSSEC signing, zone file sync, control sockets on
the network), or leave a process running after ``stop()``.

A missing Knot or NSD binary skips the calling test, unless the environment
sets ``DNSSERVE_REQUIRE_PEERS=1`` (``.ci/run`` does): then it fails the test,
so CI cannot pass by skipping the comparison. ``required_binary`` and
``missing`` apply the same rule to the other tools CI installs (Chromium,
systemd-analyze, BIRD, ExaBGP). A missing gdnsd or PowerDNS
raises ``PeerFailed`` (a benchmark records it and goes on).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import dns.name
import dns.zone
import pytest

from dnsserve.zones.fastrdata import escape_octets
from testkit.ports import free_port
from testkit.server import serves_zone
from testkit.wait import WaitTimeout, wait_for

REQUIRE_ENV = "DNSSERVE_REQUIRE_PEERS"
READY_SECONDS = 20.0
STOP_SECONDS = 10.0
# Ours is 1232 (DESIGN.md, EDNS); peers advertise the same so sizes compare.
EDNS_PAYLOAD = 1232


class PeerFailed(RuntimeError):
    """A peer server did not start or did not load its zones."""


def peers_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def find_binary(name: str) -> str | None:
    """Path of the executable ``name`` (on PATH, or in /usr/sbin or /usr/bin), or None."""
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )


def missing(msg: str) -> NoReturn:
    """Skip the test for ``msg`` (something not installed), or fail it when peers are required."""
    if peers_required():
        pytest.fail(f"{msg} and {REQUIRE_ENV} is set", pytrace=False)
    pytest.skip(msg)


def required_binary(name: str, what: str) -> str:
    """Path of the executable ``name`` (``what`` it is, for the message), else ``missing``."""
    path = find_binary(name)
    if path is None:
        missing(f"{what} {name!r} not installed")
    return path


def peer_binary(name: str) -> str:
    """Path of ``name``; skip the test when missing, or fail when peers are required."""
    return required_binary(name, "peer server binary")


def load_zone(origin: str, path: Path) -> dns.zone.Zone:
    """Read a zone as dnsserve does: ``$INCLUDE`` paths relative to the zones directory,
    a raw 8-bit byte as that octet (``zones.fastrdata.escape_octets``; an included
    file is read by dnspython itself, as UTF-8).

    dnspython resolves includes against the working directory, hence the chdir.
    """
    path = Path(path).resolve()
    text = escape_octets(path.read_bytes().decode("latin-1"))
    with contextlib.chdir(path.parent):
        return dns.zone.from_text(text, origin, relativize=False, allow_include=True,
                                  filename=str(path))


def canonical_zone_file(origin: str, src: Path, dst_dir: Path) -> Path:
    """Write ``src`` as plain master-file text (one absolute RR per line).

    Knot 3.2 and NSD 4.6 do not implement BIND's ``$GENERATE``, which the
    shipped zones use; dnspython expands it (and ``$INCLUDE``) so every server
    loads the same records. The output uses no extension any server lacks.
    """
    zone = load_zone(origin, src)
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / f"{dns.name.from_text(origin).to_text(omit_final_dot=True)}.zone"
    with dst.open("w") as out:
        zone.to_file(out, relativize=False, want_origin=True)
    return dst


@dataclass
class Peer:
    """A running peer server; ``stop()`` ends it (and its children) by PID."""

    name: str
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    config: Path
    logs: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        """SIGTERM the peer, then wait (bounded) for its process group to empty.

        ``start_new_session`` made the peer a process group leader, so the
        group id is its PID: that reaches NSD's forked server children too.
        """
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_SECONDS)
        try:
            wait_for(f"{self.name}'s process group to end", lambda: not _group_alive(self.proc.pid),
                     seconds=STOP_SECONDS, poll=0.02)
        except WaitTimeout:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def log_text(self) -> str:
        parts = [p.read_text(errors="replace") for p in self.logs if p.exists()]
        return "\n".join(parts)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def spawn(name: str, cmd: list[str], tmp: Path, config: Path, port: int,
          host: str = "127.0.0.1") -> Peer:
    """Start ``cmd`` in ``tmp`` (its own session), output to ``tmp/<name>.out``; no wait."""
    out = tmp / f"{name}.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            cmd, stdout=sink, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True
        )
    return Peer(name, proc, host, port, config, [out])


def wait_zones(peer: Peer, origins: list[str], seconds: float = READY_SECONDS) -> None:
    """Bounded poll until every zone's SOA is answered authoritatively."""
    pending = list(origins)

    def still_pending() -> list[str]:
        if peer.proc.poll() is not None:
            raise PeerFailed(
                f"{peer.name} exited with {peer.proc.returncode}:\n{peer.log_text()}"
            )
        while pending and serves_zone(peer.host, peer.port, pending[0]):
            pending.pop(0)
        return pending

    try:
        wait_for(f"{peer.name} to serve {origins}", still_pending, lambda left: not left,
                 seconds=seconds)
    except WaitTimeout as exc:
        raise PeerFailed(f"{exc}:\n{peer.log_text()}") from None


def _start(name: str, cmd: list[str], tmp: Path, conf: Path, port: int, host: str,
           origins: list[str], logs: tuple[Path, ...] = (),
           seconds: float = READY_SECONDS) -> Peer:
    peer = spawn(name, cmd, tmp, conf, port, host)
    peer.logs.extend(logs)
    try:
        wait_zones(peer, origins, seconds)
    except BaseException:
        peer.stop()
        raise
    return peer


def start_knot(
    zones: dict[str, Path],
    tmp: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    threads: int = 1,
    rrl: tuple[int, int] | None = None,
    cookie_secret: str | None = None,
) -> Peer:
    """Start ``knotd`` serving ``zones`` (origin -> zone file) on ``host:port``.

    ``rrl``: (rate, slip) for Knot's response rate limiting (``mod-rrl``); none by default.
    ``cookie_secret``: 32 hex digits: DNS Cookies (``mod-cookies`` with that ``secret``,
    before ``mod-rrl``); none by default.
    """
    binary = peer_binary("knotd")
    tmp.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    storage = tmp / "knot-storage"
    storage.mkdir(exist_ok=True)
    zone_lines = "".join(
        f'  - domain: "{origin}"\n    file: "{Path(path).resolve()}"\n'
        for origin, path in zones.items()
    )
    rrl_module = rrl_use = ""
    modules = []
    if cookie_secret is not None:
        rrl_module += f"mod-cookies:\n  - id: default\n    secret: 0x{cookie_secret}\n"
        modules.append("mod-cookies/default")
    if rrl is not None:
        rrl_module += f"mod-rrl:\n  - id: default\n    rate-limit: {rrl[0]}\n    slip: {rrl[1]}\n"
        modules.append("mod-rrl/default")
    if modules:
        rrl_use = f"    global-module: [{', '.join(modules)}]\n"
    conf = tmp / "knot.conf"
    conf.write_text(
        f"""# generated by testkit/peers.py: loopback only, nothing automatic
server:
    rundir: "{tmp}"
    pidfile: "{tmp}/knot.pid"
    listen: {host}@{port}
    udp-workers: {threads}
    tcp-workers: {threads}
    background-workers: 1
    udp-max-payload: {EDNS_PAYLOAD}
control:
    listen: "{tmp}/knot.sock"
log:
  - target: stderr
    any: info
database:
    storage: "{storage}"
{rrl_module}template:
  - id: default
    storage: "{storage}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: on
    dnssec-signing: off
{rrl_use}zone:
{zone_lines}"""
    )
    return _start("knot", [binary, "-c", str(conf)], tmp, conf, port, host, list(zones))


def start_nsd(
    zones: dict[str, Path],
    tmp: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    threads: int = 1,
    rrl: tuple[int, int] | None = None,
    cookie_secret: str | None = None,
    reuseport: bool = False,
) -> Peer:
    """Start ``nsd -d`` serving ``zones`` (origin -> zone file) on ``host:port``.

    ``threads``: ``server-count`` (answering processes); ``reuseport``: each of them
    with its own SO_REUSEPORT socket (``reuseport: yes``), as dnsserve's workers.

    ``rrl``: (rate, slip) for NSD's response rate limiting; off (``rrl-ratelimit: 0``)
    by default. ``cookie_secret``: 32 hex digits: DNS Cookies (``answer-cookie: yes``
    with that ``cookie-secret``; the secrets file pointed into ``tmp``, where there is
    none, so /etc/nsd's cannot override it); off by default.
    """
    binary = peer_binary("nsd")
    tmp.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    zone_lines = "".join(
        f'zone:\n    name: "{origin}"\n    zonefile: "{Path(path).resolve()}"\n'
        for origin, path in zones.items()
    )
    family = "do-ip6: no" if ":" not in host else "do-ip4: no"
    limits = "rrl-ratelimit: 0" if rrl is None else (
        f"rrl-ratelimit: {rrl[0]}\n    rrl-slip: {rrl[1]}\n    rrl-ipv4-prefix-length: 24"
        "\n    rrl-ipv6-prefix-length: 56")
    if cookie_secret is not None:
        limits += (f'\n    answer-cookie: yes\n    cookie-secret: "{cookie_secret}"'
                   f'\n    cookie-secret-file: "{tmp}/nsd_cookiesecrets.txt"')
    conf = tmp / "nsd.conf"
    log = tmp / "nsd.log"
    conf.write_text(
        f"""# generated by testkit/peers.py: loopback only, nothing automatic
server:
    ip-address: {host}@{port}
    port: {port}
    {family}
    server-count: {threads}
    reuseport: {"yes" if reuseport else "no"}
    username: ""
    chroot: ""
    zonesdir: "{tmp}"
    database: ""
    zonelistfile: "{tmp}/zone.list"
    xfrdfile: "{tmp}/xfrd.state"
    xfrdir: "{tmp}"
    pidfile: "{tmp}/nsd.pid"
    logfile: "{log}"
    verbosity: 1
    zonefiles-write: 0
    {limits}
    ipv4-edns-size: {EDNS_PAYLOAD}
    ipv6-edns-size: {EDNS_PAYLOAD}
    round-robin: no
    minimal-responses: no
    refuse-any: no
remote-control:
    control-enable: no
{zone_lines}"""
    )
    cmd = [binary, "-d", "-c", str(conf)]
    return _start("nsd", cmd, tmp, conf, port, host, list(zones), (log,))


def _installed(name: str) -> str:
    path = find_binary(name)
    if path is None:
        raise PeerFailed(f"peer server binary {name!r} not installed")
    return path


def start_gdnsd(work: Path, port: int, origins: list[str], *,
                seconds: float = 30.0) -> Peer:
    """``gdnsd -c WORK start`` (foreground) on 127.0.0.1:``port``.

    The caller wrote ``WORK/config`` (listening on that port, loopback only,
    no TCP control socket) and the zones under ``WORK/zones``.
    """
    binary = _installed("gdnsd")
    conf = work / "config"
    return _start("gdnsd", [binary, "-c", str(work), "start"], work, conf, port, "127.0.0.1",
                  origins, seconds=seconds)


def start_pdns(work: Path, port: int, origins: list[str], *,
               seconds: float = 30.0) -> Peer:
    """``pdns_server --config-dir=WORK`` on 127.0.0.1:``port``.

    The caller wrote ``WORK/pdns.conf`` (listening on that port, loopback
    only, no security poll, no API or webserver) and the zones it names.
    """
    binary = _installed("pdns_server")
    conf = work / "pdns.conf"
    return _start("powerdns", [binary, f"--config-dir={work}"], work, conf, port, "127.0.0.1",
                  origins, seconds=seconds)


def start_named(
    zones: dict[str, Path],
    tmp: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    extra_options: str = "",
) -> Peer:
    """Start BIND's ``named -g`` serving ``zones`` (origin -> zone file) on ``host:port``.

    Loopback only, no recursion, ``notify no;``, no control channel (``controls {}``),
    IPv6 off; ``extra_options`` is added inside ``options { }`` (``server-id``, ...).
    """
    binary = peer_binary("named")
    tmp.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    zone_lines = "".join(
        f'zone "{origin}" {{ type primary; file "{Path(path).resolve()}"; }};\n'
        for origin, path in zones.items()
    )
    conf = tmp / "named.conf"
    conf.write_text(
        f"""// generated by testkit/peers.py: loopback only, nothing automatic
controls {{ }};
options {{
    directory "{tmp}";
    pid-file "{tmp}/named.pid";
    listen-on port {port} {{ {host}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ none; }};
    edns-udp-size {EDNS_PAYLOAD};
    max-udp-size {EDNS_PAYLOAD};
    {extra_options}
}};
{zone_lines}"""
    )
    return _start("named", [binary, "-g", "-c", str(conf)], tmp, conf, port, host, list(zones))
