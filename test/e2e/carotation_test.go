package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestCARotationRealPods: a CA generation pgsync creates reaches running
// pods through their optional projected source, as the kubelet brings it
// in: both instances see it and, as it is made valid at once here, issue
// from it by reload; no pod restarts, the standby streams on, and a
// client given the ConfigMap's bundle verifies the server.
func TestCARotationRealPods(t *testing.T) {
	t.Parallel()
	ctx, env, repo := websiteTest(t, 10*time.Minute)
	cs, ns := env.Client, env.Namespace
	doc := websiteYAML(ns, image1518, 2, "")
	createWebsite(ctx, t, env, repo, doc, "website, two instances")
	set, err := cluster.Load([]cluster.File{{Path: "website.yaml", Data: []byte(doc)}})
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]types.UID{}
	for _, name := range []string{"website-0", "website-1"} {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids[name] = p.UID
	}

	// As pgsync rotates, but a month earlier: generation 2 valid now.
	if err := kube.RotateCA(ctx, cs, set.Clusters[0], 2, time.Now().Add(-tlscert.SwitchAfter), rand.Reader); err != nil {
		t.Fatal(err)
	}
	for name := range uids {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"ca-rotation test"}}}`, pc.AnnConfigRequested)
		if _, err := cs.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name := range uids {
		var last string
		deadline := time.Now().Add(3 * time.Minute)
		for ; time.Now().Before(deadline); time.Sleep(time.Second) {
			p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ca, _ := instanceStatus(ctx, t, p.Status.PodIP)["ca"].(map[string]any)
			last = fmt.Sprint(ca)
			if ca["newest"] == 2.0 && ca["issuer"] == 2.0 && ca["mounted"] == float64(pc.CAGenerations) {
				break
			}
		}
		if !strings.Contains(last, "issuer:2") {
			t.Fatalf("%s's /status ca: %s; want generation 2 seen and issuing", name, last)
		}
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "website-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := tlscert.ParseBundle([]byte(cm.Data[pc.CACertKey]))
	if err != nil || len(certs) != 2 {
		t.Fatalf("website-ca's bundle: %d certificates, %v; want both generations", len(certs), err)
	}
	// Generation 2 alone: the server's certificate is issued from it.
	gen2 := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(gen2, tlscert.Bundle(certs[1:], time.Now()), 0o644); err != nil {
		t.Fatal(err)
	}
	app := kubeenv.SecretPassword(ctx, t, cs, ns, "website-app")
	primary := primaryOf(ctx, t, cs, ns)
	p, err := cs.CoreV1().Pods(ns).Get(ctx, primary, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=5432 user=app password=%s dbname=app sslmode=verify-full sslrootcert=%s connect_timeout=5",
		p.Status.PodIP, app, gen2))
	if err != nil {
		t.Errorf("verify-full against generation 2 alone: %v", err)
	} else {
		conn.Close(ctx)
	}
	for name, uid := range uids {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		restarts := int32(0)
		for _, s := range p.Status.ContainerStatuses {
			restarts += s.RestartCount
		}
		if p.UID != uid || restarts != 0 {
			t.Errorf("%s was re-created or restarted (uid %s → %s, %d restarts)", name, uid, p.UID, restarts)
		}
	}
	standby := "website-1"
	if primary == standby {
		standby = "website-0"
	}
	sp, err := cs.CoreV1().Pods(ns).Get(ctx, standby, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if st = instanceStatus(ctx, t, sp.Status.PodIP); st["streaming"] == true {
			break
		}
	}
	if st["streaming"] != true {
		t.Errorf("%s is not streaming after the rotation: %v", standby, st["lastError"])
	}
}
