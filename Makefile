# pgsync — build, test, lint, bench.
# Fragments under hack/*.mk add the local-Kubernetes and end-to-end targets.

GO      ?= go
BIN     := bin/pgsync
PKGS    := ./...

.PHONY: all build test lint bench bench-plan check deps example demo demo-clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/pgsync

# Every Go test tier that runs without a full Kubernetes node: unit, real
# PostgreSQL, real kube-apiserver. Integration tiers skip with a reason when
# their tools are missing, unless PGSYNC_REQUIRE_INTEGRATION=1 (CI) makes that
# a failure.
test:
	$(GO) test -race -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# The offline plan of the bundled example (needs only Go and git).
example: build
	$(BIN) validate --repo . --path examples/repo
	$(BIN) plan --repo . --path examples/repo --offline

# The README's first command: the local Kubernetes, a Git server serving a
# copy of examples/local, pgsync deployed in-cluster (examples/demo) and the
# website cluster it creates; it ends with the lines that roll a version
# bump. Root on Debian 12, as check. demo-clean removes it all again.
demo: kube-up build
	hack/demo/demo.sh

demo-clean:
	hack/demo/clean.sh

# The README's second command, and what .ci/run calls: every tier, with
# missing prerequisites an error rather than a skip. Needs root on Debian 12.
# kube-up comes first: on a fresh machine it builds Kubernetes (~17 min,
# cached afterwards), which the API tier and the e2e tier both use. cosign
# is the real CLI the supply-chain tests check against (~10 min cold, cached).
# The e2e tier runs beside the other packages (hack/test-tiers.sh says why).
check: deps lint cosign kube-up
	PGSYNC_REQUIRE_INTEGRATION=1 GO=$(GO) hack/test-tiers.sh

# Debian packages the tests need (the e2e tier installs its own, kube-deps).
deps:
	hack/kube/deps.sh git curl jq postgresql-15 postgresql-15-pgaudit

# `pgsync plan --base HEAD~1 --format json` on 1,000 clusters, 100 changed,
# against a git baseline (results: docs/benchmarks.md).
bench-plan:
	$(GO) run ./bench/plan -clusters 1000 -changed 100 -runs 9

-include hack/*.mk
