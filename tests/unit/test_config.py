"""dnsserve.toml decoding: the shipped file, every bad case with file/key/value, helpers."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import msgspec
import pytest

from dnsserve.answer.policies import AllDown, Policy
from dnsserve.config import (
    Config,
    ConfigError,
    MemberConfig,
    check_pools_against_zones,
    config_warnings,
    decode_config,
    load_config,
    member_id,
    parse_hostport,
    parse_node_url,
    pool_from_config,
    pools_from_config,
)
from dnsserve.config_values import check_listen
from dnsserve.health.model import CheckKind, MemberId
from testkit import ROOT, TEST_DATA

BAD = TEST_DATA / "configs_bad"
SHIPPED_ORIGINS = [
    dns.name.from_text(p.name.removesuffix(".zone")) for p in (ROOT / "zones").glob("*.zone")
]

MONITOR = """
[[monitor]]
name = "web"
kind = "http"
port = 8080
"""


def decode_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        decode_config(text, file="t.toml")
    return str(info.value)


# -- bad files: each names the file, the key path and the value ------------------

BAD_CASES = [
    # fixture, key path, value as shown, problem
    ("unknown_key.toml", "pool[0].members[1].wieght", "3", "unknown key"),
    ("wrong_type.toml", "pool[0].ttl", '"20"', "expected int, got str"),
    ("bad_address_a.toml", "pool[0].members[1].address", '"127.0.0.300"', "not an IPv4 address"),
    ("ipv4_in_aaaa.toml", "pool[0].members[1].address", '"192.0.2.80"', "not an IPv6 address"),
    ("negative_weight.toml", "pool[1].members[0].weight", "-2", "must be >= 0"),
    ("interval_le_timeout.toml", "monitor[0].interval", "0.5", "greater than timeout"),
    ("unknown_monitor.toml", "pool[0].monitor", '"webb"', "no such monitor"),
    ("missing_fallback.toml", "pool[0].fallback", "[]", "must not be empty"),
    ("duplicate_pool.toml", "pool[1].owner", '"WWW.example.com."', "duplicate pool"),
]


@pytest.mark.parametrize(("fixture", "key", "value", "problem"), BAD_CASES)
def test_bad_config_names_file_key_and_value(
    fixture: str, key: str, value: str, problem: str
) -> None:
    path = BAD / fixture
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key} = {value}: "), message
    assert problem in message
    assert len(message.splitlines()) == 1, message  # exactly the one problem


def test_toml_syntax_error_names_file_and_line() -> None:
    path = BAD / "syntax_error.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:8: TOML syntax error")


def test_every_fixture_is_covered() -> None:
    covered = {case[0] for case in BAD_CASES} | {"syntax_error.toml"}
    assert covered == {p.name for p in BAD.glob("*.toml")}


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read"):
        load_config(BAD / "nope.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[server]\nlisten = ["localhost:53"]', 'server.listen[0] = "localhost:53": not an'),
        ('[server]\nlisten = []', "server.listen = []: at least one"),
        ("[server]\nsuspect_fraction = 0", "server.suspect_fraction = 0.0: must be in (0, 1]"),
        ("[server]\nidentity = true", "server.identity = true: a string, or false"),
        ("[server]\nworkers = 0", "server.workers = 0: must be between 1 and 64"),
        ("[server]\nworkers = -2", "server.workers = -2: must be between 1 and 64"),
        ("[server]\nworkers = 65", "server.workers = 65: must be between 1 and 64"),
        ('[server]\nworkers = "2"', 'server.workers = "2": expected int'),
        ("[server]\nport = 53", "server.port = 53: unknown key"),
        ("[[pool]]\nowner = 3", "pool[0].owner = 3: expected str, got int"),
        ('[[monitor]]\nname = "x"\nkind = "ftp"', 'monitor[0].kind = "ftp": must be one of http'),
        ('[[monitor]]\nname = "x"\nkind = "tcp"', "monitor[0].port: missing: required"),
        ('[[monitor]]\nname = "x"\nkind = "exec"', "monitor[0].command: missing: required"),
        ('[[monitor]]\nname = "x"\nkind = "dns"', "monitor[0].query_name: missing: required"),
        ('[[monitor]]\nname = "x"\nkind = "exec"\ncommand = []', "monitor[0].command = []: must"),
        ('[[monitor]]\nname = "x"\nkind = "exec"\ncommand = " "', 'monitor[0].command = " ": must'),
        (MONITOR + "timeout = 0", "monitor[0].timeout = 0.0: must be > 0"),
        (MONITOR + "rise = 0", "monitor[0].rise = 0: must be >= 1"),
        (MONITOR + "fall = 1.5", "monitor[0].fall = 1.5: expected int, got float"),
        (MONITOR + MONITOR, 'monitor[1].name = "web": duplicate monitor name'),
        ('[[monitor]]\nname = "a/b"\nkind = "http"', 'monitor[0].name = "a/b": must be'),
        ("[[pool]]\nmembers = []", "pool[0].owner: missing required key"),
        ("[rrl]\nrate = 0", "rrl.rate = 0: must be between 1 and 100000"),
        ("[rrl]\nipv6_prefix = 129", "rrl.ipv6_prefix = 129: must be between 0 and 128"),
        ('[rrl]\nexempt = ["10.0.0.0/33"]', 'rrl.exempt[0] = "10.0.0.0/33": not an address'),
        ('[cookies]\nsecret = "abc"', "cookies.secret = (hidden): must be 32 hex digits"),
        ("[cookies]\nenabled = 1", "cookies.enabled = 1: expected bool"),
    ],
)
def test_inline_bad_cases(text: str, expected: str) -> None:
    assert f"t.toml: {expected}" in decode_error(text)


POOL = MONITOR + """
[[pool]]
owner = "www.example.com."
type = "{type}"
monitor = "web"
{extra}
members = [{members}]
"""


@pytest.mark.parametrize(
    ("rdtype", "extra", "members", "expected"),
    [
        ("A", "", '{address = "127.0.0.1", probe = "x"}', 'members[0].probe = "x": not an IP'),
        ("A", "", "", "members = []: at least one member"),
        ("A", "max_answers = 0", '{address = "127.0.0.1"}', "max_answers = 0: must be >= 1"),
        ("A", "ttl = -1", '{address = "127.0.0.1"}', "ttl = -1: must be 0.."),
        ("A", "policy = \"random\"", '{address = "127.0.0.1"}', 'policy = "random": must be'),
        ("A", 'fallback = ["::1"]', '{address = "127.0.0.1"}', 'fallback[0] = "::1": not an IPv4'),
        ("A", "", '{address = "127.0.0.1", target = "a."}', 'members[0].target = "a.": only CNAME'),
        ("AAAA", "", '{address = "fe80::1%eth0"}', 'members[0].address = "fe80::1%eth0": not'),
        ("CNAME", "", '{address = "127.0.0.1"}', "members[0].target: missing: required"),
        ("CNAME", "", '{address = "lb.", target = "lb."}', 'members[0].address = "lb.": not an IP'),
        (
            "A",
            "",
            '{address = "127.0.0.1"}, {address = "127.0.0.01"}',
            'members[1].address = "127.0.0.01": not an IPv4',
        ),
        (
            "AAAA",
            "",
            '{address = "2001:db8::1"}, {address = "2001:DB8:0::1"}',
            'members[1].address = "2001:DB8:0::1": duplicate member (first at pool[0].members[0])',
        ),
    ],
)
def test_pool_member_cases(rdtype: str, extra: str, members: str, expected: str) -> None:
    text = POOL.format(type=rdtype, extra=extra, members=members)
    assert f"t.toml: pool[0].{expected}" in decode_error(text)


def test_owner_must_be_absolute() -> None:
    text = POOL.format(type="A", extra="", members='{address = "127.0.0.1"}')
    message = decode_error(text.replace("www.example.com.", "www.example.com"))
    assert 't.toml: pool[0].owner = "www.example.com": must be an absolute name' in message


def test_all_problems_reported_at_once() -> None:
    text = POOL.format(
        type="A", extra="max_answers = 0", members='{address = "x"}, {address = "127.0.0.2", '
        "weight = -1}"
    )
    lines = decode_error(text).splitlines()
    assert len(lines) == 3
    assert all(line.startswith("t.toml: pool[0].") for line in lines)


def test_transfer_tables() -> None:
    text = """
[[key]]
name = "xfr"
secret = "c2VjcmV0"

[[zone]]
name = "example.com."
allow_transfer = ["127.0.0.0/8"]
transfer_keys = ["xfr"]
notify = ["127.0.0.1:5302"]

[[zone]]
name = "example.org."
primaries = ["127.0.0.1:5301", "[::1]:5301"]
key = "nokey"
"""
    message = decode_error(text)
    assert message == 't.toml: zone[1].key = "nokey": no such key'
    config = decode_config(text.replace('"nokey"', '"xfr"'))
    assert config.key[0].algorithm == "hmac-sha256"
    assert config.zone[1].primaries == ("127.0.0.1:5301", "[::1]:5301")
    message = decode_error('[[key]]\nname = "k"\nsecret = "not base64!"')
    assert message == "t.toml: key[0].secret = (hidden): not base64"
    message = decode_error('[[key]]\nname = "k"\nsekret = "c2VjcmV0"')
    assert message == "t.toml: key[0].sekret = (hidden): unknown key"


# -- the shipped file and good decoding ---------------------------------------------------


def test_shipped_config_loads_and_matches_zone() -> None:
    config = load_config(ROOT / "dnsserve.toml")
    assert config.server.listen == ("127.0.0.1:5300",)
    assert (config.server.zones, config.server.state) == ("zones", "dnsserve.db")
    (monitor,) = config.monitor
    assert (monitor.name, monitor.kind, monitor.port, monitor.path) == (
        "web", CheckKind.HTTP, 8080, "/health"
    )
    assert (monitor.interval, monitor.timeout, monitor.rise, monitor.fall) == (1.0, 0.5, 2, 2)
    (pool,) = config.pool
    assert check_pools_against_zones(config, SHIPPED_ORIGINS, file="dnsserve.toml") == []
    assert config_warnings(config) == []
    # the pool's members are www's static A records in the shipped zone
    zone_text = (ROOT / "zones" / "example.com.zone").read_text()
    static = {line.split()[-1] for line in zone_text.splitlines() if line.startswith("www ")
              and " A " in line}
    assert {m.address for m in pool.members} == static == {"127.0.0.11", "127.0.0.12",
                                                             "127.0.0.13"}


def test_defaults_and_frozen() -> None:
    config = Config()
    assert config.server.version is not None and config.server.version.startswith("dnsserve ")
    assert config.server.identity is None
    assert config.server.suspect_fraction == 1.0
    with pytest.raises(AttributeError):
        config.server.zones = "elsewhere"  # type: ignore[misc]
    assert decode_config("") == config
    assert msgspec.structs.asdict(decode_config("[server]\n")) == msgspec.structs.asdict(config)


def test_chaos_answers_disabled_by_false_or_empty() -> None:
    config = decode_config('[server]\nversion = false\nidentity = "ns1.example"')
    assert (config.server.version, config.server.identity) == (None, "ns1.example")
    assert decode_config('[server]\nversion = ""').server.version is None


def test_integer_accepted_for_float_and_default_ports() -> None:
    config = decode_config(
        '[[monitor]]\nname = "a"\nkind = "https"\ninterval = 2\n'
        '[[monitor]]\nname = "b"\nkind = "dns"\nquery_name = "example.com."\n'
        '[[monitor]]\nname = "c"\nkind = "exec"\ncommand = ["/bin/true"]\n'
        '[[monitor]]\nname = "d"\nkind = "exec"\ncommand = "test -n \\"$ADDRESS\\""\n'
    )
    assert config.monitor[0].interval == 2.0
    assert [m.probe_port for m in config.monitor] == [443, 53, None, None]
    assert config.monitor[2].command == ("/bin/true",)
    assert config.monitor[3].command == 'test -n "$ADDRESS"'


def test_pools_outside_zones_and_cname_at_apex() -> None:
    text = MONITOR + """
[[pool]]
owner = "www.example.net."
type = "A"
monitor = "web"
members = [{address = "127.0.0.1"}]

[[pool]]
owner = "example.com."
type = "CNAME"
monitor = "web"
members = [{address = "127.0.0.1", target = "lb"}]

[[zone]]
name = "example.net."
"""
    config = decode_config(text, file="t.toml")
    errors = check_pools_against_zones(config, SHIPPED_ORIGINS, file="t.toml")
    assert errors[0].startswith('t.toml: pool[0].owner = "www.example.net.": not inside a loaded')
    assert errors[1].startswith('t.toml: pool[1].owner = "example.com.": a CNAME pool cannot')
    assert errors[2].startswith('t.toml: zone[0].name = "example.net.": primary zone without')
    assert len(errors) == 3


def test_nodata_and_unused_fallback_warn() -> None:
    text = POOL.format(type="A", extra='when_all_down = "nodata"\nfallback = ["192.0.2.1"]',
                       members='{address = "127.0.0.1"}')
    warnings = config_warnings(decode_config(text), file="t.toml")
    assert any("pool[0].when_all_down" in w and "fails closed" in w for w in warnings)
    assert any("pool[0].fallback" in w and "unused" in w for w in warnings)


def test_member_id_uses_probe_and_canonical_address() -> None:
    text = POOL.format(type="AAAA", extra="",
                       members='{address = "2001:DB8::1"}, {address = "2001:db8::2", '
                       'probe = "10.0.0.2"}')
    pool = decode_config(text).pool[0]
    assert member_id(pool, pool.members[0]) == MemberId("web", "2001:db8::1")
    assert member_id(pool, pool.members[1]) == MemberId("web", "10.0.0.2")
    assert member_id(pool, MemberConfig(address="127.0.0.1")).to_text() == "web/127.0.0.1"


def test_pool_from_config_makes_cname_targets_absolute() -> None:
    text = POOL.format(
        type="CNAME",
        extra='policy = "priority"\nwhen_all_down = "fallback"\nfallback = ["static"]',
        members='{address = "127.0.0.21", target = "lb-a"}, '
        '{address = "127.0.0.22", target = "lb.example.net.", priority = 2}',
    )
    config = decode_config(text)
    (pool,) = pools_from_config(config, SHIPPED_ORIGINS)
    assert pool.owner == dns.name.from_text("www.example.com.")
    assert pool.rdtype == dns.rdatatype.CNAME
    assert (pool.policy, pool.when_all_down) == (Policy.PRIORITY, AllDown.FALLBACK)
    assert [m.value for m in pool.members] == ["lb-a.example.com.", "lb.example.net."]
    assert [m.priority for m in pool.members] == [1, 2]
    assert pool.fallback == ("static.example.com.",)
    assert pool.members[0].member == MemberId("web", "127.0.0.21")
    assert pool_from_config(config.pool[0]).members[0].value == "lb-a."


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("127.0.0.1:5300", None, ("127.0.0.1", 5300)),
        ("[::1]:53", None, ("::1", 53)),
        ("[0:0::1]", 53, ("::1", 53)),
        ("::1", 53, ("::1", 53)),
        ("192.0.2.1", 53, ("192.0.2.1", 53)),
    ],
)
def test_parse_hostport(text: str, default: int | None, expected: tuple[str, int]) -> None:
    assert parse_hostport(text, default) == expected


@pytest.mark.parametrize("text", ["::1", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", "[::1]53"])
def test_parse_hostport_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hostport(text)


def test_check_listen_names_the_flag_and_value() -> None:
    """``--listen`` replaces server.listen after validation; the same rule checks it."""
    assert check_listen(["127.0.0.1:5300", "[::1]:5300"]) == []
    assert check_listen(["localhost:53", "127.0.0.1:0"]) == [
        "command line: --listen[0] = \"localhost:53\": not an ADDRESS:PORT "
        "('localhost' is not an IP address)",
        "command line: --listen[1] = \"127.0.0.1:0\": not an ADDRESS:PORT "
        "(port '0' is not 1..65535)",
    ]
    assert check_listen([]) == ["command line: --listen = []: at least one address"]


# -- [[node]]: the fleet the CLI's live commands act on ---------------------------------


def test_nodes_decode() -> None:
    config = decode_config(
        '[[node]]\nname = "ns1"\nurl = "http://127.0.0.1:8053"\n'
        '[[node]]\nname = "ns2"\nurl = "http://[::1]:8053/"\ntoken_file = "ns2.token"\n'
        'dns = "[::1]:53"\n',
        file="t.toml",
    )
    assert [(n.name, n.url, n.token_file, n.dns) for n in config.node] == [
        ("ns1", "http://127.0.0.1:8053", None, None),
        ("ns2", "http://[::1]:8053/", "ns2.token", "[::1]:53"),
    ]
    assert Config().node == ()


NODE = '[[node]]\nname = "ns1"\nurl = "http://127.0.0.1:8053"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[node]]\nname = "a"\nurl = "https://127.0.0.1:8053"',
         'node[0].url = "https://127.0.0.1:8053": not a node URL (expected http://ADDRESS:PORT'),
        ('[[node]]\nname = "a"\nurl = "http://ns1.example.com:8053"',
         "not a node URL ('ns1.example.com' is not an IP address)"),
        ('[[node]]\nname = "a"\nurl = "http://127.0.0.1"', "not a node URL (expected ADDRESS:PORT"),
        ('[[node]]\nname = "a"\nurl = "http://127.0.0.1:8053/api"', "with no path, query or user"),
        ('[[node]]\nname = "a"\nurl = "127.0.0.1:8053"', "not a node URL (expected http://"),
        ('[[node]]\nname = "a b"\nurl = "http://127.0.0.1:8053"',
         'node[0].name = "a b": must be non-empty'),
        (NODE + NODE, 'node[1].name = "ns1": duplicate node name (first at node[0])'),
        (NODE + '[[node]]\nname = "ns2"\nurl = "http://127.0.0.1:8053/"',
         'node[1].url = "http://127.0.0.1:8053/": duplicate node (first at node[0])'),
        (NODE + 'dns = "127.0.0.1"', 'node[0].dns = "127.0.0.1": not an ADDRESS:PORT'),
        (NODE + 'token_file = ""', 'node[0].token_file = "": must name a file'),
        (NODE + 'token = "x"', "node[0].token = \"x\": unknown key"),
        ('[[node]]\nurl = "http://127.0.0.1:8053"', "node[0].name: missing required key"),
    ],
)
def test_bad_nodes(text: str, expected: str) -> None:
    message = decode_error(text)
    assert message.startswith("t.toml: node[") and expected in message, message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://127.0.0.1:8053", ("127.0.0.1", 8053)),
        ("http://127.0.0.1:8053/", ("127.0.0.1", 8053)),
        ("http://[::1]:8053", ("::1", 8053)),
    ],
)
def test_parse_node_url(text: str, expected: tuple[str, int]) -> None:
    assert parse_node_url(text) == expected


def test_secondary_zone_settings() -> None:
    text = """
[[zone]]
name = "example.org."
primaries = ["127.0.0.1:5301"]
allow_notify = ["127.0.0.1/32"]
guard = false

[[zone]]
name = "example.com."
allow_notify = ["127.0.0.1/32"]
"""
    message = decode_error(text)
    assert message == ('t.toml: zone[1].allow_notify = ["127.0.0.1/32"]: only for a secondary '
                       "zone (set primaries)")
    config = decode_config(text.split("[[zone]]\nname = \"example.com.")[0])
    assert config.zone[0].secondary and config.zone[0].guard is False


def test_transfer_settings_on_a_secondary_zone_warn() -> None:
    config = decode_config('[[zone]]\nname = "example.org."\nprimaries = ["127.0.0.1:5301"]\n'
                           'allow_transfer = ["127.0.0.0/8"]\n')
    assert config_warnings(config, file="t.toml") == [
        "t.toml: zone[0]: allow_transfer unused: a secondary zone is not transferred onwards yet"]
