# Fresh machine: `make demo` runs the pipeline end to end, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format schemas backtest-es broker-start broker-stop clean
.PHONY: compose-secrets compose-secure

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tickwise demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/tickwise schemas check
	$(BIN)/pytest

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
	docker compose --profile secure up --build worker-secure feed-secure

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
