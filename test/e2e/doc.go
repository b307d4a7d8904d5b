// Package e2e holds the end-to-end tests: real pods under containerd in the
// local single-node cluster built by hack/kube (docs/local-kubernetes.md),
// reached through test/kubeenv.Cluster. They skip with a reason when that
// cluster is not running, unless PGSYNC_E2E=1 (`make e2e`) or
// PGSYNC_REQUIRE_INTEGRATION=1 asks for it to be started.
//
// Tests whose assertions a busy node cannot change (not write pauses,
// kube-proxy's routing or reload latency; a leader election's takeover is
// bound by its Lease duration) call t.Parallel: Go runs them together
// after the serial ones, so they never disturb a measurement and the tier
// stays within CI's budget. A test that needs a quiet node stays serial.
// `make check` (hack/test-tiers.sh) runs the tier beside the other
// packages, with -parallel 4.
//
// The package owns no production code; it may import any pgsync package.
package e2e
