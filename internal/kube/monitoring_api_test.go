package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestAPIMetricsQueries: the objects of a cluster with custom queries and
// TLS on /metrics are accepted by a real API server, with no warning, and
// a pod from the template — its metrics-queries projected volume, of
// ConfigMaps and a Secret that do not exist (optional) — is admitted
// under PodSecurity restricted.
func TestAPIMetricsQueries(t *testing.T) {
	ns, cs, dyn, w := warnedClients(t)
	c := loadCluster(t, func(y string) string {
		return strings.Replace(y, "namespace: shop", "namespace: "+ns, 1) + `  monitoring:
    customQueriesConfigMap:
      - {name: example-monitoring, key: custom-queries}
      - {name: more-queries, key: queries.yaml}
    customQueriesSecret:
      - {name: secret-queries, key: q}
    tls:
      enabled: true
`
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := render(t, c)
	for _, obj := range o.List() {
		if _, err := Apply(ctx, dyn, obj, ApplyOptions{}); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	if got := w.take(); len(got) != 0 {
		t.Errorf("API server warnings: %q", got)
	}
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, o.StatefulSet.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range sts.Spec.Template.Spec.Volumes {
		found = found || (v.Name == pc.MetricsQueriesVolume && v.Projected != nil && len(v.Projected.Sources) == 3)
	}
	if !found {
		t.Fatalf("stored StatefulSet has no projected %s volume of three sources: %v", pc.MetricsQueriesVolume, sts.Spec.Template.Spec.Volumes)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns, Labels: sts.Spec.Template.Labels},
		Spec:       *sts.Spec.Template.Spec.DeepCopy(),
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: pc.DataVolume, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pc.DataVolume + "-web-0"}}})
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("a pod from the template is not admitted: %v", err)
	}
}
