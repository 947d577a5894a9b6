"""DO answers of a pre-signed zone through the engine, no sockets (``answer.dnssec``).

The zone is signed in-process with dnspython (Ed25519, NSEC); each answer's
RRSIGs are verified with ``dns.dnssec.validate`` against the zone's DNSKEY.
The differential test against Knot and NSD and the validation by ``delv``
cover every answer kind with zones signed by ``dnssec-signzone``.
"""

from __future__ import annotations

import dns.dnssec
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from dnsserve.answer.dnssec import DoForms
from dnsserve.answer.engine import Engine
from dnsserve.answer.lookup import answer_key
from dnsserve.answer.snapshot import build_snapshot
from dnsserve.zones.signed import expiring
from dnsserve.zones.table import ZoneTable
from testkit.answers import ask

ZONE = """$TTL 300
@ SOA ns1 h 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.3
*.wild A 192.0.2.4
"""
ORIGIN = dns.name.from_text("sig.example.")
NOW = 1_790_000_000  # a fixed instant: signatures valid from NOW - 3600 to NOW + 86400


Signed = tuple[Engine, ZoneTable, dns.rrset.RRset, dns.zone.Zone]


@pytest.fixture(scope="module")
def signed() -> Signed:
    zone = dns.zone.from_text(ZONE, ORIGIN, relativize=False)
    key = ed25519.Ed25519PrivateKey.generate()
    dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.ED25519, flags=257)
    with zone.writer() as txn:
        dns.dnssec.sign_zone(zone, txn, keys=[(key, dnskey)], inception=NOW - 3600,
                             expiration=NOW + 86400)
    table = ZoneTable.build(zone)
    keys = dns.rrset.from_rdata(ORIGIN, 300, dnskey)
    return Engine(build_snapshot({ORIGIN: table})), table, keys, zone


def _verify(response: dns.message.Message, keys: dns.rrset.RRset) -> int:
    """Validate every signed RRset of the answer and authority; how many were."""
    sections = response.answer + response.authority
    verified = 0
    for sigs in (r for r in sections if r.rdtype == dns.rdatatype.RRSIG):
        rrset = next(r for r in sections if r.name == sigs.name and r.rdtype == sigs.covers)
        dns.dnssec.validate(rrset, sigs, {ORIGIN: keys}, now=NOW)
        verified += 1
    return verified


def test_do_answers_carry_valid_signatures_and_denial(
    signed: Signed,
) -> None:
    engine, _, keys, _ = signed
    nx = ask(engine, "nx.sig.example.", "A", use_edns=0, want_dnssec=True)
    types = {(r.rdtype, r.covers) for r in nx.authority}
    assert (dns.rdatatype.NSEC, dns.rdatatype.NONE) in types
    assert _verify(nx, keys) >= 2  # SOA and the NSEC records
    wild = ask(engine, "a.wild.sig.example.", "A", use_edns=0, want_dnssec=True)
    assert wild.answer[0].name == dns.name.from_text("a.wild.sig.example.")
    assert _verify(wild, keys) == 2  # the expanded A, and the NSEC proving the name absent
    plain = ask(engine, "nx.sig.example.", "A", use_edns=0)
    assert [r.rdtype for r in plain.authority] == [dns.rdatatype.SOA]


def test_expiring_signatures_are_found_before_they_expire(
    signed: Signed,
) -> None:
    _, table, _, _ = signed
    soon = expiring(table, now=NOW)
    assert soon is not None and 0 < soon.seconds <= 86400 and soon.count >= 4
    assert expiring(table, now=NOW - 10 * 86400) is None
    assert expiring(table, now=NOW + 86400 * 2).seconds < 0  # type: ignore[union-attr]


def test_do_forms_stay_warm_while_the_signed_tables_stay(
    signed: Signed,
) -> None:
    _, table, _, zone = signed
    key = answer_key(dns.name.from_text("www.sig.example."), dns.rdatatype.A, 1)
    first = DoForms({ORIGIN: table})
    form = first.answer(key, None)
    assert form is not None
    assert DoForms({ORIGIN: table}, earlier=first).answer(key, None) is form  # kept warm
    rebuilt = ZoneTable.build(zone)
    fresh = DoForms({ORIGIN: rebuilt}, earlier=first).answer(key, None)
    assert fresh is not None and fresh is not form  # a new table: built again
    assert fresh.body == form.body



def test_do_misses_of_unsigned_zones_are_not_remembered(signed: Signed) -> None:
    """A DO flood of random names in an unsigned zone served beside a signed one
    leaves no trace (the plain miss path answers them)."""
    _, table, _, _ = signed
    plain = ZoneTable.build(dns.zone.from_text(ZONE, "plain.example.", relativize=False))
    forms = DoForms({ORIGIN: table, plain.origin: plain})
    for i in range(50):
        key = answer_key(dns.name.from_text(f"r{i}.plain.example."), dns.rdatatype.A, 1)
        assert forms.answer(key, None) is None
    assert len(forms) == 0
