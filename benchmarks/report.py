"""benchmarks/RESULTS.md: one file, one marked section per benchmark script.

Each script replaces only its own section, so running one benchmark keeps
the others' latest figures.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION_ORDER = ("core", "failover", "pool", "drift")
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


def pick_cpus(args: argparse.Namespace) -> argparse.Namespace:
    """Server on CPU 0 and client on CPU 1 when there are two; unpinned otherwise."""
    two = (os.cpu_count() or 1) >= 2
    args.server_cpu = 0 if two else None
    args.client_cpu = 1 if two else None
    return args
