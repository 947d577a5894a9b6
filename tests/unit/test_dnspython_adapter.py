"""zones.dnspython_adapter: the undocumented dnspython names it relies on still exist.

When this fails after a dnspython upgrade, the message names each missing
method or attribute: adapt ``dnsserve/zones/dnspython_adapter.py`` to the new
release, then raise dnspython's upper bound in pyproject.toml.
"""

from __future__ import annotations

import dns.name
import dns.rdataclass
import dns.tokenizer
import dns.version
import dns.zone
import dns.zonefile

from dnsserve.zones import dnspython_adapter as adapter


def missing_names() -> list[str]:
    """Every undocumented name the adapter uses that the installed dnspython lacks."""
    missing = [
        f"dns.zonefile.Reader.{name}()"
        for name in adapter.READER_METHODS
        if not callable(getattr(dns.zonefile.Reader, name, None))
    ]
    zone = dns.zone.Zone(dns.name.from_text("z.example."), dns.rdataclass.IN, relativize=False)
    with zone.writer() as txn:
        tokenizer = dns.tokenizer.Tokenizer("", "z.example.zone")
        reader = dns.zonefile.Reader(tokenizer, dns.rdataclass.IN, txn, allow_include=True)
        missing += [
            f"dns.zonefile.Reader().{name}"
            for name in adapter.READER_ATTRIBUTES
            if not hasattr(reader, name)
        ]
        if dns.version.MAJOR == 2 and dns.version.MINOR >= 9:
            missing += [
                f"dns.zonefile.Reader().{name}"
                for name in adapter.READER_STATE_2_9
                if not hasattr(reader, name)
            ]
        missing += [
            f"dns.tokenizer.Tokenizer().{name}"
            for name in adapter.TOKENIZER_ATTRIBUTES
            if not hasattr(tokenizer, name)
        ]
    return missing


def test_dnspython_still_has_the_private_names_the_adapter_uses() -> None:
    missing = missing_names()
    assert not missing, (
        f"dnspython {dns.version.version} no longer has {', '.join(missing)}, "
        "which dnsserve/zones/dnspython_adapter.py uses: adapt it, then the bound in pyproject.toml"
    )


def test_the_adapter_reads_a_record_and_an_include_state() -> None:
    """The adapter's public names work end to end on the installed dnspython."""
    seen: list[str] = []
    origin = dns.name.from_text("z.example.")
    zone = dns.zone.Zone(origin, dns.rdataclass.IN, relativize=False)
    with zone.writer() as txn:
        tok = adapter.Tokenizer("www 300 IN A 192.0.2.1\n", "z.example.zone")
        reader = adapter.ZoneFileReader(txn, tok, lambda name, rdata: seen.append(str(name)))
        state = reader.save_state()
        reader.set_default_ttl(60)
        reader.read_record()
        assert (reader.owner, reader.apex, reader.origin) == (
            dns.name.from_text("www.z.example."), origin, origin
        )
        assert (tok.source_file, tok.token_line, tok.in_parentheses) == ("z.example.zone", 1, False)
        reader.restore_state(state)
        assert reader.owner == origin
    assert seen == ["www.z.example."]
    assert zone.get_rdataset("www", "A") is not None
