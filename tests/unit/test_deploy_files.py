"""The shipped configurations and ``deploy/``: what they say, read without running anything.

The repository's ``dnsserve.toml`` (what ``make run`` uses) and the production
example ``deploy/dnsserve.toml`` go through dnsserve's own config loader;
``deploy/dnsserve.service`` is read as systemd reads a unit (sections, keys,
repeated keys kept); ``deploy/anycast/dnsserve-healthcheck`` is imported from
its file and its decision table checked with lists of check results
(``testkit.deploy`` reads them). The tools' own checks (systemd-analyze,
bird, exabgp) and the script against a live endpoint are in
``tests/integration/test_deploy_tools.py``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import dns.name
import pytest

from dnsserve.config import (
    check_pools_against_zones,
    config_warnings,
    decode_config,
    load_config,
    parse_hostport,
)
from dnsserve.settings import load_settings
from testkit import ROOT
from testkit.deploy import DEPLOY, enable_examples, healthcheck_module, unit_file

SHIPPED_ORIGINS = [
    dns.name.from_text(p.name.removesuffix(".zone")) for p in (ROOT / "zones").glob("*.zone")
]


def one(section: list[tuple[str, str]], key: str) -> str:
    values = [v for k, v in section if k == key]
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


HC = healthcheck_module()


# -- the repository's dnsserve.toml ---------------------------------------------------------------


def test_shipped_config_names_only_files_that_exist() -> None:
    """Every file the shipped config names, in a key or a comment, is in the repository
    (or is made by the server: the state file and its token)."""
    settings = load_settings(ROOT / "dnsserve.toml")
    assert settings.zones_dir == ROOT / "zones" and settings.zones_dir.is_dir()
    assert settings.state_path == ROOT / "dnsserve.db"  # made at the first start
    text = (ROOT / "dnsserve.toml").read_text()
    named = set(re.findall(r"[\w./-]+\.(?:md|toml|zone|conf|service|pem)\b", text))
    assert {"README.md", "docs/control-api.md", "deploy/dnsserve.toml",
            "zones/example.com.zone"} <= named
    assert sorted(n for n in named if not (ROOT / n.removeprefix("./")).exists()) == []
    assert "DESIGN.md" not in text  # the project's design notes are not in the repository


# -- deploy/dnsserve.toml -------------------------------------------------------------------------


def test_deploy_config_loads_with_the_state_under_var_lib(tmp_path: Path) -> None:
    config = load_config(DEPLOY / "dnsserve.toml")
    server = config.server
    assert server.listen == ("0.0.0.0:53", "[::]:53")
    assert server.state == "/var/lib/dnsserve/dnsserve.db"
    assert parse_hostport(server.control) == ("127.0.0.1", 8053)
    assert config.monitor == () and config.pool == ()  # the pool is an example to enable
    # Wherever the file is put, zones are beside it and the state is in the StateDirectory.
    copy = tmp_path / "dnsserve.toml"
    copy.write_bytes((DEPLOY / "dnsserve.toml").read_bytes())
    settings = load_settings(copy)
    assert settings.zones_dir == tmp_path / "zones"
    assert settings.state_path == Path("/var/lib/dnsserve/dnsserve.db")


def test_deploy_config_examples_enabled_are_valid() -> None:
    text = enable_examples((DEPLOY / "dnsserve.toml").read_text())
    config = decode_config(text, file="deploy/dnsserve.toml (examples enabled)")
    assert (config.server.version, config.server.identity) == (None, "ns1-fra1")
    (monitor,) = config.monitor
    (pool,) = config.pool
    assert (monitor.name, pool.monitor, pool.owner) == ("web", "web", "www.example.com.")
    assert [m.address for m in pool.members] == ["192.0.2.10", "192.0.2.11", "198.51.100.20"]
    assert check_pools_against_zones(config, SHIPPED_ORIGINS, file="deploy/dnsserve.toml") == []
    assert config_warnings(config) == []


def test_enable_examples_keeps_explanations() -> None:
    text = "# prose\n#   listen = []\n#ttl = 30\n#members = [\n#  { address = \"x\" },\n#]\n#\n"
    assert enable_examples(text) == (
        "# prose\n#   listen = []\nttl = 30\nmembers = [\n  { address = \"x\" },\n]\n#")


# -- deploy/dnsserve.service ----------------------------------------------------------------------


def test_unit_runs_the_deploy_config_with_state_and_reload() -> None:
    unit = unit_file(DEPLOY / "dnsserve.service")
    service = unit["Service"]
    start = shlex.split(one(service, "ExecStart"))
    reload = shlex.split(one(service, "ExecReload"))
    assert start == ["/opt/dnsserve/.venv/bin/dnsserve", "serve", "-c",
                     "/etc/dnsserve/dnsserve.toml"]
    assert reload == [start[0], "reload", "-c", start[3]]  # the same program and config
    assert one(service, "StateDirectory") == "dnsserve"
    assert one(service, "ConfigurationDirectory") == "dnsserve"
    assert one(service, "WorkingDirectory") == "/var/lib/dnsserve"
    assert one(service, "LimitNOFILE") == "65536"
    assert one(service, "Restart") == "on-failure"
    assert one(service, "AmbientCapabilities") == "CAP_NET_BIND_SERVICE"
    assert one(service, "CapabilityBoundingSet") == "CAP_NET_BIND_SERVICE"
    assert one(service, "ProtectSystem") == "strict"
    assert one(service, "DynamicUser") == "yes"
    assert one(unit["Install"], "WantedBy") == "multi-user.target"
    # The config it runs keeps its state in the StateDirectory, the only place it may write.
    state = Path(load_config(DEPLOY / "dnsserve.toml").server.state)
    assert state.parent == Path("/var/lib") / one(service, "StateDirectory")


# -- deploy/anycast -------------------------------------------------------------------------------


def test_anycast_examples_agree() -> None:
    """The check's default URL is the deploy config's /healthz; the unit switches the
    protocols bird.conf defines, and ExaBGP runs the check where the unit does."""
    control = load_config(DEPLOY / "dnsserve.toml").server.control
    assert HC.parse_args(["--bird", "p"]).url == f"http://{control}/healthz"
    bird = (DEPLOY / "anycast" / "bird.conf").read_text()
    statics = re.findall(r"^protocol static (\S+) \{", bird, re.M)
    unit = unit_file(DEPLOY / "anycast" / "dnsserve-healthcheck.service")
    start = shlex.split(one(unit["Service"], "ExecStart"))
    assert start[:2] == ["/usr/local/bin/dnsserve-healthcheck", "--bird"]
    assert start[2:2 + len(statics)] == statics == ["dnsserve_anycast4", "dnsserve_anycast6"]
    exabgp = (DEPLOY / "anycast" / "exabgp.conf").read_text()
    assert re.search(r"^\s*run /usr/local/bin/dnsserve-healthcheck --exabgp ", exabgp, re.M)


UP, DOWN = True, False


@pytest.mark.parametrize(
    ("rise", "fall", "results", "actions"),
    [
        # unknown: nothing is announced before `rise` passes in a row
        (3, 3, [UP, UP, UP, UP], [None, None, "announce", None]),
        # unknown: `fall` failures in a row withdraw (a restart over a broken server)
        (3, 3, [DOWN, DOWN, DOWN, DOWN], [None, None, "withdraw", None]),
        # counts are consecutive: a pass resets the failures, and the other way round
        (3, 3, [UP, UP, DOWN, UP, UP, UP], [None, None, None, None, None, "announce"]),
        (2, 3, [UP, UP, DOWN, DOWN, UP, DOWN, DOWN, DOWN],
         [None, "announce", None, None, None, None, None, "withdraw"]),
        # down comes back up after `rise` passes, once
        (2, 2, [DOWN, DOWN, UP, UP, UP], [None, "withdraw", None, "announce", None]),
        # rise = fall = 1: every change of result is an action
        (1, 1, [UP, DOWN, DOWN, UP], ["announce", "withdraw", None, "announce"]),
    ],
)
def test_step(rise: int, fall: int, results: list[bool], actions: list[str | None]) -> None:
    h = HC.Hysteresis()
    got = []
    for ok in results:
        h, action = HC.step(h, ok, rise=rise, fall=fall)
        got.append(action)
    assert got == actions


def test_parse_args() -> None:
    args = HC.parse_args(["--exabgp", "192.0.2.53/32", "2001:db8:53::53/128"])
    assert (args.exabgp, args.bird, args.rise, args.fall, args.interval, args.timeout) == (
        ["192.0.2.53/32", "2001:db8:53::53/128"], None, 3, 3, 1.0, 1.0)
    assert (args.next_hop, args.disable_file, args.repeat) == ("self", None, 30.0)


@pytest.mark.parametrize(
    "argv",
    [
        [],  # neither --bird nor --exabgp
        ["--bird", "p", "--exabgp", "192.0.2.53/32"],
        ["--bird", "p", "--url", "https://127.0.0.1:8053/healthz"],
        ["--bird", "p", "--fall", "0"],
        ["--bird", "p", "--interval", "-1"],
    ],
)
def test_parse_args_refuses(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        HC.parse_args(argv)
    assert exc.value.code == 2
    assert "dnsserve-healthcheck: error:" in capsys.readouterr().err
