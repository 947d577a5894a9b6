"""benchmarks/RESULTS.md: one file, one marked section per benchmark script.

Each script replaces only its own section, so running one benchmark keeps
the others' latest figures.
"""

from __future__ import annotations

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
