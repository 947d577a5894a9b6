"""transfers: [[key]] entries (secret or BIND key_file) into a keyring; zone settings."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import dns.name
import dns.tsig
import msgspec
import pytest

from dnsserve.config_schema import Config
from dnsserve.errors import ConfigError
from dnsserve.transfers import load_keyring, load_keys, zone_settings
from testkit import ROOT

SECRET = base64.b64encode(b"k" * 32).decode()


def config(**raw: object) -> Config:
    return msgspec.convert(raw, type=Config)


def test_secret_in_the_config(tmp_path: Path) -> None:
    ring = load_keyring(config(key=[{"name": "xfr", "secret": SECRET}]), tmp_path)
    key = ring[dns.name.from_text("xfr")]
    assert key.secret == b"k" * 32 and key.algorithm == dns.tsig.HMAC_SHA256


def test_key_file_relative_to_the_config(tmp_path: Path) -> None:
    shutil.copy(ROOT / "tests" / "data" / "tsig-keygen.key", tmp_path / "xfr.key")
    keys = load_keys(
        config(key=[{"name": "xfr-test.example", "key_file": "xfr.key"}]), tmp_path
    )
    assert keys["xfr-test.example"].algorithm == "hmac-sha512"


def test_missing_key_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key\[0\] \(xfr\).*nope.key"):
        load_keys(config(key=[{"name": "xfr", "key_file": "nope.key"}]), tmp_path)


def test_zone_settings() -> None:
    cfg = config(
        key=[{"name": "xfr", "secret": SECRET}],
        zone=[
            {"name": "example.com.", "allow_transfer": ["127.0.0.0/8"], "transfer_keys": ["xfr"],
             "notify": ["127.0.0.1:5302", "127.0.0.2"]},
            {"name": "example.org.", "primaries": ["127.0.0.1:5301"]},
        ],
    )
    zones = zone_settings(cfg)
    [origin] = zones
    zone = zones[origin]
    assert origin == dns.name.from_text("example.com.")
    assert zone.notify == (("127.0.0.1", 5302), ("127.0.0.2", 53))
    assert zone.notify_key == dns.name.from_text("xfr")
    assert zone.access.allows("127.0.0.1", dns.name.from_text("xfr"))
