// Package apply carries out a plan on a live cluster, one step at a time.
//
// The loop (Converge), documented here once because apply, the daemon and
// every test share it:
//
//  1. observe the cluster (internal/observe);
//  2. plan it against the desired spec (internal/plan, pure);
//  3. stop if the plan has no step (converged), if its first step is an
//     approval (waiting; ErrAwaitingApproval), or if the cluster is halted;
//  4. otherwise carry out exactly the first step (Executor.Step) and wait
//     until it is complete — a restarted pod Ready, streaming and at the
//     new revision; a switchover's new primary holding the Lease and
//     serving -rw; a reload loaded everywhere — and go back to 1.
//
// The loop never executes a stale list: every step is planned from what
// runs now, so pgsync killed anywhere resumes where the cluster is (a
// restarted instance already runs the new revision and is not restarted
// again; a Lease already moved is not switched over again). A step that
// does not complete within the step timeout halts the cluster: an Event
// and the StatefulSet's pgsync.io/halted annotation say why, nothing
// further is touched, and a later run with a fixing commit resumes.
//
// One writer per cluster: Converge holds the cluster's apply Lease
// (NAME-apply) for its whole run; a second apply fails at once naming the
// holder.
//
// It must not import `internal/gitsource`, `internal/desired` or
// `internal/instance/...`.
package apply
