# Each target creates .venv when missing, installs what it needs, then runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: test test-slow mutation demo install clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test,plots]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q --durations=15

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# Mutation check of the training steps and losses (on demand, not in CI; see docs/testing.md).
# `make mutation` runs every mutant and rewrites the report in docs/testing.md;
# `make mutation MUTANTS=id1,id2` runs those only (ids: `python -m tests.mutation.run --list`).
mutation: $(STAMP)
	$(PY) -m tests.mutation.run $(if $(MUTANTS),--only $(MUTANTS),--report docs/testing.md)

demo: $(STAMP)
	$(VENV)/bin/keras-imbalance demo

clean:
	rm -rf $(VENV) build *.egg-info
