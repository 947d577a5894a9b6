"""settings.defences: what [rrl] and [cookies] become in each answering process."""

from __future__ import annotations

from pathlib import Path

from dnsserve.config_schema import Config, CookiesConfig, RrlConfig, ServerConfig
from dnsserve.settings import Settings, defences

MADE = bytes(range(16))


def _settings(listen: tuple[str, ...], rrl: RrlConfig | None = None,
              cookies: CookiesConfig | None = None) -> Settings:
    server = ServerConfig(listen=listen)
    config = Config(server=server, rrl=rrl or RrlConfig(), cookies=cookies or CookiesConfig())
    return Settings(config, None, Path("zones"), server)


def test_rrl_is_on_unless_every_listener_is_loopback_and_split_over_workers() -> None:
    assert defences(_settings(("127.0.0.1:53", "[::1]:53")), 1, MADE).rrl is None
    public = defences(_settings(("127.0.0.1:53", "0.0.0.0:53")), 2, MADE).rrl
    assert public is not None and public.rate == 10 and public.slip == 2
    forced = defences(_settings(("127.0.0.1:53",), RrlConfig(enabled=True, rate=5)), 2, MADE)
    assert forced.rrl is not None and forced.rrl.rate == 3  # rounded up
    off = defences(_settings(("192.0.2.1:53",), RrlConfig(enabled=False)), 1, MADE)
    assert off.rrl is None


def test_the_cookie_secret_is_the_configured_one_else_the_one_made_at_start() -> None:
    made = defences(_settings(("127.0.0.1:53",)), 1, MADE)
    assert (made.secret, made.previous_secret) == (MADE, None)
    given = defences(_settings(("127.0.0.1:53",), cookies=CookiesConfig(
        secret="ff" * 16, previous_secret="ee" * 16)), 1, MADE)
    assert (given.secret, given.previous_secret) == (b"\xff" * 16, b"\xee" * 16)
    off = defences(_settings(("127.0.0.1:53",), cookies=CookiesConfig(enabled=False)), 1, MADE)
    assert off.secret is None
