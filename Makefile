# The course's commands. `make help` lists them; README.md explains them.
#   make run    execute every notebook (PROFILE=quick|standard|full) into build/
#   make lab    open JupyterLab on notebooks/
#   make test   ruff, notebook hygiene, unit tests, nbval on every notebook (quick profile)
# Each one creates $(VENV) and installs the course into it first, if needed.

VENV ?= .venv
PYTHON ?= python3
# PROFILE unset: `full` when a CUDA GPU is usable, else `quick` (see resolve_profile).
PROFILE ?=
LAB_ARGS ?=
BUILD := $(if $(TL_BUILD_DIR),$(TL_BUILD_DIR),build)

# Setup byte-compiles the ~3,500 modules the course imports, not all ~11,800 installed (install.py);
# Python compiles anything else on its first import and keeps it in __pycache__. A machine that sets
# PYTHONDONTWRITEBYTECODE would make every process compile those again (imports 7 s instead of 3):
# the course's own commands write them.
unexport PYTHONDONTWRITEBYTECODE

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PY := $(VENV)/bin/python
PYPROJECT_SHA := $(shell (sha256sum pyproject.toml 2>/dev/null || shasum -a 256 pyproject.toml) | cut -c1-16)
STAMP := $(VENV)/.stamp-$(PYPROJECT_SHA)
TCMALLOC := /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
# tcmalloc is an optional speed-up for many small allocations; used only where installed.
# Recursive (=) so that it is checked when a recipe runs, after setup may have installed it.
RUN_ENV = $(shell test -f $(TCMALLOC) && echo LD_PRELOAD=$(TCMALLOC))

# Sets the shell variable `profile`: $(PROFILE), else full with a CUDA GPU, else quick (on a CPU,
# standard pre-trains for ~20 minutes before the first notebook; choose it with PROFILE=standard).
define resolve_profile
profile="$(PROFILE)"; \
if [ -z "$$profile" ]; then \
  profile=quick; \
  if command -v nvidia-smi >/dev/null 2>&1 && \
     $(PY) -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then \
    profile=full; echo "make: a CUDA GPU is available, so PROFILE=full (set PROFILE=... to choose)"; \
  fi; \
fi
endef

.PHONY: help setup run site student lab test test-hub clean

help:
	@echo "make run    execute every notebook into $(BUILD)/notebooks and $(BUILD)/html, print the results"
	@echo "make site   build $(BUILD)/html/index.html from the last run (make run builds it too)"
	@echo "make student  workshop editions without solutions, and the instructor guide, in $(BUILD)/student"
	@echo "make lab    open JupyterLab on notebooks/ (extra options: LAB_ARGS='--port 8899')"
	@echo "make test   ruff, notebook hygiene, unit tests, then nbval on every notebook (quick profile)"
	@echo "make test-hub  a workshop under load: JupyterHub on 127.0.0.1, 4 learners at once (deploy/README.md)"
	@echo "make clean  remove $(BUILD)/ and tool caches (keeps data/, artifacts/ and $(VENV))"
	@echo "Options: PROFILE=quick|standard|full (default: full with a CUDA GPU, else quick),"
	@echo "         VENV=$(VENV) PYTHON=$(PYTHON)"

setup: $(STAMP)

# Re-installs only when pyproject.toml changed (the stamp's name holds its hash). uv installs when it can
# (several times faster than pip, with pip's own index settings), pip otherwise: helpers/authoring/install.py.
$(STAMP):
	@t=$$SECONDS; if ! test -x $(PY); then echo "make: creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); fi; \
	$(PY) helpers/authoring/install.py $(PY); echo "== stage setup (virtual environment): $$((SECONDS - t)) s"
	@$(MAKE) --no-print-directory tcmalloc
	@rm -f $(VENV)/.stamp-*
	@touch $@

# Optional: never fails, and does nothing unless apt-get is there and we are root.
.PHONY: tcmalloc
tcmalloc:
	@if [ ! -f $(TCMALLOC) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing libtcmalloc-minimal4 (optional speed-up)"; \
	  { apt-get install -y -qq --no-install-recommends libtcmalloc-minimal4 >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && \
	      apt-get install -y -qq --no-install-recommends libtcmalloc-minimal4 >/dev/null 2>&1; }; } || \
	  echo "make: could not install libtcmalloc-minimal4; continuing without it"; \
	fi

# Optional, like tcmalloc: Flite, a second speech synthesiser that notebook 07 tests the detector on.
.PHONY: other-voices
other-voices:
	@if ! command -v flite >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing flite (optional: another synthesiser's voices for notebook 07)"; \
	  { apt-get install -y -qq --no-install-recommends flite >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && \
	      apt-get install -y -qq --no-install-recommends flite >/dev/null 2>&1; }; } || \
	  echo "make: could not install flite; notebook 07 will skip the other synthesiser's test"; \
	fi

# prepare runs beside the notebooks: each notebook starts as soon as the data it reads are built.
run: setup other-voices
	@$(resolve_profile); \
	$(RUN_ENV) $(PY) -m helpers.authoring.course run --profile $$profile --prepare

# The executed course as pages under $(BUILD)/html (index.html opens from the file system).
site: setup
	$(PY) -m helpers.authoring.course site

# Workshop editions: $(BUILD)/student/ holds the notebooks without solutions + the instructor guide.
student: setup
	$(PY) -m helpers.authoring.course student

lab: setup other-voices
	@$(resolve_profile); \
	echo "make: JupyterLab with TL_PROFILE=$$profile"; \
	root=$$([ "$$(id -u)" = 0 ] && echo --allow-root || true); \
	TL_PROFILE=$$profile $(RUN_ENV) $(VENV)/bin/jupyter lab notebooks/ $$root $(LAB_ARGS)

# The notebooks run on the caches prepare built, read-only (TL_CACHE_READ_ONLY=1, as on a workshop
# server: deploy/README.md), so a notebook that needs something prepare does not build fails here.
# They run beside prepare, each once the prepare steps it reads are done (course with-prepare and the
# pytest plugin helpers.authoring.after_prepare), as in `make run`.
# Each stage prints how long it took ("== stage: N s"). Two pytest workers run one thread each:
# two processes with two threads on two cores oversubscribe them (measured: unit tests 124 s -> 37 s).
test: setup other-voices
	@t=$$SECONDS; $(PY) -m ruff check .; $(PY) -m helpers.authoring.course check-clean; \
	echo "== stage lint and notebook hygiene: $$((SECONDS - t)) s"
	@t=$$SECONDS; $(RUN_ENV) OMP_NUM_THREADS=1 TL_THREADS=1 $(PY) -m pytest tests -q -n 2 \
	  -m "not browser and not needs_data and not hub"; echo "== stage unit tests: $$((SECONDS - t)) s"
	mkdir -p $(BUILD)
	@t=$$SECONDS; $(RUN_ENV) TL_PROFILE=quick $(PY) -m helpers.authoring.course with-prepare --profile quick --timings -- \
	  env TL_CACHE_READ_ONLY=1 OMP_NUM_THREADS=1 TL_THREADS=1 $(PY) -m pytest -p helpers.authoring.after_prepare \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -n 2 --dist loadfile -p no:cacheprovider \
	  --junitxml=$(BUILD)/nbval.xml notebooks/; $(PY) -m helpers.authoring.course check-nbval $(BUILD)/nbval.xml; \
	echo "== stage prepare, and beside it the notebooks under nbval as their data are ready: $$((SECONDS - t)) s"
	@t=$$SECONDS; $(RUN_ENV) TL_PROFILE=quick $(PY) -m pytest tests/test_editions.py tests/test_browser.py tests/test_deploy.py -q \
	  -m "needs_data or browser" -p no:cacheprovider -n 2; echo "== stage editions and browser: $$((SECONDS - t)) s"

# A workshop under load (tests/test_hub.py): installs JupyterHub (the `hub` extra) and
# configurable-http-proxy (npm, into .hub/), builds the quick caches, then 4 learners at once.
HUB_STAMP := $(VENV)/.stamp-hub-$(PYPROJECT_SHA)
$(HUB_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,hub]'
	@rm -f $(VENV)/.stamp-hub-*
	@touch $@

.hub/node_modules/.bin/configurable-http-proxy:
	@command -v npm >/dev/null 2>&1 || { echo "make: test-hub needs Node.js and npm (e.g. apt-get install nodejs npm)"; exit 1; }
	npm install --prefix .hub --no-audit --no-fund --silent configurable-http-proxy@4

test-hub: $(HUB_STAMP) .hub/node_modules/.bin/configurable-http-proxy
	@t=$$SECONDS; $(RUN_ENV) TL_PROFILE=quick $(PY) data_scripts/prepare.py --profile quick; \
	echo "== stage prepare (quick data and experiments): $$((SECONDS - t)) s"
	@t=$$SECONDS; $(RUN_ENV) $(PY) -m pytest tests/test_hub.py tests/test_deploy.py -m hub -q -s -p no:cacheprovider; \
	echo "== stage hub load test: $$((SECONDS - t)) s"

clean:
	rm -rf $(BUILD) .pytest_cache .ruff_cache
