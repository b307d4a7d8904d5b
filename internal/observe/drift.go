package observe

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// RenderOptions are the kube.Options that re-render what runs: the live
// StatefulSet's instance image and pull policy (unless image overrides
// it), replicas (apply moves them one instance per step) and applied
// commit, and the live Lease's target primary (so a re-render never
// starts a switchover).
func (c *Cluster) RenderOptions(image string) kube.Options {
	opts := kube.Options{InstanceImage: image, TargetPrimary: kube.TargetPrimary(c.Observed.Spec, c.Lease),
		Commit: c.Commit, Replicas: c.StatefulSet.Spec.Replicas}
	for _, ic := range c.StatefulSet.Spec.Template.Spec.InitContainers {
		if ic.Name == pc.ContainerBootstrap {
			if opts.InstanceImage == "" {
				opts.InstanceImage = ic.Image
			}
			opts.InstanceImagePullPolicy = ic.ImagePullPolicy
		}
	}
	return opts
}

// Drift renders spec (the spec the cluster was last applied from) with
// opts and dry-run applies every object: each field that the apply would
// change in the live object is drift, returned as "Kind name: path", in
// object order. A missing object is drift too. The server computes the
// result, defaults included, so a server-defaulted field is never drift.
// When the server refuses the dry run as invalid (another manager's
// fields merged with pgsync's), the drift is each field pgsync renders
// whose live value differs. An object whose live state provably equals
// what the apply would make (unchanged) needs no dry run.
func Drift(ctx context.Context, client dynamic.Interface, spec *cluster.Cluster, opts kube.Options) ([]string, error) {
	objs, err := kube.Render(spec, opts)
	if err != nil {
		return nil, err
	}
	drift, err := driftOf(ctx, client, objs.List(), getLive(client), nil)
	if err != nil {
		return nil, err
	}
	left, err := leftServices(ctx, listServices(client), spec)
	return append(drift, left...), err
}

// liveObject returns the live object of a rendered one (nil when it does
// not exist).
type liveObject func(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error)

func getLive(client dynamic.Interface) liveObject {
	return func(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
		u, err := client.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return u, err
	}
}

func driftOf(ctx context.Context, client dynamic.Interface, list []runtime.Object, liveOf liveObject, cache *DriftCache) ([]string, error) {
	found := make([][]string, len(list))
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, obj := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := kube.ApplyBody(obj)
			if err != nil {
				errs[i] = err
				return
			}
			what := body.GetKind() + " " + body.GetName()
			gvr, err := kube.ResourceOf(body.GroupVersionKind())
			if err != nil {
				errs[i] = err
				return
			}
			live, err := liveOf(ctx, gvr, body.GetNamespace(), body.GetName())
			if err != nil {
				errs[i] = fmt.Errorf("get %s: %w", what, err)
				return
			}
			if live == nil {
				found[i] = []string{what + ": missing"}
				return
			}
			var paths []string
			switch {
			case noDryRun[body.GetKind()]:
				paths = diffRendered(body, live)
			case unchanged(body, live):
			default:
				key, keyed := cache.key(body, live)
				if cached, ok := cache.get(key, keyed); ok {
					paths = cached
					break
				}
				after, err := kube.Apply(ctx, client, obj, kube.ApplyOptions{DryRun: true, Force: true})
				switch {
				case apierrors.IsInvalid(err):
					// What pgsync renders, merged with fields another
					// manager took over, is not a valid object: a
					// hand-edited Service port is a new list item owned by
					// its editor, which stays beside pgsync's, both named
					// "postgres". Name what differs from what pgsync
					// renders instead.
					paths = diffRendered(body, live)
				case err != nil:
					errs[i] = err
					return
				default:
					paths = diffObjects(live, after)
				}
				cache.put(key, keyed, paths)
			}
			for _, path := range paths {
				found[i] = append(found[i], what+": "+path)
			}
		}()
	}
	wg.Wait()
	var out []string
	for i := range list {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, found[i]...)
	}
	return out, nil
}

// noDryRun are the kinds compared without a dry run: applying a Role or a
// RoleBinding, even as a dry run, needs every permission it grants (RBAC's
// escalation check), which a read-only observer must not have. They have
// no server defaults in the fields pgsync renders, so comparing the
// rendered fields with the live ones is exact.
var noDryRun = map[string]bool{"Role": true, "RoleBinding": true}

// diffRendered lists the paths of fields pgsync renders whose live value
// differs.
func diffRendered(body, live *unstructured.Unstructured) []string {
	want := body.DeepCopy().Object
	got := live.DeepCopy().Object
	var out []string
	subsetDiff("", want, got, &out)
	sort.Strings(out)
	return out
}

func subsetDiff(path string, want, got any, out *[]string) {
	switch wv := want.(type) {
	case map[string]any:
		gv, ok := got.(map[string]any)
		if !ok {
			break
		}
		for k, w := range wv {
			subsetDiff(joinPath(path, k), w, gv[k], out)
		}
		return
	case []any:
		gv, ok := got.([]any)
		if !ok || len(wv) != len(gv) {
			break
		}
		for i := range wv {
			subsetDiff(fmt.Sprintf("%s[%d]", path, i), wv[i], gv[i], out)
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		*out = append(*out, path)
	}
}

// ignoredMeta are metadata fields the server sets on every write.
var ignoredMeta = []string{"resourceVersion", "generation", "managedFields", "uid", "creationTimestamp"}

// diffObjects lists the paths where after differs from live, status and
// server-maintained metadata aside.
func diffObjects(live, after *unstructured.Unstructured) []string {
	strip := func(u *unstructured.Unstructured) map[string]any {
		m := u.DeepCopy().Object
		delete(m, "status")
		if md, ok := m["metadata"].(map[string]any); ok {
			for _, k := range ignoredMeta {
				delete(md, k)
			}
		}
		return m
	}
	var out []string
	diffValues("", strip(live), strip(after), &out)
	sort.Strings(out)
	return out
}

func diffValues(path string, a, b any, out *[]string) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		for k := range keys {
			diffValues(joinPath(path, k), av[k], bv[k], out)
		}
		return
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			break
		}
		for i := range av {
			diffValues(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i], out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, path)
	}
}

func joinPath(path, key string) string {
	if strings.ContainsAny(key, "./") {
		key = "[" + key + "]"
		return path + key
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// FindDrift fills Observed.Drift of every cluster for which want is true
// (nil: all), a few clusters at a time. For more than a few clusters the
// live objects are read with one List per kind (by pgsync's label, in the
// clusters' namespace when they share one), not one GET per object; a
// kind the caller may not list, and an object the List did not return
// (its label edited away), are read with a GET.
func (f *Fleet) FindDrift(ctx context.Context, client dynamic.Interface, want func(cluster.Key) bool) error {
	return f.FindDriftCached(ctx, client, want, nil)
}

// FindDriftCached is FindDrift that reuses the dry runs of an earlier
// call through cache (nil: none) for objects that have not changed since.
func (f *Fleet) FindDriftCached(ctx context.Context, client dynamic.Interface, want func(cluster.Key) bool, cache *DriftCache) error {
	cache.rotate()
	type job struct{ c *Cluster }
	var jobs []job
	for i := range f.Clusters {
		c := &f.Clusters[i]
		if want == nil || want(c.Key()) {
			jobs = append(jobs, job{c})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	kinds := map[schema.GroupVersionResource]bool{}
	for _, gvr := range kube.Resources() {
		kinds[gvr] = true
	}
	// Clusters are checked a batch at a time: up to fewClusters with a GET
	// per object, more with one List per kind for each batch of up to
	// batchClusters clusters of one namespace (selected by name), so what
	// is held at once is one batch's objects, not the fleet's.
	var batches [][]job
	if len(jobs) <= fewClusters {
		batches = [][]job{jobs}
	} else {
		byNS := map[string][]job{}
		var nss []string
		for _, j := range jobs {
			ns := j.c.Key().Namespace
			if byNS[ns] == nil {
				nss = append(nss, ns)
			}
			byNS[ns] = append(byNS[ns], j)
		}
		sort.Strings(nss)
		for _, ns := range nss {
			for js := byNS[ns]; len(js) > 0; {
				n := min(len(js), batchClusters)
				batches = append(batches, js[:n])
				js = js[n:]
			}
		}
	}
	var errs []error
	for _, batch := range batches {
		liveOf, servicesOf := getLive(client), listServices(client)
		if len(jobs) > fewClusters {
			names := make([]string, len(batch))
			for i, j := range batch {
				names[i] = j.c.Key().Name
			}
			var err error
			if liveOf, servicesOf, err = listLive(ctx, client, kinds, batch[0].c.Key().Namespace, names); err != nil {
				return err
			}
		}
		sem := make(chan struct{}, 8)
		batchErrs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i, j := range batch {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				objs, err := kube.Render(j.c.Observed.Spec, j.c.RenderOptions(""))
				if err != nil {
					batchErrs[i] = fmt.Errorf("drift of %s: %w", j.c.Key(), err)
					return
				}
				drift, err := driftOf(ctx, client, objs.List(), liveOf, cache)
				if err != nil {
					batchErrs[i] = fmt.Errorf("drift of %s: %w", j.c.Key(), err)
					return
				}
				left, err := leftServices(ctx, servicesOf, j.c.Observed.Spec)
				if err != nil {
					batchErrs[i] = fmt.Errorf("drift of %s: %w", j.c.Key(), err)
					return
				}
				j.c.Observed.Drift = append(drift, left...)
			}()
		}
		wg.Wait()
		errs = append(errs, batchErrs...)
	}
	return errors.Join(errs...)
}

// fewClusters: up to this many clusters, drift GETs each object (13 per
// cluster) rather than listing every object of each kind — what a daemon
// checks in a cycle where a few clusters changed.
const fewClusters = 16

// batchClusters bounds the clusters whose objects one List selects.
const batchClusters = 20

// listLive lists pgsync's objects of each kind of the clusters names in
// namespace and returns their lookup, falling back to a GET, and the
// Services of each cluster among them (a List of its own when Services
// could not be listed).
func listLive(ctx context.Context, client dynamic.Interface, kinds map[schema.GroupVersionResource]bool, namespace string, names []string) (liveObject, ownedServices, error) {
	type key struct {
		gvr             schema.GroupVersionResource
		namespace, name string
	}
	sel := labels.SelectorFromSet(labels.Set{pc.LabelManagedBy: pc.ManagedBy})
	in, err := labels.NewRequirement(pc.LabelCluster, selection.In, names)
	if err != nil {
		return nil, nil, err
	}
	managed := metav1.ListOptions{LabelSelector: sel.Add(*in).String()}
	var (
		mu    sync.Mutex
		index = map[key]*unstructured.Unstructured{}
		// services: the Services listed, if servicesListed.
		services       []unstructured.Unstructured
		servicesListed bool
		wg             sync.WaitGroup
		errs           []error
	)
	for gvr := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			list, err := client.Resource(gvr).Namespace(namespace).List(ctx, managed)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case apierrors.IsForbidden(err):
				// A role with get but not list: one GET per object.
			case err != nil:
				errs = append(errs, fmt.Errorf("list %s%s: %w", gvr.Resource, inNamespace(namespace), err))
			default:
				for i := range list.Items {
					u := &list.Items[i]
					index[key{gvr, u.GetNamespace(), u.GetName()}] = u
				}
				if gvr == servicesResource {
					services, servicesListed = list.Items, true
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	get := getLive(client)
	servicesOf := listServices(client)
	if servicesListed {
		servicesOf = func(_ context.Context, _, name string) ([]string, error) { return serviceNames(services, name), nil }
	}
	return func(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
		if u := index[key{gvr, namespace, name}]; u != nil {
			return u, nil
		}
		return get(ctx, gvr, namespace, name)
	}, servicesOf, nil
}

// DriftCache keeps dry-run results from one observation to the next: a
// daemon observes every cluster each cycle, and the one kind whose drift
// needs a server-side dry run every time (the StatefulSet: its claim
// template is an atomic list the server defaults into, so unchanged cannot
// show it unchanged) made drift most of an idle cycle's cost — 1,000 dry
// runs, 13.8 s of a 17 s cycle over 1,000 clusters (bench/fleet). A dry
// run's result depends only on the live object (its UID and
// resourceVersion name it exactly) and on what pgsync renders (hashed), so
// an entry for the same pair is the result itself, never stale. Entries
// not used by a call are dropped at the next, so it holds one cycle's
// objects at most. The zero value and nil are ready to use (nil caches
// nothing).
type DriftCache struct {
	mu        sync.Mutex
	prev, cur map[driftKey][]string
}

type driftKey struct {
	uid             types.UID
	resourceVersion string
	body            [sha256.Size]byte
}

// key names the dry run of body against live; false when it cannot be
// named (no cache, or a live object without identity).
func (c *DriftCache) key(body, live *unstructured.Unstructured) (driftKey, bool) {
	if c == nil || live.GetUID() == "" || live.GetResourceVersion() == "" {
		return driftKey{}, false
	}
	raw, err := json.Marshal(body.Object) // map keys sorted: a stable encoding
	if err != nil {
		return driftKey{}, false
	}
	return driftKey{uid: live.GetUID(), resourceVersion: live.GetResourceVersion(), body: sha256.Sum256(raw)}, true
}

func (c *DriftCache) get(k driftKey, ok bool) ([]string, bool) {
	if !ok {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, found := c.cur[k]
	if !found {
		if v, found = c.prev[k]; found {
			c.cur[k] = v
		}
	}
	return v, found
}

func (c *DriftCache) put(k driftKey, ok bool, paths []string) {
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur[k] = paths
}

// rotate starts a call: what the last call used stays, the rest goes.
func (c *DriftCache) rotate() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prev, c.cur = c.cur, map[driftKey][]string{}
}
