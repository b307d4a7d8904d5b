package daemon_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/apply"
	"github.com/pgsync/pgsync/internal/daemon"
	"github.com/pgsync/pgsync/internal/desired"
	"github.com/pgsync/pgsync/internal/imagegate"
	"github.com/pgsync/pgsync/internal/imagepolicy"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/clusterfile"
	"github.com/pgsync/pgsync/test/regtest"
)

// TestAPIDaemonImagePolicy: with an image policy the daemon checks the
// image every cycle against the local registry, nothing kept from the
// cycle before. A cluster running the digest its tag names is converged
// (the idle cycle plans nothing); the tag moved to another signed image,
// the cluster rolls to it at the next cycle, pinned in the StatefulSet
// (with the instance image); moved to an unsigned one, it is refused at
// the next cycle and nothing of it is stepped.
func TestAPIDaemonImagePolicy(t *testing.T) {
	regtest.Require(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	key := regtest.NewKey(t, dir, "test")
	repo := regtest.Repo(t) + "/postgresql"
	tag := repo + ":15.20"
	first := regtest.Push(t, tag)
	key.Sign(t, first)
	policyFile := filepath.Join(dir, "policy.yaml")
	policyYAML := fmt.Sprintf("apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [%q]\n  keys: [%s]\n- images: [\"%s/pgsync\"]\n  keys: [%s]\n",
		repo, key.Pub, regtest.Registry, regtest.SignKey)
	if err := os.WriteFile(policyFile, []byte(policyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := imagepolicy.Parse(policyFile, []byte(policyYAML))
	if err != nil {
		t.Fatal(err)
	}

	// Running as the daemon leaves it: pinned to the first digest.
	file := func(ns, image string) map[string]string {
		return map[string]string{"clusters/web.yaml": clusterfile.Cluster{Name: "web", Namespace: ns, Image: image, Instances: 1}.YAML()}
	}
	e := newFleetEnv(ctx, t, func(ns string) map[string]string { return file(ns, tag+"@"+first.DigestStr()) },
		map[string][]string{"web": {"127.0.13.1"}})
	e.repo.Write(file(e.ns, tag))
	e.repo.Commit("web: the tag alone", nil)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	status := observe.DirectStatus{Client: &http.Client{}, Port: e.srv.Port()}
	exec := &apply.Executor{Client: e.cs, Dynamic: e.dyn, Status: status, Random: rand.Reader, Log: log}
	run := &apply.Run{Exec: exec, Owner: "test"}
	clk := &clock{now: time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)}
	// Restarts are held: what matters is that they are planned.
	d := daemon.New(daemon.Config{Source: desired.Source{Repo: e.repo.Dir, Ref: "main", Path: "clusters"}, Namespace: e.ns,
		Owner: "test", StatusRefresh: 5 * time.Minute, MaxRolling: 1, Gate: holdStep(plan.StepRestartInstance),
		Images: &imagegate.Gate{Policy: pol}, InstanceImage: instanceImage},
		run, observe.Options{Status: status, StatusTimeout: time.Second}, log, clk.Now, mrand.New(mrand.NewPCG(1, 2)))
	w, err := observe.NewWatch(ctx, e.cs, e.md, e.ns, log)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	t.Cleanup(func() { stop(); w.Shutdown() })
	if err := w.Start(wctx); err != nil {
		t.Fatal(err)
	}
	d.Watch(w)

	web := e.ns + "/web"
	cycle := func(what string) daemon.ClusterReport {
		t.Helper()
		clk.Add(time.Minute)
		r := d.Cycle(ctx)
		if r.Err != "" {
			t.Fatalf("%s: cycle error %s", what, r.Err)
		}
		for _, c := range r.Clusters {
			if c.Cluster == web {
				return c
			}
		}
		t.Fatalf("%s: no report of %s: %+v", what, web, r)
		return daemon.ClusterReport{}
	}
	if c := cycle("the tag names the running digest"); c.Outcome != apply.Converged {
		t.Fatalf("first cycle: %+v", c)
	}
	if c := cycle("idle"); c.Outcome != apply.Converged {
		t.Fatalf("idle cycle: %+v", c)
	}
	next := regtest.Push(t, tag)
	key.Sign(t, next)
	if c := cycle("moved to a signed image"); c.Outcome != apply.Progressing || c.Step != string(plan.StepUpdateObjects) {
		t.Fatalf("a tag moved to a signed image: %+v", c)
	}
	sts, err := e.cs.AppsV1().StatefulSets(e.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inst := instanceImage + "@" + regtest.Digest(t, instanceImage)
	for _, ct := range sts.Spec.Template.Spec.Containers {
		if ct.Name == pc.ContainerPostgres && ct.Image != tag+"@"+next.DigestStr() {
			t.Errorf("postgres image %s, want %s", ct.Image, tag+"@"+next.DigestStr())
		}
	}
	for _, ct := range sts.Spec.Template.Spec.InitContainers {
		if ct.Name == pc.ContainerBootstrap && ct.Image != inst {
			t.Errorf("instance image %s, want %s", ct.Image, inst)
		}
	}
	if c := cycle("the restart onto it"); c.Outcome != apply.Waiting || c.Step != string(plan.StepRestartInstance)+" web-0" {
		t.Errorf("after the objects: %+v", c)
	}
	if sts, err = e.cs.AppsV1().StatefulSets(e.ns).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}

	regtest.Push(t, tag) // unsigned
	c := cycle("moved to an unsigned image")
	if c.Outcome != apply.Failed || !strings.Contains(c.Reason, "clusters/web.yaml") || !strings.Contains(c.Reason, "spec.imageName: refused by the image policy") ||
		!strings.Contains(c.Reason, "is not signed") || c.Step != "" {
		t.Fatalf("a tag moved to an unsigned image: %+v", c)
	}
	if after, err := e.cs.AppsV1().StatefulSets(e.ns).Get(ctx, "web", metav1.GetOptions{}); err != nil || after.ResourceVersion != sts.ResourceVersion {
		t.Errorf("a refused cluster's StatefulSet changed: %v", err)
	}
}
