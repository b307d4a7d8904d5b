// Package e2e holds the end-to-end tests: real pods under containerd in the
// local single-node cluster built by hack/kube (docs/local-kubernetes.md),
// reached through test/kubeenv.Cluster. They skip with a reason when that
// cluster is not running, unless PGSYNC_E2E=1 (`make e2e`) or
// PGSYNC_REQUIRE_INTEGRATION=1 asks for it to be started.
//
// The package owns no production code; it may import any pgsync package.
package e2e
