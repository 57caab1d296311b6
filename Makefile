# The two commands of the README: `make run` (set up, then the default workflow end to end) and
# `make test` (set up, then every test). Both create .venv and install the package from pyproject.toml.
VENV ?= .venv
# The interpreter .venv is made from (Python >= 3.11): make run PYTHON=python3.12
PYTHON ?= python3
PY := $(VENV)/bin/python
CORES ?= all
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup run test report rerun rulegraph clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "infcop needs Python >= 3.11 (Snakemake 9 does); '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing)."; \
	  echo "Give another interpreter: make $(MAKECMDGOALS) PYTHON=python3.11 (or python3.12, ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/snakemake --cores $(CORES)

test: setup
	$(PY) -m pytest

report: run
	$(VENV)/bin/snakemake --cores $(CORES) --report results/report.html

# make rerun METHOD=lth : rerun one method's iterations, evaluation, tables and figures only
rerun: setup
	@test -n "$(METHOD)" || { echo "usage: make rerun METHOD=<name>"; exit 2; }
	$(VENV)/bin/snakemake --cores $(CORES) --forcerun $$($(VENV)/bin/infcop branch $(METHOD))

rulegraph: setup
	$(VENV)/bin/snakemake --rulegraph > docs/rulegraph.dot
	dot -Tsvg docs/rulegraph.dot -o docs/rulegraph.svg
	dot -Tpng -Gdpi=110 docs/rulegraph.dot -o docs/rulegraph.png

clean:
	rm -rf results .snakemake
