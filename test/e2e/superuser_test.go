package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/test/clusterfile"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestSuperuserRealPods: a cluster that does not write
// enableSuperuserAccess (CloudNativePG's default, false) bootstraps and
// runs in real pods — the manager logs in by peer authentication as the
// image's postgres user — generates no NAME-superuser, and refuses a
// remote superuser login by pg_hba; turned on, pgsync generates
// NAME-superuser, whose password reaches the running pod through its
// optional projection and logs in, nothing restarting; a new password in
// the Secret logs in too.
func TestSuperuserRealPods(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	ctx, env, repo := websiteTest(t, 15*time.Minute)
	cs, ns := env.Client, env.Namespace
	file := func(access bool) string {
		return clusterfile.Cluster{Name: "website", Namespace: ns, Image: image1518, Instances: 1,
			Description: "Cluster for the website", NoSuperuserAccess: !access}.YAML()
	}
	createWebsite(ctx, t, env, repo, file(false), "website, superuser access by default (off)")
	if _, err := cs.CoreV1().Secrets(ns).Get(ctx, "website-superuser", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Secret website-superuser: %v, want none while the superuser has no access", err)
	}
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip, uid := pod.Status.PodIP, pod.UID
	login := func(password string) error {
		conn, err := pgx.Connect(ctx, dsn(ip, "postgres", password, "postgres"))
		if err == nil {
			conn.Close(ctx)
		}
		return err
	}
	if err := login("any-password"); err == nil || !strings.Contains(err.Error(), "pg_hba.conf rejects") {
		t.Fatalf("a remote superuser login with access off: %v, want refused by pg_hba.conf", err)
	} else {
		t.Logf("access off: %v", err)
	}

	repo.commit(file(true), "superuser access on")
	if out, code := pgsyncApply(ctx, t, env, repo); code != 0 || strings.Contains(out, "restart-instance") {
		t.Fatalf("apply (access on) exited %d, want 0 and no restart:\n%s", code, out)
	}
	waitLogin := func(password string) {
		t.Helper()
		start := time.Now()
		deadline := start.Add(4 * time.Minute) // the kubelet's sync of the projection
		var err error
		for time.Now().Before(deadline) {
			if err = login(password); err == nil {
				t.Logf("logged in as the superuser %s after waiting", time.Since(start).Round(time.Second))
				return
			}
			time.Sleep(2 * time.Second)
		}
		t.Fatalf("the superuser cannot log in with website-superuser's password: %v", err)
	}
	waitLogin(kubeenv.SecretPassword(ctx, t, cs, ns, "website-superuser"))

	s, err := cs.CoreV1().Secrets(ns).Get(ctx, "website-superuser", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data["password"] = []byte("website-super-Pa55word-2")
	if _, err := cs.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLogin("website-super-Pa55word-2")
	if p, err := cs.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{}); err != nil || p.UID != uid {
		t.Errorf("website-0 was re-created (%v)", err)
	} else if n := p.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("website-0's postgres container restarted %d times", n)
	}
}
