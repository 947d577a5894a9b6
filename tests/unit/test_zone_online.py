"""zones.online: BIND key files read back, a small zone signed (``zones.rrsign``), one
RRset signed, DS records, and a re-signing that the deletion guard does not count as
deletions."""

from __future__ import annotations

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from dnsserve.zones.compile import compile_records, compile_zone, records_from_zone
from dnsserve.zones.deletions import check_deletions
from dnsserve.zones.online import (
    KeyFormatError,
    ZoneKey,
    ds_records,
    key_from_text,
    key_to_text,
    make_key,
    private_to_text,
)
from dnsserve.zones.rrsign import sign_records, sign_rrset
from dnsserve.zones.versions import zone_content

ORIGIN = dns.name.from_text("example.com.")
TEXT = """$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.2
mail A 192.0.2.3
"""
NOW = 1_800_000_000.0
DAY = 86400


def keys(ed: bool = False) -> list[ZoneKey]:
    made = [ed25519.Ed25519PrivateKey.generate() if ed else ec.generate_private_key(ec.SECP256R1())
            for _ in range(2)]
    return [make_key(made[0], ksk=True), make_key(made[1], ksk=False)]


def signed(zone_keys: list[ZoneKey], now: float) -> dns.zone.Zone:
    zone = dns.zone.from_text(TEXT, ORIGIN, relativize=False)
    records = sign_records(records_from_zone(zone, file="t.zone", lines={}), zone_keys,
                           ORIGIN, now=now, validity=14 * DAY, refresh=7 * DAY).records
    compiled = compile_records(records, origin=ORIGIN)
    assert compiled.table is not None
    text = "\n".join(f"{dns.name.from_wire(o, 0)[0]} {ttl} IN {dns.rdatatype.to_text(t)} "
                     f"{dns.rdata.from_wire(1, t, w, 0, len(w)).to_text()}"
                     for o, t, ttl, w in records.rows())
    return dns.zone.from_text(text, ORIGIN, relativize=False)


@pytest.mark.parametrize("ed", [False, True], ids=["ecdsa", "ed25519"])
def test_key_files_read_back(ed: bool) -> None:
    for key in keys(ed):
        back = key_from_text(key_to_text(key, ORIGIN), private_to_text(key, "20260101000000"))
        assert (back.dnskey, back.ksk) == (key.dnskey, key.ksk)


def test_a_key_file_of_another_key_is_refused() -> None:
    ksk, zsk = keys()
    with pytest.raises(KeyFormatError, match="not the public half"):
        key_from_text(key_to_text(ksk, ORIGIN), private_to_text(zsk, "20260101000000"))


def test_zone_signed_validates() -> None:
    zone_keys = keys()
    zone = signed(zone_keys, NOW)
    dnskeys = zone.get_rrset(ORIGIN, dns.rdatatype.DNSKEY)
    assert dnskeys is not None and len(dnskeys) == 2
    ksk_sigs = zone.get_rrset(ORIGIN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
    assert ksk_sigs is not None and {s.key_tag for s in ksk_sigs} == {zone_keys[0].tag}
    www = dns.name.from_text("www", ORIGIN)
    rrset = zone.get_rrset(www, dns.rdatatype.A)
    sigs = zone.get_rrset(www, dns.rdatatype.RRSIG, dns.rdatatype.A)
    assert rrset is not None and sigs is not None
    assert {s.key_tag for s in sigs} == {zone_keys[1].tag}
    dns.dnssec.validate(rrset, sigs, {ORIGIN: dnskeys}, now=NOW)  # raises when invalid
    assert zone.get_rrset(www, dns.rdatatype.NSEC) is not None


def test_rrset_signed_by_the_zsk_validates() -> None:
    zone_keys = keys()
    rrset = dns.rrset.from_text("www.example.com.", 20, "IN", "A", "127.0.0.1", "127.0.0.2")
    sigs = [dns.rdata.from_wire(1, dns.rdatatype.RRSIG, w, 0, len(w))
            for w in sign_rrset(rrset, zone_keys, ORIGIN, now=NOW, validity=DAY)]
    assert [s.key_tag for s in sigs] == [zone_keys[1].tag]
    dnskeys = dns.rrset.from_rdata(ORIGIN, 300, *(k.dnskey for k in zone_keys))
    sigset = dns.rrset.from_rdata(rrset.name, 20, *sigs)
    dns.dnssec.validate(rrset, sigset, {ORIGIN: dnskeys}, now=NOW)


def test_ds_of_the_ksk() -> None:
    zone_keys = keys()
    (line,) = ds_records(zone_keys, ORIGIN)
    assert line.startswith(f"example.com. IN DS {zone_keys[0].tag} 13 2 ")


def test_resigning_is_no_deletion() -> None:
    zone_keys = keys()
    old = zone_content(compile_zone(signed(zone_keys, NOW), file="t.zone", lines={}))
    new = zone_content(compile_zone(signed(zone_keys, NOW + DAY), file="t.zone", lines={}))
    assert old != new
    assert check_deletions(old, new, max_delete_fraction=0.1) == []
