"""dnsserve: an authoritative DNS server with health-based answers."""

__version__ = "0.1.0"
