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

.PHONY: all venv build demo test native-test fuzz lint typecheck pytest bench clean k8s-bins helm-bin image browser

all: build

venv: $(STAMP)

# A fresh virtual environment, the package installed in editable mode, the C engine built by cffi.
$(STAMP): pyproject.toml setup.py native/build_engine.py $(NATIVE_SRC)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

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

lint: $(STAMP)
	$(VENV)/bin/ruff check driver tests native/build_engine.py
	$(VENV)/bin/ruff format --check driver tests native/build_engine.py

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

pytest: $(STAMP) k8s-bins helm-bin image browser
	$(PY) -m pytest -q

test: $(STAMP) native-test lint typecheck pytest

bench: $(STAMP)
	$(VENV)/bin/darwin-dra bench engine

clean:
	rm -rf native/out build driver/*.egg-info driver/darwin_dra/engine/_engine_cffi*.so
