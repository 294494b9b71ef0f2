# The README's two commands:
#   make book    set up .venv, then build the HTML book into _build/html
#                (and pack the project into _build/html/nn-from-scratch.tar.gz,
#                the download the book links to: book/_ext/project_archive.py)
#   make test    set up .venv, then run every stage below, timed:
#                unit, nbval, book, browser, labcheck (a failing stage
#                fails the run)
#   make lab     open the chapters in JupyterLab
# More: make unit | nbval | browser | labcheck | execute   (nbval and execute take
#       NB=notebooks/02_....ipynb for one chapter)
#       | bench | clean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SETUP := $(VENV)/.installed
VENDOR := book/widgets/vendor/VERSIONS.txt
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
NB ?= $(NOTEBOOKS)
EXECUTE_TIMEOUT ?= 3600
# Matrix products add in an order that depends on the number of BLAS
# threads; fix it so that re-run notebooks print the same digits.
PIN_THREADS := OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2

.PHONY: book test unit nbval browser lab labcheck execute bench clean

book: $(SETUP) $(VENDOR)
	$(BIN)/jupyter-book build --all -W -n --keep-going .

test: $(SETUP) $(VENDOR)
	@MAKE="$(MAKE)" $(BIN)/python scripts/run_tests.py unit nbval book browser labcheck

unit: $(SETUP)
	$(BIN)/pytest -m "not browser" tests

nbval: $(SETUP)
ifeq ($(NOTEBOOKS),)
	@echo "nbval: no notebooks in notebooks/ yet, nothing to check"
else
	$(PIN_THREADS) $(BIN)/pytest --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg $(NB)
endif

browser: $(SETUP)
	scripts/ensure_chromium.sh
	$(BIN)/pytest -m browser tests/test_book_pages.py

# Open the chapters in JupyterLab (installed in .venv by requirements.txt).
lab: $(SETUP)
	$(BIN)/jupyter lab notebooks/

# The live view in a running JupyterLab, driven in headless Chromium.
labcheck: $(SETUP)
	scripts/ensure_chromium.sh
	$(BIN)/pytest -m browser tests/test_jupyterlab.py

# Re-run notebooks in place, storing their outputs, widget state and cell
# timings (read by the chapter-times table in book/running.md).
execute: $(SETUP)
	@test -n "$(NB)" || { echo "execute: no notebooks in notebooks/"; exit 1; }
	@for nb in $(NB); do \
	    start=$$SECONDS; \
	    $(PIN_THREADS) $(BIN)/jupyter execute --inplace --kernel_name=python3 \
	        --timeout=$(EXECUTE_TIMEOUT) "$$nb"; \
	    echo "$$nb: executed in $$((SECONDS - start)) s"; \
	done

bench: $(SETUP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf _build book/widgets/vendor

# The virtual environment, (re)installed when the requirements change.
$(SETUP): requirements.txt pyproject.toml
	@echo "Setting up $(VENV) (the first time takes a few minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
	    -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

# The page scripts (widgets, MathJax), fetched with npm.
$(VENDOR): scripts/fetch_vendor_js.py
	$(PYTHON) scripts/fetch_vendor_js.py
