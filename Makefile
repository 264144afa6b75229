# peerdns + peeragent. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
# Build information for --version and <binary>_build_info, stamped into
# prometheus/common/version as promu does. Reproducible: the date is the
# last commit's (UTC), the user a fixed name.
BUILD_DATE ?= $(shell TZ=UTC0 git log -1 --date=format-local:%Y%m%d-%H:%M:%S --format=%cd 2>/dev/null)
BUILD_USER ?= make
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS   := -s -w -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) -X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildUser=$(BUILD_USER) -X $(VERSION_PKG).BuildDate=$(BUILD_DATE)
# Where the pinned control plane, CoreDNS, kwok and helm are built (git-ignored).
TOOLS_BIN := $(CURDIR)/.cache/bin
export PEERDNS_TOOLS_BIN := $(TOOLS_BIN)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/peerdns and bin/peeragent.
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

.PHONY: controlplane
controlplane: ## Build the pinned etcd, kube-apiserver, controller-manager, scheduler, kwok, CoreDNS, helm into .cache/bin; install dig/dnsperf.
	hack/controlplane.sh $(TOOLS_BIN)

.PHONY: test
test: controlplane build ## Run every test (unit, integration against a real API server, CoreDNS, helm) with -race.
	PEERDNS_REQUIRE_TOOLS=1 $(GO) test -race -count=1 -timeout 30m ./...

.PHONY: test-short
test-short: ## Run the unit tests only (no control plane needed).
	$(GO) test -race -short ./...

.PHONY: run
run: controlplane build ## Start a local control plane with the seed service and peerdns on it; Ctrl-C cleans up.
	$(GO) run ./hack/demo

.PHONY: bench
bench: controlplane build ## Measure peerdns and peeragent against CoreDNS and the machine's limit; writes docs/benchmarks.md.
	$(GO) run ./hack/bench -out docs/benchmarks.md

.PHONY: docs
docs: ## Regenerate the generated tables (README, docs/peeragent.md, chart READMEs) from the code.
	$(GO) test ./cmd/... ./charts -run TestREADME -update

.PHONY: lint
lint: ## gofmt, go vet and go mod tidy checks.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff

.PHONY: clean
clean: ## Remove build outputs (keeps the control-plane cache).
	rm -rf bin/
