"""The ``--help`` texts: rich markup must not eat the config's ``[[zone]]`` and ``[[key]]``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from dnsserve.cli import cli

WIDE = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}  # one line per sentence


def _paths(command: Any, path: list[str]) -> Iterator[list[str]]:
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _paths(sub, [*path, name])


def _help(*path: str) -> str:
    done = CliRunner().invoke(cli, [*path, "--help"], env=WIDE)
    assert done.exit_code == 0, done.output
    return done.output


def test_config_sections_are_shown_in_the_help_texts() -> None:
    assert "for [[zone]] dnssec.keys;" in _help("dnssec-keygen")
    assert "for [[zone]] dnssec.keys;" in _help()  # the command list's short help
    assert "A zone with [[zone]] dnssec keys." in _help("dnssec", "ds")
    assert "a file for [[key]] key_file," in _help("tsig-keygen")


def test_no_help_text_has_brackets_emptied_by_markup() -> None:
    paths = list(_paths(typer.main.get_command(cli), []))
    assert len(paths) > 10  # every command, nested ones included
    for path in paths:
        assert "[]" not in _help(*path), path
