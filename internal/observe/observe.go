package observe

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// StatusReader reads one instance manager's /status.
type StatusReader interface {
	Status(ctx context.Context, pod *corev1.Pod) (pc.Status, error)
}

// Options steer Observe.
type Options struct {
	// Namespace limits observation to one namespace; "" is every namespace.
	Namespace string
	// Status reads the instances' /status; nil observes without it (every
	// instance then counts as not ready).
	Status StatusReader
	// StatusTimeout bounds each /status call (default 2 s).
	StatusTimeout time.Duration
	// Parallel bounds the /status calls in flight (default 32).
	Parallel int
}

// Fleet is every managed cluster found, sorted by namespace/name.
type Fleet struct {
	Clusters []Cluster
	// Skipped are StatefulSets labelled as pgsync's that cannot be read
	// as clusters (no or unreadable applied-spec annotation), with why.
	Skipped []string
}

// Cluster is one managed cluster as it runs.
type Cluster struct {
	// Observed is the planner's view.
	Observed plan.ObservedCluster
	// Commit is the Git commit the objects were last applied from.
	Commit string
	// Lease is the primary Lease (nil when missing).
	LeaseHolder, TargetPrimary, FinalLSN string
	// Instances, by ordinal: every pod, and every ordinal below the
	// StatefulSet's replicas that has no pod.
	Instances []Instance
	// StatefulSet and Lease are the live objects (Lease nil when missing).
	// Observed from a Watch, the StatefulSet holds only its metadata,
	// replicas and init containers' names, images and pull policies.
	StatefulSet *appsv1.StatefulSet
	Lease       *coordv1.Lease
}

// Key is the cluster's namespace/name.
func (c *Cluster) Key() cluster.Key { return c.Observed.Spec.Key() }

// Instance is one instance as it runs.
type Instance struct {
	Name    string
	Ordinal int
	// PodExists is false for an ordinal whose pod is missing.
	PodExists bool
	// Terminating: the pod is being deleted.
	Terminating bool
	Phase       corev1.PodPhase
	PodReady    bool
	Restarts    int32
	Image       string
	Revision    string
	Created     time.Time
	// Status is the manager's /status; nil when it could not be read
	// (StatusError says why).
	Status      *pc.Status
	StatusError string
	// Ready is what the planner sees: the pod is Ready and its manager
	// reports a serving primary or standby. NotReady says why not.
	Ready    bool
	NotReady string
	// Capacity is the data volume's size (status.capacity); Requested
	// what its claim asks for. ResizePending: Requested > Capacity.
	Capacity, Requested cluster.Quantity
	// WALCapacity is the WAL volume's size (spec.walStorage), if any.
	WALCapacity   cluster.Quantity
	ResizePending bool
	// LagBytes is how far this instance's replay is behind the primary's
	// current LSN (0 for the primary, and when unknown).
	LagBytes int64
	// NoTLS: the pod's postgres container has no CA (PGSYNC_CA_DIR): it
	// was created before pgsync's TLS.
	NoTLS bool
}

// Observe reads every managed cluster (in opts.Namespace, or all).
func Observe(ctx context.Context, client kubernetes.Interface, opts Options) (*Fleet, error) {
	managed := metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{pc.LabelManagedBy: pc.ManagedBy}).String()}
	ns := opts.Namespace
	var (
		stsList   *appsv1.StatefulSetList
		podList   *corev1.PodList
		pvcList   *corev1.PersistentVolumeClaimList
		leaseList *coordv1.LeaseList
	)
	// The four lists are independent: read them at once.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Add(4)
	go func() {
		defer wg.Done()
		stsList, errs[0] = client.AppsV1().StatefulSets(ns).List(ctx, managed)
	}()
	go func() {
		defer wg.Done()
		// Pods carry only the cluster label (the template's), which every
		// managed pod has.
		podList, errs[1] = client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: pc.LabelCluster})
	}()
	go func() {
		defer wg.Done()
		pvcList, errs[2] = client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: pc.LabelCluster})
	}()
	go func() {
		defer wg.Done()
		leaseList, errs[3] = client.CoordinationV1().Leases(ns).List(ctx, managed)
	}()
	wg.Wait()
	for i, what := range []string{"StatefulSets", "pods", "PersistentVolumeClaims", "Leases"} {
		if errs[i] != nil {
			return nil, fmt.Errorf("list %s%s: %w", what, inNamespace(ns), errs[i])
		}
	}

	src := listed{pods: map[objectKey]*corev1.Pod{}, pvcs: map[objectKey]*corev1.PersistentVolumeClaim{}, leases: map[objectKey]*coordv1.Lease{}}
	for i := range stsList.Items {
		src.sts = append(src.sts, &stsList.Items[i])
	}
	for i := range podList.Items {
		p := &podList.Items[i]
		src.pods[objectKey{p.Namespace, p.Name}] = p
	}
	for i := range pvcList.Items {
		p := &pvcList.Items[i]
		src.pvcs[objectKey{p.Namespace, p.Name}] = p
	}
	for i := range leaseList.Items {
		l := &leaseList.Items[i]
		src.leases[objectKey{l.Namespace, l.Name}] = l
	}
	return assemble(ctx, src, opts, nil), nil
}

// objectKey is a namespaced object's name.
type objectKey struct{ ns, name string }

// objects is what a fleet is assembled from: Lists (Observe) or a
// Watch's informer caches. The objects are shared, never modified.
type objects interface {
	statefulSets() []*appsv1.StatefulSet
	pod(namespace, name string) *corev1.Pod
	pvc(namespace, name string) *corev1.PersistentVolumeClaim
	lease(namespace, name string) *coordv1.Lease
}

// listed is objects read with one List per kind.
type listed struct {
	sts    []*appsv1.StatefulSet
	pods   map[objectKey]*corev1.Pod
	pvcs   map[objectKey]*corev1.PersistentVolumeClaim
	leases map[objectKey]*coordv1.Lease
}

func (l listed) statefulSets() []*appsv1.StatefulSet { return l.sts }
func (l listed) pod(ns, name string) *corev1.Pod     { return l.pods[objectKey{ns, name}] }
func (l listed) pvc(ns, name string) *corev1.PersistentVolumeClaim {
	return l.pvcs[objectKey{ns, name}]
}
func (l listed) lease(ns, name string) *coordv1.Lease { return l.leases[objectKey{ns, name}] }

// assemble builds the fleet from src: every managed cluster for which
// want is true (nil: all), each instance's /status read in parallel.
func assemble(ctx context.Context, src objects, opts Options, want func(cluster.Key) bool) *Fleet {
	if opts.StatusTimeout <= 0 {
		opts.StatusTimeout = 2 * time.Second
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 32
	}
	f := &Fleet{}
	type job struct {
		c, i int
		pod  *corev1.Pod
	}
	var jobs []job
	for _, sts := range src.statefulSets() {
		if want != nil && !want(cluster.Key{Namespace: sts.Namespace, Name: sts.Name}) {
			continue
		}
		spec, ok, err := kube.ReadAppliedSpec(sts)
		if !ok || err != nil {
			why := "no " + pc.AnnAppliedSpec + " annotation"
			if err != nil {
				why = err.Error()
			}
			f.Skipped = append(f.Skipped, fmt.Sprintf("StatefulSet %s/%s: %s", sts.Namespace, sts.Name, why))
			continue
		}
		names := kube.NamesOf(spec)
		c := Cluster{StatefulSet: sts, Commit: sts.Annotations[pc.AnnAppliedCommit],
			Observed: plan.ObservedCluster{Spec: spec, ApprovedRevision: sts.Annotations[pc.AnnApprovedRevision]}}
		if l := src.lease(sts.Namespace, names.Lease()); l != nil {
			c.Lease = l
			if l.Spec.HolderIdentity != nil {
				c.LeaseHolder = *l.Spec.HolderIdentity
			}
			c.TargetPrimary, c.FinalLSN = l.Annotations[pc.AnnTargetPrimary], l.Annotations[pc.AnnFinalLSN]
		}
		replicas := 0
		if sts.Spec.Replicas != nil {
			replicas = int(*sts.Spec.Replicas)
		}
		for ordinal := 0; ; ordinal++ {
			p := src.pod(sts.Namespace, names.Instance(ordinal))
			if p == nil && ordinal >= replicas {
				break
			}
			in := instanceOf(names, ordinal, p, src.pvc(sts.Namespace, names.PVC(ordinal)))
			if wal := src.pvc(sts.Namespace, names.WALPVC(ordinal)); wal != nil {
				if q, ok := wal.Status.Capacity[corev1.ResourceStorage]; ok {
					in.WALCapacity = cluster.Quantity(q.String())
				}
			}
			c.Instances = append(c.Instances, in)
			if p != nil && opts.Status != nil {
				jobs = append(jobs, job{len(f.Clusters), len(c.Instances) - 1, p})
			}
		}
		f.Clusters = append(f.Clusters, c)
	}

	// Statuses, in parallel, each bounded by its own timeout.
	var wg sync.WaitGroup
	sem := make(chan struct{}, opts.Parallel)
	for _, j := range jobs {
		in := &f.Clusters[j.c].Instances[j.i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			sctx, cancel := context.WithTimeout(ctx, opts.StatusTimeout)
			defer cancel()
			st, err := opts.Status.Status(sctx, j.pod)
			if err != nil {
				in.StatusError = err.Error()
				return
			}
			in.Status = &st
		}()
	}
	wg.Wait()

	for i := range f.Clusters {
		finish(&f.Clusters[i])
	}
	sort.Slice(f.Clusters, func(i, j int) bool { return f.Clusters[i].Key().Less(f.Clusters[j].Key()) })
	return f
}

// Observed is the planner's input: every cluster's view.
func (f *Fleet) Observed() plan.Observed {
	var o plan.Observed
	for _, c := range f.Clusters {
		o.Clusters = append(o.Clusters, c.Observed)
	}
	return o
}

func inNamespace(ns string) string {
	if ns == "" {
		return " in all namespaces"
	}
	return " in namespace " + ns
}

// instanceOf reads what the pod and its claim say; the status comes later.
func instanceOf(names pc.Names, ordinal int, p *corev1.Pod, pvc *corev1.PersistentVolumeClaim) Instance {
	in := Instance{Name: names.Instance(ordinal), Ordinal: ordinal}
	if pvc != nil {
		if q, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok {
			in.Capacity = cluster.Quantity(q.String())
		}
		if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			in.Requested = cluster.Quantity(q.String())
			if c, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok && q.Cmp(c) > 0 {
				in.ResizePending = true
			}
		}
	}
	if p == nil {
		in.NotReady = "pod missing"
		return in
	}
	in.PodExists = true
	in.Terminating = p.DeletionTimestamp != nil
	in.Phase = p.Status.Phase
	in.Revision = p.Annotations[pc.AnnRevision]
	in.Created = p.CreationTimestamp.Time
	for _, c := range p.Spec.Containers {
		if c.Name == pc.ContainerPostgres {
			in.Image = c.Image
			in.NoTLS = !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == pc.EnvCADir })
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == pc.ContainerPostgres {
			in.Restarts = cs.RestartCount
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			in.PodReady = cond.Status == corev1.ConditionTrue
		}
	}
	return in
}

// syncListed is the set of the cluster's instances the primary's newest
// published synchronous standby set (pgsync.io/synchronous-sets on the
// Lease, the last one) lists, when commits wait for any; empty when
// replication is asynchronous, the annotation is missing or unreadable,
// or the set names none of the cluster's instances (only
// standbyNamesPre/Post): then no switchover target is restricted.
func syncListed(c *Cluster) map[string]bool {
	if c.Lease == nil || (c.Observed.Spec != nil && !c.Observed.Spec.Spec.SynchronousOn()) {
		return nil
	}
	v, ok := c.Lease.Annotations[pc.AnnSyncSets]
	if !ok {
		return nil
	}
	sets, err := pc.ParseSyncSets(v)
	if err != nil || len(sets) == 0 || sets[len(sets)-1].Number <= 0 {
		return nil
	}
	instances := map[string]bool{}
	for _, in := range c.Instances {
		instances[in.Name] = true
	}
	listed := map[string]bool{}
	for _, n := range sets[len(sets)-1].Standbys {
		if instances[n] {
			listed[n] = true
		}
	}
	return listed
}

// finish derives the planner's view once every status is in: readiness,
// the primary, lag against the primary.
func finish(c *Cluster) {
	names := kube.NamesOf(c.Observed.Spec)
	c.Observed.Primary = primaryOrdinal(c, names)
	var primaryLSN pc.LSN
	primaryKnown := false
	for _, in := range c.Instances {
		if in.Ordinal == c.Observed.Primary && in.Status != nil && in.Status.CurrentLSN != "" {
			lsn, err := pc.ParseLSN(in.Status.CurrentLSN)
			primaryLSN, primaryKnown = lsn, err == nil
		}
	}
	listed := syncListed(c)
	c.Observed.SyncRestricted = len(listed) > 0
	for i := range c.Instances {
		in := &c.Instances[i]
		switch {
		case !in.PodExists:
		case in.Terminating:
			in.NotReady = "pod is being deleted"
		case !in.PodReady:
			in.NotReady = fmt.Sprintf("pod is not Ready (phase %s)", in.Phase)
		case in.Status == nil:
			in.NotReady = "status unreadable: " + in.StatusError
		case in.Status.Role != pc.StatusPrimary && in.Status.Role != pc.StatusStandby:
			in.NotReady = "instance is " + in.Status.Role
		default:
			in.Ready = true
		}
		if in.Status != nil && in.Ordinal != c.Observed.Primary {
			// Against the primary's LSN when both are known; a standby
			// read after the primary may have replayed past it (lag 0).
			// Otherwise the manager's own figure (received − replayed).
			in.LagBytes = in.Status.LagBytes
			if replay, err := pc.ParseLSN(in.Status.ReplayedLSN); err == nil && primaryKnown {
				in.LagBytes = 0
				if primaryLSN > replay {
					in.LagBytes = int64(primaryLSN - replay)
				}
			}
		}
		oi := plan.ObservedInstance{Ordinal: in.Ordinal, Image: in.Image, Revision: in.Revision,
			VolumeSize: in.Capacity, WALVolumeSize: in.WALCapacity, Ready: in.Ready, LagBytes: in.LagBytes,
			SyncListed: listed[in.Name], NoTLS: in.NoTLS}
		if in.Status != nil {
			oi.Config = in.Status.ConfigRevision
			oi.TLSProblem = in.Status.TLSProblem
			if ca := in.Status.CA; ca != nil {
				oi.CA = &plan.ObservedCA{Mounted: ca.Mounted, Newest: ca.Newest, RotationDue: ca.RotationDue}
			}
		}
		c.Observed.Instances = append(c.Observed.Instances, oi)
	}
	// Missing pods at the end are instances still to be created (the
	// planner creates ordinals densely); a missing pod in the middle is
	// an instance that is down (not ready, no revision: restarted first).
	for n := len(c.Instances); n > 0 && !c.Instances[n-1].PodExists; n-- {
		c.Observed.Instances = c.Observed.Instances[:n-1]
	}
}

// primaryOrdinal: the Lease holder; during a switchover (no holder) the
// target; with neither, ordinal 0 (a cluster being created).
func primaryOrdinal(c *Cluster, names pc.Names) int {
	for _, name := range []string{c.LeaseHolder, c.TargetPrimary} {
		if n, ok := names.Ordinal(name); ok {
			return n
		}
	}
	return 0
}
