"""zones.rrsign: the fast signer against dnspython's ``dns.dnssec.sign`` (the reference),
what is signed at delegations and wildcards, and signatures kept across a reload."""

from __future__ import annotations

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from dnsserve.zones.compile import compile_records, records_from_zone
from dnsserve.zones.online import SKEW, ZoneKey, make_key
from dnsserve.zones.records import ParsedRecords
from dnsserve.zones.rrsign import REFRESH_SLACK, Reusable, Signed, sign_records
from dnsserve.zones.table import ZoneTable
from dnsserve.zones.versions import zone_content

ORIGIN = dns.name.from_text("example.com.")
TEXT = """$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 60
@ NS ns1
@ MX 10 Mail.Example.com.
ns1 A 192.0.2.1
www 600 A 192.0.2.2
www A 192.0.2.3
WWW TXT "b" "longer"
www TXT "a"
*.wild A 192.0.2.4
sub NS ns.sub
sub DS 12345 13 2 1122334455667788990011223344556677889900112233445566778899001122
ns.sub A 192.0.2.5
deep.ns.sub A 192.0.2.6
nods NS ns.elsewhere.net.
mail A 192.0.2.7
"""
NOW = 1_800_000_000
DAY = 86400
VALIDITY, REFRESH = 14 * DAY, 7 * DAY
KEYS = {
    "ecdsa": [make_key(ec.generate_private_key(ec.SECP256R1()), ksk=True),
              make_key(ec.generate_private_key(ec.SECP256R1()), ksk=False)],
    "ed25519": [make_key(ed25519.Ed25519PrivateKey.generate(), ksk=True),
                make_key(ed25519.Ed25519PrivateKey.generate(), ksk=False)],
}


def parsed(text: str = TEXT) -> ParsedRecords:
    zone = dns.zone.from_text(text, ORIGIN, relativize=False, check_origin=False)
    return records_from_zone(zone, file="t.zone", lines={})


def table(signed: Signed) -> ZoneTable:
    compiled = compile_records(signed.records, origin=ORIGIN)
    assert compiled.table is not None, [p.message for p in compiled.problems]
    return compiled.table


def sign(keys: list[ZoneKey], *, now: int = NOW, text: str = TEXT,
         reusable: Reusable | None = None) -> Signed:
    return sign_records(parsed(text), keys, ORIGIN, now=now, validity=VALIDITY,
                        refresh=REFRESH, reusable=reusable)


def rrsets(signed: Signed) -> dict[tuple[dns.name.Name, int, int], dns.rrset.RRset]:
    """(owner, type, covered) -> RRset of the signed records."""
    out: dict[tuple[dns.name.Name, int, int], dns.rrset.RRset] = {}
    for owner, rdtype, ttl, wire in signed.records.rows():
        name = dns.name.from_wire(owner, 0)[0]
        rdata = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, 0, len(wire))
        covered = int(rdata.covers())
        found = out.setdefault((name.canonicalize(), rdtype, covered),
                               dns.rrset.RRset(name, dns.rdataclass.IN, rdtype, covered))
        found.add(rdata, ttl)
    return out


def dnskeys(keys: list[ZoneKey]) -> dict[dns.name.Name, dns.rrset.RRset]:
    return {ORIGIN: dns.rrset.from_rdata(ORIGIN, 300, *(k.dnskey for k in keys))}


@pytest.mark.parametrize("kind", KEYS)
def test_signatures_are_dnspythons_byte_for_byte_and_validate(kind: str) -> None:
    keys = KEYS[kind]
    signed = sign(keys)
    found = rrsets(signed)
    sigs = {k: v for k, v in found.items() if k[1] == dns.rdatatype.RRSIG}
    assert len(sigs) > 10
    for (name, _, covered), sigset in sigs.items():
        rrset = found[(name, covered, 0)]
        dns.dnssec.validate(rrset, sigset, dnskeys(keys), now=NOW)  # raises when invalid
        (ours,) = sigset
        key = next(k for k in keys if k.tag == ours.key_tag)
        reference = dns.dnssec.sign(rrset, key.private, ORIGIN, key.dnskey,
                                    inception=NOW - SKEW, expiration=NOW + VALIDITY)
        assert ours == reference, (name, covered)


def test_what_is_signed_at_cuts_wildcards_and_the_apex() -> None:
    keys = KEYS["ecdsa"]
    found = rrsets(sign(keys))

    def covered(name: str) -> set[str]:
        owner = dns.name.from_text(name, ORIGIN)
        return {dns.rdatatype.to_text(c) for (n, t, c) in found
                if n == owner and t == dns.rdatatype.RRSIG}
    assert covered("@") == {"SOA", "NS", "MX", "DNSKEY", "NSEC"}
    assert covered("sub") == {"DS", "NSEC"}  # not the NS of the delegation
    assert covered("nods") == {"NSEC"}
    assert covered("ns.sub") == covered("deep.ns.sub") == set()  # glue, occluded
    (dnskey_sig,) = found[(ORIGIN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)]
    assert dnskey_sig.key_tag == keys[0].tag  # the KSK signs the DNSKEY RRset
    wild = dns.name.from_text("*.wild", ORIGIN)
    (wild_sig,) = found[(wild, dns.rdatatype.RRSIG, dns.rdatatype.A)]
    assert wild_sig.labels == 3
    nsec = found[(dns.name.from_text("sub", ORIGIN), dns.rdatatype.NSEC, 0)][0]
    assert nsec.next == dns.name.from_text("*.wild", ORIGIN)
    assert found[(ORIGIN, dns.rdatatype.NSEC, 0)].ttl == 60  # RFC 9077: min(SOA TTL, MINIMUM)
    assert table(sign(keys)).origin == ORIGIN


def test_a_reload_keeps_what_did_not_change() -> None:
    keys = KEYS["ecdsa"]
    first = sign(keys)
    reusable = Reusable.of(zone_content(table(first)))
    changed = TEXT.replace("1 7200", "2 7200").replace("192.0.2.7", "192.0.2.8")
    again = sign(keys, now=NOW + 3600, text=changed, reusable=reusable)
    # mail's A and the SOA are new: two signatures; the rest kept
    assert (again.signed, again.reused) == (2, first.signed - 2)
    found = rrsets(again)
    for (name, _, covered), sigset in found.items():
        if _ == dns.rdatatype.RRSIG:
            dns.dnssec.validate(found[(name, covered, 0)], sigset, dnskeys(keys), now=NOW + 3600)


def test_a_new_name_resigns_its_nsec_neighbour() -> None:
    keys = KEYS["ed25519"]
    reusable = Reusable.of(zone_content(table(sign(keys))))
    again = sign(keys, text=TEXT + "mailx A 192.0.2.9\n", reusable=reusable)
    # mailx's A and NSEC, mail's NSEC (its next name changed)
    assert again.signed == 3


def test_signatures_in_their_refresh_window_are_made_again() -> None:
    keys = KEYS["ecdsa"]
    first = sign(keys)
    reusable = Reusable.of(zone_content(table(first)))
    late = sign(keys, now=NOW + VALIDITY - REFRESH + 1, reusable=reusable)
    assert (late.signed, late.reused) == (first.signed, 0)
    # the re-signing timer's moment (whole seconds read): made again, not kept a turn
    due = sign(keys, now=NOW + VALIDITY - REFRESH - REFRESH_SLACK, reusable=reusable)
    assert (due.signed, due.reused) == (first.signed, 0)
    early = sign(keys, now=NOW + VALIDITY - REFRESH - REFRESH_SLACK - 1, reusable=reusable)
    assert (early.signed, early.reused) == (0, first.signed)


def test_other_keys_reuse_nothing() -> None:
    reusable = Reusable.of(zone_content(table(sign(KEYS["ecdsa"]))))
    other = sign(KEYS["ed25519"], reusable=reusable)
    assert other.reused == 0


def test_a_zone_without_soa_is_refused() -> None:
    bare = ParsedRecords(ORIGIN.to_digestable(), ["t.zone"])
    for owner, rdtype, ttl, rdata in parsed().rows():
        if rdtype != dns.rdatatype.SOA:
            bare.add(owner, rdtype, ttl, rdata, 0, 0)
    with pytest.raises(ValueError, match="no SOA"):
        sign_records(bare, KEYS["ecdsa"], ORIGIN, now=NOW, validity=VALIDITY, refresh=REFRESH)


def test_two_zsks_sign_every_rrset_twice_and_compile() -> None:
    """A rollover's keys: the apex's RRSIGs over several types outgrow one UDP answer
    together, which is no RRset's size (compiling used to fail on them)."""
    keys = KEYS["ecdsa"] + [make_key(ec.generate_private_key(ec.SECP256R1()), ksk=False)]
    text = TEXT + '@ A 192.0.2.9\n@ AAAA 2001:db8::9\n@ CAA 0 issue "ca.example"\n'
    text += '@ HINFO "a" "b"\n@ SPF "v=spf1 -all"\n'

    signed = sign(keys, text=text)
    found = rrsets(signed)
    assert len(found[(ORIGIN, dns.rdatatype.RRSIG, dns.rdatatype.SOA)]) == 2
    assert table(signed).origin == ORIGIN
