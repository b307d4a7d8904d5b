package kube

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
	"github.com/pgsync/pgsync/test/kubeenv"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }

// warnings collects the API server's warnings (PodSecurity `warn` on the
// StatefulSet's pod template arrives this way).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// warnedClients is a namespace of its own on the test API server and
// clients to it whose warnings (PodSecurity's) w collects.
func warnedClients(t *testing.T) (ns string, cs kubernetes.Interface, dyn dynamic.Interface, w *warnings) {
	t.Helper()
	cfg := rest.CopyConfig(kubeenv.APIServer(t))
	ns = kubeenv.Namespace(t, cfg)
	w = &warnings{}
	cfg.WarningHandler = w
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return ns, typed, dyn, w
}

type apiEnv struct {
	ns   string
	cs   kubernetes.Interface
	dyn  dynamic.Interface
	cfg  *rest.Config
	warn *warnings
	c    *cluster.Cluster
}

func newAPIEnv(t *testing.T, instances int) *apiEnv {
	t.Helper()
	cfg := rest.CopyConfig(kubeenv.APIServer(t))
	ns := kubeenv.Namespace(t, cfg)
	w := &warnings{}
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := loadCluster(t, func(y string) string {
		y = strings.Replace(y, "namespace: shop", "namespace: "+ns, 1)
		return strings.Replace(y, "instances: 3", fmt.Sprintf("instances: %d", instances), 1)
	})
	return &apiEnv{ns: ns, cs: cs, dyn: dyn, cfg: cfg, warn: w, c: c}
}

func (e *apiEnv) applyAll(ctx context.Context, t *testing.T, o *Objects, opts ApplyOptions) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	for _, obj := range o.List() {
		u, err := Apply(ctx, e.dyn, obj, opts)
		if err != nil {
			t.Fatalf("apply (dry run %v): %v", opts.DryRun, err)
		}
		out[u.GetKind()+"/"+u.GetName()] = u
	}
	return out
}

// TestAPIApply: every rendered object is accepted by a real kube-apiserver
// in a namespace enforcing PodSecurity `restricted`, a pod built from the
// template is admitted, and re-applying changes nothing.
func TestAPIApply(t *testing.T) {
	e := newAPIEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Secrets: created once; a second call creates nothing, changes nothing.
	created, err := EnsureSecrets(ctx, e.cs, e.c, rand.Reader, SecretPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	// No NAME-superuser: the superuser has no access by default.
	same(t, created, []string{"web-app", "web-ca"})
	before := secretData(ctx, t, e.cs, e.ns)
	published := checkCA(ctx, t, e.cs, e.ns)
	if created, err = EnsureSecrets(ctx, e.cs, e.c, rand.Reader, SecretPolicy{Established: true}); err != nil || len(created) != 0 {
		t.Fatalf("second EnsureSecrets: created %v, err %v", created, err)
	}
	same(t, secretData(ctx, t, e.cs, e.ns), before)
	same(t, checkCA(ctx, t, e.cs, e.ns), published)

	o, err := Render(e.c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	live := e.applyAll(ctx, t, o, ApplyOptions{})
	if w := e.warn.take(); len(w) != 0 {
		t.Errorf("API server warnings (PodSecurity restricted?): %q", w)
	}

	// The pod template passes `restricted`: the bare API server runs no
	// StatefulSet controller, so create a pod from the template (dry run).
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: e.ns, Labels: o.StatefulSet.Spec.Template.Labels,
			Annotations: o.StatefulSet.Spec.Template.Annotations},
		Spec: *o.StatefulSet.Spec.Template.Spec.DeepCopy(),
	}
	// As the StatefulSet controller does: the claim template becomes a volume.
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "pgdata", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pgdata-web-0"}}})
	if _, err := e.cs.CoreV1().Pods(e.ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("a pod from the StatefulSet's template is not admitted: %v", err)
	}
	// The check can fail: one relaxed field is refused in this namespace.
	bad := pod.DeepCopy()
	bad.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr(true)
	if _, err := e.cs.CoreV1().Pods(e.ns).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Fatalf("a pod allowing privilege escalation: got %v, want Forbidden by PodSecurity", err)
	}

	// A second apply is a no-op: the dry run returns each object exactly as
	// stored (server defaults are not drift), and the real apply keeps
	// every resourceVersion.
	dry := e.applyAll(ctx, t, o, ApplyOptions{DryRun: true})
	again := e.applyAll(ctx, t, o, ApplyOptions{})
	for key, l := range live {
		if d := diffObjects(l, dry[key]); d != "" {
			t.Errorf("%s: dry-run re-apply differs from the stored object: %s", key, d)
		}
		if again[key].GetResourceVersion() != l.GetResourceVersion() {
			t.Errorf("%s: re-apply changed resourceVersion %s → %s", key, l.GetResourceVersion(), again[key].GetResourceVersion())
		}
	}

	// A changed spec does show in the dry run.
	c2 := *e.c
	c2.Spec.ImageName = "localhost:5000/postgresql:15.20"
	o2, err := Render(&c2, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := Apply(ctx, e.dyn, o2.StatefulSet, ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if diffObjects(live["StatefulSet/web"], u) == "" {
		t.Error("an image change shows no difference in the dry run")
	}
	if got, _ := e.cs.AppsV1().StatefulSets(e.ns).Get(ctx, "web", metav1.GetOptions{}); got.Spec.Template.Spec.Containers[0].Image != e.c.Spec.ImageName {
		t.Error("the dry run changed the stored StatefulSet")
	}
}

func secretData(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	list, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "pgsync.io/cluster=web"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range list.Items {
		out[s.Name] = string(s.Data["password"]) + string(s.Data[pc.CAKeyKey])
	}
	return out
}

// checkCA checks the cluster's CA: the Secret web-ca holds a CA
// certificate and its key, the ConfigMap web-ca publishes that
// certificate (and nothing else). It returns the published certificate.
func checkCA(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) string {
	t.Helper()
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "web-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := tlscert.Parse(tlscert.Pair{CertPEM: sec.Data[pc.CACertKey], KeyPEM: sec.Data[pc.CAKeyKey]})
	if err != nil || !cert.IsCA {
		t.Fatalf("Secret web-ca: %v (a CA: %v)", err, err == nil && cert.IsCA)
	}
	same(t, sec.Labels, map[string]string{"pgsync.io/cluster": "web", "app.kubernetes.io/managed-by": "pgsync"})
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "web-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != 1 || cm.Data[pc.CACertKey] != string(sec.Data[pc.CACertKey]) {
		t.Errorf("ConfigMap web-ca: keys %d, ca.crt the Secret's: %v; want exactly the CA certificate", len(cm.Data), cm.Data[pc.CACertKey] == string(sec.Data[pc.CACertKey]))
	}
	return cm.Data[pc.CACertKey]
}

// TestAPICA: a CA Secret someone else planted before the cluster exists is
// refused (it would decide whom every instance and client trusts) and
// nothing is published; once it is gone pgsync generates the CA and
// publishes its certificate, replacing a stale ConfigMap.
func TestAPICA(t *testing.T) {
	e := newAPIEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o, err := Render(e.c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, e.dyn, o.Params, ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	planted := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-ca", Namespace: e.ns},
		Data: map[string][]byte{pc.CACertKey: []byte("theirs"), pc.CAKeyKey: []byte("theirs")}}
	if _, err := e.cs.CoreV1().Secrets(e.ns).Create(ctx, planted, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stale := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-ca", Namespace: e.ns}, Data: map[string]string{pc.CACertKey: "stale"}}
	if _, err := e.cs.CoreV1().ConfigMaps(e.ns).Create(ctx, stale, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = EnsureSecrets(ctx, e.cs, e.c, rand.Reader, SecretPolicy{})
	var notOurs *NotOursError
	if !errors.As(err, &notOurs) || notOurs.Secret != "web-ca" {
		t.Fatalf("EnsureSecrets over a planted CA: %v; want a refusal naming web-ca", err)
	}
	if cm, _ := e.cs.CoreV1().ConfigMaps(e.ns).Get(ctx, "web-ca", metav1.GetOptions{}); cm.Data[pc.CACertKey] != "stale" {
		t.Error("the CA was published over a refused Secret")
	}
	if err := e.cs.CoreV1().Secrets(e.ns).Delete(ctx, "web-ca", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	created, err := EnsureSecrets(ctx, e.cs, e.c, rand.Reader, SecretPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, created, []string{"web-ca"})
	checkCA(ctx, t, e.cs, e.ns)
}

// diffObjects compares two stored objects, managedFields aside (a dry run
// reports the would-be apply time).
func diffObjects(a, b *unstructured.Unstructured) string {
	if a == nil || b == nil {
		return "missing"
	}
	x, y := a.DeepCopy(), b.DeepCopy()
	for _, u := range []*unstructured.Unstructured{x, y} {
		u.SetManagedFields(nil)
	}
	if !equality(x.Object, y.Object) {
		return fmt.Sprintf("\nstored:  %v\nre-apply: %v", x.Object, y.Object)
	}
	return ""
}

func equality(a, b map[string]any) bool {
	return fmt.Sprint(a) == fmt.Sprint(b) // fmt prints maps sorted by key
}

// TestAPISharedObjects: the instance manager's Updates of the Lease and
// the EndpointSlice survive pgsync's re-apply (even unforced: no
// conflict), and a new target is applied without touching the holder.
func TestAPISharedObjects(t *testing.T) {
	e := newAPIEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := Render(e.c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	e.applyAll(ctx, t, o, ApplyOptions{})

	// The manager takes the Lease and routes -rw, with plain Updates.
	leases := e.cs.CoordinationV1().Leases(e.ns)
	l, err := leases.Get(ctx, "web-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime, l.Spec.AcquireTime = ptr("web-0"), ptr(int32(15)), &now, &now
	l.Annotations["pgsync.io/system-identifier"] = "7400000000000000001"
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: "pgsync-instance"}); err != nil {
		t.Fatal(err)
	}
	slices := e.cs.DiscoveryV1().EndpointSlices(e.ns)
	es, err := slices.Get(ctx, "web-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, len(es.Endpoints), 0)
	es.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"198.18.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}}
	if _, err := slices.Update(ctx, es, metav1.UpdateOptions{FieldManager: "pgsync-instance"}); err != nil {
		t.Fatal(err)
	}

	// pgsync re-applies everything, unforced: no conflict, nothing undone.
	e.applyAll(ctx, t, o, ApplyOptions{})
	l, _ = leases.Get(ctx, "web-primary", metav1.GetOptions{})
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "web-0" || l.Annotations["pgsync.io/system-identifier"] == "" {
		t.Fatalf("re-apply undid the manager's Lease fields: %+v %v", l.Spec, l.Annotations)
	}
	es, _ = slices.Get(ctx, "web-rw", metav1.GetOptions{})
	if len(es.Endpoints) != 1 || es.Endpoints[0].Addresses[0] != "198.18.0.7" {
		t.Fatalf("re-apply undid the manager's endpoints: %+v", es.Endpoints)
	}

	// A switchover: the same apply with a new target moves only the target.
	o2, err := Render(e.c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, e.dyn, o2.Lease, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	l, _ = leases.Get(ctx, "web-primary", metav1.GetOptions{})
	same(t, l.Annotations[pc.AnnTargetPrimary], "web-1")
	same(t, *l.Spec.HolderIdentity, "web-0")
	same(t, TargetPrimary(e.c, l), "web-1")

	// Field ownership as stored: pgsync owns neither the holder nor the endpoints.
	for _, obj := range []runtime.Object{l, es} {
		m, _ := apimeta.Accessor(obj)
		for _, mf := range m.GetManagedFields() {
			if mf.Manager != pc.FieldManager {
				continue
			}
			raw := string(mf.FieldsV1.Raw)
			for _, bad := range []string{"holderIdentity", "renewTime", `"f:endpoints":`} {
				if strings.Contains(raw, bad) {
					t.Errorf("%s: pgsync owns %s: %s", m.GetName(), bad, raw)
				}
			}
		}
	}
}

// TestAPIRBAC: the ServiceAccount can do exactly what
// docs/instance-manager.md lists, and nothing else.
func TestAPIRBAC(t *testing.T) {
	e := newAPIEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := Render(e.c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	// A second cluster beside it: its objects are off limits.
	other := *e.c
	other.Metadata.Name = "other"
	o2, err := Render(&other, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "other-0"})
	if err != nil {
		t.Fatal(err)
	}
	e.applyAll(ctx, t, o, ApplyOptions{})
	e.applyAll(ctx, t, o2, ApplyOptions{})

	sa := "system:serviceaccount:" + e.ns + ":web"
	for _, tc := range []struct {
		group, resource, name, verb, subresource string
		ns                                       string
		allowed                                  bool
	}{
		{"coordination.k8s.io", "leases", "web-primary", "get", "", "", true},
		{"coordination.k8s.io", "leases", "web-primary", "list", "", "", true},
		{"coordination.k8s.io", "leases", "web-primary", "watch", "", "", true},
		{"coordination.k8s.io", "leases", "web-primary", "update", "", "", true},
		{"discovery.k8s.io", "endpointslices", "web-rw", "get", "", "", true},
		{"discovery.k8s.io", "endpointslices", "web-rw", "update", "", "", true},
		{"", "pods", "web-0", "get", "", "", true},
		{"", "pods", "web-0", "patch", "", "", true},
		{"", "pods", "web-2", "patch", "", "", true},
		{"", "events", "", "create", "", "", true},

		{"coordination.k8s.io", "leases", "web-primary", "delete", "", "", false},
		{"coordination.k8s.io", "leases", "web-primary", "patch", "", "", false},
		{"coordination.k8s.io", "leases", "other-primary", "get", "", "", false},
		{"coordination.k8s.io", "leases", "other-primary", "update", "", "", false},
		{"coordination.k8s.io", "leases", "", "list", "", "", false},
		{"coordination.k8s.io", "leases", "", "create", "", "", false},
		{"coordination.k8s.io", "leases", "web-primary", "get", "", "default", false},
		{"discovery.k8s.io", "endpointslices", "", "create", "", "", false},
		{"discovery.k8s.io", "endpointslices", "other-rw", "update", "", "", false},
		{"discovery.k8s.io", "endpointslices", "web-rw", "delete", "", "", false},
		{"", "pods", "", "list", "", "", false},
		{"", "pods", "", "watch", "", "", false},
		{"", "pods", "web-3", "patch", "", "", false},
		{"", "pods", "other-0", "patch", "", "", false},
		{"", "pods", "web-0", "delete", "", "", false},
		{"", "pods", "web-0", "create", "exec", "", false},
		{"", "secrets", "web-superuser", "get", "", "", false},
		{"", "secrets", "", "list", "", "", false},
		{"", "services", "web-rw", "update", "", "", false},
		{"", "configmaps", "web-params", "get", "", "", false},
		{"", "endpoints", "web-rw", "update", "", "", false},
		{"apps", "statefulsets", "web", "get", "", "", false},
		{"", "events", "", "list", "", "", false},
		{"", "events", "", "get", "", "", false},
		{"", "events", "web.1", "update", "", "", false},
		{"", "events", "", "create", "", "default", false},
	} {
		ns := tc.ns
		if ns == "" {
			ns = e.ns
		}
		name := fmt.Sprintf("%s %s/%s/%s in %s", tc.verb, tc.resource, tc.subresource, tc.name, ns)
		t.Run(name, func(t *testing.T) {
			sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
				User:   sa,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + e.ns, "system:authenticated"},
				ResourceAttributes: &authzv1.ResourceAttributes{Namespace: ns, Group: tc.group, Resource: tc.resource,
					Name: tc.name, Verb: tc.verb, Subresource: tc.subresource},
			}}
			got, err := e.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed != tc.allowed {
				t.Errorf("allowed = %v, want %v (%s)", got.Status.Allowed, tc.allowed, got.Status.Reason)
			}
		})
	}

	// The real requests the manager makes, as the ServiceAccount: the
	// informer's list+watch of the one Lease by field selector, its update.
	as := rest.CopyConfig(e.cfg)
	as.Impersonate = rest.ImpersonationConfig{UserName: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + e.ns, "system:authenticated"}}
	cs, err := kubernetes.NewForConfig(as)
	if err != nil {
		t.Fatal(err)
	}
	leases := cs.CoordinationV1().Leases(e.ns)
	sel := metav1.ListOptions{FieldSelector: "metadata.name=web-primary"}
	list, err := leases.List(ctx, sel)
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list the Lease by field selector: %v (%d items)", err, len(list.Items))
	}
	sel.ResourceVersion, sel.TimeoutSeconds = list.ResourceVersion, ptr(int64(1))
	w, err := leases.Watch(ctx, sel)
	if err != nil {
		t.Fatalf("watch the Lease by field selector: %v", err)
	}
	w.Stop()
	l := list.Items[0]
	l.Spec.HolderIdentity = ptr("web-0")
	if _, err := leases.Update(ctx, &l, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update the Lease: %v", err)
	}
	// Route: the EndpointSlice update and the role label patches.
	es, err := cs.DiscoveryV1().EndpointSlices(e.ns).Get(ctx, "web-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the EndpointSlice: %v", err)
	}
	es.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"198.18.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}}
	if _, err := cs.DiscoveryV1().EndpointSlices(e.ns).Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update the EndpointSlice: %v", err)
	}
	for _, name := range []string{"web-0", "other-0"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Spec: *o.StatefulSet.Spec.Template.Spec.DeepCopy()}
		pod.Spec.ServiceAccountName = strings.TrimSuffix(name, "-0")
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "pgdata", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pgdata-" + name}}})
		if _, err := e.cs.CoreV1().Pods(e.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}
	patch := []byte(`{"metadata":{"labels":{"pgsync.io/role":"primary"}}}`)
	if _, err := cs.CoreV1().Pods(e.ns).Patch(ctx, "web-0", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("label web-0: %v", err)
	}
	if _, err := cs.CoreV1().Pods(e.ns).Patch(ctx, "other-0", types.MergePatchType, patch, metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("label another cluster's pod: got %v, want Forbidden", err)
	}
	if _, err := leases.List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list every Lease: got %v, want Forbidden", err)
	}
	if _, err := cs.CoreV1().Secrets(e.ns).Get(ctx, "web-superuser", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get a Secret: got %v, want Forbidden", err)
	}
}

// TestAPISecretsNotAdopted: a new cluster never takes over a credential
// Secret pgsync did not create — whoever created it first chose the
// password — unless the Cluster file says to adopt it; Secrets pgsync
// created are kept across an interrupted apply (recorded on NAME-params),
// and an established cluster keeps whatever it has.
func TestAPISecretsNotAdopted(t *testing.T) {
	e := newAPIEnv(t, 1)
	e.c.Spec.EnableSuperuserAccess = ptr(true) // pgsync generates web-superuser
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o, err := Render(e.c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, e.dyn, o.Params, ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	// Someone creates the superuser's Secret before the cluster exists, with
	// pgsync's labels (labels prove nothing: anyone who creates may set them).
	planted := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-superuser", Namespace: e.ns,
		Labels: map[string]string{pc.LabelManagedBy: pc.ManagedBy, pc.LabelCluster: "web"}},
		Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "postgres", "password": "chosen-by-someone-else"}}
	if _, err := e.cs.CoreV1().Secrets(e.ns).Create(ctx, planted, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := secretData(ctx, t, e.cs, e.ns)
	_, err = EnsureSecrets(ctx, e.cs, e.c, rand.Reader, SecretPolicy{})
	var notOurs *NotOursError
	if !errors.As(err, &notOurs) || notOurs.Secret != "web-superuser" || !strings.Contains(err.Error(), "pgsync did not create it") ||
		!strings.Contains(err.Error(), "kubectl -n "+e.ns+" delete secret web-superuser") || !strings.Contains(err.Error(), `pgsync.io/adopt-secrets: "true"`) {
		t.Fatalf("EnsureSecrets over a planted Secret: %v; want a refusal saying how to delete or adopt it", err)
	}
	if strings.Contains(err.Error(), "chosen-by-someone-else") {
		t.Errorf("the error shows a password: %v", err)
	}
	same(t, secretData(ctx, t, e.cs, e.ns), before)

	// Adopted on purpose: the planted one kept as it is, the others created,
	// all three recorded.
	adopting := *e.c
	adopting.Metadata.Annotations = map[string]string{"pgsync.io/adopt-secrets": "true"}
	created, err := EnsureSecrets(ctx, e.cs, &adopting, rand.Reader, SecretPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, created, []string{"web-app", "web-ca"})
	if got := secretData(ctx, t, e.cs, e.ns)["web-superuser"]; got != before["web-superuser"] {
		t.Errorf("the adopted Secret changed")
	}
	cm, err := e.cs.CoreV1().ConfigMaps(e.ns).Get(ctx, "web-params", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.Annotations["pgsync.io/secrets-created"]; got != "web-app,web-ca,web-superuser" {
		t.Errorf("recorded %q", got)
	}
	// An interrupted apply resumes: recorded Secrets are pgsync's, even
	// without the annotation; re-applying the ConfigMap keeps the record.
	if _, err := Apply(ctx, e.dyn, o.Params, ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if created, err := EnsureSecrets(ctx, e.cs, e.c, rand.Reader, SecretPolicy{}); err != nil || len(created) != 0 {
		t.Fatalf("resumed EnsureSecrets: created %v, err %v", created, err)
	}

	// Established: an unrecorded Secret of a running cluster is kept.
	if _, err := e.cs.CoreV1().ConfigMaps(e.ns).Patch(ctx, "web-params", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"pgsync.io/secrets-created":null}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureSecrets(ctx, e.cs, e.c, rand.Reader, SecretPolicy{}); !errors.As(err, &notOurs) {
		t.Fatalf("without the record: %v, want a refusal", err)
	}
	if _, err := EnsureSecrets(ctx, e.cs, e.c, rand.Reader, SecretPolicy{Established: true}); err != nil {
		t.Fatalf("established: %v", err)
	}
}
