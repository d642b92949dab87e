# `make demo` and `make test` both start with `make setup`, which is idempotent.
PY_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.otoscope-setup
# torch is pinned only here, for the CPU set-up: this is the CPU build the package source holds.
# Users installing with pip get whatever torch>=2.1 suits their machine.
TORCH_CPU ?= torch==2.13.0

.PHONY: setup demo test clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PY_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip show torch >/dev/null 2>&1 || $(PY) -m pip install -q "$(TORCH_CPU)"
	$(PY) -m pip install -q -e ".[bundled,test]"
	touch $(STAMP)

demo: setup
	$(PY) -m otoscope.cli.demo

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) out
