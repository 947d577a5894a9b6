"""Which region an address or a host name is in: the single-region rules' one question.

Pure [C]: owns ``Regions``, built from the config's ``[[region]]`` prefix
lists (an address is in the region of the longest prefix that holds it),
and the cloud host-name patterns below (a name such as
``lb-1.us-east-1.elb.amazonaws.com`` is in ``aws:us-east-1``). Unknown is
``""``: a rule judges only what it knows. Must not: resolve names.

The lesson it serves: in October 2025 one AWS region's DNS failed, and
everything that pointed only there failed with it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

import dns.name

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_AWS_REGION = r"(?:us|eu|ap|sa|ca|me|af|il|mx)(?:-gov|-iso[a-z]?)?-[a-z]+-\d"
# (pattern over the lower-cased name without its final dot, the region's prefix)
CLOUD_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # ELB/ALB/NLB, API Gateway, S3 (s3.REGION, s3-website.REGION), EC2 names, every
    # other regional endpoint: the region is a label of its own
    (re.compile(rf"(?:^|\.)(?P<region>{_AWS_REGION})\.(?:[a-z0-9-]+\.)*amazonaws\.com$"),
     "aws"),
    (re.compile(rf"(?:^|\.)s3-website-(?P<region>{_AWS_REGION})\.amazonaws\.com$"), "aws"),
    (re.compile(r"(?:^|\.)compute-1\.amazonaws\.com$"), "aws:us-east-1"),
    (re.compile(rf"(?:^|\.)(?P<region>{_AWS_REGION})\.elasticbeanstalk\.com$"), "aws"),
    # Azure: NAME.REGION.cloudapp.azure.com, NAME.REGION.azurecontainer.io
    (re.compile(r"\.(?P<region>[a-z]+\d?)\.(?:cloudapp\.azure\.com|azurecontainer\.io)$"),
     "azure"),
)


def cloud_region(name: dns.name.Name) -> str:
    """The cloud region a host name's pattern names (``aws:us-east-1``), or ``""``."""
    text = name.to_text(omit_final_dot=True).lower()
    for pattern, prefix in CLOUD_PATTERNS:
        found = pattern.search(text)
        if found is not None:
            region = found.groupdict().get("region")
            return f"{prefix}:{region}" if region else prefix
    return ""


@dataclass(frozen=True, slots=True)
class Regions:
    """``[[region]]`` prefixes, longest first, and the cloud host-name patterns."""

    prefixes: tuple[tuple[IpNetwork, str], ...] = ()

    @classmethod
    def from_prefixes(cls, regions: Iterable[tuple[str, Iterable[str]]]) -> Regions:
        """From (region name, prefixes) pairs; prefixes as ``ip_network`` reads them."""
        nets = [(ipaddress.ip_network(p, strict=False), name)
                for name, prefixes in regions for p in prefixes]
        nets.sort(key=lambda item: item[0].prefixlen, reverse=True)
        return cls(tuple(nets))

    def of_address(self, text: str) -> str:
        """The region whose longest prefix holds the address ``text``, or ``""``."""
        if not self.prefixes:
            return ""
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return ""
        return next((name for net, name in self.prefixes
                     if net.version == address.version and address in net), "")

    def of_name(self, name: dns.name.Name) -> str:
        return cloud_region(name)
