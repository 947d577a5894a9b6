"""benchmarks/RESULTS.md: one file, one marked section per benchmark script.

Each script replaces only its own section, so running one benchmark keeps
the others' latest figures. Also what every report says about its run: the
machine (``machine_info``), the command as typed (``shown_argv``), and the
options the health benchmarks share (``add_report_options``, ``workdir``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from testkit import ROOT

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION_ORDER = (
    "core", "flood", "parse", "zones", "reload", "workers", "failover", "pool", "drift", "checks",
    "hostile", "xfr", "publish", "dnssec", "dnssec-flip", "dnssec-sign", "rrl", "watch",
)
TITLE = "# Benchmark results"
INTRO = (
    "Each section is written by the script it names (`make bench` runs the core one;"
    " the health ones need gdnsd and pdns-server too). Ratios are dnsserve / peer,"
    " measured side by side in one run."
)


def write_section(key: str, text: str, path: Path = RESULTS) -> None:
    """Put ``text`` between ``key``'s markers in the report, keeping the other sections."""
    assert key in SECTION_ORDER, key
    sections = dict.fromkeys(SECTION_ORDER, "")
    if path.exists():
        body = path.read_text()
        for name in SECTION_ORDER:
            begin, end = f"<!-- begin {name} -->\n", f"<!-- end {name} -->\n"
            if begin in body and end in body:
                sections[name] = body.split(begin, 1)[1].split(end, 1)[0]
    sections[key] = text.rstrip("\n") + "\n"
    parts = [TITLE, "", INTRO, ""]
    for name in SECTION_ORDER:
        if sections[name]:
            parts.append(f"<!-- begin {name} -->\n{sections[name]}<!-- end {name} -->\n")
    path.write_text("\n".join(parts))


def add_report_options(ap: argparse.ArgumentParser) -> None:
    """The options every health benchmark shares: where to write, and when to fail."""
    ap.add_argument("--out", type=Path, default=RESULTS,
                    help="report file (default benchmarks/RESULTS.md)")
    ap.add_argument("--no-report", action="store_true", help="print only")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a bar is not met")


def command_output(cmd: list[str]) -> str:
    """stdout and stderr of ``cmd`` (a version query), or why it could not run."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    return (p.stdout + p.stderr).strip()


def machine_info(python: str) -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    dnsperf_v = re.search(r"Version (\S+)", command_output(["dnsperf", "-h"]))
    nsd = command_output(["nsd", "-v"]).splitlines()[0] if shutil.which("nsd") else "not installed"
    knotd = command_output(["knotd", "-V"]).splitlines()[0] if shutil.which("knotd") else "missing"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "python": command_output([python, "-c", "import sys; print(sys.version.split()[0])"]),
        "dnsserve": command_output([python, "-c", "import dnsserve; print(dnsserve.__version__)"]),
        "nsd": nsd,
        "knotd": knotd,
        "dnsperf": dnsperf_v.group(1) if dnsperf_v else "unknown",
    }


def shown_argv(module: str, argv: list[str]) -> list[str]:
    """The command as a reader types it from the repository: ``.venv/bin/python -m ...``."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    return [str(python), "-m", f"benchmarks.{module}", *argv]


@contextlib.contextmanager
def workdir(prefix: str, keep: bool) -> Iterator[Path]:
    """A temporary directory for a run's configs and logs; removed unless ``keep``."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
