"""Fixtures shared by the test folders; the helpers behind them live in ``testkit``.

``tests/unit/conftest.py`` keeps unit tests off sockets and subprocesses;
``tests/integration/conftest.py`` marks everything under it ``integration``.

Property tests (hypothesis) run under one of two profiles. "thorough" is
hypothesis's defaults, every test's full example count: ``make test`` (and so
CI) selects it with ``--hypothesis-profile=thorough``. "quick", the default of
a plain ``pytest`` run, runs a fifth of the examples, so ``pytest tests/unit``
stays a matter of seconds. A test that wants more examples than the default
asks for a multiple of the profile's ``settings().max_examples``, so both profiles
scale it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from testkit.harness import Harness
from testkit.server import ServerProc, start_server
from testkit.site import Site

# Cache the test modules as pytest rewrote their asserts (and dnsserve's modules as
# compiled) even where PYTHONDONTWRITEBYTECODE is set: rewriting ~190 modules at every
# run costs ~3 s, a fifth of the unit tests' budget. Only __pycache__ (git-ignored) is written.
sys.dont_write_bytecode = False

settings.register_profile("thorough")
settings.register_profile("quick", max_examples=20)
settings.load_profile("quick")


@pytest.fixture(scope="session", params=[1, 2], ids=["workers1", "workers2"])
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ServerProc]:
    """A server on the shipped zones for the whole session: every test that uses
    it runs against one process (``workers = 1``) and against two workers."""
    srv = start_server(tmp_path_factory.mktemp("server"), workers=request.param)
    yield srv
    srv.stop()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """A health test's harness; everything it started is stopped at the end, server first."""
    with contextlib.ExitStack() as stack:
        yield Harness(tmp_path, stack)


@pytest.fixture
def site(harness: Harness) -> Site:
    """An operator's site on the harness: a zones directory with operate.example.
    (``testkit.site``); the test writes the config and starts the server."""
    return Site.create(harness)

