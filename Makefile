# Fresh machine: `make demo` runs the whole pipeline, `make test` runs the tests.
# Both create .venv (Python 3.11) and install torch 2.13.0 (CPU wheel) and the package first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/brain2text demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf demo_workspace runs .pytest_cache
