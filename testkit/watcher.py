"""``dnsserve watch`` as a process for tests and the benchmark: a zone, a Knot
peer's zone file edited and reloaded, the watcher started and stopped by PID."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from testkit.peers import Peer

ORIGIN = "watch.example."
HOOK = """import json, os, sys
with open(sys.argv[1], "a") as out:
    got = {k: v for k, v in os.environ.items() if k.startswith("DNSSERVE_WATCH_")}
    out.write(json.dumps({**got, "argv": sys.argv[2:]}) + "\\n")
if "sleep" in sys.argv[2:]:
    import time
    time.sleep(60)
"""


def zone_text(serial: int = 1, www: bool = True) -> str:
    lines = [
        f"$ORIGIN {ORIGIN}",
        "$TTL 300",
        f"@ IN SOA ns1 hostmaster {serial} 3600 600 86400 300",
        "@ IN NS ns1",
        "ns1 IN A 127.0.0.1",
        "mail IN A 127.0.0.25",
        "@ IN MX 10 mail",
        "txt IN TXT \"hello\"",
    ]
    if www:
        lines.append("www IN A 127.0.0.80")
    return "\n".join(lines) + "\n"


def knot_reload(peer: Peer) -> None:
    """Make Knot read its zone file again (its control socket, beside its config)."""
    sock = peer.config.parent / "knot.sock"
    subprocess.run(["knotc", "-s", str(sock), "zone-reload", ORIGIN], check=True,
                   capture_output=True, timeout=20)


@dataclass
class WatchProc:
    proc: subprocess.Popen[bytes]
    log: Path
    events: Path
    metrics: str  # http://127.0.0.1:PORT/metrics

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def hook_events(self) -> list[dict[str, str]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line]

    def metrics_text(self) -> str:
        try:
            return httpx.get(self.metrics, timeout=2, trust_env=False).text
        except httpx.HTTPError:
            return ""


def start_watch(tmp: Path, zones: Path, servers: list[str], metrics_port: int,
                interval: float = 0.5, extra: str = "", ns_port: int | None = None,
                hook_args: tuple[str, ...] = ()) -> WatchProc:
    """``dnsserve watch`` on ``zones`` against ``servers``, with the JSON-lines hook;
    ``ns_port``: also the zones' NS addresses, on that port (else ``ns = false``);
    ``hook_args``: more arguments for the hook (written to the events as ``argv``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    hook = tmp / "hook.py"
    hook.write_text(HOOK)
    events = tmp / "events.jsonl"
    argv = shlex.join([sys.executable, str(hook), str(events), *hook_args])
    conf = tmp / "watch.toml"
    conf.write_text(
        f"[server]\nzones = \"{zones}\"\n\n[watch]\ninterval = {interval}\n"
        f"servers = {json.dumps(servers)}\n"
        f"{'ns = false' if ns_port is None else f'ns_port = {ns_port}'}\ntimeout = 0.5\n"
        f"metrics = \"127.0.0.1:{metrics_port}\"\n"
        f"on_deviation = {json.dumps(argv)}\n{extra}"
    )
    log = tmp / "watch.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dnsserve", "watch", "-c", str(conf)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    return WatchProc(proc, log, events, f"http://127.0.0.1:{metrics_port}/metrics")
