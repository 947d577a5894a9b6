"""The posture rules (dnsserve.posture), each with a fixture that breaks it and one that
does not: tiny zones in memory, pure functions, no sockets."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import dns.name
import dns.zone
import pytest
from dns.rdatatype import RdataType

from dnsserve.config import decode_config, place_pools
from dnsserve.posture.against import against_findings
from dnsserve.posture.configrules import config_findings
from dnsserve.posture.findings import RULES, Finding, counts, finding
from dnsserve.posture.regions import Regions, cloud_region
from dnsserve.posture.review import ignored, needs_lines, place, resolved, review
from dnsserve.posture.survey import survey
from dnsserve.posture.takeover import Entry, Suffixes
from dnsserve.posture.zonerules import takeover_pointers, unresolved, zone_findings
from dnsserve.zones.deletions import RULE_IDS
from dnsserve.zones.load import compile_file
from dnsserve.zones.table import ZoneTable
from dnsserve.zones.versions import ZoneContent, zone_content

SOA = "@ SOA ns1 hostmaster 1 7200 900 1209600 300\n"
APEX = SOA + "@ NS ns1\n@ NS ns.other.test.\nns1 A 192.0.2.1\n"
OTHER = SOA + "@ NS ns1\n@ NS ns1.example.com.\nns1 A 198.51.100.1\nns A 198.51.100.2\n"
TAKEOVER = Suffixes.from_entries([Entry(suffix="s3-website-us-east-1.amazonaws.com.",
                                        service="AWS S3 website")])


def table(origin: str, text: str) -> ZoneTable:
    zone = dns.zone.from_text(f"$TTL 300\n{text}", origin, relativize=False)
    return ZoneTable.build(zone)


def zones(extra: str = "", other: str = "") -> dict[dns.name.Name, ZoneTable]:
    return {dns.name.from_text("example.com."): table("example.com.", APEX + extra),
            dns.name.from_text("other.test."): table("other.test.", OTHER + other)}


def rules(tables: dict[dns.name.Name, ZoneTable], regions: Regions | None = None) -> set[str]:
    seen = survey(tables, {o: f"{o}zone" for o in tables})
    return {f.rule for f in zone_findings(seen, regions=regions, takeover=TAKEOVER)}


def test_the_base_fixture_breaks_no_zone_rule() -> None:
    assert rules(zones()) == set()


@pytest.mark.parametrize("record", [
    "a CNAME gone", "@ MX 10 gone", "_s._tcp SRV 0 0 1 gone", "d DNAME gone",
    "x CNAME gone.other.test.", "sub NS gone",
])
def test_dangling_target(record: str) -> None:
    assert "dangling-target" in rules(zones(record + "\n"))


@pytest.mark.parametrize("record", [
    "a CNAME ns1", "@ MX 10 ns1", "x CNAME ns1.other.test.", "x CNAME www.example.net.",
    "@ MX 0 .", "x CNAME y.w\n*.w A 192.0.2.9",
])
def test_no_dangling_target(record: str) -> None:
    assert "dangling-target" not in rules(zones(record + "\n"))


def test_takeover_cname() -> None:
    assert "takeover-cname" in rules(zones("s CNAME b.s3-website-us-east-1.amazonaws.com.\n"))
    assert "takeover-cname" not in rules(zones("s CNAME b.example.net.\n"))


def test_resolve_turns_a_takeover_warning_into_an_error() -> None:
    seen = survey(zones("s CNAME b.s3-website-us-east-1.amazonaws.com.\n"), {})
    found = zone_findings(seen, takeover=TAKEOVER)
    zone = next(z for z in seen.zones if takeover_pointers(z, TAKEOVER))
    ((pointer, entry),) = takeover_pointers(zone, TAKEOVER)
    error = unresolved(zone, pointer, entry, "127.0.0.1:53")
    after = resolved(found, {("example.com.", "s.example.com."): error})
    (error_found,) = [f for f in after if f.rule.startswith("takeover")]
    assert error_found.rule == "takeover-unresolved" and error_found.severity == "error"
    assert resolved(found, {}) == found


def test_resolve_without_a_verdict_says_the_target_was_not_checked() -> None:
    seen = survey(zones("s CNAME b.s3-website-us-east-1.amazonaws.com.\n"), {})
    found = zone_findings(seen, takeover=TAKEOVER)
    why = "--resolve 127.0.0.1:53 answered REFUSED"
    after = resolved(found, {}, {("example.com.", "s.example.com."): why})
    (warning,) = [f for f in after if f.rule.startswith("takeover")]
    assert warning.rule == "takeover-cname" and warning.severity == "warning"
    assert warning.message.endswith(f"; not checked: {why}")
    assert [f for f in after if f is not warning] == [f for f in found if f.rule != warning.rule]


REGIONS = Regions.from_prefixes([("fra", ["203.0.113.0/25"]), ("ams", ["203.0.113.128/25"])])


def test_rrset_region_single() -> None:
    assert "rrset-region-single" in rules(zones("w A 203.0.113.1\nw A 203.0.113.2\n"), REGIONS)
    assert "rrset-region-single" not in rules(zones("w A 203.0.113.1\nw A 203.0.113.200\n"),
                                              REGIONS)
    assert "rrset-region-single" in rules(zones("c CNAME lb-1.us-east-1.elb.amazonaws.com.\n"))
    assert "rrset-region-single" not in rules(zones("c CNAME lb.example.net.\n"))


def test_cloud_regions_from_host_names() -> None:
    assert cloud_region(dns.name.from_text("x.us-east-1.elb.amazonaws.com.")) == "aws:us-east-1"
    assert cloud_region(dns.name.from_text("b.s3-website-eu-west-1.amazonaws.com.")) == \
        "aws:eu-west-1"
    assert cloud_region(dns.name.from_text("vm.westeurope.cloudapp.azure.com.")) == \
        "azure:westeurope"
    assert cloud_region(dns.name.from_text("www.example.com.")) == ""
    assert REGIONS.of_address("203.0.113.200") == "ams" and REGIONS.of_address("10.0.0.1") == ""


def test_occluded_data_is_not_read_by_the_zone_rules() -> None:
    # a dangling CNAME and a takeover CNAME that no resolver can reach: not judged
    hidden = "sub NS ns.sub\nns.sub A 192.0.2.7\nx.sub CNAME gone\nd DNAME other.test.\n" \
             "y.d CNAME b.s3-website-us-east-1.amazonaws.com.\n"
    assert rules(zones(hidden)) == set()


def chain(n: int) -> str:
    return "".join(f"c{i} CNAME c{i + 1}\n" for i in range(n)) + f"c{n} A 192.0.2.5\n"


def test_cname_chain_long() -> None:
    assert "cname-chain-long" in rules(zones(chain(9)))
    assert "cname-chain-long" not in rules(zones(chain(8)))
    assert "cname-chain-long" in rules(zones("l1 CNAME l2\nl2 CNAME l1\nx CNAME l1\n"))
    assert "cname-chain-long" in rules(zones("l1 CNAME l2\nl2 CNAME l1\n"))  # nothing enters


def test_soa_timers() -> None:
    bad = APEX.replace("1209600 300", "86400 300")
    tables = zones()
    tables[dns.name.from_text("example.com.")] = table("example.com.", bad)
    assert rules(tables) == {"soa-timers"}


def test_ns_in_one_prefix_and_one_zone() -> None:
    one = SOA + "@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n"
    tables = {dns.name.from_text("example.com."): table("example.com.", one)}
    assert rules(tables) == {"ns-one-prefix", "ns-one-zone"}
    assert rules(zones()) == set()  # two zones, and an address we do not hold


def pool_rules(config: str, extra: str = "") -> dict[str, Finding]:
    cfg = decode_config('[[monitor]]\nname = "w"\nkind = "tcp"\nport = 80\n' + config,
                        file="t.toml")
    tables = zones(extra)
    placed = place_pools(cfg, tables, file="t.toml")
    seen = survey(tables, {o: f"{o}zone" for o in tables})
    found = review(cfg, placed.pools, seen, file="t.toml", takeover=TAKEOVER)
    found += config_findings(cfg, file="t.toml")
    return {f.rule: f for f in found}


def pool(members: str, extra: str = "") -> str:
    return f'[[pool]]\nowner = "www.example.com."\ntype = "A"\nmonitor = "w"\n{extra}' \
           f"members = [{members}]\n"


TWO = '{ address = "192.0.2.10", region = "a" }, { address = "192.0.2.11", region = "b" }'
STATIC = "www A 192.0.2.10\nwww A 192.0.2.11\n"


def test_a_good_pool_breaks_no_pool_rule() -> None:
    assert pool_rules(pool(TWO), STATIC) == {}


def test_pool_single_member() -> None:
    assert "pool-single-member" in pool_rules(pool('{ address = "192.0.2.10" }'),
                                              "www A 192.0.2.10\n")


def test_pool_region_single() -> None:
    same = TWO.replace('"b"', '"a"')
    found = pool_rules(pool(same), STATIC)
    assert set(found) == {"pool-region-single"}
    assert found["pool-region-single"].key == "pool[0].members"
    inferred = pool_rules('[[region]]\nname = "fra"\nprefixes = ["192.0.2.0/24"]\n'
                          + pool('{ address = "192.0.2.10" }, { address = "192.0.2.11" }'),
                          STATIC)
    assert "pool-region-single" in inferred


def test_pool_static_mismatch() -> None:
    assert "pool-static-mismatch" in pool_rules(pool(TWO), "www A 192.0.2.99\n")
    assert "pool-static-mismatch" in pool_rules(pool(TWO))  # no static set: NODATA elsewhere


def test_pool_nodata() -> None:
    found = pool_rules(pool(TWO, 'when_all_down = "nodata"\n'), STATIC)
    assert set(found) == {"pool-nodata"} and found["pool-nodata"].key == "pool[0].when_all_down"


def test_ttl_over_budget() -> None:
    assert set(pool_rules(pool(TWO, "ttl = 61\n"), STATIC)) == {"ttl-over-budget"}
    budget = "[posture]\nfailover_budget = 90\n"
    assert pool_rules(budget + pool(TWO, "ttl = 61\n"), STATIC) == {}


def test_cname_ttl_over_budget() -> None:
    assert set(pool_rules(pool(TWO), STATIC + "app 300 CNAME www\n")) == {"cname-ttl-over-budget"}
    assert pool_rules(pool(TWO), STATIC + "app 30 CNAME www\n") == {}


@pytest.mark.parametrize(("text", "rule"), [
    ("@ CNAME elsewhere.test.\n", "cname-apex"),
    ("x CNAME ns1\nx TXT hi\n", "cname-beside-data"),
    ("@ MX 10 m\nm CNAME ns1\n", "target-is-cname"),
    ("@ MX 10 nowhere\n", "target-no-address"),
    ("sub NS ns.sub\n", "ns-no-glue"),
    ("sub NS ns.sub\nns.sub A 192.0.2.7\nx.sub TXT hi\n", "occluded-data"),
    ("d DNAME other.test.\nx.d TXT hi\n", "occluded-data"),
    ("a NS ns.b\nb NS ns.b\nns.b A 192.0.2.3\nc NS ns.b\nx.c A 192.0.2.4\nd NS x.c\n",
     "glue-out-of-bailiwick"),
    ("m 60 A 192.0.2.1\nm 300 A 192.0.2.2\n", "ttl-mixed"),
    ("stray.example.net. A 192.0.2.1\n", "owner-outside-zone"),
    ('t TXT "caf\xe9"\n', "raw-octet"),
    ("@ DS 1 8 2 " + "ab" * 32 + "\n", "ds-misplaced"),
])
def test_structural_rules_judged_while_loading_carry_their_ids(
    tmp_path: Path, text: str, rule: str
) -> None:
    path = tmp_path / "example.com.zone"
    path.write_text(f"$ORIGIN example.com.\n$TTL 300\n{APEX}{text}")
    problems = compile_file(path, dns.name.from_text("example.com."), tmp_path).problems
    assert rule in {p.rule for p in problems}, problems
    path.write_text(f"$ORIGIN example.com.\n$TTL 300\n{APEX}")
    assert not compile_file(path, dns.name.from_text("example.com."), tmp_path).problems


def contents(extra: str = "", serial: int = 2) -> dict[dns.name.Name, ZoneContent]:
    text = APEX.replace("hostmaster 1", f"hostmaster {serial}") + extra
    return {dns.name.from_text("example.com."): zone_content(table("example.com.", text))}


def hosts(n: int) -> str:
    return "".join(f"h{i} A 198.51.100.{i}\n" for i in range(n))


HOSTS = hosts(40)


def against(
    old: str, new: str, serial: int = 3,
    protected: Collection[tuple[dns.name.Name, RdataType]] = (),
) -> set[str]:
    found = against_findings(contents(old), contents(new, serial), files={}, reference="main",
                             protected=protected)
    return {f.rule for f in found}


def test_against_a_change_that_deletes_nothing() -> None:
    assert against(HOSTS, HOSTS + "new A 192.0.2.77\n") == {"zone-changes"}
    assert against(HOSTS, HOSTS, serial=2) == set()


def test_against_the_deletion_guards_rules() -> None:
    assert "delete-rrset" in against(HOSTS + "x TXT hi\n", HOSTS + "x A 192.0.2.8\n")
    assert "delete-too-many" in against(HOSTS, hosts(20))
    www = dns.name.from_text("www.example.com.")
    pools = {(www, RdataType.A)}
    assert "delete-pool-name" in against(HOSTS + "www A 192.0.2.8\n", HOSTS, protected=pools)
    assert "delete-pool-name" not in against(HOSTS + "www A 192.0.2.8\n",
                                              HOSTS + "www A 192.0.2.9\n", protected=pools)


def test_against_serial_and_deleted_zone() -> None:
    assert "serial-not-bumped" in against(HOSTS, HOSTS + "n A 192.0.2.1\n", serial=2)
    gone = against_findings(contents(), {}, files={}, reference="main")
    assert [f.rule for f in gone] == ["delete-zone"] and gone[0].severity == "error"
    (new,) = against_findings({}, contents(), files={}, reference="main")
    assert new.rule == "zone-changes" and "a new zone" in new.message


def test_every_rule_id_emitted_is_in_the_catalogue() -> None:
    assert set(RULE_IDS) <= set(RULES)
    assert all(r.severity in ("error", "warning", "info") and r.fix for r in RULES.values())


def test_place_ignore_and_counts() -> None:
    f = finding("soa-timers", "m", file="z.zone", zone="example.com.",
                at=("example.com.", "SOA"))
    assert needs_lines([f]) == {"example.com."}
    (placed,) = place([f], {"example.com.": {("example.com.", "SOA"): ("z.zone", 3)}})
    assert (placed.file, placed.line, placed.at) == ("z.zone", 3, None)
    assert ignored([f], ["soa-timers"]) == []
    assert counts([f]) == (0, 1) and counts([f], strict=True) == (1, 1)


def test_config_keys_of_regions_and_posture_are_validated() -> None:
    with pytest.raises(Exception, match=r"region\[0\].prefixes\[0\] = \"x\"") as exc:
        decode_config('[[region]]\nname = "a"\nprefixes = ["x"]\n[posture]\n'
                      'failover_budget = -1\nignore = ["nope"]\n', file="t.toml")
    assert "posture.failover_budget = -1" in str(exc.value)
    assert 'posture.ignore[0] = "nope"' in str(exc.value)


def test_occluded_data_fix_says_what_to_do_below_a_dname(tmp_path: Path) -> None:
    """A name below a DNAME is not in a delegated zone: the fix says where it belongs."""
    path = tmp_path / "example.com.zone"
    path.write_text(f"$ORIGIN example.com.\n$TTL 300\n{APEX}d DNAME other.test.\nx.d TXT hi\n")
    (problem,) = [p for p in compile_file(path, dns.name.from_text("example.com."),
                                          tmp_path).problems if p.rule == "occluded-data"]
    fix = RULES[problem.rule].fix
    assert "below a DNAME" in fix and "target" in fix, fix
