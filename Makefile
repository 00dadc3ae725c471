# Two commands on a fresh machine with Python 3.11 and pip: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-multicentre test lint clean

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --configfile config/demo.yaml

# Two training and two external centres with scanner shifts; ComBat and leave-one-centre-out.
demo-multicentre: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --configfile config/demo.yaml config/multicentre.yaml

# The suite includes an end-to-end run on a real single-node SLURM (tests/test_slurm.py):
# the cluster is up for the whole session and always torn down (needs root, installs the
# Debian packages on first use).
test: $(STAMP)
	trap 'tests/slurm/cluster.sh down' EXIT; tests/slurm/cluster.sh up && $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
