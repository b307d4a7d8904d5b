package observe_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/podsim"
)

// TestAPIListInPages: a watch's first List is read a page at a time at
// the latest resourceVersion — even when the reflector asks for
// resourceVersion 0, which the watch cache would answer whole — and each
// page's objects are trimmed before the next page is read; the result is
// one list of every object, trimmed, at the first page's
// resourceVersion.
func TestAPIListInPages(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := kubeenv.Namespace(t, e.cfg)
	const n, page = 5, 2
	for i := 0; i < n; i++ {
		if _, err := e.cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("cm-%d", i), Labels: map[string]string{"test.pgsync.io/page": "yes"},
			Annotations: map[string]string{"test.pgsync.io/bulk": strings.Repeat("x", 100)}},
			Data: map[string]string{"i": fmt.Sprint(i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	type call struct {
		opts    metav1.ListOptions
		trimmed int // objects trimmed when the page was asked for
	}
	var calls []call
	trimmed := 0
	list := func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		calls = append(calls, call{o, trimmed})
		return e.cs.CoreV1().ConfigMaps(ns).List(ctx, o)
	}
	trim := func(obj any) (any, error) {
		cm := obj.(*corev1.ConfigMap)
		cm.Annotations, cm.ManagedFields = nil, nil
		trimmed++
		return cm, nil
	}
	got, err := observe.ListInPages(ctx, list, metav1.ListOptions{LabelSelector: "test.pgsync.io/page", ResourceVersion: "0"}, page, trim)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 {
		t.Fatalf("%d List calls for %d objects in pages of %d, want 3: %+v", len(calls), n, page, calls)
	}
	for i, c := range calls {
		if c.opts.Limit != page || c.opts.ResourceVersion != "" || c.opts.LabelSelector != "test.pgsync.io/page" || (i > 0) != (c.opts.Continue != "") {
			t.Errorf("page %d asked with %+v; want limit %d, no resourceVersion, the selector, a continue token after the first", i, c.opts, page)
		}
		if c.trimmed != i*page {
			t.Errorf("page %d asked for with %d objects trimmed, want %d (every object of the pages before)", i, c.trimmed, i*page)
		}
	}
	cms, ok := got.(*corev1.ConfigMapList)
	if !ok {
		t.Fatalf("got a %T, want a *v1.ConfigMapList", got)
	}
	if len(cms.Items) != n {
		t.Fatalf("%d items, want %d", len(cms.Items), n)
	}
	for i, cm := range cms.Items {
		if cm.Name != fmt.Sprintf("cm-%d", i) || cm.Annotations != nil || cm.Data["i"] != fmt.Sprint(i) {
			t.Errorf("item %d: %s, annotations %v, data %v; want cm-%d trimmed, its data kept", i, cm.Name, cm.Annotations, cm.Data, i)
		}
	}
	first, err := e.cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "test.pgsync.io/page", Limit: page})
	if err != nil {
		t.Fatal(err)
	}
	if cms.ResourceVersion == "" || cms.Continue != "" || cms.RemainingItemCount != nil {
		t.Errorf("list meta %+v; want a resourceVersion, no continue token, no remaining count", cms.ListMeta)
	}
	if first.ResourceVersion != cms.ResourceVersion {
		t.Logf("resourceVersion %s, a List now reads at %s (nothing written between: the same expected)", cms.ResourceVersion, first.ResourceVersion)
	}
}

// TestAPIWatchListsInPages: where the API server does not stream a
// watch's initial state (WatchList needs etcd's watch progress requests,
// which the test tier's etcd 3.4 lacks), every List the Watch sends is a
// page of ListPage objects at the latest resourceVersion, not one List
// at resourceVersion 0 (which the watch cache answers whole).
func TestAPIWatchListsInPages(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := kubeenv.Namespace(t, e.cfg)
	srv := serve(t, "127.0.9.1")
	c := loadCluster(t, ns, "paged", 1)
	if err := podsim.DeployConverged(ctx, e.cs, e.dyn, srv, c, commit, instanceImage, []string{"127.0.9.1"}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lists []url.URL
	cfg := rest.CopyConfig(e.cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if q := r.URL.Query(); r.Method == http.MethodGet && q.Get("watch") == "" && strings.Contains(r.URL.Path, "/namespaces/"+ns+"/") {
				mu.Lock()
				lists = append(lists, *r.URL)
				mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	w := startWatch(ctx, t, cfg, ns)
	if got := w.Fingerprints(); len(got) != 1 || got[c.Key()] == "" {
		t.Fatalf("fingerprints %v; want the one cluster", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lists) == 0 {
		t.Logf("the API server streamed every kind's initial state (WatchList): no List to check")
	}
	for _, u := range lists {
		q := u.Query()
		if q.Get("limit") != fmt.Sprint(observe.ListPage) || q.Get("resourceVersion") != "" {
			t.Errorf("List %s; want limit=%d and no resourceVersion", u.String(), observe.ListPage)
		}
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
