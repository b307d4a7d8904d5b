// Package observe builds the planner's input (plan.Observed) from the
// clusters that run: the StatefulSets pgsync manages (found by label, so a
// cluster removed from Git is still seen and planned as orphan or delete),
// the spec each was last applied from (its pgsync.io/applied-spec
// annotation), each pod (ordinal, image, revision, Ready, phase, restarts),
// each data volume (size from status.capacity, a pending resize), the
// primary Lease (holder, target, final LSN) and each instance manager's
// /status (role, timeline, LSNs, lag, the config revision postgres has
// loaded, pending restart).
//
// Kubernetes is read with four List calls whatever the number of
// clusters (Observe), or from informer caches (Watch: what the daemon
// uses, with a fingerprint per cluster that changes with any write to its
// objects, so a cycle reads only the clusters that may have changed); the instances' /status documents are read in parallel, each
// call with its own timeout, so one dead or slow pod cannot stall the
// rest: an instance whose status cannot be read is observed as not ready,
// with the reason. Drift (Drift) is found by a server-side dry-run apply
// of what pgsync rendered, so server defaults never show as drift; an
// object whose managed fields show that the apply would change nothing
// needs no dry run, and a fleet's objects are read with one List per kind.
//
// It must not import `internal/apply`, `internal/gitsource`,
// `internal/daemon` or `internal/instance`.
package observe
