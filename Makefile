PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test unit bench bench-health lint check clean demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/dnsserve serve

# Everything: lint, unit and integration tests, property tests at their full example counts.
# TEST_JOBS pytest-xdist workers (the tests mostly wait on servers: 4 on 2 cores is fine);
# TEST_JOBS=0 runs them in one process.
TEST_JOBS ?= 4
test: $(STAMP)
	$(BIN)/ruff check dnsserve tests benchmarks testkit
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --hypothesis-profile=thorough -n $(TEST_JOBS) --dist loadfile

# The unit tests alone (no sockets, no processes): seconds.
unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

# The core benchmark, then the random-subdomain flood (misses vs hits, vs NSD and Knot).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_core
	$(BIN)/python -m benchmarks.bench_flood

# Failover time vs gdnsd and PowerDNS, pool vs static CPU, check drift under load,
# CPU per health check vs gdnsd and 900 checks/s on one core.
bench-health: $(STAMP)
	$(BIN)/python -m benchmarks.bench_failover
	$(BIN)/python -m benchmarks.bench_pool
	$(BIN)/python -m benchmarks.bench_drift
	$(BIN)/python -m benchmarks.bench_checks

lint: $(STAMP)
	$(BIN)/ruff check dnsserve tests benchmarks testkit
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/dnsserve demo

check: $(STAMP)
	$(BIN)/dnsserve check

clean:
	rm -rf $(VENV) build *.egg-info
