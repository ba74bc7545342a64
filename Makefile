# dsync — the two commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/bin
MODULES   := proto pkg services/gateway services/projector services/dispatcher services/dsync
GOTEST_FLAGS ?= -count=1 -timeout 15m

# Pinned code-generation tools, installed with `go install` into ./bin.
BUF_VERSION              := v1.75.0
PROTOC_GEN_GO_VERSION    := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/dsync
	$(GO) build -o $(BIN)/dsync ./services/dsync/cmd/dsync

.PHONY: run
run: build ## run everything in one process (in-process NATS, SQLite under ./data)
	$(BIN)/dsync dev

.PHONY: test
test: test-deps ## install what the tests need, then run every module's tests
	@set -e; for m in $(MODULES); do \
		echo "==> go test $$m"; \
		(cd $$m && $(GO) test $(GOTEST_FLAGS) ./...); \
	done

.PHONY: test-race
test-race: test-deps ## every module's tests under the race detector
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -race $(GOTEST_FLAGS) ./...); done

# Chromium for the dashboard's browser tests, and PostgreSQL server binaries
# for the tests' throwaway clusters. The tests
# start their own cluster (initdb + pg_ctl) as the unprivileged `postgres`
# user; nothing here starts a server.
.PHONY: test-deps
test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "==> installing chromium (browser tests)"; export DEBIAN_FRONTEND=noninteractive; \
			apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
		else echo "chromium is missing (browser tests): sudo apt-get install chromium fonts-dejavu-core"; exit 1; fi; }
	@if command -v pg_config >/dev/null 2>&1 && [ -x "$$(pg_config --bindir)/initdb" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "==> installing PostgreSQL server binaries (apt-get install postgresql)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	else \
		echo "PostgreSQL server binaries (initdb, pg_ctl) are missing."; \
		echo "Install them (Debian/Ubuntu: sudo apt-get install postgresql) or run make test as root."; \
		exit 1; \
	fi
	@id postgres >/dev/null 2>&1 || { echo "the postgres system user is missing; reinstall the postgresql package"; exit 1; }

.PHONY: bench
bench: ## run the benchmarks of every module
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run='^$$' -bench=. -benchmem ./...); done

.PHONY: tools
tools: ## install the pinned protobuf tools into ./bin
	GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

.PHONY: proto
proto: tools ## regenerate the Go code of proto/
	cd proto && PATH=$(BIN):$$PATH buf generate

.PHONY: lint
lint: tools ## buf lint and breaking check, gofmt, go vet
	cd proto && $(BIN)/buf lint
	@if git rev-parse --verify -q main >/dev/null && git cat-file -e main:proto/buf.yaml 2>/dev/null; then \
		cd proto && $(BIN)/buf breaking --against '../.git#branch=main,subdir=proto'; fi
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

.PHONY: clean
clean: ## remove build output (not ./data)
	rm -rf $(BIN)
