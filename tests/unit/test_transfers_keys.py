"""transfers: [[key]] entries (secret or BIND key_file) into a keyring; zone settings."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import dns.name
import dns.tsig
import msgspec
import pytest

from dnsserve.config import config_warnings
from dnsserve.config_schema import Config
from dnsserve.errors import ConfigError
from dnsserve.transfers import load_keyring, load_keys, publish_zones, zone_settings
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


def test_notify_without_transfers_and_publish_without_notify_warn() -> None:
    cfg = config(zone=[
        {"name": "a.example.", "notify": ["127.0.0.1:5302"]},
        {"name": "b.example.", "allow_transfer": ["127.0.0.1/32"], "publish": True},
        {"name": "c.example.", "allow_transfer": ["127.0.0.1/32"], "notify": ["127.0.0.1"]},
    ])
    warnings = config_warnings(cfg, file="t.toml")
    assert len(warnings) == 2
    assert warnings[0].startswith("t.toml: zone[0].notify") and "no transfer" in warnings[0]
    assert warnings[1].startswith("t.toml: zone[1].publish") and "no notify" in warnings[1]


def test_publish_zones_from_pools_and_zones() -> None:
    pool = {"type": "A", "monitor": "m", "members": [{"address": "192.0.2.1"}]}
    cfg = config(
        monitor=[{"name": "m", "kind": "tcp", "port": 80}],
        pool=[{**pool, "owner": "www.a.example.", "publish": True},
              {**pool, "owner": "www.b.example."},
              {**pool, "owner": "x.b.example."},
              {**pool, "owner": "www.c.example."}],
        zone=[{"name": "b.example.", "publish": True, "publish_min_interval": 2.0}],
    )
    origins = [dns.name.from_text(o) for o in ("a.example.", "b.example.", "c.example.")]
    zones = publish_zones(cfg, origins)
    a, b = dns.name.from_text("a.example."), dns.name.from_text("b.example.")
    assert set(zones) == {a, b}
    assert zones[b].min_interval == 2.0 and len(zones[b].pools) == 2
    assert zones[a].min_interval == 5.0
