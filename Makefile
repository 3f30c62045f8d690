# Darwin DRA: `make demo` runs the main job, `make test` runs every check CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NATIVE_SRC := $(wildcard native/src/*.c native/src/*.h native/include/*.h)
CFLAGS_STRICT := -std=c11 -O1 -g -Wall -Wextra -Werror -Wshadow -Wconversion -Wno-sign-conversion \
	-D_GNU_SOURCE -Inative/include -Inative/src -pthread
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all venv build demo test unit native-test fuzz fuzz-short fuzz-deps lint typecheck pytest bench clean k8s-bins helm-bin image browser host-packages

all: build

venv: $(STAMP)

# A fresh virtual environment, the package installed in editable mode, the C engine built by cffi.
# Each step timed by deploy/step.sh: its output in $(SETUP_LOGS), a live line while it runs.
SETUP_LOGS := out/setup-logs
STEP := deploy/step.sh
$(STAMP): pyproject.toml setup.py native/build_engine.py $(NATIVE_SRC)
	@$(STEP) "the virtual environment ($(VENV))" $(SETUP_LOGS)/venv.log \
		bash -c 'test -x $(PY) || $(PYTHON) -m venv $(VENV)'
	@$(STEP) "pip, upgraded" $(SETUP_LOGS)/pip.log \
		$(PY) -m pip install --progress-bar off --upgrade pip
	@$(STEP) "the package (editable) and its dependencies; the C engine built by cffi" \
		$(SETUP_LOGS)/install.log $(PY) -m pip install --progress-bar off -e '.[test,bench]'
	@touch $@

build: $(STAMP)

# The main job: the driver's whole job on a local cluster with real nodes, installed with its
# Helm chart (see driver/darwin_dra/demo/). The demo builds (or finds cached) everything else
# itself, each step timed with a progress display.
demo: $(STAMP)
	$(VENV)/bin/darwin-dra demo

# The native tests and a short fuzz run, built with AddressSanitizer and UBSan.
native/out/test_engine: native/tests/test_engine.c $(NATIVE_SRC)
	mkdir -p native/out
	$(CC) $(CFLAGS_STRICT) $(SAN) native/tests/test_engine.c native/src/*.c -o $@ -lm

native/out/fuzz_engine: native/tests/fuzz_engine.c $(NATIVE_SRC)
	mkdir -p native/out
	$(CC) $(CFLAGS_STRICT) $(SAN) native/tests/fuzz_engine.c native/src/*.c -o $@ -lm

native-test: native/out/test_engine native/out/fuzz_engine
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 native/out/test_engine
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 native/out/fuzz_engine --seconds 10

# Coverage-guided fuzzing (docs/reliability.md): libFuzzer with ASan and UBSan for the C API
# (native/tests/fuzz_engine.c, built by Debian's clang), atheris for the Python edges
# (tests/fuzz/targets.py). `make fuzz` runs FUZZ_RUNS inputs per target, outside CI;
# `make test` runs the short pass.
CLANG ?= clang-14
FUZZ_RUNS ?= 1000000
FUZZ_RUNS_SHORT ?= 5000
FUZZ_C_RUNS_SHORT ?= 50000
FUZZ_TARGETS := claim opaque-config inventory profile fault-file checkpoint nir-graph spikeport dra stage-wire
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1

fuzz-deps:
	@command -v $(CLANG) >/dev/null && test -n "$$(ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null)" || \
	  { test "$$(id -u)" = 0 || { echo "fuzzing needs clang-14 and libclang-rt-14-dev (apt-get install, as root)"; exit 1; }; \
	    DEBIAN_FRONTEND=noninteractive apt-get -q -y update >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null; }

native/out/fuzz_engine_lf: native/tests/fuzz_engine.c $(NATIVE_SRC) | fuzz-deps
	mkdir -p native/out
	$(CLANG) $(CFLAGS_STRICT) -DDARWIN_LIBFUZZER -fsanitize=fuzzer,address,undefined \
	  -fno-omit-frame-pointer -fno-sanitize-recover=all native/tests/fuzz_engine.c native/src/*.c -o $@ -lm

# A finding's input is kept as native/out/fuzz-findings/crash-<sha1>.
# Inputs that once failed are kept in native/tests/fuzz-regressions: every run replays them first.
define run_fuzz
	mkdir -p native/out/corpus-engine native/out/fuzz-findings
	$(FUZZ_ENV) native/out/fuzz_engine_lf -runs=$(2) -artifact_prefix=native/out/fuzz-findings/ -print_final_stats=1 native/out/corpus-engine native/tests/fuzz-regressions 2>&1 | grep -E "^Done|stat::number_of_executed_units|ERROR" ; test $${PIPESTATUS[0]} = 0
	for t in $(FUZZ_TARGETS); do \
	  $(PY) -m tests.fuzz.run $$t -runs=$(1) -artifact_prefix=native/out/fuzz-findings/ 2>&1 | grep -E "^Done|Uncaught|Error" ; \
	  test $${PIPESTATUS[0]} = 0 || { echo "fuzz target $$t found a failure (rerun: $(PY) -m tests.fuzz.run $$t)"; exit 1; }; \
	done
endef

fuzz: native/out/fuzz_engine_lf $(STAMP)
	$(call run_fuzz,$(FUZZ_RUNS),$(FUZZ_RUNS))

fuzz-short: native/out/fuzz_engine_lf $(STAMP)
	$(call run_fuzz,$(FUZZ_RUNS_SHORT),$(FUZZ_C_RUNS_SHORT))

lint: $(STAMP)
	$(VENV)/bin/ruff check driver tests native/build_engine.py
	$(VENV)/bin/ruff format --check driver tests native/build_engine.py
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# etcd, the Kubernetes control plane and the kubelet from deploy/local, containerd from its Go
# module, the real nodes' Debian packages (apt-get, as root) and their busybox and pause images,
# all cached (~/.cache/darwin-dra) or installed once.
k8s-bins: $(STAMP)
	$(VENV)/bin/darwin-dra cluster build

# The driver's image (deploy/image/Containerfile's recipe, from Debian's packages with
# mmdebstrap and the project's wheel) as an OCI tar, cached by a hash of its inputs.
image: $(STAMP)
	$(VENV)/bin/darwin-dra cluster image --no-import

# helm built from its Go module (the chart tests run helm lint and helm template, the demo
# installs the chart with it), cached; its version is darwin_dra/demo/tools.py's HELM_VERSION.
HELM_VERSION := v3.22.0
HELM := $(HOME)/.cache/darwin-dra/helm-$(HELM_VERSION)/helm
helm-bin: $(HELM)
$(HELM): | $(STAMP)
	$(PY) -c 'from darwin_dra.demo.tools import ensure_helm; ensure_helm()'  # go install, cached

# Headless Chromium from Debian's packages: the demo's test renders the demo's report with it.
browser: $(STAMP)
	$(PY) -c 'from darwin_dra.cluster import hostdeps as h; h.ensure(h.BROWSER_PACKAGES)'

# Every Debian package make test needs (the fuzzers' clang, real nodes, the image's mmdebstrap,
# the browser), before the builds below run side by side and would race for apt's lock.
host-packages: $(STAMP) fuzz-deps
	$(PY) -c 'from darwin_dra.cluster import hostdeps as h; h.ensure(h.ALL_PACKAGES)'

# The fast tests: neither integration (a cluster) nor slow, on every core (pytest-xdist).
# UNIT_ARGS replaces the worker option (UNIT_ARGS="-n 0" runs them in one process).
UNIT_ARGS ?= -n auto
unit: $(STAMP)
	$(PY) -m pytest -q -m "not integration and not slow" $(UNIT_ARGS)

# Every test: first those that need no cluster, on every core; then the cluster tests one at a
# time (they share session clusters, and two clusters at once would fight over the cores).
pytest: $(STAMP) host-packages k8s-bins helm-bin image
	$(PY) -m pytest -q -m "not integration" $(UNIT_ARGS)
	$(PY) -m pytest -q -m integration --durations=25

# The checks and the builds side by side (the Go builds, mypy and the sanitizer build keep the
# cores busy while mmdebstrap waits on Debian's mirror; each step's output shows when it ends),
# then every test.
test: $(STAMP) host-packages
	$(MAKE) -j4 --output-sync=target native-test fuzz-short lint typecheck k8s-bins helm-bin image
	$(MAKE) pytest

bench: $(STAMP)
	$(VENV)/bin/darwin-dra bench engine

clean:
	rm -rf native/out build driver/*.egg-info driver/darwin_dra/engine/_engine_cffi*.so
