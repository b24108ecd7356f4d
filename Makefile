# 联访 Lianfang — entry points. `make run` and `make test` install whatever is missing first.
PY        ?= python3
VENV      := .venv
VPY       := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
PROTOS    := $(wildcard proto/lianfang/v1/*.proto)
PB_STAMP  := shared/pb/lianfang/.generated

.PHONY: run test install proto bench pg browser clean audit-verify help

help:
	@echo "make run     start the demo federation (JetStream + 7 agency nodes)"
	@echo "make test    install what is missing and run the whole suite"
	@echo "make bench   load benchmark → var/bench/result.json"
	@echo "make proto   regenerate gRPC stubs from proto/ (and docs/GRPC.md)"
	@echo "make docs    regenerate docs/GRPC.md from the comments in proto/"

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	touch $@

$(PB_STAMP): $(PROTOS) $(STAMP)
	rm -rf shared/pb/lianfang
	$(VPY) -m grpc_tools.protoc -Iproto --python_out=shared/pb --grpc_python_out=shared/pb $(PROTOS)
	touch shared/pb/lianfang/__init__.py shared/pb/lianfang/v1/__init__.py $@

install: $(STAMP) $(PB_STAMP)

proto: $(PB_STAMP) docs/GRPC.md

# docs/GRPC.md from the comments in proto/ (shared/protodoc.py); `make proto` refreshes it when a .proto
# changed, `make docs` always regenerates it. tests/unit/test_protodoc.py fails when it is stale.
.PHONY: docs
docs: $(STAMP)
	$(VPY) -m shared.protodoc

docs/GRPC.md: $(PROTOS) shared/protodoc.py $(STAMP)
	$(VPY) -m shared.protodoc
	touch $@

# PostgreSQL server binaries for the tests (the suite starts its own throw-away server on loopback).
pg:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

# Debian's chromium for the browser tests (tests/browser drive it with Playwright; no browser download),
# and a CJK font so its screenshots show the pages' Chinese.
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	@test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null)

run: install
	$(VPY) -m shared.demo

test: install pg browser
	$(VPY) -m pytest -q tests

bench: install
	test $(VENV)/.bench-installed -nt pyproject.toml || ($(VPY) -m pip install -q -e '.[bench]' && touch $(VENV)/.bench-installed)
	$(VPY) -m tests.bench.run

# Dev CA + certificates for the demo federation's nodes and the NATS server (shared/certs.py); the
# demo and the tests make their own under their federation folder (tls/), this is for other setups.
.PHONY: certs
certs: install
	$(VPY) -m shared.certs --out var/certs

audit-verify: install
	$(VPY) -m shared.cli audit verify

clean:
	rm -rf var shared/pb/lianfang
