"""Zone transfers: AXFR/IXFR and NOTIFY, out (primary) and in (secondary).

Pure [C] (the package): the edge that moves bytes lives above it.
"""
