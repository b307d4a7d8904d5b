// Package lease is the instance manager's Kubernetes side: it watches the
// cluster's `NAME-primary` Lease (an informer on that one object, never a
// poll), changes it with optimistic concurrency (renew, release with the
// final LSN, acquire), and routes `NAME-rw` by rewriting its fixed-name
// EndpointSlice and the pods' role labels, and records the manager's
// Events on its own pod. Typed client-go clients only;
// nothing here reads a Secret.
//
// It must not import `github.com/jackc/pgx/...`, `internal/plan`,
// `internal/apply` or `internal/gitsource`.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/pgsync/pgsync/internal/instance/role"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// ErrNotHolder is returned when an operation needs a holder it is not.
var ErrNotHolder = errors.New("the primary Lease is held by someone else")

// Kube talks to the API server for one cluster.
type Kube struct {
	client    kubernetes.Interface
	namespace string
	cluster   string
	duration  time.Duration
	log       *slog.Logger
	now       func() time.Time

	informer cache.SharedIndexInformer
	notify   chan struct{}

	mu     sync.Mutex
	latest *coordv1.Lease // newest copy we wrote or saw
	// seen tracks when this process saw the holder's latest renewal
	// (the failover clock, role.Elect): holder and renewTime as last
	// seen, and the local time they last changed.
	seenHolder string
	seenRenew  time.Time
	seenAt     time.Time
	// tls: this instance's server has TLS on; Publish says so.
	tls bool
}

// SetTLS says whether this instance's server has TLS on (before the loop
// starts): Publish then names it in pc.AnnPrimaryTLS.
func (k *Kube) SetTLS(on bool) { k.tls = on }

// New returns a Kube for cluster ns/name; the Lease is `name-primary`.
func New(client kubernetes.Interface, namespace, cluster string, duration time.Duration, now func() time.Time, log *slog.Logger) *Kube {
	k := &Kube{client: client, namespace: namespace, cluster: cluster, duration: duration, log: log, now: now,
		notify: make(chan struct{}, 1)}
	name := k.LeaseName()
	leases := client.CoordinationV1().Leases(namespace)
	sel := "metadata.name=" + name
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return leases.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return leases.Watch(ctx, o)
		},
	}
	k.informer = cache.NewSharedIndexInformer(lw, &coordv1.Lease{}, 0, cache.Indexers{})
	seen := func(obj any) {
		if l, ok := obj.(*coordv1.Lease); ok {
			k.saw(l)
		}
		k.poke()
	}
	_, _ = k.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    seen,
		UpdateFunc: func(_, n any) { seen(n) },
		DeleteFunc: func(any) { k.poke() },
	})
	return k
}

// saw records l as seen now: a change of holder or renewTime restarts the
// failover clock.
func (k *Kube) saw(l *coordv1.Lease) {
	h := holder(l)
	var r time.Time
	if l.Spec.RenewTime != nil {
		r = l.Spec.RenewTime.Time
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seenAt.IsZero() || h != k.seenHolder || !r.Equal(k.seenRenew) {
		k.seenHolder, k.seenRenew, k.seenAt = h, r, k.now()
	}
}

// Seen returns the holder, the renewTime it last wrote and when this
// process saw that renewal (its own clock; at the earliest, when the watch
// first listed the Lease): the basis of the failover clock. duration is
// the Lease's leaseDurationSeconds (0 when unset).
func (k *Kube) Seen() (holder string, renewTime, seenAt time.Time, duration time.Duration) {
	_, d := k.RenewTime()
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.seenHolder, k.seenRenew, k.seenAt, d
}

// LeaseName is `cluster-primary`.
func (k *Kube) LeaseName() string { return pc.Names{Cluster: k.cluster}.Lease() }

func (k *Kube) poke() {
	select {
	case k.notify <- struct{}{}:
	default:
	}
}

// Run runs the watch until ctx ends.
func (k *Kube) Run(ctx context.Context) { k.informer.RunWithContext(ctx) }

// WaitSynced blocks until the first list arrived.
func (k *Kube) WaitSynced(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), k.informer.HasSynced)
}

// Changed is signalled (coalesced) on every watch event.
func (k *Kube) Changed() <-chan struct{} { return k.notify }

// get returns the newest known copy: the informer's, or our own write if
// the watch has not delivered it yet.
func (k *Kube) get() *coordv1.Lease {
	var cached *coordv1.Lease
	if obj, ok, _ := k.informer.GetStore().GetByKey(k.namespace + "/" + k.LeaseName()); ok {
		cached = obj.(*coordv1.Lease)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if cached == nil {
		if k.informer.HasSynced() {
			k.latest = nil
		}
		return k.latest
	}
	if k.latest != nil && newer(k.latest.ResourceVersion, cached.ResourceVersion) {
		return k.latest
	}
	k.latest = nil
	return cached
}

func newer(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}

// Current returns the Lease as the role decision sees it.
func (k *Kube) Current() role.Lease { return View(k.get()) }

// View converts a Lease object (nil = missing).
func View(l *coordv1.Lease) role.Lease {
	if l == nil {
		return role.Lease{}
	}
	v := role.Lease{Exists: true}
	if l.Spec.HolderIdentity != nil {
		v.Holder = *l.Spec.HolderIdentity
	}
	a := l.Annotations
	v.Target = a[pc.AnnTargetPrimary]
	v.ReleasedBy = a[pc.AnnReleasedBy]
	v.PrimaryAddress = a[pc.AnnPrimaryAddress]
	v.PrimaryTLS = v.Holder != "" && a[pc.AnnPrimaryTLS] == v.Holder
	v.Initialized = a[pc.AnnSystemID] != ""
	v.Abdicated = a[pc.AnnAbdicated] != ""
	if s, ok := a[pc.AnnFinalLSN]; ok {
		if lsn, err := role.ParseLSN(s); err == nil {
			v.FinalLSN, v.HasFinalLSN = lsn, true
		}
	}
	if s, ok := a[pc.AnnSyncSets]; ok {
		sets, err := pc.ParseSyncSets(s)
		v.SyncSets, v.HasSyncSets, v.SyncSetsInvalid = sets, true, err != nil
	}
	return v
}

// RenewTime returns the Lease's renewTime and duration as stored.
func (k *Kube) RenewTime() (time.Time, time.Duration) {
	l := k.get()
	if l == nil || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return time.Time{}, 0
	}
	return l.Spec.RenewTime.Time, time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
}

// update applies mutate to the newest copy and writes it, re-reading once
// per conflict. mutate returns an error to refuse (precondition failed).
func (k *Kube) update(ctx context.Context, what string, mutate func(*coordv1.Lease) error) error {
	cur := k.get()
	for attempt := 0; ; attempt++ {
		if cur == nil {
			var err error
			cur, err = k.client.CoordinationV1().Leases(k.namespace).Get(ctx, k.LeaseName(), metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("%s: get lease: %w", what, err)
			}
		}
		l := cur.DeepCopy()
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		if err := mutate(l); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		out, err := k.client.CoordinationV1().Leases(k.namespace).Update(ctx, l, metav1.UpdateOptions{FieldManager: pc.InstanceFieldManager})
		if err == nil {
			k.mu.Lock()
			k.latest = out
			k.mu.Unlock()
			k.saw(out)
			k.poke()
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= 4 {
			return fmt.Errorf("%s: update lease: %w", what, err)
		}
		cur = nil
	}
}

func holder(l *coordv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// Renew extends self's hold. It returns the time the renewal was sent: the
// Lease now runs until that time plus the duration, as others see it.
// lsn, when not zero, is the primary's current WAL position, published as
// pgsync.io/primary-lsn: after a failover, what the new primary lacks of it
// is a lower bound of what was lost.
func (k *Kube) Renew(ctx context.Context, self string, lsn role.LSN) (time.Time, error) {
	sent := k.now()
	err := k.update(ctx, "renew", func(l *coordv1.Lease) error {
		if holder(l) != self {
			return ErrNotHolder
		}
		if lsn != 0 {
			l.Annotations[pc.AnnPrimaryLSN] = lsn.String()
		}
		sent = k.now()
		t := metav1.NewMicroTime(sent)
		l.Spec.RenewTime = &t
		l.Spec.LeaseDurationSeconds = ptr(int32(k.duration / time.Second))
		return nil
	})
	return sent, err
}

// Acquire makes self the holder. Allowed only when the Lease is free (or
// already ours) and self is the target; systemID (the database system
// identifier) is recorded once and must match afterwards. The address is
// cleared: standbys follow only once Publish says the new primary is
// promoted and serving.
func (k *Kube) Acquire(ctx context.Context, self, systemID string) (time.Time, error) {
	sent := k.now()
	err := k.update(ctx, "acquire", func(l *coordv1.Lease) error {
		h := holder(l)
		if h != "" && h != self {
			return fmt.Errorf("%w (%s)", ErrNotHolder, h)
		}
		if t := l.Annotations[pc.AnnTargetPrimary]; t != self {
			return fmt.Errorf("target is %q, not %q", t, self)
		}
		if id := l.Annotations[pc.AnnSystemID]; id != "" && systemID != "" && id != systemID {
			return fmt.Errorf("database system identifier %s differs from the cluster's %s", systemID, id)
		}
		sent = k.now()
		t := metav1.NewMicroTime(sent)
		if h != self {
			l.Spec.AcquireTime = &t
			n := int32(1)
			if l.Spec.LeaseTransitions != nil {
				n = *l.Spec.LeaseTransitions + 1
			}
			l.Spec.LeaseTransitions = &n
			delete(l.Annotations, pc.AnnPrimaryAddress)
		}
		l.Spec.HolderIdentity = ptr(self)
		l.Spec.RenewTime = &t
		l.Spec.LeaseDurationSeconds = ptr(int32(k.duration / time.Second))
		if systemID != "" && l.Annotations[pc.AnnSystemID] == "" {
			l.Annotations[pc.AnnSystemID] = systemID
		}
		delete(l.Annotations, pc.AnnFinalLSN)
		delete(l.Annotations, pc.AnnReleasedBy)
		delete(l.Annotations, pc.AnnAbdicated)
		// The sets were the previous holder's: this one's first set
		// starts unsettled (PublishSyncSets).
		delete(l.Annotations, pc.AnnSyncSets)
		return nil
	})
	return sent, err
}

// TakeOver makes self the holder of a Lease whose holder from stopped
// renewing at renewTime (failover, role.Elect); from "" takes over a Lease
// released for a switchover whose target never took it. The write carries the
// resourceVersion of the copy judged expired, and on a conflict the
// re-read copy must still show from's renewal at renewTime: a holder that
// renewed meanwhile, or another standby that took over first, makes it
// fail, so exactly one taker wins. The target moves to self (the cluster's
// primary is now here), and the failover record (pgsync.io/last-failover)
// says from where, when, and the old primary's last published LSN.
func (k *Kube) TakeOver(ctx context.Context, self, from string, renewTime time.Time, rec pc.Failover) (time.Time, pc.Failover, error) {
	sent := k.now()
	err := k.update(ctx, "take over", func(l *coordv1.Lease) error {
		if h := holder(l); h != from {
			return fmt.Errorf("%w (%s, not %s, holds it now)", ErrNotHolder, h, from)
		}
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.Equal(renewTime) {
			return fmt.Errorf("%s renewed the Lease meanwhile", from)
		}
		sent = k.now()
		t := metav1.NewMicroTime(sent)
		l.Spec.AcquireTime = &t
		n := int32(1)
		if l.Spec.LeaseTransitions != nil {
			n = *l.Spec.LeaseTransitions + 1
		}
		l.Spec.LeaseTransitions = &n
		l.Spec.HolderIdentity = ptr(self)
		l.Spec.RenewTime = &t
		l.Spec.LeaseDurationSeconds = ptr(int32(k.duration / time.Second))
		rec.From, rec.To, rec.At = from, self, sent.UTC()
		if s, ok := l.Annotations[pc.AnnPrimaryLSN]; ok {
			rec.FromLSN = s
		}
		if from == "" {
			// Released for a switchover whose target never took it: the
			// released primary's final LSN is where it stopped.
			rec.From = l.Annotations[pc.AnnReleasedBy]
			if s, ok := l.Annotations[pc.AnnFinalLSN]; ok {
				rec.FromLSN = s
			}
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		l.Annotations[pc.AnnLastFailover] = string(b)
		l.Annotations[pc.AnnTargetPrimary] = self
		delete(l.Annotations, pc.AnnPrimaryAddress)
		delete(l.Annotations, pc.AnnFinalLSN)
		delete(l.Annotations, pc.AnnReleasedBy)
		delete(l.Annotations, pc.AnnPrimaryLSN)
		delete(l.Annotations, pc.AnnAbdicated)
		delete(l.Annotations, pc.AnnSyncSets)
		return nil
	})
	return sent, rec, err
}

// RecordFailover rewrites the failover record (once the promotion LSN and
// the lost window are known); only the holder named in it as To may.
func (k *Kube) RecordFailover(ctx context.Context, self string, rec pc.Failover) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return k.update(ctx, "record failover", func(l *coordv1.Lease) error {
		if holder(l) != self || rec.To != self {
			return ErrNotHolder
		}
		l.Annotations[pc.AnnLastFailover] = string(b)
		return nil
	})
}

// LastFailover returns the failover record on the Lease, if any.
func (k *Kube) LastFailover() (pc.Failover, bool) {
	l := k.get()
	if l == nil {
		return pc.Failover{}, false
	}
	return pc.ParseFailover(l.Annotations[pc.AnnLastFailover])
}

// Publish records where the holder serves (host:port), once it is a
// writable primary; standbys clone from and follow that address.
func (k *Kube) Publish(ctx context.Context, self, address string) error {
	tls := ""
	if k.tls {
		tls = self
	}
	if l := k.get(); l != nil && holder(l) == self && l.Annotations[pc.AnnPrimaryAddress] == address && l.Annotations[pc.AnnPrimaryTLS] == tls {
		return nil
	}
	return k.update(ctx, "publish address", func(l *coordv1.Lease) error {
		if holder(l) != self {
			return ErrNotHolder
		}
		l.Annotations[pc.AnnPrimaryAddress] = address
		if tls != "" {
			l.Annotations[pc.AnnPrimaryTLS] = tls
		} else {
			delete(l.Annotations, pc.AnnPrimaryTLS)
		}
		return nil
	})
}

// PublishSyncSets writes the holder's synchronous standby sets
// (pc.AnnSyncSets; nil removes them), only while self holds the Lease.
func (k *Kube) PublishSyncSets(ctx context.Context, self string, sets []pc.SyncSet) error {
	return k.update(ctx, "publish synchronous standby sets", func(l *coordv1.Lease) error {
		if holder(l) != self {
			return ErrNotHolder
		}
		if sets == nil {
			delete(l.Annotations, pc.AnnSyncSets)
		} else {
			l.Annotations[pc.AnnSyncSets] = pc.FormatSyncSets(sets)
		}
		return nil
	})
}

// Release gives the Lease up after a clean shutdown whose last checkpoint is
// final, so the target can promote once it replayed that far.
func (k *Kube) Release(ctx context.Context, self string, final role.LSN) error {
	return k.update(ctx, "release", func(l *coordv1.Lease) error {
		if holder(l) != self {
			return ErrNotHolder
		}
		l.Spec.HolderIdentity = nil
		l.Annotations[pc.AnnFinalLSN] = final.String()
		l.Annotations[pc.AnnReleasedBy] = self
		delete(l.Annotations, pc.AnnPrimaryAddress)
		delete(l.Annotations, pc.AnnAbdicated)
		return nil
	})
}

// Abdicate gives the Lease up without a final LSN: self's postgres keeps
// failing (the caller stopped it), so a standby should take over now
// rather than when the Lease would expire.
func (k *Kube) Abdicate(ctx context.Context, self, reason string) error {
	return k.update(ctx, "abdicate", func(l *coordv1.Lease) error {
		if holder(l) != self {
			return ErrNotHolder
		}
		l.Spec.HolderIdentity = nil
		l.Annotations[pc.AnnReleasedBy] = self
		l.Annotations[pc.AnnAbdicated] = reason
		delete(l.Annotations, pc.AnnFinalLSN)
		delete(l.Annotations, pc.AnnPrimaryAddress)
		return nil
	})
}

// RWName is the selector-less Service and EndpointSlice for the primary.
func (k *Kube) RWName() string { return pc.Names{Cluster: k.cluster}.RW() }

// Route points `cluster-rw` at this instance in one EndpointSlice write,
// then labels this pod role=primary and the previous primary's pod
// role=replica. Called right after promotion by the promoting side.
//
// The EndpointSlice is what moves `-rw`, so its failure is returned (and
// the caller retries); without a pod IP (not in a pod) it is skipped. Labels
// steer only the -ro/-r Services: their failures are logged.
func (k *Kube) Route(ctx context.Context, self, podIP string, port int32, previous string) error {
	if podIP == "" {
		k.log.Warn("no pod IP (--pod-ip / POD_IP): the -rw EndpointSlice is not written", "slice", k.RWName())
	} else if err := k.writeEndpointSlice(ctx, self, podIP, port); err != nil {
		return err
	}
	if err := k.LabelRole(ctx, self, pc.RolePrimary); err != nil {
		k.log.Warn("label this pod", "pod", self, "error", err.Error())
	}
	if previous != "" && previous != self {
		if err := k.LabelRole(ctx, previous, pc.RoleReplica); err != nil {
			k.log.Warn("label previous primary", "pod", previous, "error", err.Error())
		}
	}
	return nil
}

func (k *Kube) writeEndpointSlice(ctx context.Context, self, podIP string, port int32) error {
	slices := k.client.DiscoveryV1().EndpointSlices(k.namespace)
	addrType := discoveryv1.AddressTypeIPv4
	if ip := podIP; len(ip) > 0 && containsColon(ip) {
		addrType = discoveryv1.AddressTypeIPv6
	}
	want := func(es *discoveryv1.EndpointSlice) {
		if es.Labels == nil {
			es.Labels = map[string]string{}
		}
		es.Labels[discoveryv1.LabelServiceName] = k.RWName()
		es.Labels[discoveryv1.LabelManagedBy] = "pgsync.io"
		es.Labels[pc.LabelCluster] = k.cluster
		es.AddressType = addrType
		es.Endpoints = []discoveryv1.Endpoint{{
			Addresses:  []string{podIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: k.namespace, Name: self},
		}}
		es.Ports = []discoveryv1.EndpointPort{{Name: ptr("postgres"), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}}
	}
	for attempt := 0; ; attempt++ {
		es, err := slices.Get(ctx, k.RWName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			es = &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: k.RWName(), Namespace: k.namespace}}
			want(es)
			_, err = slices.Create(ctx, es, metav1.CreateOptions{FieldManager: pc.InstanceFieldManager})
		} else if err == nil {
			want(es)
			_, err = slices.Update(ctx, es, metav1.UpdateOptions{FieldManager: pc.InstanceFieldManager})
		}
		if err == nil {
			return nil
		}
		if !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) || attempt >= 4 {
			return fmt.Errorf("route %s to %s: %w", k.RWName(), self, err)
		}
	}
}

// Event records a core/v1 Event on pod (a Warning or Normal eventType).
// The pod's UID is read first, so `kubectl describe pod` lists it.
func (k *Kube) Event(ctx context.Context, pod, eventType, reason, message string) error {
	p, err := k.client.CoreV1().Pods(k.namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("event %s on pod %s: %w", reason, pod, err)
	}
	now := metav1.NewTime(k.now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pod + ".", Namespace: k.namespace},
		InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod,
			Namespace: k.namespace, UID: p.UID},
		Reason: reason, Message: message, Type: eventType,
		Source:         corev1.EventSource{Component: pc.InstanceFieldManager},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "pgsync.io/instance", ReportingInstance: pod,
	}
	if _, err := k.client.CoreV1().Events(k.namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("event %s on pod %s: %w", reason, pod, err)
	}
	return nil
}

// LabelRole sets pgsync.io/role on pod.
func (k *Kube) LabelRole(ctx context.Context, pod, value string) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, pc.LabelRole, value)
	_, err := k.client.CoreV1().Pods(k.namespace).Patch(ctx, pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: pc.InstanceFieldManager})
	if err != nil {
		return fmt.Errorf("label pod %s %s=%s: %w", pod, pc.LabelRole, value, err)
	}
	return nil
}

func containsColon(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
