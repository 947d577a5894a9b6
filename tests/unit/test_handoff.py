"""handoff: the dispatch of handed-off requests (its table in the module docstring)."""

from __future__ import annotations

import asyncio
import time

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset
import dns.tsig
import dns.zone
import pytest
from dns.rdatatype import RdataType

from dnsserve import handoff as module
from dnsserve.handoff import HandOff
from dnsserve.transfers import ZoneTransfer
from dnsserve.xfr.access import AccessRule
from dnsserve.zones.compile import compile_zone
from dnsserve.zones.versions import diff, zone_content

ORIGIN = dns.name.from_text("example.com.")
KEY = dns.tsig.Key("xfr", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=")
PEER = ("127.0.0.1", 5000)


def text(serial: int, extra: str = "") -> str:
    return (f"$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hm {serial} 3600 600 86400 300\n"
            f"@ NS ns1\nns1 A 192.0.2.1\n{extra}")


def content(serial: int, extra: str = ""):  # type: ignore[no-untyped-def]
    zone = dns.zone.from_text(text(serial, extra), ORIGIN, relativize=False)
    return zone_content(compile_zone(zone, file="t", lines={}))


V1, V2 = content(1), content(2, "www A 192.0.2.7\n")


def handoff(access: AccessRule, notify: bool | None = None) -> HandOff:
    h = HandOff(lambda data, tcp: data[:2] + b"\x84\x00" + data[4:],  # echo as an answer
                lambda: {ORIGIN: V2}, clock=time.time)
    h.keyring = {KEY.name: KEY}
    h.zones = {ORIGIN: ZoneTransfer(ORIGIN, access)}
    h.history.add(ORIGIN, diff(V1, V2))
    if notify is not None:
        h.on_notify = lambda zone, address, key: notify
    return h


def ask(h: HandOff, q: dns.message.Message, tcp: bool = True) -> list[dns.message.Message]:
    outs = h.handle(q.to_wire(), PEER, tcp)
    return [dns.message.from_wire(o, keyring=q.keyring, request_mac=q.mac, xfr=True,
                                  multi=True, one_rr_per_rrset=True) for o in outs[:1]] + [
        dns.message.from_wire(o, keyring=False) for o in outs[1:]]


def axfr(key: dns.tsig.Key | None = None) -> dns.message.Message:
    q = dns.message.make_query(ORIGIN, RdataType.AXFR)
    if key is not None:
        q.use_tsig({key.name: key}, key.name)
    return q


def ixfr(serial: int) -> dns.message.Message:
    q = dns.message.make_query(ORIGIN, RdataType.IXFR)
    q.authority.append(dns.rrset.from_text(ORIGIN, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
    return q


OPEN = AccessRule.from_text(["127.0.0.0/8"], [])
BY_KEY = AccessRule.from_text([], ["xfr"])


def test_default_deny_is_refused() -> None:
    [r] = ask(handoff(AccessRule()), axfr())
    assert r.rcode() == dns.rcode.REFUSED


def test_by_address() -> None:
    [r] = ask(handoff(OPEN), axfr())
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert r.answer[0].rdtype == RdataType.SOA and r.answer[-1].rdtype == RdataType.SOA


def test_key_required() -> None:
    [r] = ask(handoff(BY_KEY), axfr())
    assert r.rcode() == dns.rcode.REFUSED
    [r] = ask(handoff(BY_KEY), axfr(KEY))
    assert r.rcode() == dns.rcode.NOERROR and r.had_tsig


def test_unknown_key_is_notauth() -> None:
    other = dns.tsig.Key("nope", KEY.secret)
    out = handoff(BY_KEY).handle(axfr(other).to_wire(), PEER, True)
    r = dns.message.from_wire(out[0], keyring=False)
    assert r.rcode() == dns.rcode.NOTAUTH and r.tsig_error == dns.rcode.BADKEY


def test_axfr_over_udp_is_refused() -> None:
    [r] = ask(handoff(OPEN), axfr(), tcp=False)
    assert r.rcode() == dns.rcode.REFUSED


def test_ixfr_over_udp_is_soa_only() -> None:
    [r] = ask(handoff(OPEN), ixfr(1), tcp=False)
    assert [rr.rdtype for rr in r.answer] == [RdataType.SOA]
    assert r.answer[0][0].serial == 2


def test_ixfr_diff_and_fallback() -> None:
    [r] = ask(handoff(OPEN), ixfr(1))
    # SOA 2, SOA 1, SOA 2, www A, SOA 2
    assert [rr.rdtype for rr in r.answer] == [RdataType.SOA] * 3 + [RdataType.A, RdataType.SOA]
    [r] = ask(handoff(OPEN), ixfr(2))
    assert len(r.answer) == 1  # up to date
    [r] = ask(handoff(OPEN), ixfr(0))  # unknown serial: the whole zone
    assert len(r.answer) == 2 + len(V2) - 1


def notify_query() -> dns.message.Message:
    q = dns.message.make_query(ORIGIN, RdataType.SOA)
    q.flags = dns.flags.AA
    q.set_opcode(dns.opcode.NOTIFY)
    return q


def test_notify_routing() -> None:
    [r] = ask(handoff(OPEN), notify_query())
    assert r.rcode() == dns.rcode.NOTIMP
    [r] = ask(handoff(OPEN, notify=True), notify_query())
    assert r.rcode() == dns.rcode.NOERROR and r.opcode() == dns.opcode.NOTIFY
    assert r.flags & dns.flags.AA
    [r] = ask(handoff(OPEN, notify=False), notify_query())
    assert r.rcode() == dns.rcode.REFUSED


@pytest.mark.parametrize(("zone", "rcode"), [
    (ORIGIN, dns.rcode.NOERROR),  # one we serve as its primary: ignored, as BIND's primary
    (dns.name.from_text("other.example."), dns.rcode.NOTAUTH),  # not ours: as BIND and Knot
])
def test_a_notify_for_a_zone_that_is_not_a_secondary(zone: dns.name.Name,
                                                      rcode: dns.rcode.Rcode) -> None:
    h = handoff(OPEN)
    h.on_notify = lambda origin, address, key: None
    q = dns.message.make_query(zone, RdataType.SOA)
    q.set_opcode(dns.opcode.NOTIFY)
    [r] = ask(h, q)
    assert r.rcode() == rcode and r.opcode() == dns.opcode.NOTIFY
    assert bool(r.flags & dns.flags.AA) is (rcode == dns.rcode.NOERROR)


@pytest.mark.parametrize("notify", [None, True, False])
def test_notify_answers_clear_rd_and_cd(notify: bool | None) -> None:
    """As BIND (tests/integration/test_opcodes_bind.py): a NOTIFY's answer copies
    neither RD nor CD, whether NOTIMP, NOERROR or REFUSED."""
    q = notify_query()
    q.flags |= dns.flags.RD | dns.flags.CD
    [r] = ask(handoff(OPEN, notify=notify), q)
    assert r.opcode() == dns.opcode.NOTIFY and r.flags & dns.flags.QR
    assert not r.flags & (dns.flags.RD | dns.flags.CD)


def test_signed_query_answer_is_signed() -> None:
    q = dns.message.make_query("www.example.com.", RdataType.A)
    q.use_tsig({KEY.name: KEY}, KEY.name)
    [r] = ask(handoff(OPEN), q)
    assert r.had_tsig and r.id == q.id


def test_a_big_transfer_is_built_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "OFFLOAD_RECORDS", 2)
    h = handoff(OPEN)
    data = axfr().to_wire()
    whole = h.handle(data, PEER, True)

    async def offloaded() -> tuple[bytes, ...]:
        out = h.handle_offloaded(data, PEER, True)
        assert isinstance(out, asyncio.Future)
        return await out

    assert list(asyncio.run(offloaded())) == whole
    # a small answer is not offloaded
    monkeypatch.setattr(module, "OFFLOAD_RECORDS", 10_000)
    assert h.handle_offloaded(data, PEER, True) == whole
