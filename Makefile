# peerdns + peeragent. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

GO        ?= go
# The release being prepared, not yet tagged: the charts' version and
# appVersion agree with it, CHANGELOG.md lists its changes under [Unreleased]
# until it is tagged (make release-check, go test ./test/release). Bump it
# right after tagging.
RELEASE   := v0.1.0
# The version stamped into binaries, images and packaged charts: the release
# tag on a tagged commit, else a development version (see hack/version.sh and
# docs/release.md).
VERSION   ?= $(shell hack/version.sh $(RELEASE))
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
# Every time stamp in images and archives: the last commit's time, so two
# builds of one commit are byte-identical.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# Evaluated once: a commit made during a long build must not split it.
VERSION   := $(VERSION)
REVISION  := $(REVISION)
SOURCE_DATE_EPOCH := $(SOURCE_DATE_EPOCH)
export SOURCE_DATE_EPOCH
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
# Release outputs (git-ignored).
DIST      ?= dist
# Platforms of the images, and of the release archives.
PLATFORMS ?= linux/amd64 linux/arm64
RELEASE_PLATFORMS ?= $(PLATFORMS) darwin/amd64 darwin/arm64
IMAGE_REPOSITORY ?= ghcr.io/peerdns
# GnuPG key (user ID or fingerprint) make release signs the charts' provenance
# and SHA256SUMS with; empty: unsigned (docs/release.md, "Signatures").
SIGN_KEY  ?=
# Where the chart repository (dist/release/charts) is published.
CHART_URL ?= https://peerdns.github.io/peerdns/charts

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/peerdns and bin/peeragent (static, CGO_ENABLED=0).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

.PHONY: binaries
binaries: ## Cross-compile both programs for every PLATFORMS into $(DIST)/bin/<os>_<arch>/.
	@for p in $(PLATFORMS); do \
		echo "go build $$p"; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/bin/$${p%/*}_$${p#*/}/ ./cmd/...; \
	done

.PHONY: image
image: binaries ## Build the peerdns and peeragent images (OCI layout, archives, SBOMs) into $(DIST)/image; no daemon needed.
	$(GO) run ./hack/image -bin $(DIST)/bin -out $(DIST)/image -platforms '$(PLATFORMS)' \
		-repository $(IMAGE_REPOSITORY) -version $(VERSION) -revision '$(REVISION)'

.PHONY: version
version: ## Print the version this checkout builds (see docs/release.md).
	@echo $(VERSION)

.PHONY: release-check
release-check: ## Refuse a VERSION that RELEASE, CHANGELOG.md, the charts' versions or the git tags contradict (docs/release.md).
	$(GO) run ./hack/release -check -version $(VERSION) -release $(RELEASE)

.PHONY: release
release: release-check image helm ## Build what a release ships into $(DIST)/release: archives, images, charts + repo index, notes, SHA256SUMS.
	$(MAKE) binaries PLATFORMS='$(RELEASE_PLATFORMS)' VERSION=$(VERSION) REVISION=$(REVISION)
	$(GO) run ./hack/release -dist $(DIST) -version $(VERSION) -release $(RELEASE) -platforms '$(RELEASE_PLATFORMS)' \
		-helm $(TOOLS_BIN)/helm -chart-url $(CHART_URL) -sign-key '$(SIGN_KEY)'

.PHONY: helm
helm: ## Build only the pinned helm into .cache/bin (make controlplane builds it too).
	@. hack/versions.env; \
	if [ ! -x $(TOOLS_BIN)/helm ] || [ "$$(cat $(TOOLS_BIN)/.helm.version 2>/dev/null)" != "$$HELM_VERSION" ]; then \
		echo "building helm $$HELM_VERSION"; \
		mkdir -p $(TOOLS_BIN); GOBIN=$(TOOLS_BIN) $(GO) install helm.sh/helm/v3/cmd/helm@$$HELM_VERSION; \
		echo "$$HELM_VERSION" >$(TOOLS_BIN)/.helm.version; \
	fi

.PHONY: controlplane
controlplane: ## Build the pinned etcd, kube-apiserver, controller-manager, scheduler, kwok, CoreDNS, helm into .cache/bin; install dig/dnsperf.
	hack/controlplane.sh $(TOOLS_BIN)

.PHONY: test
test: controlplane build ## Run every test (unit, integration against a real API server, CoreDNS, helm, the seed on a real node) with -race.
	PEERDNS_REQUIRE_TOOLS=1 $(GO) test -race -count=1 -timeout 30m ./...

.PHONY: e2e
e2e: controlplane ## Run only the real-node tests: the seed end to end (charts, images, DNS, quorum, Prometheus), its etcd, the node harness and `make demo` unattended (needs root).
	PEERDNS_REQUIRE_TOOLS=1 $(GO) test -race -count=1 -timeout 20m -v -run 'TestSeedOnNode|TestEtcdOnNode|TestNode' ./test/node ./internal/controlplane ./hack/demo

.PHONY: test-short
test-short: ## Run the unit tests only (no control plane needed).
	$(GO) test -race -short ./...

.PHONY: demo
demo: controlplane build ## Tell the seed's story step by step on a real node (needs root; else on kwok, saying why); cleans up.
	$(GO) run ./hack/demo

.PHONY: run
run: controlplane build ## Start a local control plane (kwok) with the seed service and peerdns on it; Ctrl-C cleans up.
	$(GO) run ./hack/demo -mode=kwok -hold

.PHONY: bench
bench: controlplane build ## Measure peerdns and peeragent against CoreDNS and the machine's limit; writes docs/benchmarks.md.
	$(GO) run ./hack/bench -out docs/benchmarks.md

.PHONY: docs
docs: ## Regenerate the generated tables (README, docs/peeragent.md, chart READMEs) from the code.
	$(GO) test ./cmd/... ./charts -run TestREADME -update

.PHONY: tools
tools: ## Install the lint tools pinned in hack/versions.env (golangci-lint, helm) into .cache/bin, and shellcheck.
	hack/tools.sh $(TOOLS_BIN)

.PHONY: lint
lint: tools ## gofmt, go vet, go mod tidy, golangci-lint (.golangci.yml), shellcheck, helm lint --strict.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(TOOLS_BIN)/golangci-lint run ./...
	shellcheck $$(git ls-files '*.sh') .ci/run
	$(TOOLS_BIN)/helm lint --strict charts/peerdns charts/peeragent

.PHONY: clean
clean: ## Remove build outputs (keeps the control-plane cache).
	rm -rf bin/ $(DIST)/
