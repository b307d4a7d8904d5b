// Package kubeenv gives tests a real Kubernetes: a bare kube-apiserver with
// etcd for the API tier (APIServer), and the local single-node cluster built
// by hack/kube for the end-to-end tier (Cluster). Both run upstream binaries
// built from source into a cache outside the checkout; nothing is mocked.
//
// It owns starting, sharing and stopping those processes for one test
// process, and namespaces per test. It must not import `internal/...`: it
// is test infrastructure those packages' tests import.
//
// Prerequisites missing (not root, no etcd, binaries not built and not
// buildable, a kernel kubelocal finds lacking: exit code 4) make a test skip
// with the reason, unless the environment sets PGSYNC_REQUIRE_INTEGRATION=1,
// where they fail it.
package kubeenv
