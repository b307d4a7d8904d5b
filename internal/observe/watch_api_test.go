package observe_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/podsim"
)

func startWatch(ctx context.Context, t *testing.T, cfg *rest.Config, ns string) *observe.Watch {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := observe.NewWatch(ctx, cs, md, ns, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(func() { cancel(); w.Shutdown() })
	if err := w.Start(wctx); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestAPIWatch: observing from a Watch's caches sees exactly what
// Observe's Lists see; a cluster's fingerprint changes with any write to
// any of its objects — the StatefulSet, a pod's status, a claim, the
// Lease, a Service edited by hand, a ConfigMap deleted — and with nothing
// else (another cluster's writes, time); want limits what is observed and
// whose /status is read.
func TestAPIWatch(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := kubeenv.Namespace(t, e.cfg)
	srv := serve(t, "127.0.5.1", "127.0.5.2", "127.0.5.3")
	web, db := loadCluster(t, ns, "web", 2), loadCluster(t, ns, "db", 1)
	if err := podsim.DeployConverged(ctx, e.cs, e.dyn, srv, web, commit, instanceImage, []string{"127.0.5.1", "127.0.5.2"}); err != nil {
		t.Fatal(err)
	}
	if err := podsim.DeployConverged(ctx, e.cs, e.dyn, srv, db, commit, instanceImage, []string{"127.0.5.3"}); err != nil {
		t.Fatal(err)
	}
	w := startWatch(ctx, t, e.cfg, ns)
	if !w.Complete() {
		t.Fatalf("unwatched %q with the admin's rights", w.Unwatched)
	}
	opts := observe.Options{Namespace: ns, StatusTimeout: statusTimeout, Status: observe.DirectStatus{Client: &http.Client{}, Port: srv.Port()}}

	listed, err := observe.Observe(ctx, e.cs, opts)
	if err != nil {
		t.Fatal(err)
	}
	watched := w.Observe(ctx, opts, nil)
	if d := cmp.Diff(listed.Observed(), watched.Observed()); d != "" {
		t.Errorf("observed from the watch (-listed +watched):\n%s", d)
	}
	if len(watched.Clusters) != 2 || !watched.Clusters[1].Observed.Instances[1].Ready {
		t.Fatalf("watched: %d clusters, want db and web, web-1 ready", len(watched.Clusters))
	}
	// What the daemon reads of the (trimmed) cached StatefulSet: how
	// drift and steps re-render, replicas, the applied commit.
	for i, c := range watched.Clusters {
		l := listed.Clusters[i]
		if d := cmp.Diff(l.RenderOptions(""), c.RenderOptions("")); d != "" || c.Commit != l.Commit || c.Commit != commit {
			t.Errorf("%s: render options from the watch (-listed +watched):\n%s; commit %q, listed %q", c.Key(), d, c.Commit, l.Commit)
		}
		if d := cmp.Diff(l.Instances, c.Instances); d != "" {
			t.Errorf("%s: instances from the watch (-listed +watched):\n%s", c.Key(), d)
		}
	}

	before := srv.Requests()
	only := w.Observe(ctx, opts, func(k cluster.Key) bool { return k.Name == "db" })
	if len(only.Clusters) != 1 || only.Clusters[0].Key().Name != "db" {
		t.Errorf("want db only: %+v", only.Clusters)
	}
	if n := srv.Requests() - before; n != 1 {
		t.Errorf("observing db alone read %d /status documents, want 1", n)
	}

	webKey, dbKey := web.Key(), db.Key()
	fp := w.Fingerprints()
	if len(fp) != 2 || fp[webKey] == "" || fp[webKey] == fp[dbKey] {
		t.Fatalf("fingerprints %v", fp)
	}
	if again := w.Fingerprints(); again[webKey] != fp[webKey] || again[dbKey] != fp[dbKey] {
		t.Errorf("fingerprints moved with nothing written: %v, then %v", fp, again)
	}

	names := kube.NamesOf(web)
	merge := func(ann string) []byte {
		return []byte(fmt.Sprintf(`{"metadata":{"annotations":{"test.pgsync.io/edit":%q}}}`, ann))
	}
	edits := []struct {
		what  string
		write func() error
	}{
		{"the StatefulSet annotated", func() error {
			_, err := e.cs.AppsV1().StatefulSets(ns).Patch(ctx, "web", types.MergePatchType, merge("1"), metav1.PatchOptions{})
			return err
		}},
		{"a pod no longer Ready", func() error {
			p, err := e.cs.CoreV1().Pods(ns).Get(ctx, names.Instance(1), metav1.GetOptions{})
			if err == nil {
				_, err = podsim.SetPodStatus(ctx, e.cs, p, podsim.Pod{IP: "127.0.5.2"})
			}
			return err
		}},
		{"a claim annotated", func() error {
			_, err := e.cs.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, names.PVC(0), types.MergePatchType, merge("2"), metav1.PatchOptions{})
			return err
		}},
		{"the Lease's holder", func() error {
			return podsim.HoldLease(ctx, e.cs, ns, names.Lease(), names.Instance(1))
		}},
		{"the -ro Service edited by hand", func() error {
			_, err := e.cs.CoreV1().Services(ns).Patch(ctx, names.RO(), types.MergePatchType,
				[]byte(`{"spec":{"selector":{"`+pc.LabelRole+`":"primary"}}}`), metav1.PatchOptions{})
			return err
		}},
		{"the Role edited by hand", func() error {
			_, err := e.cs.RbacV1().Roles(ns).Patch(ctx, names.ServiceAccount(), types.MergePatchType, merge("3"), metav1.PatchOptions{})
			return err
		}},
		{"the params ConfigMap deleted", func() error {
			return e.cs.CoreV1().ConfigMaps(ns).Delete(ctx, names.Params(), metav1.DeleteOptions{})
		}},
	}
	for _, ed := range edits {
		if err := ed.write(); err != nil {
			t.Fatalf("%s: %v", ed.what, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		now := w.Fingerprints()
		for now[webKey] == fp[webKey] && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			now = w.Fingerprints()
		}
		if now[webKey] == fp[webKey] {
			t.Errorf("%s: web's fingerprint unchanged after 10 s", ed.what)
		}
		if now[dbKey] != fp[dbKey] {
			t.Errorf("%s: db's fingerprint changed too", ed.what)
		}
		fp = now
	}
	// What the caches hold now is what a List reads.
	listed, err = observe.Observe(ctx, e.cs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(listed.Observed(), w.Observe(ctx, opts, nil).Observed()); d != "" {
		t.Errorf("after the edits, observed from the watch (-listed +watched):\n%s", d)
	}
}

// TestAPIWatchUnwatched: a caller that may not list and watch a rendered
// kind gets a Watch without it, named in Unwatched (so not Complete); one
// that may not watch pods gets an error (and lists instead).
func TestAPIWatchUnwatched(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := kubeenv.Namespace(t, e.cfg)
	rules := func(withServices, withPods bool) []rbacv1.PolicyRule {
		r := []rbacv1.PolicyRule{
			{APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims", "configmaps", "serviceaccounts"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "rolebindings"}, Verbs: []string{"list", "watch"}},
		}
		if withServices {
			r = append(r, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list", "watch"}})
		}
		if withPods {
			r = append(r, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}})
		} else {
			r = append(r, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}})
		}
		return r
	}
	as := func(user string, r []rbacv1.PolicyRule) *rest.Config {
		if _, err := e.cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: r}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: user},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: user}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cfg := rest.CopyConfig(e.cfg)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
		return cfg
	}
	// RBAC is evaluated at once, but the API server's authorizer cache
	// may answer from before the binding: retry briefly.
	var w *observe.Watch
	cfg := as("no-services", rules(false, true))
	for deadline := time.Now().Add(10 * time.Second); ; {
		w = startWatch(ctx, t, cfg, ns)
		if len(w.Unwatched) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := cmp.Diff([]string{"services"}, w.Unwatched); d != "" || w.Complete() {
		t.Errorf("unwatched (-want +got):\n%s", d)
	}

	cs, err := kubernetes.NewForConfig(as("no-pod-watch", rules(true, false)))
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.NewForConfig(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = observe.NewWatch(ctx, cs, md, ns, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if want := "may not list and watch pods in namespace " + ns; err == nil || err.Error() != want {
		t.Errorf("NewWatch without watch on pods: %v; want %q", err, want)
	}
}

// TestAPIDriftOfManyClusters: more clusters than are checked with GETs —
// read with Lists selecting a batch of clusters by name, across two
// namespaces and more than one batch — find exactly the drift of each:
// none for the untouched, the edited field of the one edited by hand.
func TestAPIDriftOfManyClusters(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nss := []string{kubeenv.Namespace(t, e.cfg), kubeenv.Namespace(t, e.cfg)}
	var ips []string
	for i := 0; i < 60; i++ {
		ips = append(ips, fmt.Sprintf("127.0.7.%d", i+1))
	}
	srv := serve(t, ips...)
	for i := range ips {
		ns := nss[i%2]
		c := loadCluster(t, ns, fmt.Sprintf("c%02d", i), 1)
		if err := podsim.DeployConverged(ctx, e.cs, e.dyn, srv, c, commit, instanceImage, ips[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	// c07 is in nss[1], in its namespace's first batch; c58 in nss[0]'s
	// second.
	edited := map[cluster.Key]string{
		{Namespace: nss[1], Name: "c07"}: "Service c07-ro: spec.selector",
		{Namespace: nss[0], Name: "c58"}: "Service c58-ro: spec.selector",
	}
	for k := range edited {
		if _, err := e.cs.CoreV1().Services(k.Namespace).Patch(ctx, k.Name+"-ro", types.MergePatchType,
			[]byte(`{"spec":{"selector":{"`+pc.LabelRole+`":"primary"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := observe.Observe(ctx, e.cs, observe.Options{Status: observe.DirectStatus{Client: &http.Client{}, Port: srv.Port()}})
	if err != nil {
		t.Fatal(err)
	}
	mine := func(k cluster.Key) bool { return k.Namespace == nss[0] || k.Namespace == nss[1] }
	if err := f.FindDrift(ctx, e.dyn, mine); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range f.Clusters {
		if !mine(c.Key()) {
			continue
		}
		n++
		var want []string
		if w, ok := edited[c.Key()]; ok {
			want = []string{w + "[" + pc.LabelRole + "]"}
		}
		if d := cmp.Diff(want, c.Observed.Drift); d != "" {
			t.Errorf("%s drift (-want +got):\n%s", c.Key(), d)
		}
	}
	if n != len(ips) {
		t.Errorf("checked %d clusters, want %d", n, len(ips))
	}
}
