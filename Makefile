# The two set-up commands of README.md. Each creates .venv with pinned dependencies on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CORES ?= 8

.PHONY: run test bench clean

run: $(STAMP)  ## install, then run the study on config/config.yaml
	$(PY) -m optimizer_dynamics.train
	@echo "The run's Parquet file is under results/runs/"

test: $(STAMP)  ## install, then run the test suite
	$(VENV)/bin/pytest

bench: $(STAMP)  ## print the measured performance ratios
	$(PY) benchmarks/bench_training.py

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -e .
	touch $@

clean:  ## remove generated results (keeps .venv)
	rm -rf results .snakemake
