# p2pshare: `make demo` runs the main job, `make test` installs and runs every test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean install dev uninstall fuzz fuzz-atheris tools

# `make install`: the tool alone, for users (no test tools): its own virtualenv under
# $(PREFIX)/share/p2pshare and a link in $(PREFIX)/bin.  `pipx install .` does the same.
PREFIX ?= $(HOME)/.local
USER_VENV := $(PREFIX)/share/p2pshare/venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

dev: $(STAMP) tools

# The other engines and lab tools the tests use (opentracker, aria2, transmission, webtorrent,
# iproute2, nftables, miniupnpd): each scripts/install-*.sh
# installs its own where the user is root (apt), is quick when already there, and says
# why when it cannot (those tests then skip; CI fails on such skips).
tools:
	@for script in scripts/install-*.sh; do bash "$$script" || exit 1; done

install:
	$(PYTHON) -m venv $(USER_VENV)
	$(USER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(USER_VENV)/bin/python -m pip install --quiet .
	mkdir -p $(PREFIX)/bin
	ln -sf $(USER_VENV)/bin/p2pshare $(PREFIX)/bin/p2pshare
	@echo "installed: $(PREFIX)/bin/p2pshare (make sure $(PREFIX)/bin is on PATH)"

uninstall:
	rm -rf $(USER_VENV) $(PREFIX)/bin/p2pshare

demo: $(STAMP)
	$(VENV)/bin/p2pshare demo

lint: $(STAMP)
	$(VENV)/bin/ruff check p2pshare tests benchmarks fuzz

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP) tools
	$(VENV)/bin/pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# 1,000,000 mutated inputs per parser (structure-aware from valid seeds); figures in
# benchmarks/results/fuzz.txt.  `make fuzz-atheris` runs the same targets under atheris's
# coverage guidance where atheris installs (x86_64 wheels).
fuzz: $(STAMP)
	$(PY) -m fuzz.run --inputs $${FUZZ_INPUTS:-1000000}

fuzz-atheris: $(STAMP)
	$(PIP) install --quiet atheris
	$(PY) -m fuzz.run --engine atheris --inputs $${FUZZ_INPUTS:-1000000} --out benchmarks/results/fuzz-atheris.txt

clean:
	rm -rf $(VENV) .engines .mypy_cache .ruff_cache .pytest_cache .hypothesis benchmarks/.work
