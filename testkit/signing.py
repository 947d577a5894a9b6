"""Zones signed at test time with BIND's ``dnssec-keygen`` and ``dnssec-signzone``.

Owns the signed test zone (``SIGNED_ZONE``: every answer kind DNSSEC
denial covers: names, a CNAME, wildcards, a wildcard CNAME, a DNAME, an
empty non-terminal, secure and insecure delegations, RRsets too big for UDP
with their signatures), signing it in a temporary directory with NSEC or
NSEC3 (with or without opt-out), the trust anchor a validator needs, and
tampering with one signature (the control that validation can fail).

Must not: write outside the directory it is given, or run anything but the
BIND tools (bounded by a timeout each). A missing tool skips the test
(``testkit.peers.required_binary``: fails it when peers are required).
"""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.zone

from testkit.peers import required_binary

ORIGIN = "signed.example."
TOOL_SECONDS = 60.0

# Names under ORIGIN; "mid" fits 1232 octets without its signature and not with it.
SIGNED_ZONE = """$ORIGIN signed.example.
$TTL 3600
@ SOA ns1 hostmaster 2026120201 7200 3600 1209600 300
@ NS ns1
@ NS ns2.other.example.
@ MX 10 mail
ns1 A 192.0.2.1
mail A 192.0.2.2
mail AAAA 2001:db8::2
www A 192.0.2.3
www TXT "hello"
alias CNAME www
chain CNAME alias
dangling CNAME nowhere
*.wild A 192.0.2.4
*.wild TXT "wild"
*.wc CNAME www
dn DNAME www.signed.example.
a.b.c.ent A 192.0.2.5
secure NS ns.secure
ns.secure A 192.0.2.6
secure DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
insecure NS ns.insecure
ns.insecure A 192.0.2.7
big TXT "{big}"
mid TXT "{mid}"
""".format(big='" "'.join(["b" * 250] * 6), mid='" "'.join(["m" * 250] * 4 + ["m" * 70]))

# (qname relative to ORIGIN or "@", qtype): every answer kind of the zone above.
QUERIES: list[tuple[str, str]] = [
    ("www", "A"), ("www", "TXT"), ("@", "SOA"), ("@", "NS"), ("@", "MX"), ("@", "DNSKEY"),
    ("@", "NSEC3PARAM"), ("@", "ANY"), ("mail", "A"), ("mail", "AAAA"),
    ("alias", "A"), ("chain", "A"), ("alias", "MX"), ("dangling", "A"),     # CNAME chains
    ("x.wild", "A"), ("x.y.wild", "TXT"), ("*.wild", "A"), ("x.wild", "MX"),  # wildcards
    ("x.wild", "AAAA"), ("z.wild", "TXT"),
    ("q.wc", "A"), ("q.wc", "MX"),                                           # wildcard CNAME
    ("x.dn", "A"), ("dn", "DNAME"),                                          # DNAME
    ("nx", "A"), ("a.nx", "A"), ("zz.b.c.ent", "A"), ("a.b.nx", "A"),    # NXDOMAIN
    ("www", "MX"), ("mail", "TXT"), ("@", "AAAA"),                          # NODATA
    ("ent", "A"), ("c.ent", "A"), ("b.c.ent", "TXT"),                        # empty non-terminals
    ("x.secure", "A"), ("secure", "A"), ("x.insecure", "A"), ("insecure", "NS"),  # referrals
    ("secure", "DS"), ("insecure", "DS"), ("@", "DS"), ("nx", "DS"),          # DS
    ("www", "RRSIG"), ("www", "NSEC"), ("b.c.ent", "RRSIG"),                 # DNSSEC types
    ("big", "TXT"), ("mid", "TXT"),                                          # truncation
]


# (name, type, what delv must say): the answer kinds a validator checks in the
# test zone, static ones, denials, referrals' DS proofs and wildcards.
VALIDATED = [
    ("www", "A", "; fully validated"),
    ("alias", "A", "; fully validated"),
    ("nx", "A", "; negative response, fully validated"),
    ("a.b.nx", "TXT", "; negative response, fully validated"),
    ("www", "MX", "; negative response, fully validated"),
    ("c.ent", "A", "; negative response, fully validated"),
    ("secure", "DS", "; fully validated"),
    ("insecure", "DS", "; negative response, fully validated"),
    ("x.wild", "A", "; fully validated"),
    ("x.wild", "MX", "; negative response, fully validated"),
]


def qname(relative: str) -> dns.name.Name:
    return dns.name.from_text(ORIGIN if relative == "@" else relative + "." + ORIGIN)


@dataclass(frozen=True)
class SignedZone:
    """A signed copy of a zone: its file, its key files, and how it was signed."""

    origin: str
    path: Path
    ksk: Path  # the key-signing key's .key file (the trust anchor)
    nsec3: bool
    opt_out: bool

    def anchor_text(self) -> str:
        """A BIND ``trust-anchors`` clause for ``delv -a``: the KSK as a static key."""
        line = next(x for x in self.ksk.read_text().splitlines() if " DNSKEY " in x)
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY,
                                    line.split(" DNSKEY ", 1)[1])
        assert isinstance(rdata, dns.rdtypes.ANY.DNSKEY.DNSKEY)
        key = base64.b64encode(rdata.key).decode()
        return (f'trust-anchors {{\n  "{self.origin}" static-key {rdata.flags} '
                f'{rdata.protocol} {int(rdata.algorithm)} "{key}";\n}};\n')


def sign_zone(
    work: Path,
    text: str = SIGNED_ZONE,
    origin: str = ORIGIN,
    *,
    algorithm: str = "ECDSAP256SHA256",
    nsec3_salt: str | None = None,
    opt_out: bool = False,
    end: str | None = None,
) -> SignedZone:
    """Sign ``text`` in ``work`` (made if missing): a KSK and a ZSK, NSEC, or
    NSEC3 with ``nsec3_salt`` (hex; "-" for none) and ``opt_out`` (``-A``);
    ``end``: the signatures' expiry as ``dnssec-signzone -e`` takes it ("+86400")."""
    keygen = required_binary("dnssec-keygen", "BIND tool")
    signzone = required_binary("dnssec-signzone", "BIND tool")
    work.mkdir(parents=True, exist_ok=True)
    zone = origin.rstrip(".")
    names = []
    for extra in (["-f", "KSK"], []):
        done = subprocess.run(
            [keygen, "-q", "-K", str(work), "-a", algorithm, *extra, "-n", "ZONE", zone],
            capture_output=True, text=True, timeout=TOOL_SECONDS, check=True,
        )
        names.append(done.stdout.strip())
    unsigned = work / f"{zone}.unsigned"
    unsigned.write_text(text + "".join(f"$INCLUDE {work / n}.key\n" for n in names))
    signed = work / f"{zone}.zone"
    args = [signzone, "-q", "-K", str(work), "-o", origin, "-f", str(signed)]
    if nsec3_salt is not None:
        args += ["-3", nsec3_salt] + (["-A"] if opt_out else [])
    if end is not None:
        args += ["-e", end]
    args.append(str(unsigned))
    subprocess.run(args, capture_output=True, text=True, timeout=TOOL_SECONDS, check=True,
                   cwd=work)
    return SignedZone(origin, signed, work / f"{names[0]}.key", nsec3_salt is not None, opt_out)


def tamper(zone: SignedZone, owner: str, covered: str, dst: Path) -> Path:
    """A copy of ``zone``'s file in ``dst`` where the RRSIG over ``owner``/``covered``
    has one signature octet changed (so it no longer verifies)."""
    signed = dns.zone.from_file(str(zone.path), zone.origin, relativize=False)
    name = dns.name.from_text(owner)
    rdtype = dns.rdatatype.from_text(covered)
    node = signed.find_node(name)
    sigs = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rdtype)
    changed = []
    for rdata in sigs:
        bad = bytearray(rdata.signature)
        bad[len(bad) // 2] ^= 0x55
        changed.append(rdata.replace(signature=bytes(bad)))
    ttl = sigs.ttl
    node.delete_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rdtype)
    new = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rdtype, create=True)
    for rdata in changed:
        new.add(rdata, ttl)
    dst.mkdir(parents=True, exist_ok=True)
    out = dst / zone.path.name
    signed.to_file(str(out), relativize=False)
    return out
