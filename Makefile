# Image of the operator for deploy (no registry is reachable from our machines: build and load it
# into your cluster yourself).
IMG ?= controller:latest

# The Kubernetes release whose control plane envtest and the dev cluster run. hack/k8s/ pins the
# same release; the binaries are built from source into $(KUBEBUILDER_ASSETS).
K8S_VERSION ?= 1.37.2

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

KUBEBUILDER_ASSETS ?= $(LOCALBIN)/k8s/$(K8S_VERSION)
export KUBEBUILDER_ASSETS

## Dev cluster (make dev-cluster): its kubeconfig is what run, install and deploy talk to unless
## KUBECONFIG is set.
DEV_DIR ?= $(LOCALBIN)/dev
KUBECONFIG ?= $(DEV_DIR)/kubeconfig
OPERATOR_NAMESPACE ?= dsr-system

## Tests: go test runs at most TEST_PARALLEL test binaries at once. Each may start a control plane
## and database servers, so on two cores more than two only adds contention.
TEST_PARALLEL ?= 2
TEST_TIMEOUT ?= 30m
TEST_FLAGS ?=
TEST_PACKAGES ?= ./...
# The controllers and every internal package run under the race detector (their fan-outs and pools
# are concurrent); the end-to-end, chart and benchmark packages drive separate processes and run
# without it, so their timings stay close to production.
RACE_PACKAGES ?= ./controllers/... ./internal/...
## Set to false to skip the check that generated files are committed (e.g. while editing api/).
CHECK_GENERATED ?= true

.PHONY: all
all: build

##@ General

# The help target prints out all targets with their descriptions organized
# beneath their categories. The categories are represented by '##@' and the
# target descriptions by '##'. The awk command is responsible for reading the
# entire set of makefiles included in this invocation, looking for lines of the
# file as xyz: ## something, and then pretty-format the target and help. Then,
# if there's a line with ##@ something, that gets pretty-printed as a category.
# More info on the usage of ANSI control characters for terminal formatting:
# https://en.wikipedia.org/wiki/ANSI_escape_code#SGR_parameters
# More info on the awk command:
# http://linuxcommand.org/lc3_adv_awk.php

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRDs and the manager's ClusterRole from the kubebuilder markers.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases
	hack/sync-chart.sh

.PHONY: generate
generate: controller-gen ## Generate the DeepCopy methods of the API types.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Check formatting (gofmt -l must print nothing), go vet and golangci-lint.
	@unformatted="$$(find . -name '*.go' -not -path './bin/*' -not -path './.git/*' -print0 | xargs -0 gofmt -l)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt: these files need formatting (run make fmt):"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	"$(GOLANGCI_LINT)" run ./...

.PHONY: check-generated
check-generated: manifests generate ## Fail when generated files (CRDs, role.yaml, deepcopy, the chart's copies) differ from what is committed.
	@if [ "$(CHECK_GENERATED)" != "true" ]; then echo "check-generated: skipped (CHECK_GENERATED=$(CHECK_GENERATED))"; \
	elif ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then echo "check-generated: not a git checkout, skipped"; \
	else \
		changed="$$(git status --porcelain --untracked-files=all -- config/crd/bases config/rbac/role.yaml config/webhook charts/dsr-operator/crds charts/dsr-operator/files ':(glob)api/**/zz_generated.*.go')"; \
		if [ -n "$$changed" ]; then \
			echo "check-generated: generated files differ from what is committed:"; echo "$$changed"; \
			git --no-pager diff --stat -- config/ api/; \
			echo "Commit the output of 'make manifests generate' (or run with CHECK_GENERATED=false while editing)."; \
			exit 1; \
		fi; \
		echo "check-generated: generated files match what is committed"; \
	fi

.PHONY: test
test: manifests generate fmt vet check-generated k8s-binaries test-deps ferretdb versitygw ## Run every test against real control planes and databases.
	go test -race $(RACE_PACKAGES) -count=1 -p $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) $(TEST_FLAGS)
	go test $$(go list $(TEST_PACKAGES) | grep -v -e '/controllers' -e '/internal/') -count=1 -p $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) $(TEST_FLAGS)
	go test ./internal/connector/sqlite/ -run '^(TestMillionRowsWithoutIndexInBoundedMemory|TestTwentyThousandValuesOfOneIdentifier)$$' -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS)

## Benchmark (docs/benchmarks.md): N deletion requests over PostgreSQL, MariaDB and Redis against the
## store and API floors. Ends with one "bench: ..." summary line per round, and with several rounds a
## "bench-median: ..." line (median and min-max of every figure).
## BENCH_MODE: requests (default), linked-requests (the SQL stores map customers -> orders ->
## order_item), linked (one subject with BENCH_LINKED_ROWS linked rows against a plain Go program),
## these three running their floors and the operator BENCH_PAIRS times each, alternately,
## sweep (a SuppressionList of BENCH_SWEEP_ENTRIES keyed entries swept over BENCH_SWEEP_ROWS PostgreSQL
## rows and BENCH_SWEEP_KEYS Redis keys against plain Go programs; no Kubernetes), export (one person's
## access export of BENCH_EXPORT_MB MB in JSON + CSV + HTML to an S3 bucket, empty after BENCH_EXPORT_TTL).
## BENCH_ROUNDS: rounds, each its own run (and pairs) of floors and operator.
BENCH_REQUESTS ?= 1000
BENCH_DIAG ?=
BENCH_MODE ?= requests
BENCH_ROUNDS ?= 1
BENCH_LINKED_ROWS ?= 10000
BENCH_PAIRS ?= 3
BENCH_SWEEP_ROWS ?= 10000000
BENCH_SWEEP_KEYS ?= 1000000
BENCH_SWEEP_ENTRIES ?= 1000000
BENCH_EXPORT_MB ?= 50
BENCH_EXPORT_TTL ?= 3m
.PHONY: bench
bench: k8s-binaries test-deps ## Run the end-to-end benchmark (BENCH_MODE, BENCH_REQUESTS, BENCH_ROUNDS, BENCH_LINKED_ROWS, BENCH_PAIRS; BENCH_DIAG=1 profiles).
	@mkdir -p test/bench/out && rm -f test/bench/out/summary.txt test/bench/out/summaries.txt
	@for round in $$(seq 1 $(BENCH_ROUNDS)); do \
		echo "==> bench round $$round of $(BENCH_ROUNDS), mode $(BENCH_MODE)"; \
		BENCH_REQUESTS=$(BENCH_REQUESTS) BENCH_DIAG=$(BENCH_DIAG) BENCH_MODE=$(BENCH_MODE) BENCH_LINKED_ROWS=$(BENCH_LINKED_ROWS) BENCH_PAIRS=$(BENCH_PAIRS) \
			BENCH_SWEEP_ROWS=$(BENCH_SWEEP_ROWS) BENCH_SWEEP_KEYS=$(BENCH_SWEEP_KEYS) BENCH_SWEEP_ENTRIES=$(BENCH_SWEEP_ENTRIES) \
			BENCH_EXPORT_MB=$(BENCH_EXPORT_MB) BENCH_EXPORT_TTL=$(BENCH_EXPORT_TTL) \
			BENCH_SUMMARY="$(CURDIR)/test/bench/out/summary.txt" \
			go test ./test/bench -run '^TestBench$$' -count=1 -v -timeout 90m || exit 1; \
		cat test/bench/out/summary.txt >> test/bench/out/summaries.txt; \
	done
	@cat test/bench/out/summaries.txt
	@if [ $(BENCH_ROUNDS) -gt 1 ]; then go run ./test/bench/benchmedian < test/bench/out/summaries.txt; fi

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build bin/manager (and bin/kubectl-dsr when cmd/kubectl-dsr exists).
	go build -o "$(LOCALBIN)/manager" .
	@if [ -d cmd/kubectl-dsr ]; then echo go build -o "$(LOCALBIN)/kubectl-dsr" ./cmd/kubectl-dsr; go build -o "$(LOCALBIN)/kubectl-dsr" ./cmd/kubectl-dsr; fi

.PHONY: run
run: manifests generate fmt vet ## Run the operator on this machine against $KUBECONFIG (default: the dev cluster).
	@test -f "$(KUBECONFIG)" || { echo "run: $(KUBECONFIG) not found; start the dev cluster first: make dev-cluster run"; exit 1; }
	$(KUBECTL_CMD) get namespace "$(OPERATOR_NAMESPACE)" >/dev/null 2>&1 || $(KUBECTL_CMD) create namespace "$(OPERATOR_NAMESPACE)"
	KUBECONFIG="$(KUBECONFIG)" go run . --operator-namespace="$(OPERATOR_NAMESPACE)"

##@ Dev cluster

.PHONY: dev-cluster
dev-cluster: k8s-binaries devcluster ## Start a local control plane with the CRDs in the background; kubeconfig in bin/dev/kubeconfig.
	"$(DEVCLUSTER)" up --dir "$(DEV_DIR)" --assets "$(KUBEBUILDER_ASSETS)" --crds config/crd/bases

DEMO_FLAGS ?=
.PHONY: demo
demo: k8s-binaries devcluster ## The newcomer's tour: dev cluster, seeded PostgreSQL and Redis, the operator, a deletion and an access request.
	@echo "==> starting the local control plane (the first run builds kube-apiserver and etcd from source: several minutes)"
	"$(DEVCLUSTER)" up --dir "$(DEV_DIR)" --assets "$(KUBEBUILDER_ASSETS)" --crds config/crd/bases
	@if [ -d cmd/kubectl-dsr ]; then echo "==> building the kubectl plugin into bin/kubectl-dsr"; go build -o "$(LOCALBIN)/kubectl-dsr" ./cmd/kubectl-dsr; fi
	@echo "==> building and running the demo"
	go run ./hack/demo --kubeconfig "$(DEV_DIR)/kubeconfig" $(DEMO_FLAGS)

.PHONY: helm
helm: ## Build helm from source into bin/helm (hack/build-helm.sh; the module proxy is the only source).
	hack/build-helm.sh

.PHONY: helm-lint
helm-lint: helm ## helm lint --strict the chart.
	"$(LOCALBIN)/helm" lint --strict charts/dsr-operator

.PHONY: dev-cluster-down
dev-cluster-down: devcluster ## Stop the dev cluster and remove its data.
	"$(DEVCLUSTER)" down --dir "$(DEV_DIR)"

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests ## Install the CRDs into the cluster of $KUBECONFIG.
	"$(KUBECTL)" kustomize config/crd | $(KUBECTL_CMD) apply -f -

.PHONY: uninstall
uninstall: manifests ## Uninstall the CRDs. Call with ignore-not-found=true to ignore resource not found errors.
	"$(KUBECTL)" kustomize config/crd | $(KUBECTL_CMD) delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests ## Deploy the operator (config/default, image IMG) to the cluster of $KUBECONFIG.
	"$(KUBECTL)" kustomize config/default | sed 's|image: controller:latest|image: $(IMG)|' | $(KUBECTL_CMD) apply -f -

# --wait=false: the dev cluster has no controller-manager, so a deleted namespace is never finalized
# there and waiting for it would hang.
.PHONY: undeploy
undeploy: ## Remove the operator (config/default). Call with ignore-not-found=true to ignore resource not found errors.
	"$(KUBECTL)" kustomize config/default | $(KUBECTL_CMD) delete --wait=false --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

.PHONY: test-deps
test-deps: ## Install PostgreSQL, MariaDB and Redis with apt-get when their binaries are missing.
	hack/test-deps.sh

.PHONY: versitygw
versitygw: ## Build versitygw (the S3 test server of internal/teststore) from source into bin/ (skipped when present).
	hack/build-versitygw.sh

.PHONY: k8s-binaries
k8s-binaries: ## Build kube-apiserver and etcd (K8S_VERSION) from source into bin/k8s/ (skipped when present).
	@if [ -x "$(KUBEBUILDER_ASSETS)/kube-apiserver" ] && [ -x "$(KUBEBUILDER_ASSETS)/etcd" ] && [ -e "$(KUBEBUILDER_ASSETS)/kubectl" ]; then \
		echo "k8s-binaries: present in $(KUBEBUILDER_ASSETS)"; \
	else \
		K8S_VERSION="$(K8S_VERSION)" KUBEBUILDER_ASSETS="$(KUBEBUILDER_ASSETS)" hack/build-k8s.sh; \
	fi

.PHONY: ferretdb
ferretdb: ## Build FerretDB (the MongoDB wire protocol over SQLite, for the mongodb connector's tests) from source into bin/ferretdb/ (skipped when present).
	hack/build-ferretdb.sh

## Tool Binaries
KUBECTL ?= $(or $(shell command -v kubectl 2>/dev/null),$(KUBEBUILDER_ASSETS)/kubectl)
KUBECTL_CMD = "$(KUBECTL)" --kubeconfig "$(KUBECONFIG)"
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
DEVCLUSTER ?= $(LOCALBIN)/devcluster

## Tool Versions
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0

# The tool targets always run: go-install-tool is a cheap check that also notices a version bump.
.PHONY: controller-gen
controller-gen: | $(LOCALBIN) ## Download controller-gen locally if necessary.
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: | $(LOCALBIN) ## Download golangci-lint locally if necessary.
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# Rebuilt on every use: go build is incremental, and a stale binary would run old code.
.PHONY: devcluster
devcluster: | $(LOCALBIN)
	@go build -o "$(DEVCLUSTER)" ./hack/devcluster

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$$(basename -- "$(1)-$(3)")" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" go install $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)" ;\
} ;\
ln -sfn "$$(basename -- "$(1)-$(3)")" "$(1)"
endef
