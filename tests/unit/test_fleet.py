"""fleet: which nodes a live command acts on, their tokens and DNS addresses (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnsserve.client import ControlClientError, Node
from dnsserve.fleet import Target, targets, with_token
from dnsserve.settings import Settings, load_settings

TOKEN = "k" * 43


def settings_with(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return load_settings(path)


NODES = """
[server]
listen = ["0.0.0.0:53"]
control = "[::1]:9053"
state = "var/state.db"

[[node]]
name = "ns1"
url = "http://192.0.2.1:8053/"
token_file = "tokens/ns1"

[[node]]
name = "ns2"
url = "http://[2001:db8::2]:8053"
dns = "[2001:db8::53]:5353"
"""


def test_the_local_server_by_default(tmp_path: Path) -> None:
    s = settings_with(tmp_path, '[server]\nlisten = ["0.0.0.0:5300"]\ncontrol = "0.0.0.0:8053"\n'
                      "control_allow_remote = true\n")
    assert targets(s, []) == [Target(Node("http://127.0.0.1:8053"), None, ("127.0.0.1", 5300))]


def test_every_node_of_the_config(tmp_path: Path) -> None:
    s = settings_with(tmp_path, NODES)
    assert targets(s, []) == [
        Target(Node("http://192.0.2.1:8053", name="ns1"), tmp_path / "tokens/ns1",
               ("192.0.2.1", 53)),
        Target(Node("http://[2001:db8::2]:8053", name="ns2"), None, ("2001:db8::53", 5353)),
    ]


def test_node_flags_by_name_or_url(tmp_path: Path) -> None:
    s = settings_with(tmp_path, NODES)
    chosen = targets(s, ["ns2", "http://198.51.100.7:8053"])
    assert [t.node for t in chosen] == [Node("http://[2001:db8::2]:8053", name="ns2"),
                                        Node("http://198.51.100.7:8053")]
    assert chosen[1].dns == ("198.51.100.7", 53)  # the URL's address, listen's port
    with pytest.raises(ValueError, match=r"not a URL .* nor the name of a \[\[node\]\] "
                                         r"\(ns1, ns2\)"):
        targets(s, ["ns3"])
    with pytest.raises(ValueError, match="'localhost' is not an IP address"):
        targets(s, ["http://localhost:8053"])


def test_token_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--token-file, else the node's token_file, else $DNSSERVE_TOKEN, else beside the state."""
    state = tmp_path / "state.db"
    beside = tmp_path / "state.db.token"
    beside.write_text("beside-" + TOKEN)
    node_file = tmp_path / "node.token"
    node_file.write_text("node-" + TOKEN)
    flag = tmp_path / "flag.token"
    flag.write_text("flag-" + TOKEN)
    plain = Target(Node("http://127.0.0.1:8053"))
    with_file = Target(Node("http://127.0.0.1:8053"), token_file=node_file)
    env = {"DNSSERVE_TOKEN": "env-" + TOKEN}

    def token(target: Target, flag_file: Path | None, environ: dict[str, str]) -> str | None:
        return with_token(target, flag_file, state, environ).node.token

    assert token(with_file, flag, env) == "flag-" + TOKEN
    assert token(with_file, None, env) == "node-" + TOKEN
    assert token(plain, None, env) == "env-" + TOKEN
    assert token(plain, None, {}) == "beside-" + TOKEN
    beside.unlink()
    with pytest.raises(ControlClientError, match=r"state\.db\.token: cannot read the control "
                                                 r"token.*give --token-file, or the token in"):
        token(plain, None, {})
