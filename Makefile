# `make run` and `make test` work from a fresh clone: they create .venv, install the package
# with its Cython extension (editable) and the test dependencies, then run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/node/node_modules/.installed

.PHONY: run test test-pure test-speedups typecheck bench soak build clean

$(STAMP): setup.py setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools cython
	$(BIN)/pip install -q -e '.[test]'
	touch $@

build: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace

$(NODE_STAMP): tests/node/package.json
	cd tests/node && npm install --no-audit --no-fund --silent
	touch $@

# The chat demo (examples/chat): its page at http://HOST:PORT/, a WebSocket echo at ws://HOST:PORT/.
HOST ?= 127.0.0.1
PORT ?= 8000
run: build
	$(BIN)/python examples/chat/app.py --host $(HOST) --port $(PORT)

# The Autobahn Testsuite (tests/test_autobahn.py) runs on Python 2.7, installed once into
# .venv/autobahn with a link to its interpreter. Without a Python 2.7 that test skips, or
# fails under CI=true.
PYTHON2 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/2.7*/bin/python2.7) \
                       $(shell command -v python2.7 2>/dev/null))
AUTOBAHN := $(VENV)/autobahn
AUTOBAHN_STAMP := $(AUTOBAHN)/.installed

$(AUTOBAHN_STAMP): tests/autobahn-requirements.txt
	@if [ -z "$(PYTHON2)" ]; then echo 'no Python 2.7: the Autobahn Testsuite cannot run'; \
	else set -e; \
		$(PYTHON2) -m pip install -q --disable-pip-version-check --no-warn-script-location \
			--target $(AUTOBAHN) -r tests/autobahn-requirements.txt; \
		touch $(AUTOBAHN)/zope/__init__.py; \
		ln -sfn $(PYTHON2) $(AUTOBAHN)/python; \
		touch $@; fi

# mypy over the package, as setup.cfg's [mypy] section says (mypy comes with the test extra).
typecheck: $(STAMP)
	$(BIN)/python -m mypy geventws

# The package is type-checked once; then the whole suite runs twice: once on the compiled hot
# path, once on the pure-Python twin.
test: build typecheck $(NODE_STAMP) $(AUTOBAHN_STAMP)
	$(BIN)/python -c 'import geventws, sys; sys.exit(not geventws.speedups_enabled())' || \
		{ echo 'the Cython extension did not build'; exit 1; }
	$(BIN)/python -m pytest -q -p no:cacheprovider
	GEVENTWS_NO_EXTENSIONS=1 $(BIN)/python -m pytest -q -p no:cacheprovider

# The peers (setup.cfg's bench extra) once; bench/run.py compiles the load generator into
# bench/out/ (git-ignored). Node ws is an extra column when tests/node has been installed.
# Then S8 (bench/s8.py: pub/sub through a redis-server of its own; S8_ARGS, e.g. --quick).
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	touch $@

bench: build $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/s8.py $(S8_ARGS)

# The churn soak (tests/stress/soak.py, not part of `make test`): SOAK_SECONDS (600 by default)
# of connections opened, echoed, closed and reset against one server, its RSS and descriptors
# sampled; fails on errors or growth. GEVENTWS_NO_EXTENSIONS=1 soaks the pure-Python twin.
SOAK_SECONDS ?= 600
soak: build
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python tests/stress/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) build tests/node/node_modules
	find geventws ext \( -name "*.so" -o -name "*.c" \) -delete
