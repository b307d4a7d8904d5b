// Package kube renders every Kubernetes object of one pgsync cluster from a
// *cluster.Cluster (DESIGN.md §4): the StatefulSet, the Services and the
// fixed-name EndpointSlice `NAME-rw`, the ServiceAccount, Role and
// RoleBinding of the instance manager, the parameters ConfigMap, the primary
// Lease, the PodDisruptionBudgets and the credential Secrets. docs/objects.md
// explains every field.
//
// Rendering is pure: typed k8s.io/api objects built from the Cluster and a
// few Options, no I/O, no clock; randomness (Secret passwords) comes from an
// io.Reader the caller passes. The one piece of I/O here, Apply, sends a
// rendered object as a server-side apply with field manager "pgsync"
// (optionally as a dry run, which is how the live plan diffs without
// defaults showing up as drift).
//
// The Lease and the EndpointSlice are shared with the instance manager,
// which writes them with plain Updates: the rendered objects carry only the
// fields pgsync owns (labels, the target-primary annotation, the slice's
// address type and port), never the holder fields or the endpoints, so
// re-applying never undoes what a manager wrote. Secrets are created once
// and never rendered again (NewSecrets skips the ones that exist).
//
// It must not import `internal/plan`, `internal/apply`, `internal/gitsource`,
// `internal/daemon` or `internal/instance/...`; the revisions on the pod
// template come from internal/revision.
package kube
