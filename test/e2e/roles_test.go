package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestApplyManagedRoles: spec.managed.roles on real pods. The role's
// password Secret, projected by the kubelet, lets it log in; a changed
// Secret reaches the running pod and becomes the password; a change of
// the role in Git is planned as a reload naming it and reaches the
// primary without a restart.
func TestApplyManagedRoles(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	ctx, env, repo := websiteTest(t, 15*time.Minute)
	cs, ns := env.Client, env.Namespace
	const pw1, pw2 = "dante-first-Pa55word", "dante-second-Pa55word"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "website-dante"}, Type: corev1.SecretTypeBasicAuth,
		Data: map[string][]byte{corev1.BasicAuthUsernameKey: []byte("dante"), corev1.BasicAuthPasswordKey: []byte(pw1)}}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	roles := func(createdb bool) string {
		c := "false"
		if createdb {
			c = "true"
		}
		return websiteYAML(ns, image1518, 1, "  managed:\n    roles:\n    - name: dante\n      login: true\n      createdb: "+c+
			"\n      inRoles: [pg_monitor]\n      passwordSecret: {name: website-dante}\n")
	}
	createWebsite(ctx, t, env, repo, roles(false), "website with a managed role")

	pod, err := cs.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip := pod.Status.PodIP
	waitLogin := func(password string) {
		t.Helper()
		deadline := time.Now().Add(4 * time.Minute)
		var err error
		for time.Now().Before(deadline) {
			var conn *pgx.Conn
			if conn, err = pgx.Connect(ctx, dsn(ip, "dante", password, "postgres")); err == nil {
				conn.Close(ctx)
				return
			}
			time.Sleep(2 * time.Second)
		}
		t.Fatalf("dante cannot log in with the Secret's password: %v\n/status: %v", err, instanceStatus(ctx, t, ip)["managedRoles"])
	}
	waitLogin(pw1)

	secret.Data[corev1.BasicAuthPasswordKey] = []byte(pw2)
	if _, err := cs.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLogin(pw2) // the kubelet rewrites the projected files, the manager the verifier

	repo.commit(roles(true), "dante may create databases")
	out, code := pgsyncApply(ctx, t, env, repo)
	if code != 0 || !strings.Contains(out, "managed role dante: createdb false → true") || strings.Contains(out, "restart-instance") {
		t.Fatalf("apply (role change) exited %d, want 0 with a reload naming the role and no restart:\n%s", code, out)
	}
	super := kubeenv.SecretPassword(ctx, t, cs, ns, "website-superuser")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		conn := instConnect(ctx, t, dsn(ip, "postgres", super, "postgres"))
		var createdb bool
		err := conn.QueryRow(ctx, `SELECT rolcreatedb FROM pg_roles WHERE rolname = 'dante'`).Scan(&createdb)
		conn.Close(context.Background())
		if err == nil && createdb {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dante's createdb = %v (%v) after the apply\n/status: %v", createdb, err, instanceStatus(ctx, t, ip)["managedRoles"])
		}
		time.Sleep(time.Second)
	}
	if p, err := cs.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{}); err != nil || p.UID != pod.UID {
		t.Errorf("the primary's pod was replaced by a role change (%v)", err)
	}
}
