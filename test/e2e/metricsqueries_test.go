package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/test/clusterfile"
)

// TestMetricsCustomQueriesRealPods (spec.monitoring.customQueriesConfigMap,
// tls.enabled): in a real pod the kubelet projects the ConfigMap's key,
// the manager serves its query's metric on :9187 over TLS (verified with
// the NAME-ca ConfigMap's CA), and a new version of the ConfigMap is
// served once the kubelet has updated the volume, with no restart.
func TestMetricsCustomQueriesRealPods(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	ctx, env, repo := websiteTest(t, 15*time.Minute)
	cs, ns := env.Client, env.Namespace
	queries := func(v int) map[string]string {
		return map[string]string{"custom-queries": "e2e_probe:\n  query: \"SELECT 'x' AS kind, " + strconv.Itoa(v) + " AS value\"\n" +
			"  metrics:\n    - kind: {usage: LABEL, description: a label}\n    - value: {usage: GAUGE, description: a value}\n"}
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "website-queries"},
		Data: queries(1)}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	file := clusterfile.Cluster{Name: "website", Namespace: ns, Image: image1518, Instances: 1,
		Description: "Cluster for the website", Extra: `  monitoring:
    customQueriesConfigMap:
      - {name: website-queries, key: custom-queries}
    tls:
      enabled: true
`}.YAML()
	createWebsite(ctx, t, env, repo, file, "website with custom metrics over TLS")

	pod, err := cs.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "website-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca.Data["ca.crt"])) {
		t.Fatal("website-ca holds no CA certificate")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + net.JoinHostPort(pod.Status.PodIP, "9187") + "/metrics"
	value := func() (string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), `cnpg_e2e_probe_value{kind="x"} `); ok {
				return v, nil
			}
		}
		return "", sc.Err()
	}
	wait := func(want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		var got string
		var err error
		for time.Now().Before(deadline) {
			if got, err = value(); err == nil && got == want {
				return
			}
			time.Sleep(2 * time.Second)
		}
		t.Fatalf("%s: cnpg_e2e_probe_value = %q (%v), want %s", url, got, err, want)
	}
	wait("1", time.Minute)
	restarts := pod.Status.ContainerStatuses[0].RestartCount

	// A new version of the ConfigMap: served once the kubelet brings it
	// into the volume (its periodic sync, a minute or two).
	start := time.Now()
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "website-queries", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = queries(2)
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("2", 4*time.Minute)
	t.Logf("the changed ConfigMap was served %s after the update", time.Since(start).Round(time.Second))
	pod, err = cs.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Status.ContainerStatuses[0].RestartCount; got != restarts || pod.Status.PodIP == "" {
		t.Errorf("the container restarted (%d → %d)", restarts, got)
	}
}
