package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
)

// DefaultStepTimeout is how long a step may take to complete before the
// cluster halts.
const DefaultStepTimeout = 5 * time.Minute

// ErrAwaitingApproval: the next step is the primary's, and
// primaryUpdateStrategy is supervised.
var ErrAwaitingApproval = errors.New("waiting for approval")

// HaltError: a step did not complete; the cluster is halted.
type HaltError struct {
	Step   plan.Step
	Reason string
}

func (e *HaltError) Error() string {
	what := string(e.Step.Action)
	if e.Step.Instance != "" {
		what += " " + e.Step.Instance
	}
	return fmt.Sprintf("halted at %s: %s", what, e.Reason)
}

// Executor carries out single steps against one API server.
type Executor struct {
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	Status  observe.StatusReader
	// InstanceImage is the pgsync image of the pods' init container; ""
	// keeps the live one (a new cluster needs it).
	InstanceImage string
	PullPolicy    corev1.PullPolicy
	Random        io.Reader
	Log           *slog.Logger
	// StepTimeout bounds each step (DefaultStepTimeout when zero); a
	// cluster's pgsync.io/step-timeout annotation overrides it.
	StepTimeout time.Duration
	// LockDuration is the apply Lease's duration (DefaultLockDuration when
	// zero; CheckLockDuration's bounds).
	LockDuration time.Duration
	// Poll is the interval of the waits (default 100 ms: each wait of a
	// rollout ends on average half a poll after its condition holds, and
	// a rollout waits about ten times).
	Poll time.Duration
	Now  func() time.Time

	mu sync.Mutex
	// readyAt is when a step of this executor last saw an instance of the
	// cluster become ready: its EndpointSlices changed just before
	// (waitEndpointsQuiet).
	readyAt map[cluster.Key]time.Time
}

func (e *Executor) sawReady(k cluster.Key) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.readyAt == nil {
		e.readyAt = map[cluster.Key]time.Time{}
	}
	e.readyAt[k] = e.now()
}

func (e *Executor) lastReady(k cluster.Key) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.readyAt[k]
}

// Target is what a step acts on: the desired cluster (nil for a cluster
// removed from Git), what runs (nil for a new one) and the commit.
type Target struct {
	Desired *cluster.Cluster
	Live    *observe.Cluster
	Commit  string
}

func (t Target) key() cluster.Key {
	if t.Desired != nil {
		return t.Desired.Key()
	}
	return t.Live.Key()
}

func (t Target) spec() *cluster.Cluster {
	if t.Desired != nil {
		return t.Desired
	}
	return t.Live.Observed.Spec
}

// Step carries out s and waits until it is complete.
func (e *Executor) Step(ctx context.Context, t Target, s plan.Step) error {
	timeout := e.timeout(t)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	switch s.Action {
	case plan.StepUpdateObjects:
		err = e.updateObjects(ctx, t)
	case plan.StepCreateInstance:
		err = e.createInstance(ctx, t, s)
	case plan.StepRestartInstance:
		err = e.restartInstance(ctx, t, s)
	case plan.StepSwitchover:
		err = e.switchover(ctx, t, s)
	case plan.StepReloadConfig:
		err = e.reload(ctx, t)
	case plan.StepResizeVolume, plan.StepResizeWALVolume:
		err = e.resize(ctx, t, s)
	case plan.StepRemoveInstance:
		err = e.removeInstance(ctx, t, s)
	case plan.StepDeleteCluster:
		err = e.deleteCluster(ctx, t)
	case plan.StepRotateCA:
		err = e.rotateCA(ctx, t, s)
	case plan.StepAwaitApproval:
		return ErrAwaitingApproval
	default:
		return fmt.Errorf("step %s: not a step apply knows", s.Action)
	}
	var w *waitError
	if errors.As(err, &w) {
		return &HaltError{Step: s, Reason: fmt.Sprintf("not complete after %s: %s", timeout, w.last)}
	}
	return err
}

func (e *Executor) timeout(t Target) time.Duration {
	d := e.StepTimeout
	if d <= 0 {
		d = DefaultStepTimeout
	}
	var ann map[string]string
	if t.Desired != nil {
		ann = t.Desired.Metadata.Annotations
	}
	if v, ok := ann[pc.AnnStepTimeout]; ok {
		if parsed, err := time.ParseDuration(v); err == nil && parsed > 0 {
			d = parsed
		}
	}
	if t.Live != nil {
		if v, ok := t.Live.StatefulSet.Annotations[pc.AnnStepTimeout]; ok {
			if parsed, err := time.ParseDuration(v); err == nil && parsed > 0 {
				d = parsed
			}
		}
	}
	return d
}

// render renders the desired spec with what must be kept from what runs:
// the instance image, the Lease's target (unless target is set) and the
// number of instances that exist (unless replicas is set).
func (e *Executor) render(t Target, target string, replicas *int32) (*kube.Objects, error) {
	spec := t.spec()
	opts := kube.Options{InstanceImage: e.InstanceImage, InstanceImagePullPolicy: e.PullPolicy, Commit: t.Commit}
	if t.Live != nil {
		live := t.Live.RenderOptions(e.InstanceImage)
		opts.InstanceImage = live.InstanceImage
		if e.PullPolicy == "" {
			opts.InstanceImagePullPolicy = live.InstanceImagePullPolicy
		}
		opts.TargetPrimary = live.TargetPrimary
		if replicas == nil && t.Live.StatefulSet.Spec.Replicas != nil {
			replicas = t.Live.StatefulSet.Spec.Replicas
		}
		if t.Commit == "" {
			opts.Commit = t.Live.Commit
		}
	} else {
		opts.TargetPrimary = kube.NamesOf(spec).Instance(0)
	}
	if target != "" {
		opts.TargetPrimary = target
	}
	if replicas == nil {
		zero := int32(0) // a new cluster: instances come one per step
		replicas = &zero
	}
	opts.Replicas = replicas
	if opts.InstanceImage == "" {
		return nil, fmt.Errorf("%s: no pgsync instance image (--instance-image)", spec.Key())
	}
	return kube.Render(spec, opts)
}

// applyAll applies every object; a StatefulSet whose volume claim
// template changed (immutable) is re-created without deleting its pods.
func (e *Executor) applyAll(ctx context.Context, t Target, objs *kube.Objects) error {
	return e.applyObjects(ctx, t, objs, false)
}

// applyObjects applies every object in apply order, or with the Lease
// last (leaseLast: a switchover).
func (e *Executor) applyObjects(ctx context.Context, t Target, objs *kube.Objects, leaseLast bool) error {
	if t.Live == nil {
		if err := e.notTakenOver(ctx, objs); err != nil {
			return err
		}
	}
	list := objs.List()
	if leaseLast {
		// A switchover: everything else first, then the Lease's new target
		// alone, so no apply of pgsync's competes with the managers' hand-
		// over on the API server (applying the PDBs and the StatefulSet
		// after the target made the write pause 2.7× a hand-driven one).
		list = list[:0:0]
		for _, obj := range objs.List() {
			if obj != runtime.Object(objs.Lease) {
				list = append(list, obj)
			}
		}
		list = append(list, objs.Lease)
	}
	if err := e.podMonitorNotTakenOver(ctx, t, objs); err != nil {
		return err
	}
	for _, obj := range list {
		if err := e.podMonitorBefore(ctx, t, objs, obj); err != nil {
			return err
		}
		if obj == runtime.Object(objs.StatefulSet) {
			// The Secrets after the ConfigMap, which records the ones pgsync
			// creates, and before the pods that mount them.
			if _, err := kube.EnsureSecrets(ctx, e.Client, t.spec(), e.Random, kube.SecretPolicy{Established: t.Live != nil && t.Live.StatefulSet != nil}); err != nil {
				return err
			}
		}
		if s, ok := obj.(*corev1.Service); ok && kube.ReplaceOnChange(t.spec(), s.Name) {
			if err := e.replaceService(ctx, s); err != nil {
				return err
			}
		}
		_, err := kube.Apply(ctx, e.Dynamic, obj, kube.ApplyOptions{Force: true})
		if err != nil && apierrors.IsInvalid(err) {
			switch o := obj.(type) {
			case *appsv1.StatefulSet:
				err = e.recreateStatefulSet(ctx, t, objs)
			case *corev1.Service:
				err = e.retakePorts(ctx, o)
			}
		}
		if err != nil {
			return err
		}
	}
	if leaseLast {
		// Nothing more after the Lease's new target during a hand-over;
		// the objects step that applied the spec pruned already.
		return nil
	}
	return e.pruneServices(ctx, t.spec())
}

// notTakenOver refuses to create a cluster over a StatefulSet of the same
// name that pgsync does not manage — an orphaned cluster put back in Git,
// or someone else's: applying a new cluster's objects (replicas 0, the
// instances come one per step) would scale its pods away.
func (e *Executor) notTakenOver(ctx context.Context, objs *kube.Objects) error {
	want := objs.StatefulSet
	sts, err := e.Client.AppsV1().StatefulSets(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("StatefulSet %s/%s: %w", want.Namespace, want.Name, err)
	}
	why := "it is not labelled " + pc.LabelManagedBy + "=" + pc.ManagedBy + " (orphaned by pgsync, or someone else's)"
	if sts.Labels[pc.LabelManagedBy] == pc.ManagedBy {
		if _, ok, err := kube.ReadAppliedSpec(sts); ok && err == nil {
			return nil // pgsync's own, applied before: the caller did not observe it
		}
		why = "its " + pc.AnnAppliedSpec + " annotation is missing or unreadable"
	}
	return fmt.Errorf("refused to create cluster %s/%s: a StatefulSet of that name exists and pgsync does not manage it: %s; to have pgsync manage an orphaned cluster again: kubectl -n %s label statefulset %s %s=%s",
		want.Namespace, want.Name, why, want.Namespace, want.Name, pc.LabelManagedBy, pc.ManagedBy)
}

// retakePorts puts back a Service's ports that someone edited by hand. An
// edited port is a list item its editor owns, so a forced apply merges
// pgsync's beside it — two ports named "postgres", which the server
// refuses. The ports are replaced with an update (the other fields as they
// are), then applied again so pgsync owns them.
func (e *Executor) retakePorts(ctx context.Context, want *corev1.Service) error {
	svcs := e.Client.CoreV1().Services(want.Namespace)
	live, err := svcs.Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("Service %s/%s: %w", want.Namespace, want.Name, err)
	}
	live.Spec.Ports = want.Spec.Ports
	if _, err := svcs.Update(ctx, live, metav1.UpdateOptions{FieldManager: pc.FieldManager}); err != nil {
		return fmt.Errorf("Service %s/%s: put back its ports: %w", want.Namespace, want.Name, err)
	}
	_, err = kube.Apply(ctx, e.Dynamic, want, kube.ApplyOptions{Force: true})
	return err
}

// recreateStatefulSet deletes the StatefulSet orphaning its pods and
// claims, then applies it again: the new object adopts them.
func (e *Executor) recreateStatefulSet(ctx context.Context, t Target, objs *kube.Objects) error {
	spec := t.spec()
	sts := e.Client.AppsV1().StatefulSets(spec.Metadata.Namespace)
	orphan := metav1.DeletePropagationOrphan
	if err := sts.Delete(ctx, objs.StatefulSet.Name, metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("re-create StatefulSet %s: %w", spec.Key(), err)
	}
	if err := e.wait(ctx, "the old StatefulSet is gone", func(ctx context.Context) (bool, string, error) {
		_, err := sts.Get(ctx, objs.StatefulSet.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, "StatefulSet still exists", err
	}); err != nil {
		return err
	}
	_, err := kube.Apply(ctx, e.Dynamic, objs.StatefulSet, kube.ApplyOptions{Force: true})
	return err
}

func (e *Executor) updateObjects(ctx context.Context, t Target) error {
	objs, err := e.render(t, "", nil)
	if err != nil {
		return err
	}
	if err := e.applyAll(ctx, t, objs); err != nil {
		return err
	}
	// The halt marker belongs to the spec that halted; a new spec clears it.
	return e.clearHalted(ctx, t)
}

func (e *Executor) createInstance(ctx context.Context, t Target, s plan.Step) error {
	replicas := int32(s.Ordinal + 1)
	objs, err := e.render(t, "", &replicas)
	if err != nil {
		return err
	}
	if err := e.applyAll(ctx, t, objs); err != nil {
		return err
	}
	return e.waitInstance(ctx, t, s.Ordinal, s.Role, "")
}

func (e *Executor) restartInstance(ctx context.Context, t Target, s plan.Step) error {
	names := kube.NamesOf(t.spec())
	pods := e.Client.CoreV1().Pods(t.spec().Metadata.Namespace)
	name := names.Instance(s.Ordinal)
	old, err := pods.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// Already gone (deleted by a run that was killed): wait for its
		// replacement.
	case err != nil:
		return fmt.Errorf("get pod %s: %w", name, err)
	default:
		if old.DeletionTimestamp == nil {
			if err := pods.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &old.UID}}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete pod %s: %w", name, err)
			}
		}
	}
	var oldUID types.UID
	if old != nil {
		oldUID = old.UID
	}
	return e.waitInstance(ctx, t, s.Ordinal, s.Role, oldUID)
}

func (e *Executor) removeInstance(ctx context.Context, t Target, s plan.Step) error {
	replicas := int32(s.Ordinal)
	objs, err := e.render(t, "", &replicas)
	if err != nil {
		return err
	}
	if err := e.applyAll(ctx, t, objs); err != nil {
		return err
	}
	pods := e.Client.CoreV1().Pods(t.spec().Metadata.Namespace)
	name := kube.NamesOf(t.spec()).Instance(s.Ordinal)
	return e.wait(ctx, "pod "+name+" is gone", func(ctx context.Context) (bool, string, error) {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, "pod " + name + " still exists", err
	})
}

func (e *Executor) reload(ctx context.Context, t Target) error {
	// The parameters ConfigMap was applied by update-objects (and is again
	// here); the pod of every instance still on another configuration is
	// annotated so that its kubelet brings it in at once (podToucher), and
	// the manager reloads within a second (docs/apply.md).
	spec := t.spec()
	want := revision.Config(spec)
	objs, err := e.render(t, "", nil)
	if err != nil {
		return err
	}
	if err := e.applyAll(ctx, t, objs); err != nil {
		return err
	}
	toucher := newPodToucher(e.Client, spec.Metadata.Namespace, e.now)
	return e.wait(ctx, "every instance loaded config "+want, func(ctx context.Context) (bool, string, error) {
		live, err := e.observeOne(ctx, t)
		if err != nil {
			return false, err.Error(), nil
		}
		behind := ""
		for _, in := range live.Instances {
			// Instances that are not ready load the configuration when
			// they start; the planner reloads only the ready ones.
			if in.Ordinal >= spec.Spec.Instances || !in.Ready {
				continue
			}
			if in.Status != nil && in.Status.ConfigRevision == want {
				continue
			}
			got := "unknown"
			if in.Status != nil {
				got = in.Status.ConfigRevision
			}
			if behind != "" {
				behind += "; "
			}
			behind += fmt.Sprintf("%s has loaded config %s, want %s", in.Name, got, want)
			note, err := toucher.touch(ctx, "reload-config", in.Name, want)
			if err != nil {
				return false, "", err
			}
			behind += note
		}
		return behind == "", behind, nil
	})
}

func (e *Executor) resize(ctx context.Context, t Target, s plan.Step) error {
	spec := t.spec()
	storage, name := &spec.Spec.Storage, kube.NamesOf(spec).PVC(s.Ordinal)
	if s.Action == plan.StepResizeWALVolume {
		if spec.Spec.WALStorage == nil {
			return fmt.Errorf("resize the WAL volume of %s: the cluster has no spec.walStorage", s.Instance)
		}
		storage, name = spec.Spec.WALStorage, kube.NamesOf(spec).WALPVC(s.Ordinal)
	}
	size, err := storage.Size.Parse()
	if err != nil {
		return err
	}
	claims := e.Client.CoreV1().PersistentVolumeClaims(spec.Metadata.Namespace)
	patch := fmt.Sprintf(`{"spec":{"resources":{"requests":{"storage":%q}}}}`, size.String())
	if _, err := claims.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: patchManager}); err != nil {
		return fmt.Errorf("resize PersistentVolumeClaim %s/%s: %w", spec.Metadata.Namespace, name, err)
	}
	if !*storage.ResizeInUseVolumes {
		// Offline resize: the instance restarts, and its claim grows
		// while no pod mounts it.
		if err := e.restartInstance(ctx, t, s); err != nil {
			return err
		}
	}
	return e.wait(ctx, "volume "+name+" has "+size.String(), func(ctx context.Context) (bool, string, error) {
		pvc, err := claims.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		got := pvc.Status.Capacity[corev1.ResourceStorage]
		if got.Cmp(size) >= 0 {
			return true, "", nil
		}
		why := fmt.Sprintf("capacity %s, want %s", got.String(), size.String())
		for _, c := range pvc.Status.Conditions {
			if c.Status == corev1.ConditionTrue {
				why += fmt.Sprintf("; %s: %s", c.Type, c.Message)
			}
		}
		return false, why, nil
	})
}

func (e *Executor) deleteCluster(ctx context.Context, t Target) error {
	spec := t.spec()
	ns, n := spec.Metadata.Namespace, kube.NamesOf(spec)
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	ignore := func(err error) error {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	cs := e.Client
	// Workloads first, so no pod restarts against half-deleted objects;
	// never a PersistentVolumeClaim or a Secret (DESIGN.md §7.7).
	steps := []struct {
		what string
		del  func() error
	}{
		{"StatefulSet", func() error { return cs.AppsV1().StatefulSets(ns).Delete(ctx, n.StatefulSet(), opts) }},
		{"PodDisruptionBudget " + n.PrimaryPDB(), func() error { return cs.PolicyV1().PodDisruptionBudgets(ns).Delete(ctx, n.PrimaryPDB(), opts) }},
		{"PodDisruptionBudget " + n.StandbyPDB(), func() error { return cs.PolicyV1().PodDisruptionBudgets(ns).Delete(ctx, n.StandbyPDB(), opts) }},
		{"NetworkPolicy " + n.NetworkPolicy(), func() error {
			return cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, n.NetworkPolicy(), opts)
		}},
		{"Service " + n.RW(), func() error { return cs.CoreV1().Services(ns).Delete(ctx, n.RW(), opts) }},
		{"EndpointSlice " + n.RW(), func() error { return cs.DiscoveryV1().EndpointSlices(ns).Delete(ctx, n.RW(), opts) }},
		{"Service " + n.RO(), func() error { return cs.CoreV1().Services(ns).Delete(ctx, n.RO(), opts) }},
		{"Service " + n.R(), func() error { return cs.CoreV1().Services(ns).Delete(ctx, n.R(), opts) }},
		{"Service " + n.Headless(), func() error { return cs.CoreV1().Services(ns).Delete(ctx, n.Headless(), opts) }},
		{"Lease " + n.Lease(), func() error { return cs.CoordinationV1().Leases(ns).Delete(ctx, n.Lease(), opts) }},
		{"ConfigMap " + n.Params(), func() error { return cs.CoreV1().ConfigMaps(ns).Delete(ctx, n.Params(), opts) }},
		{"RoleBinding", func() error { return cs.RbacV1().RoleBindings(ns).Delete(ctx, n.StatefulSet(), opts) }},
		{"Role", func() error { return cs.RbacV1().Roles(ns).Delete(ctx, n.StatefulSet(), opts) }},
		{"ServiceAccount", func() error { return cs.CoreV1().ServiceAccounts(ns).Delete(ctx, n.ServiceAccount(), opts) }},
	}
	if spec.Spec.PodMonitorOn() {
		if err := e.deletePodMonitor(ctx, spec); err != nil {
			return fmt.Errorf("delete PodMonitor of %s: %w", spec.Key(), err)
		}
	}
	for _, s := range steps {
		if err := ignore(s.del()); err != nil {
			return fmt.Errorf("delete %s of %s: %w", s.what, spec.Key(), err)
		}
	}
	// The additional Services (spec.managed.services), and any other
	// Service labelled as the cluster's.
	return e.deleteServices(ctx, spec, func(string) bool { return true })
}

// Orphan stops managing a cluster removed from Git: its objects lose the
// managed-by label, so no later run finds or changes them; everything
// keeps running.
func (e *Executor) Orphan(ctx context.Context, live *observe.Cluster) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, pc.LabelManagedBy)
	sts := live.StatefulSet
	if _, err := e.Client.AppsV1().StatefulSets(sts.Namespace).Patch(ctx, sts.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("orphan %s: %w", live.Key(), err)
	}
	return nil
}
