# The two commands of the README: `make run` (set up, then the default workflow end to end) and
# `make test` (set up, then every test). Both create .venv and install the package from pyproject.toml
# with the exact versions of requirements.lock (`make lock` rewrites the lock from pyproject.toml's ranges).
VENV ?= .venv
# The interpreter .venv is made from (Python >= 3.11): make run PYTHON=python3.12
PYTHON ?= python3
PY := $(VENV)/bin/python
CORES ?= all
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup run test report rerun rulegraph lock clean

$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "infcop needs Python >= 3.11 (Snakemake 9 does); '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing)."; \
	  echo "Give another interpreter: make $(MAKECMDGOALS) PYTHON=python3.11 (or python3.12, ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[test]'
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

# The newest versions pyproject.toml allows, installed into a throwaway environment and written down exactly.
# Rerun the benchmarks (bench/) after it, and name the new lock in BENCHMARKS.md.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet '.[test]'
	.lock-venv/bin/python ci/write_lock.py > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock
	rm -rf .lock-venv build
	@$(PYTHON) -c "import hashlib; print('requirements.lock written, sha256', hashlib.sha256(open('requirements.lock', 'rb').read()).hexdigest()[:12])"

clean:
	rm -rf results .snakemake
