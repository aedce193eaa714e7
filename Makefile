# Fresh machine: `make demo` runs the pipeline end to end, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format schemas backtest-es broker-start broker-stop clean \
	bench bench-live bench-replay bench-zoo bench-memory bench-scaleout bench-profile bench-engine bench-watch
.PHONY: compose-secrets compose-secure provision-demo provision-test

# The Debian packages each README command needs (.ci/provision): installed when make runs as
# root; otherwise the command that installs them is printed and make stops before the venv is
# made or any test runs.
provision-demo:
	@PYTHON="$(PYTHON)" bash .ci/provision demo

provision-test:
	@PYTHON="$(PYTHON)" bash .ci/provision test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: provision-demo $(STAMP)
	$(BIN)/tickwise demo

test: provision-test $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/tickwise schemas check
	$(BIN)/lint-imports
	BIN=$(BIN) bash .ci/pytest-streams

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemas: $(STAMP)
	$(BIN)/tickwise schemas generate

backtest-es: $(STAMP)
	$(BIN)/tickwise backtest --data ../shared/data/es_trades_2013-09-01T17_to_09-03T09.csv.gz \
		--symbol ES --tz America/Chicago --out out/es

broker-start: $(STAMP)
	$(BIN)/tickwise broker start

broker-stop: $(STAMP)
	$(BIN)/tickwise broker stop

# docker-compose's `secure` profile: random passwords in ./secrets/ (once), then the stack
compose-secrets: $(STAMP)
	$(BIN)/tickwise security secrets --dir secrets

compose-secure: compose-secrets
	docker compose --profile secure up --build worker-secure watch-secure feed-secure

# Benchmarks (docs/BENCHMARKS.md): `make bench` is the quick pass of them all (~8 min on a busy
# 2-core machine); the per-benchmark targets run the full sizes. Results go to benchmarks/results/.
BENCH_STAMP := $(VENV)/.bench-installed
# `make bench BENCH_CONFIG=benchmarks/cadence-1s.toml`: the same runs with one decision per
# instrument per event-time second instead of one per tick.
BENCH_ARGS := $(if $(BENCH_CONFIG),--config $(BENCH_CONFIG))

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.replay --limit 50000 $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.backtest_memory --quick $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.live --ticks 20000 --seconds 5 --drain-timeout 30 $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.scaleout --ticks 20000 $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.engine --repeat 1 --skip-compile $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.watch --ticks 20000 $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.deployments --limit 5000 --repeat 1

bench-replay: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.replay $(BENCH_ARGS)

bench-zoo: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.replay --zoo

bench-memory: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.backtest_memory $(BENCH_ARGS)

bench-live: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.live $(BENCH_ARGS)

bench-scaleout: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.scaleout $(BENCH_ARGS)

bench-profile: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.profile_backtest $(BENCH_ARGS)

bench-engine: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.engine $(BENCH_ARGS)

bench-watch: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.watch $(BENCH_ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis .import_linter_cache
