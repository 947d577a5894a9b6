"""xfr.outgoing: AXFR and IXFR streams, split and TSIG-chained; dnspython's inbound
transfer code (dns.xfr.Inbound) is the oracle that reads them back."""

from __future__ import annotations

import time

import dns.message
import dns.name
import dns.rdatatype
import dns.tsig
import dns.xfr
import dns.zone
import pytest
from dns.rdatatype import RdataType

from dnsserve.xfr.outgoing import (
    axfr_records,
    diff_serials,
    ixfr_chain,
    ixfr_records,
    messages,
    soa_record,
    soa_serial,
)
from dnsserve.xfr.sign import Signer
from dnsserve.zones.compile import compile_zone
from dnsserve.zones.versions import ZoneContent, ZoneDiff, diff, zone_content

ORIGIN = dns.name.from_text("example.com.")
KEY = dns.tsig.Key("xfr", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=")
KEYRING = {KEY.name: KEY}


def now() -> int:
    """The time now: dnspython signs and checks with its own clock (a constant read
    at import goes stale when the rest of the suite runs first)."""
    return int(time.time())



def zone_text(serial: int, extra: str = "", names: int = 3) -> str:
    hosts = "".join(f"h{i} A 192.0.2.{i % 250 + 1}\n" for i in range(names))
    return (f"$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 86400 300\n"
            f"@ NS ns1\nns1 A 192.0.2.1\nmail MX 10 ns1\nalias CNAME h1\n"
            f"ptr PTR h2.example.com.\nout CNAME elsewhere.example.net.\n{hosts}{extra}")


def content(text: str) -> ZoneContent:
    zone = dns.zone.from_text(text, ORIGIN, relativize=False)
    return zone_content(compile_zone(zone, file="t.zone", lines={}))


def query(rdtype: RdataType, serial: int | None = None,
          signed: bool = False) -> dns.message.Message:
    q = dns.message.make_query(ORIGIN, rdtype)
    if serial is not None:
        soa = dns.rrset.from_text(ORIGIN, 0, "IN", "SOA", f". . {serial} 0 0 0 0")
        q.authority.append(soa)
    if signed:
        q.use_tsig(KEYRING, KEY.name)
    q.to_wire()  # sets q.mac
    return q


def stream(q: dns.message.Message, records: list[bytes], signed: bool,
           max_size: int = 16_384) -> list[bytes]:
    signer = Signer(KEY, q.mac, q.id) if signed else None
    question = q.to_wire()[12:12 + len(ORIGIN.to_wire() or b"") + 4]
    return list(messages(q.id, q.flags, question, records, signer=signer, now=now(),
                         max_size=max_size))


def read_back(q: dns.message.Message, wires: list[bytes], zone: dns.zone.Zone,
              serial: int | None = None) -> None:
    """Feed the messages to dnspython's Inbound, verifying TSIG as its inbound_xfr does."""
    ctx = None
    rdtype = q.question[0].rdtype
    with dns.xfr.Inbound(zone, rdtype, serial) as inbound:
        done = False
        for w in wires:
            r = dns.message.from_wire(
                w, keyring=q.keyring, request_mac=q.mac, xfr=True,
                tsig_ctx=ctx, multi=True, one_rr_per_rrset=rdtype == RdataType.IXFR,
            )
            ctx = r.tsig_ctx
            assert r.flags & dns.flags.AA
            assert not done
            done = inbound.process_message(r)
        assert done


def test_soa_first_and_last() -> None:
    c = content(zone_text(7))
    records = axfr_records(c)
    assert records[0] == records[-1] == soa_record(c)
    assert sorted(records[1:-1]) == sorted(r for r in c.records if r != soa_record(c))
    assert soa_serial(records[0]) == 7


@pytest.mark.parametrize(("names", "max_size"), [(1300, 16_384), (300, 2048)])
def test_axfr_signed_in_many_messages_reads_back_whole(names: int, max_size: int) -> None:
    c = content(zone_text(42, names=names))
    q = query(RdataType.AXFR, signed=True)
    wires = stream(q, axfr_records(c), signed=True, max_size=max_size)
    assert len(wires) > 1 if max_size == 16_384 else len(wires) > 3
    assert all(len(w) <= max_size for w in wires)
    # owner names are compressed: far less than the records' uncompressed size
    assert sum(map(len, wires)) < 0.8 * sum(map(len, axfr_records(c)))
    zone = dns.zone.Zone(ORIGIN, relativize=False)
    read_back(q, wires, zone)
    assert zone.get_soa().serial == 42
    assert len(list(zone.iterate_rdatas())) == len(c)


def test_a_tampered_message_fails_the_chain() -> None:
    c = content(zone_text(42, names=300))
    q = query(RdataType.AXFR, signed=True)
    wires = stream(q, axfr_records(c), signed=True, max_size=2048)
    assert len(wires) > 2
    wires[2] = wires[2][:20] + bytes([wires[2][20] ^ 1]) + wires[2][21:]
    with pytest.raises((dns.tsig.BadSignature, dns.exception.FormError, dns.xfr.TransferError)):
        read_back(q, wires, dns.zone.Zone(ORIGIN, relativize=False))


def test_unsigned_axfr_question_in_first_message_only() -> None:
    c = content(zone_text(1, names=600))
    q = query(RdataType.AXFR)
    wires = stream(q, axfr_records(c), signed=False, max_size=4096)
    assert len(wires) > 2
    first, second = (dns.message.from_wire(w, xfr=True) for w in wires[:2])
    assert len(first.question) == 1 and not second.question
    read_back(q, wires, dns.zone.Zone(ORIGIN, relativize=False))


def changes(old: ZoneContent, new: ZoneContent) -> ZoneDiff:
    return diff(old, new)


def test_ixfr_carries_just_the_diffs() -> None:
    v1, v2, v3 = (content(zone_text(s, extra)) for s, extra in
                  [(1, ""), (2, "new A 192.0.2.99\n"), (3, "new A 192.0.2.98\n")])
    d12, d23 = diff(v1, v2), diff(v2, v3)
    assert diff_serials(d12) == (1, 2)
    chain = ixfr_chain([d12, d23], 1, 3)
    assert chain == [d12, d23]
    assert ixfr_chain([d12, d23], 2, 3) == [d23]
    assert ixfr_chain([d23], 1, 3) is None  # version 1 -> 2 not recorded
    assert ixfr_chain([d12, d23], 3, 3) is None
    records = ixfr_records(soa_record(v3), chain)
    assert len(records) == 2 + 2 * (2 + 1) + 1  # SOA, (old SOA, -, new SOA, +) x2 with one - of 0
    q = query(RdataType.IXFR, serial=1, signed=True)
    wires = stream(q, records, signed=True)
    # dnspython applies the IXFR to a zone at serial 1: it must end equal to version 3
    zone = dns.zone.from_text(zone_text(1), ORIGIN, relativize=False)
    read_back(q, wires, zone, serial=1)
    want = dns.zone.from_text(zone_text(3, "new A 192.0.2.98\n"), ORIGIN, relativize=False)
    assert zone == want


def test_a_diff_without_a_new_serial_is_not_chained() -> None:
    assert diff_serials(ZoneDiff((), ())) is None
