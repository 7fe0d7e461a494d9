# magiclink — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo demo-web test lint typecheck unit bench bench-quick soak clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/magiclink demo

demo-web: $(STAMP)
	$(PY) -m magiclink.web._demo

lint: $(STAMP)
	$(PY) -m ruff check src tests examples
	$(PY) -m ruff format --check src tests examples

typecheck: $(STAMP)
	$(PY) -m mypy --strict src tests

test: lint typecheck
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/run.py
	$(PY) bench/history.py
	$(PY) bench/scale.py
	$(PY) bench/purge_load.py

bench-quick: $(STAMP)
	$(PY) bench/run.py --quick
	$(PY) bench/history.py --quick
	$(PY) bench/scale.py --quick
	$(PY) bench/purge_load.py --quick

soak: $(STAMP)
	$(PY) tests/soak/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
