# The two commands: `make lab` (set up and start the course) and `make test`
# (the course's whole self-test; .ci/run calls it).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export NO_MKDOCS_2_WARNING := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
MERMAID_VERSION := 12.3.0

.PHONY: lab test docs serve-docs bench notebooks up down status clean

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed: set PYTHON=/path/to/python3.11 and run make again."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned packages into $(VENV) (a few minutes the first time) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# rfc3987-syntax (pulled in through jsonschema's extras) costs every `import nbformat` about 1.5 s.
	@$(BIN)/python -m pip uninstall --quiet --yes rfc3987-syntax >/dev/null 2>&1 || true
	@touch $(STAMP)

lab: $(STAMP)
	@$(BIN)/python -m labkit up
	@echo "Opening JupyterLab on labs/ (Ctrl-C stops JupyterLab; the local AWS keeps running: make down stops it)."
	@$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir=. --ServerApp.default_url=/lab/tree/labs/00-setup.ipynb

test: $(STAMP)
	@$(BIN)/python -m pytest -n 2 --dist loadfile

notebooks: $(STAMP)
	@$(BIN)/python -m labkit build-notebooks

build/vendor/mermaid.min.js:
	@# Diagrams render offline from a vendored copy (the theme would fetch it from a CDN).
	@mkdir -p build/vendor
	@cd build/vendor && npm pack --silent mermaid@$(MERMAID_VERSION) >/dev/null && \
	  tar -xzf mermaid-$(MERMAID_VERSION).tgz package/dist/mermaid.min.js && \
	  mv package/dist/mermaid.min.js . && rm -rf package mermaid-$(MERMAID_VERSION).tgz || \
	  echo "npm is not available: diagrams will show as text."

docs: $(STAMP) build/vendor/mermaid.min.js
	@$(BIN)/mkdocs build --strict

serve-docs: $(STAMP) build/vendor/mermaid.min.js
	@$(BIN)/mkdocs serve --strict

bench: $(STAMP)
	@$(BIN)/python benchmarks/grading.py

up down status: $(STAMP)
	@$(BIN)/python -m labkit $@

clean:
	rm -rf build .pytest_cache
