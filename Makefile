# The two set-up commands of README.md. Each creates .venv with pinned dependencies on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# One job per core the machine has (make run CORES=4 to choose): more only oversubscribes.
CORES ?= $(shell nproc)

# apt-get needs root: sudo where make runs as another user.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test docs bench browser cockpit clean

run: $(STAMP)  ## install, then run the study on config/config.yaml, ending in the report
	$(VENV)/bin/snakemake --cores $(CORES)

test: $(STAMP) browser  ## install, then run the test suite
	$(VENV)/bin/pytest

browser:  ## headless Chromium and its driver for the report's browser tests (Debian packages)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  $(SUDO) apt-get install -y chromium chromium-driver || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver; } || \
	  echo "chromium could not be installed: the browser tests will be skipped, saying so"

docs: $(STAMP)  ## regenerate config/README.md's key tables from the config schema, and the figures' caption files
	$(PY) -m optimizer_dynamics.config_docs
	$(PY) -m optimizer_dynamics.figures.captions

bench: $(STAMP)  ## print the measured performance figures
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_study.py

# The Cockpit peer check runs in a venv of its own: `make run` and `make test` never need it.
COCKPIT_VENV := .venv-cockpit
COCKPIT_STAMP := $(COCKPIT_VENV)/.installed

cockpit: $(COCKPIT_STAMP)  ## install Cockpit in its own venv, then compare it with this project's instruments
	$(COCKPIT_VENV)/bin/python benchmarks/cockpit_peer.py

$(COCKPIT_STAMP): benchmarks/requirements-cockpit.txt requirements.txt pyproject.toml
	python3 -m venv $(COCKPIT_VENV)
	$(COCKPIT_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-cockpit.txt -e .
	touch $@

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -e .
	touch $@

clean:  ## remove generated results (keeps .venv)
	rm -rf results .snakemake
