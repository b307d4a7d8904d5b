# Supply-chain tooling (docs/supply-chain.md).

.PHONY: cosign

# The cosign CLI the supply-chain tests check pgsync against, built from the
# Go module proxy into the tools cache (PGSYNC_TOOLS_CACHE, default
# /var/cache/pgsync/tools) once per version.
cosign:
	@hack/cosign.sh >/dev/null

# The pgsync image and the PostgreSQL operand images (15.18, 15.20), built
# without Docker into the image cache's OCI layout by the same code as
# kube-up (kubelocal images), then pushed to IMAGE_REGISTRY, signed there
# with the cache's key and their SPDX SBOMs attached. The PostgreSQL images
# install exactly the packages of hack/kube/debian.lock; the same lock and
# checkout give the same digests. Needs root (debootstrap, chroot). The
# default registry is the local cluster's (make kube-up).
IMAGE_REGISTRY ?= 127.0.0.1:5000

.PHONY: images images-lock

images: kubelocal
	hack/kube/deps.sh debootstrap
	$(KUBELOCAL) images --push $(IMAGE_REGISTRY)

# Re-resolves the PostgreSQL images' packages against today's Debian
# mirror and rewrites hack/kube/debian.lock (review the diff, then make
# images builds from it).
images-lock:
	hack/kube/deps.sh debootstrap
	hack/kube/rootfs.sh --lock 15.18 15.20 >hack/kube/debian.lock.new
	mv hack/kube/debian.lock.new hack/kube/debian.lock
