# Every target runs inside .venv, created on first use.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv azurite test lint bench demo airflow clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# Azurite (Azure Blob on loopback, for the Azure tests), from npm as locked in .ci/azurite;
# installed once, again only when the lock changes. ICECHAT_AZURITE (set by .ci/run) names
# one installed elsewhere instead.
AZURITE := .ci/azurite/node_modules/.bin/azurite-blob
$(AZURITE): .ci/azurite/package.json .ci/azurite/package-lock.json
	npm ci --prefix .ci/azurite --no-audit --no-fund --loglevel=error
	touch $@

azurite: $(AZURITE)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check plugins tests dags bench
	$(VENV)/bin/mypy

# Two workers, a test file each at a time (module fixtures start once), in the order
# tests/conftest.py gives (longest first; xdist would otherwise start the files with most tests).
TEST_WORKERS ?= 2
test: venv lint $(if $(ICECHAT_AZURITE),,azurite)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The benchmarks (minutes; never part of test), one table: bench/run.py. BENCH picks some and
# gives arguments, e.g. make bench BENCH='pipeline_day --with pipeline_day="100000 1000000"'.
bench: venv
	$(PY) bench/run.py $(BENCH)

# The demo: sshd, the Graph emulator and encrypted sample days under demo/ (see README).
demo: venv
	PYTHONPATH=plugins $(PY) -m icechat demo run

# The same demo in Airflow's UI (airflow standalone) until Ctrl-C.
airflow: venv
	PYTHONPATH=plugins $(PY) -m icechat demo airflow

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .ci/azurite/node_modules
