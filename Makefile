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

# Learners fill their own copies in my-labs/ (git-ignored, made once, never overwritten), so a `git pull`
# of the course never meets their work; labs/ stays the generated originals. JupyterLab also serves the
# built docs (labkit/jupyter.py): the notebooks' concept links and the grader's docs links open them.
lab: $(STAMP) build/vendor/mermaid.min.js
	@$(BIN)/python -m labkit up
	@$(BIN)/python -m labkit my-labs
	@$(BIN)/python -m labkit.docs build-if-needed || true
	@echo "Opening JupyterLab on my-labs/ (Ctrl-C stops JupyterLab and the docs; the local AWS keeps running: make down stops it)."
	@$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir=. --ServerApp.default_url=/lab/tree/my-labs/00-setup.ipynb \
	  --ServerApp.jpserver_extensions="{'labkit.jupyter': True}"

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

DOCS_PORT ?= 8000
serve-docs: $(STAMP) build/vendor/mermaid.min.js
	@$(BIN)/python -m labkit.docs serve-live --port $(DOCS_PORT)

bench: $(STAMP)
	@$(BIN)/python benchmarks/grading.py

up down status: $(STAMP)
	@$(BIN)/python -m labkit $@

clean:
	rm -rf build .pytest_cache
