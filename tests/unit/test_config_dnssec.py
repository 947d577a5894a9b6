"""``[[zone]] dnssec``: online signing's settings, each error naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnsserve.config import load_config
from dnsserve.errors import ConfigError

ZONE = '[[zone]]\nname = "example.com."\ndnssec = {{ keys = "keys/example.com", {extra} }}\n'


@pytest.mark.parametrize(("extra", "key", "problem"), [
    ('algorithm = "RSASHA1"', "zone[0].dnssec.algorithm", "use ECDSAP256SHA256 or ED25519"),
    ("nsec3 = true", "zone[0].dnssec.nsec3", "NSEC chain only"),
    ('validity = "soon"', "zone[0].dnssec.validity", "a duration"),
    ('validity = "7d", refresh = "7d"', "zone[0].dnssec.refresh", "less than validity"),
])
def test_bad_dnssec_settings_are_named(tmp_path: Path, extra: str, key: str,
                                       problem: str) -> None:
    path = tmp_path / "dnsserve.toml"
    path.write_text(ZONE.format(extra=extra))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{key} = " in str(info.value) and problem in str(info.value), str(info.value)


def test_good_dnssec_settings_load(tmp_path: Path) -> None:
    path = tmp_path / "dnsserve.toml"
    path.write_text(ZONE.format(extra='algorithm = "ED25519", validity = "2w", refresh = "1w"'))
    dnssec = load_config(path).zone[0].dnssec
    assert dnssec is not None and (dnssec.algorithm, dnssec.validity) == ("ED25519", "2w")
