// Package imagegate enforces an image policy (internal/imagepolicy) before
// any rollout: it checks, through the registry, the image each desired
// cluster would roll and the instance image (the pgsync binary in every
// pod), pins what the policy verified by digest (REPO:TAG@sha256:…) and
// turns each refusal into a problem positioned at the cluster's
// spec.imageName. plan, apply and run call it on the clusters loaded from
// Git before planning, so the plan, the saved plan and the StatefulSet
// all carry the verified digest (DESIGN.md invariant 9).
//
// Each Enforce asks the registry afresh: a tag that moves is seen at the
// next call (the daemon calls it every cycle). The clusters it is given
// are never changed: pinned ones are copies.
//
// It must not import `internal/apply`, `internal/daemon`, `k8s.io/client-go/...` or `github.com/go-git/...`.
package imagegate
