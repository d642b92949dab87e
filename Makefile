# `make demo` and `make test` both start with `make setup`, which is idempotent.
# Python 3.11 when present, else python3 (which must be >= 3.10); override with `make PY_BOOT=/path/to/python3.x`.
PY_BOOT ?= $(shell command -v python3.11 || command -v python3)
NEED_PY = $(PY_BOOT) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || \
	{ echo "otoscope needs Python >= 3.10 (3.11 preferred): install python3.11 or run make PY_BOOT=/path/to/python3.x" >&2; exit 1; }
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.otoscope-setup
# torch is pinned only here, for the CPU set-up: this is the CPU build the package source holds.
# Users installing with pip get whatever torch>=2.1 suits their machine.
TORCH_CPU ?= torch==2.13.0

# `make wheel-check`: build the wheel, install it with [bundled] in a fresh venv, run the installed command.
WHEEL_CHECK ?= /tmp/otoscope-wheel-check

.PHONY: setup demo test wheel-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(NEED_PY)
	test -x $(PY) || $(PY_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip show torch >/dev/null 2>&1 || $(PY) -m pip install -q "$(TORCH_CPU)"
	$(PY) -m pip install -q -e ".[bundled,test]"
	touch $(STAMP)

demo: setup
	$(PY) -m otoscope.cli.demo

test: setup
	$(PY) -m pytest -q

wheel-check: setup
	@$(NEED_PY)
	rm -rf $(WHEEL_CHECK)
	$(PY) -m pip wheel -q --no-deps -w $(WHEEL_CHECK)/dist .
	$(PY_BOOT) -m venv $(WHEEL_CHECK)/venv
	$(WHEEL_CHECK)/venv/bin/pip install -q "$(TORCH_CPU)"
	$(WHEEL_CHECK)/venv/bin/pip install -q "$$(ls $(WHEEL_CHECK)/dist/otoscope-*.whl)[bundled]"
	cd $(WHEEL_CHECK) && ./venv/bin/otoscope --version
	cd $(WHEEL_CHECK) && clip=$$(./venv/bin/python -c "from otoscope.data import clip_path; print(clip_path('speech_door'))") && \
		case "$$clip" in $(WHEEL_CHECK)/venv/*) ;; *) echo "wheel-check: the clip $$clip is not from the installed wheel" >&2; exit 1;; esac && \
		text=$$(HF_HUB_OFFLINE=1 ./venv/bin/otoscope transcribe "$$clip") && echo "transcribed: $$text" && \
		test -n "$$text" || { echo "wheel-check: the installed otoscope transcribed nothing" >&2; exit 1; }

clean:
	rm -rf $(VENV) out
