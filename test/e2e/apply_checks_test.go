package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
)

// clusterSpec is a test Cluster file: the article's small cluster with
// what a test changes.
type clusterSpec struct {
	name, image string
	instances   int
	size        string            // default 1Gi
	params      map[string]string // besides max_connections and shared_buffers
	extra       string            // more spec lines, indented two spaces
}

// yaml writes enableSuperuserAccess: true, as test/clusterfile does: the
// checks inspect the clusters as the superuser (NAME-superuser).

func (c clusterSpec) yaml(ns string) string {
	params := map[string]string{"max_connections": `"50"`, "shared_buffers": "32MB"}
	for k, v := range c.params {
		params[k] = v
	}
	var lines []string
	for k, v := range params {
		lines = append(lines, fmt.Sprintf("      %s: %s\n", k, v))
	}
	sort.Strings(lines)
	size := c.size
	if size == "" {
		size = "1Gi"
	}
	return fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: %s
  namespace: %s
spec:
  imageName: %s
  instances: %d
  startDelay: 300
  stopDelay: 15
  storage:
    storageClass: standard
    size: %s
  postgresql:
    parameters:
%s  resources:
    requests: {cpu: 50m, memory: 128Mi}
  enableSuperuserAccess: true
%s`, c.name, ns, c.image, c.instances, size, strings.Join(lines, ""), c.extra)
}

// commitFiles writes (or, with "", removes) files next to the repo's
// Cluster file and commits them.
func (r *gitRepo) commitFiles(msg string, files map[string]string) {
	r.t.Helper()
	dir := filepath.Dir(r.file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Fatal(err)
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if content == "" {
			if err := os.Remove(path); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
}

// pgsyncCLI runs the real CLI with args and returns its output and exit
// code.
func pgsyncCLI(ctx context.Context, t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := osexec.CommandContext(ctx, insttest.Binary(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *osexec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("pgsync %s: %v", args[0], err)
	}
	return out.String(), 0
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func deref32(p *int32) int32 {
	if p == nil {
		return -1
	}
	return *p
}

type leaseState struct {
	holder      string
	transitions int32
}

func primaryLease(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) leaseState {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "website-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := leaseState{holder: deref(l.Spec.HolderIdentity)}
	if l.Spec.LeaseTransitions != nil {
		s.transitions = *l.Spec.LeaseTransitions
	}
	return s
}

func primaryOfCluster(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster string) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, cluster+"-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return deref(l.Spec.HolderIdentity)
}

// checkBudgets: the primary's disruption budget selects primary, the
// standbys' every other instance.
func checkBudgets(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster, primary string) {
	t.Helper()
	pdbs := cs.PolicyV1().PodDisruptionBudgets(ns)
	if p, err := pdbs.Get(ctx, cluster+"-primary", metav1.GetOptions{}); err != nil || p.Spec.Selector.MatchLabels[podcontract.LabelPodName] != primary {
		t.Errorf("PodDisruptionBudget %s-primary: %v, selector %v; want %s", cluster, err, p.Spec.Selector, primary)
	}
	if p, err := pdbs.Get(ctx, cluster+"-standby", metav1.GetOptions{}); err != nil || len(p.Spec.Selector.MatchExpressions) != 1 ||
		fmt.Sprint(p.Spec.Selector.MatchExpressions[0].Values) != "["+primary+"]" {
		t.Errorf("PodDisruptionBudget %s-standby: %v, selector %v; want all but %s", cluster, err, p.Spec.Selector, primary)
	}
}

// clusterPodUIDs maps each pod of cluster to its UID.
func clusterPodUIDs(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster string) map[string]types.UID {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + cluster})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]types.UID{}
	for _, p := range list.Items {
		out[p.Name] = p.UID
	}
	return out
}

// checkReplacedOnce: every pod of before has a new UID (the history test
// counts replacements; here the step's completion was waited for).
func checkReplacedOnce(t *testing.T, before, after map[string]types.UID) {
	t.Helper()
	for name, uid := range before {
		if after[name] == uid {
			t.Errorf("%s was not replaced", name)
		}
	}
}

// checkInstances: exactly the pods NAME-0 … NAME-(n-1), each Ready, at
// images[name] when given, primary the primary and every other a
// streaming standby, as their /status says.
func checkInstances(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster string, n int, primary string, images map[string]string) {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + cluster})
	if err != nil {
		t.Fatal(err)
	}
	var names, want []string
	for i := 0; i < n; i++ {
		want = append(want, fmt.Sprintf("%s-%d", cluster, i))
	}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		names = append(names, p.Name)
		if img, ok := images[p.Name]; ok && p.Spec.Containers[0].Image != img {
			t.Errorf("%s runs %s, want %s", p.Name, p.Spec.Containers[0].Image, img)
		}
		if !isReady(p) {
			t.Errorf("%s is not Ready (%s)", p.Name, podState(p))
			continue
		}
		st := instanceStatus(ctx, t, p.Status.PodIP)
		role := "standby"
		if p.Name == primary {
			role = "primary"
		}
		if st["role"] != role || (role == "standby" && st["streaming"] != true) {
			t.Errorf("%s: role %v streaming %v, want %s", p.Name, st["role"], st["streaming"], role)
		}
	}
	sort.Strings(names)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("pods of %s: %v, want %v", cluster, names, want)
	}
}

// checkCreatedAfterReady: pod later was created once pod earlier was Ready.
func checkCreatedAfterReady(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, earlier, later string) {
	t.Helper()
	e, err := cs.CoreV1().Pods(ns).Get(ctx, earlier, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := cs.CoreV1().Pods(ns).Get(ctx, later, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ready time.Time
	for _, c := range e.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = c.LastTransitionTime.Time
		}
	}
	if ready.IsZero() || l.CreationTimestamp.Time.Before(ready) {
		t.Errorf("%s created at %s, before %s was Ready (%s)", later, l.CreationTimestamp.Format(time.RFC3339), earlier, ready.Format(time.RFC3339))
	}
}

// checkClaims: the data claims of the ordinals exist with at least size.
func checkClaims(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster string, ordinals []int, size string) {
	t.Helper()
	want := resource.MustParse(size)
	for _, i := range ordinals {
		name := fmt.Sprintf("pgdata-%s-%d", cluster, i)
		pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("claim %s: %v", name, err)
			continue
		}
		if got := pvc.Status.Capacity[corev1.ResourceStorage]; got.Cmp(want) < 0 {
			t.Errorf("claim %s: capacity %s, want %s", name, got.String(), size)
		}
	}
}

// checkRows: the table written at the start has its n rows.
func checkRows(ctx context.Context, t *testing.T, dsn string, n int) {
	t.Helper()
	c := instConnect(ctx, t, dsn)
	defer c.Close(ctx)
	var got int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&got); err != nil || got != n {
		t.Errorf("rows of kept: %d (%v), want %d", got, err, n)
	}
}

func setting(ctx context.Context, t *testing.T, dsn, name string) string {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	var v string
	if err := c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
		t.Fatalf("current_setting(%s): %v", name, err)
	}
	return v
}
