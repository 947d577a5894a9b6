"""Zone transfers as a primary: keys, requests, access rules, message streams, publish mode.

Pure [C] modules only; the edge that loads keys from files, keeps zone
history and sends NOTIFY is ``dnsserve.transfers`` and ``dnsserve.notify``.
"""
