# Palisade build and test entry points. `make test` is what CI runs.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN ?= GOFLAGS= go run sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
HELM_VERSION ?= v3.22.0
# Packages that carry kubebuilder markers (API types, RBAC, webhooks, the metrics filters).
MARKER_PATHS := paths=./api/... paths=./internal/controller/... paths=./internal/webhook/... paths=./internal/manager/...
GO_TEST_FLAGS ?= -count=1
CHART := charts/palisade
# Everything `make generate manifests` writes; `make test` fails when any of it is stale.
GENERATED_PATHS := api config/crd config/rbac config/webhook $(CHART)/crds $(CHART)/files

.PHONY: all
all: build

##@ Development

.PHONY: generate
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: ## Generate CRDs, RBAC and webhook configuration from markers.
	$(CONTROLLER_GEN) crd:generateEmbeddedObjectMeta=true rbac:roleName=palisade-manager webhook $(MARKER_PATHS) \
		output:crd:artifacts:config=config/crd/bases \
		output:rbac:artifacts:config=config/rbac \
		output:webhook:artifacts:config=config/webhook
	@$(MAKE) --no-print-directory helm-sync

.PHONY: verify-generated
verify-generated: generate manifests ## Fail when generated files are stale.
	@if [ -n "$$(git status --porcelain -- $(GENERATED_PATHS))" ]; then \
		echo "generated files are stale; run 'make generate manifests' and commit:"; \
		git status --porcelain -- $(GENERATED_PATHS); \
		git --no-pager diff --stat -- api config; exit 1; fi

.PHONY: fmt
fmt:
	go fmt ./...

.PHONY: vet
vet:
	go vet ./...

.PHONY: build
build: ## Build every binary into bin/.
	go build -o bin/ ./cmd/...

##@ Testing

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver and etcd from source (cached outside the repo).
	@bash hack/envtest-assets.sh >/dev/null

.PHONY: test
test: verify-generated vet envtest-assets ## Run every test: unit, envtest, simulator, nftables in netns.
	KUBEBUILDER_ASSETS="$$(bash hack/envtest-assets.sh)" go test $(GO_TEST_FLAGS) ./...
	# The metal-api client and simulator are shared by concurrent reconcilers: prove them race-free.
	go test -race $(GO_TEST_FLAGS) ./internal/metal/... ./cmd/metal-sim/...
	# Issue 8 acceptance: the demo reaches a completed rolling update on a fresh machine.
	DEMO_NONINTERACTIVE=1 $(MAKE) --no-print-directory demo

# The randomized fault soak (test/soak). A short fixed-seed run is part of `make test`; this is the
# long one. The seed is printed; SOAK_SEED=<n> replays a schedule, SOAK_DURATION sets the fault
# phase, SOAK_REPORT=<file> appends the summary line.
SOAK_SEED ?= $(shell date +%s)
SOAK_DURATION ?= 20m
SOAK_TIMEOUT ?= 60m

.PHONY: soak
soak: envtest-assets ## Randomized fault soak: SOAK_SEED, SOAK_DURATION (default 20m), SOAK_REPORT.
	KUBEBUILDER_ASSETS="$$(bash hack/envtest-assets.sh)" SOAK_SEED=$(SOAK_SEED) SOAK_DURATION=$(SOAK_DURATION) \
		go test -count=1 -v -timeout $(SOAK_TIMEOUT) -run '^TestSoak$$' ./test/soak/

.PHONY: bench
bench: envtest-assets ## Run benchmarks; numbers go to docs/benchmarks.md.
	KUBEBUILDER_ASSETS="$$(bash hack/envtest-assets.sh)" go test -run '^$$' -bench . -benchtime 1x ./...

.PHONY: help
help:
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Helm chart and demo

# Tools built from the Go module proxy live outside the repository, like the envtest binaries.
PALISADE_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/palisade
HELM ?= $(PALISADE_CACHE)/helm-$(HELM_VERSION)/helm

# test/helm runs inside `go test ./...`; building helm first keeps that package within its timeout.
test: helm

.PHONY: helm
helm: ## Build the helm binary from the Go module proxy (cached; test/helm finds it there).
	@if [ ! -x "$(HELM)" ]; then \
		echo "building helm $(HELM_VERSION) into $(dir $(HELM)) (a few minutes, once)"; \
		GOFLAGS= GOBIN="$(abspath $(dir $(HELM)))" go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); fi

.PHONY: helm-sync
helm-sync: ## Copy the generated CRDs, RBAC rules and webhooks into the chart (part of make manifests).
	@rm -f $(CHART)/crds/*.yaml
	@cp config/crd/bases/*.yaml $(CHART)/crds/
	@cp config/rbac/role.yaml $(CHART)/files/rbac/role.yaml
	@cp config/webhook/manifests.yaml $(CHART)/files/webhook/manifests.yaml

.PHONY: helm-lint
helm-lint: helm ## Lint the chart (strict).
	"$(HELM)" lint --strict $(CHART)

.PHONY: demo
demo: envtest-assets ## Run Palisade on a local API server and simulated metal-api (DEMO_NONINTERACTIVE=1 exits after the roll).
	@echo "[demo] compiling the demo"
	@KUBEBUILDER_ASSETS="$$(bash hack/envtest-assets.sh 2>/dev/null)" go run ./cmd/demo

##@ Release: image, agent artifacts, workload chart (docs/packaging.md)

# VERSION is the one release version: binaries, image tag, both charts (make set-version).
PALISADE_VERSION := $(shell cat VERSION)
REGISTRY ?= ghcr.io/palisade-fw
IMAGE ?= $(REGISTRY)/palisade-manager
DROPTAILER_IMAGE ?= $(REGISTRY)/palisade-droptailer
WORKLOAD_CHART := charts/palisade-workload
WORKLOAD_CRDS := metal-stack.io_clusterwidenetworkpolicies.yaml firewall.metal-stack.io_firewallmonitors.yaml
RELEASE_TOOL := go run ./hack/release
GENERATED_PATHS += $(WORKLOAD_CHART)/crds

.PHONY: image
image: ## Build the manager image (linux/amd64+arm64, scratch) into bin/image, the droptailer's into bin/image-droptailer: OCI layout and archive. No Docker.
	$(RELEASE_TOOL) image --out bin/image --repository $(IMAGE)
	$(RELEASE_TOOL) image --image droptailer --out bin/image-droptailer --repository $(DROPTAILER_IMAGE)

.PHONY: image-push
image-push: image ## Push both image indexes: make image-push REGISTRY=registry.example.com/palisade
	$(RELEASE_TOOL) push --layout bin/image/oci --ref $(IMAGE):$(PALISADE_VERSION)
	$(RELEASE_TOOL) push --layout bin/image-droptailer/oci --ref $(DROPTAILER_IMAGE):$(PALISADE_VERSION)

.PHONY: release
release: ## Agent artifacts in bin/release (binaries, units, bundles, sha256sums, signatures); SIGNING_KEY=key.pem.
	$(RELEASE_TOOL) agent --out bin/release $(if $(SIGNING_KEY),--key $(SIGNING_KEY))
	$(RELEASE_TOOL) verify --dir bin/release

.PHONY: set-version
set-version: ## Set the release version in VERSION and both charts: make set-version NEW_VERSION=0.2.0
	@test -n "$(NEW_VERSION)" || { echo "usage: make set-version NEW_VERSION=x.y.z"; exit 1; }
	echo "$(NEW_VERSION)" > VERSION
	sed -i -E 's/^version: .*/version: $(NEW_VERSION)/; s/^appVersion: .*/appVersion: "$(NEW_VERSION)"/' $(CHART)/Chart.yaml $(WORKLOAD_CHART)/Chart.yaml
	sed -i -E 's|(image: .*/palisade-droptailer:).*|\1$(NEW_VERSION)|' config/samples/workload/droptailer.yaml

# The workload chart carries copies of the CRDs the workload cluster needs.
helm-sync: helm-sync-workload
.PHONY: helm-sync-workload
helm-sync-workload:
	@rm -f $(WORKLOAD_CHART)/crds/*.yaml
	@for f in $(WORKLOAD_CRDS); do cp config/crd/bases/$$f $(WORKLOAD_CHART)/crds/; done

helm-lint: helm-lint-workload
.PHONY: helm-lint-workload
helm-lint-workload: helm
	"$(HELM)" lint --strict $(WORKLOAD_CHART)

##@ Fleet benchmark (docs/benchmarks.md, "Manager at fleet scale")

# The manager runs as a process of its own against envtest and the metal-api simulator; each size
# in BENCH_DEPLOYMENTS (comma-separated) is a fresh run. BENCH_BASELINE=<git ref> also builds the
# manager of that commit and measures it in the same run, before this tree's.
BENCH_DEPLOYMENTS ?= 10
BENCH_NAMESPACES ?=
BENCH_REPLICAS ?= 2
BENCH_PROVISIONING ?= 3s
BENCH_STEADY ?= 2m
BENCH_BASELINE ?=
BENCH_MANAGER_FLAGS ?=
BENCH_OUT ?= bin/bench-fleet.md
BENCH_DIR := bin/bench-fleet

.PHONY: bench-fleet
bench-fleet: envtest-assets ## Fleet benchmark: BENCH_DEPLOYMENTS=1,10,50 BENCH_NAMESPACES BENCH_REPLICAS BENCH_PROVISIONING BENCH_STEADY BENCH_BASELINE=<ref>.
	@mkdir -p $(BENCH_DIR)
	go build -o $(BENCH_DIR)/manager-this ./cmd/manager
	@managers="this tree=$(abspath $(BENCH_DIR))/manager-this"; \
	if [ -n "$(BENCH_BASELINE)" ]; then \
		src=$(abspath $(BENCH_DIR))/src-$(BENCH_BASELINE); rm -rf $$src; mkdir -p $$src; \
		git archive $(BENCH_BASELINE) | tar -x -C $$src; \
		(cd $$src && go build -o $(abspath $(BENCH_DIR))/manager-$(BENCH_BASELINE) ./cmd/manager); \
		managers="$(BENCH_BASELINE)=$(abspath $(BENCH_DIR))/manager-$(BENCH_BASELINE),$$managers"; fi; \
	KUBEBUILDER_ASSETS="$$(bash hack/envtest-assets.sh)" PALISADE_BENCH_MANAGERS="$$managers" \
	PALISADE_BENCH_DEPLOYMENTS="$(BENCH_DEPLOYMENTS)" PALISADE_BENCH_NAMESPACES="$(BENCH_NAMESPACES)" \
	PALISADE_BENCH_REPLICAS="$(BENCH_REPLICAS)" PALISADE_BENCH_PROVISIONING="$(BENCH_PROVISIONING)" \
	PALISADE_BENCH_STEADY="$(BENCH_STEADY)" PALISADE_BENCH_MANAGER_FLAGS="$(BENCH_MANAGER_FLAGS)" \
	PALISADE_BENCH_OUT="$(abspath $(BENCH_OUT))" PALISADE_BENCH_LOGDIR="$(abspath $(BENCH_DIR))/logs" \
	go test -count=1 -run '^$$' -bench '^BenchmarkFleet$$' -benchtime 1x -timeout 4h ./test/managerbench/
