"""testkit.biggen: the seeded big zone is what it says (count, determinism, loadable)."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdatatype

from dnsserve.zones.load import load_zone_file
from testkit.biggen import write_big_zone


def test_exact_count_deterministic_and_loadable(tmp_path: Path) -> None:
    one, two = tmp_path / "one.zone", tmp_path / "two.zone"
    write_big_zone(one, "big.example.", 1200, seed=7)
    write_big_zone(two, "big.example", 1200, seed=7)
    assert one.read_bytes() == two.read_bytes()
    zone, _ = load_zone_file(one, dns.name.from_text("big.example."), include_dir=tmp_path)
    count = 0
    types = set()
    for _, rdataset in zone.iterate_rdatasets():
        count += len(rdataset)
        types.add(dns.rdatatype.to_text(rdataset.rdtype))
    assert count == 1200
    assert types == {"SOA", "NS", "A", "AAAA", "MX", "TXT", "CNAME", "SRV"}


def test_other_seed_other_zone(tmp_path: Path) -> None:
    write_big_zone(tmp_path / "a.zone", "big.example.", 200, seed=1)
    write_big_zone(tmp_path / "b.zone", "big.example.", 200, seed=2)
    assert (tmp_path / "a.zone").read_bytes() != (tmp_path / "b.zone").read_bytes()
