package e2e

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestManagedServicesRealPods: spec.managed.services with real pods. An
// application pod writes through the additional rw Service (its own port
// 6432) and reads a standby through the additional ro one, while the
// disabled website-ro is gone; after a switchover the rw Service reaches
// the new primary; removed from Git, the additional Services are deleted
// and website-ro is back.
func TestManagedServicesRealPods(t *testing.T) {
	t.Parallel()
	ctx, env, repo := websiteTest(t, 15*time.Minute)
	cs, ns := env.Client, env.Namespace
	services := `  managed:
    services:
      disabledDefaultServices: [ro]
      additional:
      - selectorType: rw
        serviceTemplate:
          metadata: {name: website-writer}
          spec: {ports: [{port: 6432}]}
      - selectorType: ro
        serviceTemplate:
          metadata: {name: website-readers}
`
	createWebsite(ctx, t, env, repo, websiteYAML(ns, image1518, 2, services), "website with managed Services")
	if _, err := cs.CoreV1().Services(ns).Get(ctx, "website-ro", metav1.GetOptions{}); err == nil {
		t.Error("website-ro exists, but spec.managed.services disables it")
	}
	ips := websitePodIPs(ctx, t, cs, ns)
	waitStatusStreaming(ctx, t, ips["website-1"], "website-1")

	// Retried for a while: a Service's endpoints follow the pods'
	// readiness and role labels.
	through := func(name, sql string) string {
		t.Helper()
		script := "for i in $(seq 60); do out=$(psql \"host=" + sql + "\" 2>&1) && case \"$out\" in *want*) echo \"$out\"; exit 0;; esac; sleep 1; done; echo \"$out\""
		return strings.TrimSpace(runPodScript(ctx, t, cs, ns, name, script))
	}
	write := func(pod string) string {
		return through(pod, "website-writer port=6432 user=app dbname=app connect_timeout=5\" -v ON_ERROR_STOP=1 -qAtc \"CREATE TABLE IF NOT EXISTS svc_probe (i int); INSERT INTO svc_probe VALUES (1); SELECT 'primary ' || count(*) || ' want' FROM svc_probe")
	}
	if got := write("writer"); !strings.Contains(got, "primary 1 want") {
		t.Errorf("through website-writer:6432: %q, want a write on the primary", got)
	}
	got := through("reader", "website-readers user=app dbname=app connect_timeout=5\" -v ON_ERROR_STOP=1 -qAtc \"SELECT 'standby ' || pg_is_in_recovery() || ' want'")
	if !strings.Contains(got, "standby true want") {
		t.Errorf("through website-readers: %q, want a standby", got)
	}

	if out, code := pgsyncCLI(ctx, t, "switchover", ns+"/website", "--to", "website-1", "--kubeconfig", env.Kubeconfig); code != 0 {
		t.Fatalf("pgsync switchover exited %d:\n%s", code, out)
	}
	if p := primaryOf(ctx, t, cs, ns); p != "website-1" {
		t.Fatalf("primary after the switchover: %s, want website-1", p)
	}
	if got := write("writer-after"); !strings.Contains(got, "primary 2 want") {
		t.Errorf("through website-writer:6432 after the switchover: %q, want a write on the new primary", got)
	}

	repo.commit(websiteYAML(ns, image1518, 2, ""), "managed Services removed")
	if out, code := pgsyncApply(ctx, t, env, repo); code != 0 {
		t.Fatalf("apply (managed Services removed) exited %d:\n%s", code, out)
	}
	for _, n := range []string{"website-writer", "website-readers"} {
		if _, err := cs.CoreV1().Services(ns).Get(ctx, n, metav1.GetOptions{}); err == nil {
			t.Errorf("Service %s still exists after its removal from Git", n)
		}
	}
	if _, err := cs.CoreV1().Services(ns).Get(ctx, "website-ro", metav1.GetOptions{}); err != nil {
		t.Errorf("website-ro after managed.services is removed: %v", err)
	}
}
