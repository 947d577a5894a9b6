"""Fixtures shared by the test folders; the helpers behind them live in ``testkit``.

``tests/unit/conftest.py`` keeps unit tests off sockets and subprocesses;
``tests/integration/conftest.py`` marks everything under it ``integration``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.harness import Harness
from testkit.server import ServerProc, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """One server on the shipped zones for the whole session."""
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """A health test's harness; everything it started is stopped at the end, server first."""
    with contextlib.ExitStack() as stack:
        yield Harness(tmp_path, stack)
