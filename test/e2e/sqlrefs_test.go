package e2e

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/test/clusterfile"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestSQLRefsRealPods (spec.bootstrap.initdb.postInitApplicationSQLRefs):
// in a real pod the kubelet projects a Secret's and a ConfigMap's key, the
// ConfigMap created only while the primary already waits for it (the
// projection is optional: the pod starts, the manager names what is
// missing, the kubelet projects it later); the Secret's file runs before
// the ConfigMap's, in the application database.
func TestSQLRefsRealPods(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	ctx, env, repo := websiteTest(t, 15*time.Minute)
	cs, ns := env.Client, env.Namespace
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "website-sql"},
		StringData: map[string]string{"tables.sql": "CREATE TABLE ran (n serial, what text);\nINSERT INTO ran (what) VALUES ('secret');\n"}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	file := clusterfile.Cluster{Name: "website", Namespace: ns, Image: image1518, Instances: 1,
		Description: "Cluster for the website", Extra: `  bootstrap:
    initdb:
      postInitApplicationSQLRefs:
        secretRefs: [{name: website-sql, key: tables.sql}]
        configMapRefs: [{name: website-sql, key: rows.sql}]
`}.YAML()
	go func() {
		// The ConfigMap, once the primary says it waits for it.
		for ctx.Err() == nil {
			p, err := cs.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{})
			if err == nil && p.Status.Phase == corev1.PodRunning {
				time.Sleep(10 * time.Second)
				_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "website-sql"},
					Data: map[string]string{"rows.sql": "INSERT INTO ran (what) VALUES ('configmap');\nGRANT SELECT ON ran TO app;\n"}}, metav1.CreateOptions{})
				if err != nil {
					t.Errorf("create ConfigMap website-sql: %v", err)
				}
				return
			}
			time.Sleep(time.Second)
		}
	}()
	start := time.Now()
	createWebsite(ctx, t, env, repo, file, "website with post-init SQL from a Secret and a ConfigMap")
	t.Logf("created in %s (the ConfigMap came late)", time.Since(start).Round(time.Second))

	pod, err := cs.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conn := instConnect(ctx, t, dsn(pod.Status.PodIP, "app", kubeenv.SecretPassword(ctx, t, cs, ns, "website-app"), "app"))
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT what FROM ran ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			t.Fatal(err)
		}
		got = append(got, w)
	}
	if strings.Join(got, ",") != "secret,configmap" {
		t.Errorf("the application database ran %q, want the Secret's file, then the ConfigMap's", got)
	}
}
