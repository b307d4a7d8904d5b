package observe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// Watch keeps what Observe lists in client-go informers (one List, then a
// watch, per kind), so a daemon observing every cycle lists nothing: the
// StatefulSets, Leases, pods and claims in full (managed fields dropped),
// and every other kind pgsync renders as metadata only — their
// resourceVersions are what tells that a cluster's objects changed
// (Fingerprints), which is all the daemon needs of them until a cluster
// changes and its drift is checked again (FindDriftCached reads what it
// compares fresh from the API server).
//
// The informers never resync (period 0): nothing here needs the cache
// replayed, and a resync of 12,000 objects is CPU for nothing.
type Watch struct {
	sts    cache.SharedIndexInformer
	pods   cache.SharedIndexInformer
	pvcs   cache.SharedIndexInformer
	leases cache.SharedIndexInformer
	// owned are the metadata informers of the other rendered kinds.
	owned []cache.SharedIndexInformer
	// Unwatched are the rendered kinds the caller may not list and watch:
	// a change to them does not change a fingerprint.
	Unwatched []string

	running sync.WaitGroup
}

// byCluster indexes objects by "namespace/cluster" (pgsync.io/cluster).
const byCluster = "pgsync-cluster"

func clusterIndex(obj any) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil
	}
	c := m.GetLabels()[pc.LabelCluster]
	if c == "" {
		return nil, nil
	}
	return []string{m.GetNamespace() + "/" + c}, nil
}

// dropManagedFields keeps the cache small: managed fields are most of an
// object's size and drift reads them from the API server, not from here.
func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// podEssentials keeps of a pod what observation reads (instanceOf, the
// status readers): metadata, each container's name and image, and the
// status without the containers' states. The rest of the spec (volumes,
// env, probes, resources) was a third of the daemon's live heap over
// 3,000 pods.
func podEssentials(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return dropManagedFields(obj)
	}
	p.ManagedFields = nil
	containers := make([]corev1.Container, len(p.Spec.Containers))
	for i, c := range p.Spec.Containers {
		containers[i] = corev1.Container{Name: c.Name, Image: c.Image}
		// Only whether the pod has TLS (Instance.NoTLS) is kept of the env.
		for _, e := range c.Env {
			if e.Name == pc.EnvCADir {
				containers[i].Env = []corev1.EnvVar{{Name: e.Name, Value: e.Value}}
			}
		}
	}
	p.Spec = corev1.PodSpec{Containers: containers, NodeName: p.Spec.NodeName}
	for i := range p.Status.ContainerStatuses {
		cs := &p.Status.ContainerStatuses[i]
		cs.State, cs.LastTerminationState, cs.ImageID, cs.ContainerID = corev1.ContainerState{}, corev1.ContainerState{}, "", ""
	}
	p.Status.InitContainerStatuses = nil
	return p, nil
}

// statefulSetEssentials keeps of a StatefulSet what the daemon reads of a
// cluster observed from a Watch (Cluster.StatefulSet): metadata (the
// applied spec and commit, live annotations), replicas, and the init
// containers' names, images and pull policies (RenderOptions). The pod
// template was most of the rest of a StatefulSet cached 1,000 times.
func statefulSetEssentials(obj any) (any, error) {
	sts, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return dropManagedFields(obj)
	}
	sts.ManagedFields = nil
	inits := make([]corev1.Container, len(sts.Spec.Template.Spec.InitContainers))
	for i, c := range sts.Spec.Template.Spec.InitContainers {
		inits[i] = corev1.Container{Name: c.Name, Image: c.Image, ImagePullPolicy: c.ImagePullPolicy}
	}
	sts.Spec = appsv1.StatefulSetSpec{Replicas: sts.Spec.Replicas,
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{InitContainers: inits}}}
	sts.Status = appsv1.StatefulSetStatus{}
	return sts, nil
}

// metadataOnly keeps what a fingerprint and the index need.
func metadataOnly(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
		m.SetAnnotations(nil)
		m.SetOwnerReferences(nil)
	}
	return obj, nil
}

// NewWatch sets up the informers of namespace ("" = all). The StatefulSets,
// pods, claims and Leases must be watchable (an error otherwise, and the
// caller lists instead); a rendered kind the caller may not list and watch
// is left out and named in Unwatched. Nothing is read until Start.
func NewWatch(ctx context.Context, client kubernetes.Interface, md metadata.Interface, namespace string, log *slog.Logger) (*Watch, error) {
	w := &Watch{}
	for _, gvr := range []schema.GroupVersionResource{
		{Group: "apps", Version: "v1", Resource: "statefulsets"}, {Version: "v1", Resource: "pods"},
		{Version: "v1", Resource: "persistentvolumeclaims"}, {Group: "coordination.k8s.io", Version: "v1", Resource: "leases"},
	} {
		ok, err := canWatch(ctx, client, gvr, namespace)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("may not list and watch %s%s", gvr.Resource, inNamespace(namespace))
		}
	}
	managedBy := labels.SelectorFromSet(labels.Set{pc.LabelManagedBy: pc.ManagedBy}).String()
	sts := client.AppsV1().StatefulSets(namespace)
	w.sts = newInformer(client, &appsv1.StatefulSet{}, managedBy, statefulSetEssentials,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return sts.List(ctx, o) }, sts.Watch)
	leases := client.CoordinationV1().Leases(namespace)
	w.leases = newInformer(client, &coordv1.Lease{}, managedBy, dropManagedFields,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return leases.List(ctx, o) }, leases.Watch)
	// Pods and claims carry only the cluster label (the templates').
	pods := client.CoreV1().Pods(namespace)
	w.pods = newInformer(client, &corev1.Pod{}, pc.LabelCluster, podEssentials,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return pods.List(ctx, o) }, pods.Watch)
	pvcs := client.CoreV1().PersistentVolumeClaims(namespace)
	w.pvcs = newInformer(client, &corev1.PersistentVolumeClaim{}, pc.LabelCluster, dropManagedFields,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return pvcs.List(ctx, o) }, pvcs.Watch)
	for _, gvr := range kube.Resources() {
		if gvr.Resource == "statefulsets" || gvr.Resource == "leases" {
			continue
		}
		ok, err := canWatch(ctx, client, gvr, namespace)
		if err != nil {
			return nil, err
		}
		if !ok {
			w.Unwatched = append(w.Unwatched, gvr.Resource)
			log.Warn("may not list and watch a kind pgsync renders: its drift is checked only when the cluster is observed again in full",
				"resource", gvr.Resource)
			continue
		}
		objs := md.Resource(gvr).Namespace(namespace)
		w.owned = append(w.owned, newInformer(md, &metav1.PartialObjectMetadata{}, managedBy, metadataOnly,
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return objs.List(ctx, o) }, objs.Watch))
	}
	return w, nil
}

// newInformer is the informer of one kind (example), selected by
// selector, whose objects are kept as trim leaves them. Where the API
// server streams the initial state (WatchList), trim applies to each
// object as it arrives; where it does not (it needs etcd's watch
// progress requests: not etcd 3.4), client-go falls back to one List at
// resourceVersion 0, which the watch cache answers whole, ignoring the
// limit — the whole List held, raw, wrapped and decoded, before the cache
// trimmed anything: the daemon's start-up peak (bench/fleet: 94 MB live
// on 3,000 pods). So that List is read in pages instead (listInPages).
func newInformer(client any, example runtime.Object, selector string, trim cache.TransformFunc,
	list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return listInPages(ctx, list, o, listPage, trim)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return watchFn(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, client), example,
		cache.SharedIndexInformerOptions{Indexers: cache.Indexers{byCluster: clusterIndex}})
	// Not started yet: SetTransform cannot fail.
	_ = inf.SetTransform(trim)
	return inf
}

// listPage is how many objects a page of a watch's List holds: a page of
// pods is ~1 MB on the wire.
const listPage = 100

// listInPages is one List of opts' objects, read page objects at a time,
// each page's objects trimmed before the next page is read, so what is
// held at once is one page untrimmed and the pages before it trimmed.
// Pages are read at the latest resourceVersion (opts' is dropped): the
// watch cache pages no List at resourceVersion 0, and the latest is never
// older than what the reflector asked for. The result is one list, of the
// pages' type, at the first page's resourceVersion (every page of a List
// is read at it).
func listInPages(ctx context.Context, list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	opts metav1.ListOptions, page int64, trim cache.TransformFunc) (runtime.Object, error) {
	opts.ResourceVersion, opts.ResourceVersionMatch, opts.Limit, opts.Continue = "", "", page, ""
	var items []runtime.Object
	var resourceVersion string
	for {
		got, err := list(ctx, opts)
		if err != nil {
			return nil, err
		}
		lm, err := meta.ListAccessor(got)
		if err != nil {
			return nil, err
		}
		if resourceVersion == "" {
			resourceVersion = lm.GetResourceVersion()
		}
		// Copies, so the page's own item array is not kept alive.
		objs, err := meta.ExtractListWithAlloc(got)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			t, err := trim(o)
			if err != nil {
				return nil, err
			}
			obj, ok := t.(runtime.Object)
			if !ok {
				return nil, fmt.Errorf("list in pages: trim returned a %T", t)
			}
			items = append(items, obj)
		}
		if lm.GetContinue() == "" {
			if err := meta.SetList(got, items); err != nil {
				return nil, err
			}
			lm.SetResourceVersion(resourceVersion)
			lm.SetRemainingItemCount(nil)
			return got, nil
		}
		opts.Continue = lm.GetContinue()
	}
}

// canWatch asks the API server whether the caller may list and watch gvr
// (a SelfSubjectAccessReview, which needs no permission of its own).
func canWatch(ctx context.Context, client kubernetes.Interface, gvr schema.GroupVersionResource, namespace string) (bool, error) {
	for _, verb := range []string{"list", "watch"} {
		r, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
				Namespace: namespace, Verb: verb, Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource}},
		}, metav1.CreateOptions{})
		if err != nil {
			return false, fmt.Errorf("may I %s %s: %w", verb, gvr.Resource, err)
		}
		if !r.Status.Allowed {
			return false, nil
		}
	}
	return true, nil
}

// Start runs the informers until ctx ends, one after the other: each
// waits for the one before it to have its first List in its cache, so
// what is held untrimmed at once is one page of one kind (listInPages).
func (w *Watch) Start(ctx context.Context) error {
	for _, inf := range append([]cache.SharedIndexInformer{w.pods, w.pvcs, w.sts, w.leases}, w.owned...) {
		w.running.Add(1)
		go func() {
			defer w.running.Done()
			inf.RunWithContext(ctx)
		}()
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return errors.New("watch: informers did not sync")
		}
	}
	return nil
}

// Shutdown waits for the informers to stop (after Start's ctx ended).
func (w *Watch) Shutdown() { w.running.Wait() }

// AddStatefulSetHandler adds h to the StatefulSet informer.
func (w *Watch) AddStatefulSetHandler(h cache.ResourceEventHandler) error {
	_, err := w.sts.AddEventHandler(h)
	return err
}

// Complete: every kind pgsync renders is watched, so a fingerprint
// changes whenever any object drift compares does.
func (w *Watch) Complete() bool { return len(w.Unwatched) == 0 }

// Fingerprints names the state of every managed cluster's objects (its
// StatefulSet and everything labelled with its name: pods, claims, Lease,
// and each rendered object watched): the same string exactly when none of
// them changed, was added or went (resourceVersions, which the API server
// changes on every write). The /status of its instances is not in it.
func (w *Watch) Fingerprints() map[cluster.Key]string {
	out := map[cluster.Key]string{}
	for _, obj := range w.sts.GetStore().List() {
		sts, ok := obj.(*appsv1.StatefulSet)
		if !ok {
			continue
		}
		k := cluster.Key{Namespace: sts.Namespace, Name: sts.Name}
		h := sha256.New()
		index := sts.Namespace + "/" + sts.Name
		fmt.Fprintf(h, "%s %s\n", sts.UID, sts.ResourceVersion)
		for _, inf := range append([]cache.SharedIndexInformer{w.leases, w.pods, w.pvcs}, w.owned...) {
			objs, _ := inf.GetIndexer().ByIndex(byCluster, index)
			versions := make([]string, 0, len(objs))
			for _, o := range objs {
				if m, err := meta.Accessor(o); err == nil {
					versions = append(versions, m.GetName()+" "+string(m.GetUID())+" "+m.GetResourceVersion())
				}
			}
			slices.Sort(versions)
			for _, v := range versions {
				fmt.Fprintln(h, v)
			}
			fmt.Fprintln(h, "--")
		}
		out[k] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}

// Observe is observe.Observe from the caches: the clusters for which want
// is true (nil: all), with their instances' /status read now.
func (w *Watch) Observe(ctx context.Context, opts Options, want func(cluster.Key) bool) *Fleet {
	return assemble(ctx, w, opts, want)
}

func (w *Watch) statefulSets() []*appsv1.StatefulSet {
	var out []*appsv1.StatefulSet
	for _, obj := range w.sts.GetStore().List() {
		if sts, ok := obj.(*appsv1.StatefulSet); ok {
			out = append(out, sts)
		}
	}
	return out
}

func getAs[T any](inf cache.SharedIndexInformer, namespace, name string) *T {
	obj, ok, err := inf.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	t, _ := obj.(*T)
	return t
}

func (w *Watch) pod(ns, name string) *corev1.Pod { return getAs[corev1.Pod](w.pods, ns, name) }
func (w *Watch) pvc(ns, name string) *corev1.PersistentVolumeClaim {
	return getAs[corev1.PersistentVolumeClaim](w.pvcs, ns, name)
}
func (w *Watch) lease(ns, name string) *coordv1.Lease {
	return getAs[coordv1.Lease](w.leases, ns, name)
}
