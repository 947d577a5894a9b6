"""``deploy/`` and the shipped config, checked by the programs that will read them.

- ``dnsserve check`` from the repository root (what ``make check`` runs) on the
  shipped ``dnsserve.toml``, and on ``deploy/dnsserve.toml`` with its
  examples enabled, over the shipped zones;
- ``systemd-analyze verify`` on both units (systemd 252, Debian bookworm's),
  with the program paths pointed at this checkout: it must print nothing
  (an unknown or misspelt directive is a warning line, not an exit code);
- ``bird -p`` (parse only) on ``deploy/anycast/bird.conf`` and
  ``exabgp --validate`` on ``deploy/anycast/exabgp.conf``;
- ``dnsserve-healthcheck`` against a real HTTP endpoint: as an ExaBGP
  process (its stdout), and with a real BIRD (the shipped bird.conf without
  its BGP sessions, on a control socket in the test's directory) switched
  through birdc. Nothing leaves the machine: no BGP session is configured,
  BIRD has no kernel protocol, the endpoint is on 127.0.0.1.

A missing tool skips its test, or fails it under ``DNSSERVE_REQUIRE_PEERS=1``
(``.ci/run`` installs them all). Every wait is bounded (``testkit.wait``);
every process started here is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from testkit import ROOT, SHIPPED_ZONES
from testkit.backends import HttpBackend, Mode
from testkit.deploy import DEPLOY, HEALTHCHECK, enable_examples, unit_file
from testkit.peers import required_binary
from testkit.wait import wait_for

VENV_DNSSERVE = Path(sys.executable).parent / "dnsserve"
STOP_SECONDS = 10.0


def run(cmd: list[str], cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM by PID, then SIGKILL after a bounded wait."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_SECONDS)


# -- dnsserve check --------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["-c", "dnsserve.toml"]], ids=["default", "-c"])
def test_check_of_the_shipped_config_from_the_repository_root(args: list[str]) -> None:
    before = set(ROOT.iterdir())
    done = run([sys.executable, "-m", "dnsserve", "check", *args], cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == f"ok: {SHIPPED_ZONES} (3 zone(s), 0 warning(s))"
    assert set(ROOT.iterdir()) == before  # a check makes no state file


def test_check_of_the_deploy_config_with_its_examples(tmp_path: Path) -> None:
    config = tmp_path / "dnsserve.toml"
    config.write_text(enable_examples((DEPLOY / "dnsserve.toml").read_text()))
    done = run([sys.executable, "-m", "dnsserve", "check", "-c", str(config),
                "--zones", str(SHIPPED_ZONES)], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # The example pool's members are not www's static records in the shipped zone: said so.
    assert "differ from the pool's members" in done.stdout
    assert done.stdout.splitlines()[-1].endswith(" warning(s))")
    # The only warnings: that one, and the posture rules the shipped (documentation) zones
    # break, which the shipped dnsserve.toml leaves out ([posture] ignore).
    done = run([sys.executable, "-m", "dnsserve", "check", "-c", str(config),
                "--zones", str(SHIPPED_ZONES), "--format", "json"], cwd=tmp_path)
    rules = {f["rule"] for f in json.loads(done.stdout)}
    assert rules == {"pool-static-mismatch", "ns-one-prefix", "ns-one-zone",
                     "cname-ttl-over-budget"}, done.stdout



def test_the_units_reload_command_exists(tmp_path: Path) -> None:
    service = unit_file(DEPLOY / "dnsserve.service")["Service"]
    (line,) = [v for k, v in service if k == "ExecReload"]
    args = line.split()[1:]  # reload -c /etc/dnsserve/dnsserve.toml
    done = run([sys.executable, "-m", "dnsserve", args[0], "--help"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--force" in done.stdout and "-c" in done.stdout

# -- the tools' own checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "program", "here"),
    [
        ("dnsserve.service", "/opt/dnsserve/.venv/bin/dnsserve", VENV_DNSSERVE),
        ("anycast/dnsserve-healthcheck.service", "/usr/local/bin/dnsserve-healthcheck",
         HEALTHCHECK),
    ],
)
def test_systemd_analyze_verify(tmp_path: Path, unit: str, program: str, here: Path) -> None:
    analyze = required_binary("systemd-analyze", "tool")
    text = (DEPLOY / unit).read_text()
    assert program in text
    copy = tmp_path / Path(unit).name
    copy.write_text(text.replace(program, str(here)))  # verify wants the programs to exist
    done = run([analyze, "verify", str(copy)], cwd=tmp_path)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_bird_parses_the_example() -> None:
    bird = required_binary("bird", "tool")
    done = run([bird, "-p", "-c", str(DEPLOY / "anycast" / "bird.conf")], cwd=ROOT)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_exabgp_validates_the_example(tmp_path: Path) -> None:
    exabgp = required_binary("exabgp", "tool")
    text = (DEPLOY / "anycast" / "exabgp.conf").read_text()
    copy = tmp_path / "exabgp.conf"
    copy.write_text(text.replace("/usr/local/bin/dnsserve-healthcheck", str(HEALTHCHECK)))
    done = run([exabgp, "--validate", str(copy)], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loaded new configuration successfully" in done.stdout + done.stderr


# -- dnsserve-healthcheck against a live /healthz --------------------------------------------------


class Lines:
    """A process's output lines, read in a thread, for bounded waits on them."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        with contextlib.suppress(ValueError, OSError):  # closed under us by a failing test
            for line in stream:
                with self._lock:
                    self.lines.append(line.rstrip("\n"))

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def wait_for(self, what: str, count: int) -> list[str]:
        """Wait until there are ``count`` lines; return them."""
        return wait_for(what, self.snapshot, lambda got: len(got) >= count)

    def join(self) -> None:
        self._thread.join(STOP_SECONDS)


@pytest.fixture
def endpoint() -> Iterator[HttpBackend]:
    """A stand-in for dnsserve's control API: 200 "ok" on every path, switchable."""
    with HttpBackend("127.0.0.1", 0) as backend:
        yield backend


def healthcheck(*args: str, url: str, stdin: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(HEALTHCHECK), *args, "--url", url,
           "--interval", "0.05", "--timeout", "1", "--rise", "2", "--fall", "2"]
    return subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


ANNOUNCE = ["announce route 192.0.2.53/32 next-hop self",
            "announce route 2001:db8:53::53/128 next-hop self"]
WITHDRAW = ["withdraw route 192.0.2.53/32", "withdraw route 2001:db8:53::53/128"]


def exabgp_session(proc: subprocess.Popen[str], out: Lines, endpoint: HttpBackend,
                   disabled: Path) -> None:
    """Break and mend the endpoint; each change shows on stdout as ExaBGP would read it."""
    assert out.wait_for("the first announcement", 2) == ANNOUNCE
    endpoint.mode = Mode.ERROR  # 503: a zone not loaded
    assert out.wait_for("the withdrawal", 4)[2:] == WITHDRAW
    endpoint.stop()  # connection refused: nothing more to withdraw
    endpoint.start()
    endpoint.mode = Mode.OK
    assert out.wait_for("the announcement again", 6)[4:] == ANNOUNCE
    disabled.touch()
    assert out.wait_for("the withdrawal by hand", 8)[6:] == WITHDRAW
    disabled.unlink()
    assert out.wait_for("the announcement after the file went", 10)[8:] == ANNOUNCE
    assert proc.stdin is not None
    proc.stdin.close()  # ExaBGP gone: the check withdraws (to nobody) and ends
    assert proc.wait(timeout=STOP_SECONDS) == 0


def test_healthcheck_speaks_exabgps_api(endpoint: HttpBackend, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{endpoint.port}/healthz"
    disabled = tmp_path / "anycast.disabled"
    with healthcheck("--exabgp", "192.0.2.53/32", "2001:db8:53::53/128",
                     "--disable-file", str(disabled), url=url, stdin=subprocess.PIPE) as proc:
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        try:
            exabgp_session(proc, out, endpoint, disabled)
        finally:
            stop(proc)
        out.join()
        err.join()
    assert out.snapshot()[10:] == WITHDRAW
    log = "\n".join(err.snapshot())
    assert "dnsserve unhealthy (HTTP 503): withdraw" in log
    assert f"dnsserve unhealthy ({disabled} exists): withdraw" in log
    assert "dnsserve healthy (HTTP 200): announce" in log


def birdc_states(birdc: list[str], protocols: list[str]) -> dict[str, str] | None:
    """Each protocol's state in ``birdc show protocols`` ("up" / "down"); None if unreachable."""
    done = subprocess.run([*birdc, "show", "protocols"], capture_output=True, text=True,
                          timeout=10, check=False)
    if done.returncode != 0:
        return None
    states = {}
    for line in done.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] in protocols:
            states[fields[0]] = fields[3]
    return states


@contextlib.contextmanager
def bird_without_bgp(tmp_path: Path) -> Iterator[list[str]]:
    """BIRD on the shipped bird.conf minus its BGP sessions; yields the birdc command."""
    bird = required_binary("bird", "tool")
    birdc = required_binary("birdc", "tool")
    text = (DEPLOY / "anycast" / "bird.conf").read_text()
    local = re.sub(r"^protocol bgp .*?^\}\n", "", text, flags=re.M | re.S)
    assert "protocol bgp" not in local and "protocol static dnsserve_anycast4" in local
    conf, sock = tmp_path / "bird.conf", tmp_path / "bird.ctl"
    conf.write_text(local)
    log = (tmp_path / "bird.out").open("w")
    proc = subprocess.Popen([bird, "-f", "-c", str(conf), "-s", str(sock),
                             "-P", str(tmp_path / "bird.pid")],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    command = [birdc, "-s", str(sock)]
    try:
        wait_for("BIRD's control socket", lambda: proc.poll() is None and sock.exists()
                 and birdc_states(command, []) is not None)
        yield command
    finally:
        stop(proc)
        log.close()


def test_healthcheck_switches_birds_static_protocols(endpoint: HttpBackend,
                                                     tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{endpoint.port}/healthz"
    protocols = ["dnsserve_anycast4", "dnsserve_anycast6"]
    with bird_without_bgp(tmp_path) as birdc:
        # The protocols start disabled: nothing is announced before the check says so.
        assert birdc_states(birdc, protocols) == dict.fromkeys(protocols, "down")
        with healthcheck("--bird", *protocols, "--birdc", " ".join(birdc), url=url) as proc:
            err = Lines(proc.stderr)
            try:
                bird_session(proc, birdc, protocols, endpoint)
            finally:
                stop(proc)
            err.join()
    log = "\n".join(err.snapshot())
    assert "dnsserve unhealthy (HTTP 503): withdraw" in log
    assert "stopping: withdraw" in log


def bird_session(proc: subprocess.Popen[str], birdc: list[str], protocols: list[str],
                 endpoint: HttpBackend) -> None:
    """Break and mend the endpoint, then stop the check; BIRD's protocols follow."""
    wait_for("both protocols up", lambda: birdc_states(birdc, protocols),
             lambda s: s == dict.fromkeys(protocols, "up"))
    routes = subprocess.run([*birdc, "show", "route"], capture_output=True,
                            text=True, timeout=10, check=True).stdout
    assert "192.0.2.53/32" in routes and "2001:db8:53::53/128" in routes
    endpoint.mode = Mode.ERROR
    wait_for("both protocols down", lambda: birdc_states(birdc, protocols),
             lambda s: s == dict.fromkeys(protocols, "down"))
    endpoint.mode = Mode.OK
    wait_for("both protocols up again", lambda: birdc_states(birdc, protocols),
             lambda s: s == dict.fromkeys(protocols, "up"))
    os.kill(proc.pid, signal.SIGTERM)  # nothing watches the routes any more: withdraw
    assert proc.wait(timeout=STOP_SECONDS) == 0
    assert birdc_states(birdc, protocols) == dict.fromkeys(protocols, "down")
