"""Zones: loading zone files (edge), compiling and validating them, the immutable lookup table."""
