"""Posture: the DNS misconfigurations that become outages, found before they do.

Pure [C] package (its edge module is ``posture.sources``): rules are functions of the
loaded zones and the config, each finding a ``posture.findings.Finding`` with
a stable rule id. ``dnsserve check`` (``preflight``) runs them, and ``check
--against`` compares two versions with the deletion guard's own rules
(``zones.deletions``), as a reload would.
"""
