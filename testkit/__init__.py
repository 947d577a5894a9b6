"""Helpers shared by the tests and the benchmarks; not part of the shipped package.

Owns what a test or a benchmark needs around dnsserve: free loopback ports
(``ports``), one bounded poll (``wait``), dnsserve as a subprocess
(``server``), reference servers (``peers``), health-check backends in threads
(``backends``) or in processes of their own (``backend_process``), the
health-test harness (``harness``), engine-level queries (``answers``), CPU
pinning and CPU time (``cpu``), dnsperf runs (``dnsperf``), the health
benchmarks' pool (``health_pool``), the benchmark workload (``zonegen``), big seeded
zones for the parse and scale benchmarks (``biggen``),
headless Chromium for the status page (``browser``) and ``deploy/`` read as
its programs read it (``deploy``).

Must not: send traffic anywhere but loopback, leave a process or thread it
started running once its owner has stopped it, or be imported by dnsserve.
``pyproject.toml`` packages ``dnsserve*`` only, so the wheel leaves it out.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_ZONES = ROOT / "zones"
TEST_DATA = ROOT / "tests" / "data"
