// Package contract holds the tests that hold the renderer (internal/kube),
// the planner (internal/plan) and the instance manager (internal/instance)
// to one pod contract (internal/podcontract) and to the rule that every
// field a Cluster accepts has an effect or is refused when it is
// validated:
//
//   - rendered_test.go runs the pgsync binary from exactly the container
//     kube.Render produces (test/podrun stands in for the kubelet) against
//     a real kube-apiserver and real PostgreSQL, and checks that what the
//     planner treats as applied reaches postgres and the manager;
//   - fields_test.go walks the Cluster type and fails for any field
//     without an entry saying where its effect is checked, and checks
//     each entry.
//
// It has no product code. It must not import `internal/instance/...`: the
// manager is exercised as the binary the pod runs.
package contract
