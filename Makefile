# pgsync — build, test, lint, bench.
# Fragments under hack/*.mk add the local-Kubernetes and end-to-end targets.

GO      ?= go
BIN     := bin/pgsync
PKGS    := ./...

.PHONY: all build test test-unit lint bench ci example

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

example: build
	$(BIN) plan --repo . --path examples/repo --offline

-include hack/*.mk
