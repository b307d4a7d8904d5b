package statusview_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
	"github.com/pgsync/pgsync/internal/statusview"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

const clustersYAML = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: web, namespace: shop}
spec:
  imageName: localhost:5000/postgresql:15.18
  instances: 3
  storage: {size: 1Gi}
---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: blog, namespace: media}
spec:
  imageName: localhost:5000/postgresql:15.18
  instances: 1
  storage: {size: 2Gi}
`

// fleet is two clusters as observe would report them: media/blog
// converged; shop/web with a lagging standby that waits for a restart, a
// pod missing in the middle (down, so planned as a restart) and a volume
// being resized.
func fleet(t *testing.T) (*observe.Fleet, []*cluster.Cluster) {
	t.Helper()
	set, err := cluster.Load([]cluster.File{{Path: "c.yaml", Data: []byte(clustersYAML)}})
	if err != nil {
		t.Fatal(err)
	}
	blog, web := set.Clusters[0], set.Clusters[1]
	created := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	ready := func(name string, ordinal int, c *cluster.Cluster, st pc.Status) observe.Instance {
		return observe.Instance{Name: name, Ordinal: ordinal, PodExists: true, Phase: corev1.PodRunning,
			PodReady: true, Image: c.Spec.ImageName, Revision: revision.Restart(c), Created: created,
			Status: &st, Ready: true, Capacity: c.Spec.Storage.Size, Requested: c.Spec.Storage.Size}
	}
	blog0 := ready("blog-0", 0, blog, pc.Status{Role: pc.StatusPrimary, Timeline: 1, CurrentLSN: "0/3000060",
		ConfigRevision: revision.Config(blog), PendingRestart: []string{}})
	web0 := ready("web-0", 0, web, pc.Status{Role: pc.StatusPrimary, Timeline: 2, CurrentLSN: "0/5000000",
		ConfigRevision: revision.Config(web)})
	web0.Restarts = 1
	web0.Requested, web0.ResizePending = "2Gi", true
	web1 := ready("web-1", 1, web, pc.Status{Role: pc.StatusStandby, Timeline: 2, ReceivedLSN: "0/5000000",
		ReplayedLSN: "0/4000000", ConfigRevision: revision.Config(web), PendingRestart: []string{"shared_buffers", "max_connections"}})
	web1.LagBytes = 16 << 20
	web2 := observe.Instance{Name: "web-2", Ordinal: 2, NotReady: "pod missing", Capacity: "1Gi", Requested: "1Gi"}

	obs := func(c *cluster.Cluster, primary int, ins ...observe.Instance) plan.ObservedCluster {
		oc := plan.ObservedCluster{Spec: c, Primary: primary}
		for _, in := range ins {
			oi := plan.ObservedInstance{Ordinal: in.Ordinal, Image: in.Image, Revision: in.Revision,
				VolumeSize: in.Capacity, Ready: in.Ready, LagBytes: in.LagBytes}
			if in.Status != nil {
				oi.Config = in.Status.ConfigRevision
			}
			oc.Instances = append(oc.Instances, oi)
		}
		return oc
	}
	f := &observe.Fleet{Clusters: []observe.Cluster{
		{Observed: obs(blog, 0, blog0), Commit: "0123456789abcdef0123456789abcdef01234567",
			LeaseHolder: "blog-0", TargetPrimary: "blog-0", Instances: []observe.Instance{blog0}},
		{Observed: obs(web, 0, web0, web1, web2), LeaseHolder: "web-0", TargetPrimary: "web-0",
			Instances: []observe.Instance{web0, web1, web2}},
	}}
	return f, set.Clusters
}

func TestRender(t *testing.T) {
	f, want := fleet(t)
	p, err := plan.Make(want, f.Observed(), plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc := statusview.Build(f, p, "the spec last applied")

	// The document itself, beyond what the renderings show.
	if got := doc.Clusters[0]; !got.Converged || got.Next != nil {
		t.Errorf("media/blog: converged %v, next %+v; want converged", got.Converged, got.Next)
	}
	web := doc.Clusters[1]
	if web.Converged || web.Next == nil {
		t.Errorf("shop/web: converged %v, next %+v; want a next step (web-2 is down)", web.Converged, web.Next)
	}
	if in := web.Instances[2]; in.Phase != "Missing" || in.Role != "unknown" || in.Ready {
		t.Errorf("web-2 (no pod): %+v; want phase Missing, role unknown, not ready", in)
	}

	for _, tc := range []struct {
		file   string
		format statusview.Format
	}{
		{"table.txt", statusview.Table},
		{"wide.txt", statusview.Wide},
		{"status.json", statusview.JSON},
		{"status.yaml", statusview.YAML},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var buf bytes.Buffer
			if err := statusview.Render(&buf, doc, tc.format); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, buf.Bytes())
		})
	}

	// The JSON is the Document: it reads back to the same value (no field
	// lost on the way out).
	var buf bytes.Buffer
	if err := statusview.Render(&buf, doc, statusview.JSON); err != nil {
		t.Fatal(err)
	}
	var back statusview.Document
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(doc, back); d != "" {
		t.Errorf("JSON does not read back to the document (-built +read):\n%s", d)
	}
}

func TestRenderEmpty(t *testing.T) {
	doc := statusview.Build(&observe.Fleet{}, nil, "the spec last applied")
	var buf bytes.Buffer
	if err := statusview.Render(&buf, doc, statusview.Table); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "No clusters managed by pgsync found.\n"; got != want {
		t.Errorf("table of no cluster: %q, want %q", got, want)
	}
	buf.Reset()
	if err := statusview.Render(&buf, doc, statusview.JSON); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "{\n  \"clusters\": []\n}\n"; got != want {
		t.Errorf("JSON of no cluster: %q, want %q (an empty list, not null)", got, want)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]statusview.Format{"": statusview.Table, "wide": statusview.Wide, "json": statusview.JSON, "yaml": statusview.YAML} {
		if got, err := statusview.ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := statusview.ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml): no error")
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/statusview -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// TestRenderHalted: an instance that runs the new spec and is not ready
// holds the rollout — shown as waiting while the step is in progress, as
// halted once pgsync has marked it so — and never as converged.
func TestRenderHalted(t *testing.T) {
	f, want := fleet(t)
	blog := f.Clusters[0]
	in := &blog.Instances[0]
	in.Ready, in.PodReady, in.NotReady = false, false, "pod is not Ready (phase Pending)"
	blog.Observed.Instances[0].Ready = false
	f.Clusters = f.Clusters[:1]
	p, err := plan.Make(want[:1], f.Observed(), plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	render := func() (statusview.Cluster, string) {
		doc := statusview.Build(f, p, "the spec last applied")
		var buf bytes.Buffer
		if err := statusview.Render(&buf, doc, statusview.Table); err != nil {
			t.Fatal(err)
		}
		return doc.Clusters[0], buf.String()
	}
	c, table := render()
	if c.Converged || c.Holding != "blog-0" || c.Halted != "" {
		t.Fatalf("held cluster: converged %v, holding %q, halted %q; want held by blog-0, not halted, not converged", c.Converged, c.Holding, c.Halted)
	}
	if !strings.Contains(table, "Next: waiting — blog-0 runs the new spec and is not ready yet") || strings.Contains(table, "HALTED") {
		t.Errorf("table does not say the cluster waits for blog-0:\n%s", table)
	}
	if blog.StatefulSet == nil {
		blog.StatefulSet = &appsv1.StatefulSet{}
	}
	blog.StatefulSet.Annotations = map[string]string{pc.AnnHalted: "halted at restart-instance blog-0: not ready within 5m0s"}
	f.Clusters[0] = blog
	c, table = render()
	if c.Converged || c.Halted == "" {
		t.Fatalf("halted cluster: converged %v, halted %q; want halted, not converged", c.Converged, c.Halted)
	}
	if !strings.Contains(table, "HALTED: halted at restart-instance blog-0: not ready within 5m0s") {
		t.Errorf("table does not say the cluster is halted:\n%s", table)
	}
}

// TestRenderWindow: a cluster whose restarts wait for a maintenance window
// says when it opens, in the table and the document.
func TestRenderWindow(t *testing.T) {
	f, want := fleet(t)
	f.Clusters = f.Clusters[:1]
	p, err := plan.Make(want[:1], f.Observed(), plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	p.Clusters[0].Window = &plan.WindowState{Schedule: "Sat 02:00-04:00 UTC", At: at,
		NextStart: time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC), NextEnd: time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)}
	doc := statusview.Build(f, p, "the spec last applied")
	var table, js bytes.Buffer
	if err := statusview.Render(&table, doc, statusview.Table); err != nil {
		t.Fatal(err)
	}
	if err := statusview.Render(&js, doc, statusview.JSON); err != nil {
		t.Fatal(err)
	}
	if line := "Window: maintenance window Sat 02:00-04:00 UTC: closed; restarts and switchovers wait until it opens Sat 2026-12-05 02:00 UTC (in 1d 16h 0m)"; !strings.Contains(table.String(), line) {
		t.Errorf("table lacks %q:\n%s", line, table.String())
	}
	if !strings.Contains(js.String(), `"nextStart": "2026-12-05T02:00:00Z"`) {
		t.Errorf("JSON lacks the window:\n%s", js.String())
	}
}

// TestRenderLastFailover: the failover recorded on the Lease shows in the
// table and the document.
func TestRenderLastFailover(t *testing.T) {
	f, want := fleet(t)
	f.Clusters = f.Clusters[:1]
	rec := pc.Failover{From: "blog-0", To: "blog-1", At: time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC),
		FromLSN: "0/3000200", PromotedLSN: "0/3000100", LostBytesAtLeast: 256, Timeline: 2}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	f.Clusters[0].Lease = &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{pc.AnnLastFailover: string(b)}}}
	p, err := plan.Make(want[:1], f.Observed(), plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc := statusview.Build(f, p, "the spec last applied")
	var table, js bytes.Buffer
	if err := statusview.Render(&table, doc, statusview.Table); err != nil {
		t.Fatal(err)
	}
	if err := statusview.Render(&js, doc, statusview.JSON); err != nil {
		t.Fatal(err)
	}
	if line := "Last failover: blog-0 → blog-1 at 2026-12-01 19:00:00 UTC (timeline 2); lost at least 256 bytes of WAL"; !strings.Contains(table.String(), line) {
		t.Errorf("table lacks %q:\n%s", line, table.String())
	}
	if !strings.Contains(js.String(), `"lostBytesAtLeast": 256`) {
		t.Errorf("JSON lacks the failover:\n%s", js.String())
	}
}
