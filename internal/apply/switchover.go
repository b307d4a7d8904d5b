package apply

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
)

// MaxSwitchoverLagBytes is how far behind the primary a switchover target
// may be when the switchover starts: the old primary stops taking writes
// once it has, and the target must replay the rest before it promotes.
const MaxSwitchoverLagBytes = 16 << 20

// switchover moves the primary to s.To through the Lease (DESIGN.md §6):
// the target annotation and the PodDisruptionBudgets change in one apply;
// the managers do the rest. Complete when the new primary holds the Lease,
// serves as primary, and NAME-rw routes to it (and the instances already
// on the desired revision, the former primary among them, stream from it).
func (e *Executor) switchover(ctx context.Context, t Target, s plan.Step) error {
	if err := e.switchoverReady(ctx, t, s.From, s.To); err != nil {
		return err
	}
	e.waitEndpointsQuiet(ctx, t)
	objs, err := e.render(t, s.To, nil)
	if err != nil {
		return err
	}
	if err := e.applyObjects(ctx, t, objs, true); err != nil {
		return err
	}
	if err := e.waitPrimary(ctx, t, s.To); err != nil {
		return err
	}
	if err := e.waitRouteMoved(ctx, t, s.From); err != nil {
		return err
	}
	return e.waitRejoined(ctx, t, s.To)
}

// waitRouteMoved waits until NAME-rw no longer routes to the former
// primary. kube-proxy applies the -rw change at its next sync; until then
// a new connection to NAME-rw can still reach the old primary. The next
// step usually deletes that pod, and a connection to a vanished pod IP
// hangs until the client's connect timeout (seen in a benchmark: a 4 s
// write pause). The former primary's manager stays down until its node
// routes -rw elsewhere and says so in /status (routeHeld); where its
// status cannot be read, kube-proxy's sync period is waited out instead.
func (e *Executor) waitRouteMoved(ctx context.Context, t Target, from string) error {
	spec := t.spec()
	settle := kubeProxyPeriod + kubeProxyPeriod/2
	deadline := e.now().Add(pc.RouteHoldMax + time.Second)
	for {
		p, err := e.Client.CoreV1().Pods(spec.Metadata.Namespace).Get(ctx, from, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		var st pc.Status
		if err == nil {
			st, err = e.Status.Status(ctx, p)
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			e.logf("status of the former primary unavailable: waiting out kube-proxy's sync period", "instance", from, "error", err.Error())
			return sleep(ctx, settle)
		case !st.RouteHeld:
			return nil
		case !e.now().Before(deadline):
			return nil // past the manager's own bound: it starts regardless
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitRejoined waits until every instance that already runs the desired
// revision — the former primary and the other standbys alike — is back
// as a streaming standby of the new primary (nothing restarts them next:
// a scale down moving the primary off a removed ordinal, `pgsync
// switchover`, the standbys already rolled). Each re-points to the new
// primary a moment after the hand-over (the former primary restarts
// postgres as a standby, the others reload); planned in between, an
// instance on the new spec that is not ready halts the rollout (seen in
// e2e: a scale down 4 → 2 halted right after its switchover, first on
// the former primary, then on a standby reloading onto its replication
// slot). Outdated instances are not waited for: the rolling restart
// replaces them next.
func (e *Executor) waitRejoined(ctx context.Context, t Target, to string) error {
	spec := t.spec()
	names := kube.NamesOf(spec)
	pods, err := e.Client.CoreV1().Pods(spec.Metadata.Namespace).List(ctx, metav1.ListOptions{LabelSelector: pc.LabelCluster + "=" + spec.Metadata.Name})
	if err != nil {
		return fmt.Errorf("list the pods of %s: %w", spec.Key(), err)
	}
	want := revision.Restart(spec)
	for _, p := range pods.Items {
		ordinal, ok := names.Ordinal(p.Name)
		if !ok || p.Name == to || p.DeletionTimestamp != nil || p.Annotations[pc.AnnRevision] != want {
			continue
		}
		if err := e.waitInstance(ctx, t, ordinal, plan.RoleStandby, ""); err != nil {
			return err
		}
	}
	return nil
}

// Endpoint quiet before a switchover. kube-proxy applies endpoint changes
// at most once per minSyncPeriod (1 s by default): a change that comes
// less than that after its previous sync waits out the rest of the
// period. A standby becoming ready changes the cluster's -ro and -r
// EndpointSlices a few milliseconds apart; the first starts a sync at
// once, the next arrives during it and gets a second sync a period later.
// If the promotion's NAME-rw change came within a period of either sync,
// writes would stop for up to a second longer (measured with kube-proxy's
// own sync timestamps: a 0.86 s pause with the -rw change 0.3 s after that
// second sync; before the old primary's route hold, clients were
// meanwhile answered read-only). So the switchover starts once the
// cluster's EndpointSlices have been still for two periods; the hand-over
// itself takes another ~250 ms before the -rw change, the margin for the
// second sync's own duration.
const (
	// kubeProxyPeriod is kube-proxy's default minSyncPeriod.
	kubeProxyPeriod = time.Second
	endpointQuiet   = 2 * kubeProxyPeriod
	// endpointQuietMax bounds the wait: clocks can disagree, and a
	// cluster whose endpoints keep changing must not block the step.
	endpointQuietMax = 5 * time.Second
	// endpointLag is how long after a pod's readiness change the endpoint
	// controller's slice writes may come.
	endpointLag = 100 * time.Millisecond
)

// waitEndpointsQuiet waits (at most endpointQuietMax) until no
// EndpointSlice of the cluster changed within endpointQuiet. The server
// records changes in managedFields with one-second resolution; when the
// latest is the readiness change a step of this executor saw (readyAt),
// that time bounds it more closely.
func (e *Executor) waitEndpointsQuiet(ctx context.Context, t Target) {
	spec := t.spec()
	deadline := e.now().Add(endpointQuietMax)
	sel := metav1.ListOptions{LabelSelector: pc.LabelCluster + "=" + spec.Metadata.Name}
	for e.now().Before(deadline) {
		list, err := e.Client.DiscoveryV1().EndpointSlices(spec.Metadata.Namespace).List(ctx, sel)
		if err != nil {
			return
		}
		var last time.Time
		for _, es := range list.Items {
			for _, mf := range es.ManagedFields {
				if mf.Time != nil && mf.Time.After(last) {
					last = mf.Time.Time
				}
			}
		}
		quietAt := lastEndpointChange(last, e.lastReady(spec.Key())).Add(endpointQuiet)
		if !e.now().Before(quietAt) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(quietAt.Sub(e.now()), deadline.Sub(e.now()))):
		}
	}
}

// lastEndpointChange bounds from above when the cluster's endpoints last
// changed: recorded is the latest managedFields time (truncated to the
// second), readyAt when this executor last saw one of its instances
// become ready (zero if never). A change within readyAt's second, or
// before it, is bounded by readyAt and the endpoint controller's lag;
// a later one only by the end of its second.
func lastEndpointChange(recorded, readyAt time.Time) time.Time {
	upper := recorded.Add(time.Second)
	if r := readyAt.Add(endpointLag); !readyAt.IsZero() && !recorded.After(r) && r.Before(upper) {
		upper = r // (a change by something else in readyAt's second is missed: a longer pause, nothing worse)
	}
	return upper
}

// switchoverReady checks the preconditions: the target is a ready standby
// streaming from the primary, less than MaxSwitchoverLagBytes behind, and
// with synchronous replication one the primary lists in
// synchronous_standby_names, when a listed one is ready.
func (e *Executor) switchoverReady(ctx context.Context, t Target, from, to string) error {
	live, err := e.observeOne(ctx, t)
	if err != nil {
		return err
	}
	return switchoverRefusal(live, from, to)
}

// switchoverRefusal is switchoverReady's decision on the live cluster.
func switchoverRefusal(live *observe.Cluster, from, to string) error {
	if live.LeaseHolder == to && live.TargetPrimary == to {
		return nil // done by a run that was interrupted: only wait
	}
	if live.LeaseHolder != from && live.TargetPrimary != from {
		return fmt.Errorf("switchover %s → %s refused: the primary is %s (Lease holder), not %s", from, to, live.LeaseHolder, from)
	}
	for _, in := range live.Instances {
		if in.Name != to {
			continue
		}
		switch {
		case !in.Ready:
			return fmt.Errorf("switchover %s → %s refused: %s is not ready (%s)", from, to, to, in.NotReady)
		case in.Status.Role != pc.StatusStandby || !in.Status.Streaming:
			return fmt.Errorf("switchover %s → %s refused: %s is %s and streaming %v, not a streaming standby", from, to, to, in.Status.Role, in.Status.Streaming)
		case in.LagBytes > MaxSwitchoverLagBytes:
			return fmt.Errorf("switchover %s → %s refused: %s is %d bytes behind the primary (at most %d)", from, to, to, in.LagBytes, MaxSwitchoverLagBytes)
		}
		if listed := syncListedReady(live); len(listed) > 0 && !slices.Contains(listed, in.Ordinal) {
			return fmt.Errorf("switchover %s → %s refused: synchronous replication is on and the primary does not list %s in synchronous_standby_names (ready and listed: ordinals %v)", from, to, to, listed)
		}
		return nil
	}
	return fmt.Errorf("switchover %s → %s refused: %s does not run", from, to, to)
}

// syncListedReady is the ordinals of the ready standbys the primary lists
// in synchronous_standby_names, when that restricts a switchover
// (plan.ObservedCluster.SyncRestricted).
func syncListedReady(live *observe.Cluster) []int {
	var out []int
	if !live.Observed.SyncRestricted {
		return nil
	}
	for _, in := range live.Observed.Instances {
		if in.SyncListed && in.Ready && in.Ordinal != live.Observed.Primary {
			out = append(out, in.Ordinal)
		}
	}
	return out
}

// waitPrimary waits until to holds the Lease, serves as primary, and the
// NAME-rw EndpointSlice routes to it alone.
func (e *Executor) waitPrimary(ctx context.Context, t Target, to string) error {
	spec := t.spec()
	ns, names := spec.Metadata.Namespace, kube.NamesOf(spec)
	return e.wait(ctx, to+" is the primary behind "+names.RW(), func(ctx context.Context) (bool, string, error) {
		l, err := e.Client.CoordinationV1().Leases(ns).Get(ctx, names.Lease(), metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != to {
			holder := "nobody"
			if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
				holder = *l.Spec.HolderIdentity
			}
			return false, "the Lease is held by " + holder, nil
		}
		p, err := e.Client.CoreV1().Pods(ns).Get(ctx, to, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		st, err := e.Status.Status(ctx, p)
		if err != nil {
			return false, "status: " + err.Error(), nil
		}
		if st.Role != pc.StatusPrimary {
			return false, to + " is " + st.Role, nil
		}
		es, err := e.Client.DiscoveryV1().EndpointSlices(ns).Get(ctx, names.RW(), metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if len(es.Endpoints) != 1 || len(es.Endpoints[0].Addresses) != 1 || es.Endpoints[0].Addresses[0] != p.Status.PodIP {
			return false, fmt.Sprintf("%s does not route to %s (%s) alone yet", names.RW(), to, p.Status.PodIP), nil
		}
		return true, "", nil
	})
}

// Switchover moves the primary of a running cluster to `to` on demand
// (`pgsync switchover`), through the same protocol and preconditions as
// a planned one, holding the cluster's apply lock.
func (e *Executor) Switchover(ctx context.Context, live *observe.Cluster, to, owner string) error {
	lock, err := e.Acquire(ctx, live.Observed.Spec, owner)
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	from := kube.NamesOf(live.Observed.Spec).Instance(live.Observed.Primary)
	if from == to {
		return fmt.Errorf("switchover refused: %s is already the primary", to)
	}
	names := kube.NamesOf(live.Observed.Spec)
	ordinal, ok := names.Ordinal(to)
	if !ok {
		return fmt.Errorf("switchover refused: %s is not an instance of %s", to, live.Key())
	}
	s := plan.Step{Action: plan.StepSwitchover, Instance: from, Ordinal: live.Observed.Primary, TargetOrdinal: ordinal,
		Role: plan.RolePrimary, From: from, To: to, Phase: plan.PhasePrimary}
	return e.Step(ctx, Target{Live: live}, s)
}
