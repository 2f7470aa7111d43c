# Palisade build and test entry points. `make test` is what CI runs.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN ?= GOFLAGS= go run sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
HELM_VERSION ?= v3.22.0
# Packages that carry kubebuilder markers (API types, RBAC, webhooks).
MARKER_PATHS := paths=./api/... paths=./internal/controller/... paths=./internal/webhook/...
GO_TEST_FLAGS ?= -count=1

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

.PHONY: verify-generated
verify-generated: generate manifests ## Fail when generated files are stale.
	@if [ -n "$$(git status --porcelain -- api config/crd config/rbac config/webhook)" ]; then \
		echo "generated files are stale; run 'make generate manifests' and commit:"; \
		git status --porcelain -- api config/crd config/rbac config/webhook; \
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

.PHONY: bench
bench: envtest-assets ## Run benchmarks; numbers go to docs/benchmarks.md.
	KUBEBUILDER_ASSETS="$$(bash hack/envtest-assets.sh)" go test -run '^$$' -bench . -benchtime 1x ./...

.PHONY: help
help:
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
