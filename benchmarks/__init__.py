"""Benchmarks, side by side with peer servers; run each as a module from the repository root.

    .venv/bin/python -m benchmarks.bench_core   # make bench

Scripts own their options, their run and their report; what they share is in
``testkit`` (servers, peers, backends, CPU time, dnsperf) and ``report``
(benchmarks/RESULTS.md). See benchmarks/README.md.
"""
