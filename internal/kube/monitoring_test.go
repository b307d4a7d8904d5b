package kube

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestRenderMetricsQueries: custom queries are projected, optional, into
// one volume mounted read-only at pc.MetricsQueriesDir, named to the
// manager in the order it reads them (ConfigMaps, then Secrets, each as
// listed); tls.enabled passes --metrics-tls; without them the pod is as
// before.
func TestRenderMetricsQueries(t *testing.T) {
	pod := func(extra string) corev1.PodSpec {
		return render(t, loadDoc(t, extra)).StatefulSet.Spec.Template.Spec
	}
	hasVolume := func(p corev1.PodSpec) bool {
		return slices.ContainsFunc(p.Volumes, func(v corev1.Volume) bool { return v.Name == pc.MetricsQueriesVolume }) ||
			slices.ContainsFunc(p.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == pc.MetricsQueriesVolume })
	}
	plain := pod("  monitoring: {}\n")
	if hasVolume(plain) || strings.Contains(strings.Join(plain.Containers[0].Args, " "), "metrics-queries") {
		t.Errorf("monitoring without custom queries: volumes %v, args %v", plain.Volumes, plain.Containers[0].Args)
	}
	p := pod(`  monitoring:
    customQueriesConfigMap:
      - {name: b-queries, key: custom-queries}
      - {name: a-queries, key: queries.yaml}
    customQueriesSecret:
      - {name: secret-queries, key: q}
    tls:
      enabled: true
`)
	var got []string
	for _, a := range p.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--"+pc.FlagMetricsQueries+"="); ok {
			got = append(got, v)
		}
	}
	want := []string{"configmap/b-queries/custom-queries", "configmap/a-queries/queries.yaml", "secret/secret-queries/q"}
	if !slices.Equal(got, want) {
		t.Errorf("--%s: %v, want %v", pc.FlagMetricsQueries, got, want)
	}
	if !slices.Contains(p.Containers[0].Args, "--"+pc.FlagMetricsTLS) {
		t.Errorf("tls.enabled: args %v", p.Containers[0].Args)
	}
	i := slices.IndexFunc(p.Volumes, func(v corev1.Volume) bool { return v.Name == pc.MetricsQueriesVolume })
	if i < 0 || p.Volumes[i].Projected == nil {
		t.Fatalf("no projected volume %s: %v", pc.MetricsQueriesVolume, p.Volumes)
	}
	v := p.Volumes[i].Projected
	if v.DefaultMode == nil || *v.DefaultMode != 0o440 || len(v.Sources) != 3 {
		t.Fatalf("volume %+v", v)
	}
	for j, s := range v.Sources {
		var name string
		var items []corev1.KeyToPath
		var optional *bool
		switch {
		case j < 2 && s.ConfigMap != nil:
			name, items, optional = s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional
		case j == 2 && s.Secret != nil:
			name, items, optional = s.Secret.Name, s.Secret.Items, s.Secret.Optional
		default:
			t.Fatalf("source %d: %+v", j, s)
		}
		key := strings.Split(want[j], "/")[2]
		if name != strings.Split(want[j], "/")[1] || len(items) != 1 || items[0].Key != key || items[0].Path != want[j] || optional == nil || !*optional {
			t.Errorf("source %d: %s %+v optional %v, want %s", j, name, items, optional, want[j])
		}
	}
	if !slices.ContainsFunc(p.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == pc.MetricsQueriesVolume && m.MountPath == pc.MetricsQueriesDir && m.ReadOnly
	}) {
		t.Errorf("mounts %v", p.Containers[0].VolumeMounts)
	}
}
