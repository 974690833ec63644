# Two commands for a newcomer: `make demo` (install + run the main job), `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install -q -c constraints.txt

.PHONY: demo test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(PIP) -e '.[dask]'  # the demo's trials run on two local worker processes

install-test: $(BIN)/python
	$(PIP) -e '.[test,tensorboard,dask]'  # the TensorBoard and cluster tests run, not skip

demo: install
	$(BIN)/neuralsmith study --out runs/study --resume --workers 2

test: install-test
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
