"""Reading ``deploy/`` as its programs read it: the config's examples, a systemd unit, the script.

Owns ``enable_examples`` (the convention of ``deploy/dnsserve.toml`` for
settings you may enable), ``unit_file`` (a systemd unit as sections of
keys and values) and ``healthcheck_module`` (``deploy/anycast/dnsserve-healthcheck``,
a script without ``.py``, imported from its file).

Must not: run anything; the tests that run the tools are in
``tests/integration/test_deploy_tools.py``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from testkit import ROOT

DEPLOY = ROOT / "deploy"
HEALTHCHECK = DEPLOY / "anycast" / "dnsserve-healthcheck"


def enable_examples(text: str) -> str:
    """``deploy/dnsserve.toml`` with its settings to enable enabled.

    The file's convention: a setting you may enable is commented with a "#"
    and no space (``#[[pool]]``, ``#ttl = 30``), and so is each inline table of
    an array it opens (``#  { address = ... },``); explanations are "# text".
    """
    return "\n".join(re.sub(r"^#(?=[^\s#]| +\{)", "", line) for line in text.splitlines())


def unit_file(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as sections of (key, value), in order, repeated keys kept."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None:
            raise ValueError(f"{path}: {line!r} outside a section")
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: {line!r} is no Key=value")
        current.append((key.strip(), value.strip()))
    return sections


def healthcheck_module() -> ModuleType:
    """``deploy/anycast/dnsserve-healthcheck`` imported as the module ``dnsserve_healthcheck``."""
    name = "dnsserve_healthcheck"
    loader = importlib.machinery.SourceFileLoader(name, str(HEALTHCHECK))
    spec = importlib.util.spec_from_loader(name, loader)
    if spec is None:
        raise ImportError(f"cannot import {HEALTHCHECK}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    try:
        loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module
