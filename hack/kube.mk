# Local single-node Kubernetes built from upstream sources (docs/local-kubernetes.md).
# Targets: kube-deps kube-bins kube-images kube-up kube-down kube-status e2e.
# Everything built is cached outside the checkout (PGSYNC_KUBE_CACHE, default
# /var/cache/pgsync/kube), keyed by version; the running cluster's state is
# under PGSYNC_KUBE_STATE (default /var/lib/pgsync/kube). Needs root.

PGSYNC_KUBE_CACHE ?= /var/cache/pgsync/kube
KUBELOCAL         := $(PGSYNC_KUBE_CACHE)/kubelocal

.PHONY: kube-deps kube-api-bins kube-bins kube-images kubelocal kube-up kube-down kube-status e2e bench-rollout

# Debian packages: containerd, runc, CNI plugins, iptables, etcd, debootstrap.
kube-deps:
	hack/kube/deps.sh

# What the API test tier (test/kubeenv.APIServer) needs: etcd + kube-apiserver.
kube-api-bins:
	hack/kube/deps.sh etcd-server
	hack/kube/build.sh kube-apiserver

# All five Kubernetes components and CoreDNS (about 10-15 minutes cold).
kube-bins: kube-deps
	hack/kube/build.sh
	hack/kube/build.sh coredns

kubelocal:
	@mkdir -p $(PGSYNC_KUBE_CACHE)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(KUBELOCAL) ./hack/kube/kubelocal

# PostgreSQL 15.18/15.20, pgsync and pause images into the cached OCI layout.
kube-images: kubelocal kube-deps
	$(KUBELOCAL) images

# Builds what is missing, starts the cluster; the last line printed is
# `export KUBECONFIG=...`.
kube-up: kubelocal
	@$(KUBELOCAL) up

kube-down: kubelocal
	@$(KUBELOCAL) down

kube-status: kubelocal
	@$(KUBELOCAL) status

# The end-to-end tier against the local cluster.
e2e: kube-up
	PGSYNC_E2E=1 $(GO) test -count=1 -timeout 40m -v ./test/e2e/...

# `pgsync apply` rolling updates under writes through NAME-rw, against a
# hand-driven Lease switchover in the same run (docs/benchmarks.md).
bench-rollout: kube-up
	$(GO) test -run '^$$' -bench Rollout -benchtime=1x -count=1 -timeout 40m ./bench/rollout
