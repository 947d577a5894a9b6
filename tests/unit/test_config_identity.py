"""``[server] nsid`` / ``identity`` and the TCP fairness keys as the config reads them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dnsserve.config import decode_config
from dnsserve.config_schema import identity_bytes
from dnsserve.errors import ConfigError
from dnsserve.settings import load_settings


def test_identity_follows_nsid_unless_written() -> None:
    assert decode_config('[server]\nnsid = "hex:6e6f6465"').server.identity == "hex:6e6f6465"
    assert identity_bytes("hex:6e6f6465") == identity_bytes("node") == b"node"
    both = decode_config('[server]\nnsid = "a"\nidentity = false').server
    assert (both.nsid, both.identity) == ("a", None)


@pytest.mark.parametrize(("line", "key"), [
    ('nsid = "hex:abc"', "server.nsid"),
    (f'identity = "{"x" * 256}"', "server.identity"),
    ("tcp_max_connections_per_prefix = 0", "server.tcp_max_connections_per_prefix"),
    ("tcp_ipv6_prefix_length = 129", "server.tcp_ipv6_prefix_length"),
])
def test_bad_values_name_the_key(line: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        decode_config(f"[server]\n{line}", file="dns.toml")
    assert f"dns.toml: {key} = " in str(err.value)


def test_a_bad_nsid_is_one_error_not_also_one_of_the_identity_not_written() -> None:
    with pytest.raises(ConfigError) as err:
        decode_config('[server]\nnsid = "hex:abc"', file="dns.toml")
    assert "server.nsid = " in str(err.value) and "server.identity" not in str(err.value)
    with pytest.raises(ConfigError) as err:  # an identity written is judged on its own
        decode_config('[server]\nnsid = "hex:abc"\nidentity = "hex:zz"', file="dns.toml")
    assert "server.nsid = " in str(err.value) and "server.identity = " in str(err.value)


def test_hostname_is_read_when_the_config_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "dnsserve.toml"
    path.write_text('[server]\nnsid = "hostname"\n')
    server = load_settings(path).server
    assert server.nsid == server.identity == socket.gethostname()
