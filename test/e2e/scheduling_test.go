package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSchedulingRealPods: a cluster writing CloudNativePG's pod placement
// and pulling fields — a PriorityClass, imagePullSecrets, a spread
// constraint over the cluster's own pods, node affinity, additional pod
// anti-affinity and a scratch size limit — runs in real pods that carry
// them (the scheduler placed them, the kubelet pulled with the Secret
// listed); changing the size limit re-creates the instance (a
// restart-instance step) and the new pod has the new limit.
func TestSchedulingRealPods(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	ctx, env, repo := websiteTest(t, 15*time.Minute)
	cs, ns := env.Client, env.Namespace
	class := ns + "-db"
	if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: class}, Value: 1000}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.SchedulingV1().PriorityClasses().Delete(ctx, class, metav1.DeleteOptions{})
	})
	file := func(limit string) string {
		return websiteYAML(ns, image1518, 1, fmt.Sprintf(`  priorityClassName: %s
  imagePullSecrets: [{name: registry-credentials}]
  ephemeralVolumesSizeLimit: {temporaryData: %s}
  topologySpreadConstraints:
    - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {pgsync.io/cluster: website}}}
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/os, operator: In, values: [linux]}]}]
    additionalPodAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - {weight: 10, podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {workload: batch}}}}
`, class, limit))
	}
	createWebsite(ctx, t, env, repo, file("1Gi"), "website with placement and pulling settings")
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(limit string) {
		t.Helper()
		s := pod.Spec
		if s.PriorityClassName != class || s.Priority == nil || *s.Priority != 1000 {
			t.Errorf("pod priority class %q, priority %v; want %s, 1000", s.PriorityClassName, s.Priority, class)
		}
		if len(s.ImagePullSecrets) != 1 || s.ImagePullSecrets[0].Name != "registry-credentials" {
			t.Errorf("pod imagePullSecrets %v", s.ImagePullSecrets)
		}
		if len(s.TopologySpreadConstraints) != 1 || s.Affinity == nil || s.Affinity.NodeAffinity == nil ||
			len(s.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 2 {
			t.Errorf("pod spread constraints %v, affinity %+v", s.TopologySpreadConstraints, s.Affinity)
		}
		for _, v := range s.Volumes {
			if e := v.EmptyDir; e != nil && (e.SizeLimit == nil || e.SizeLimit.String() != limit) {
				t.Errorf("emptyDir %s sizeLimit %v, want %s", v.Name, e.SizeLimit, limit)
			}
		}
		if pod.Spec.NodeName == "" {
			t.Error("pod not scheduled")
		}
	}
	check("1Gi")
	uid := pod.UID

	repo.commit(file("2Gi"), "a larger scratch limit")
	out, code := pgsyncApply(ctx, t, env, repo)
	if code != 0 || !strings.Contains(out, "restart-instance") || !strings.Contains(out, "ephemeralVolumesSizeLimit") {
		t.Fatalf("apply (new limit) exited %d, want 0 with a restart naming ephemeralVolumesSizeLimit:\n%s", code, out)
	}
	if pod, err = cs.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if pod.UID == uid {
		t.Error("website-0 was not re-created")
	}
	check("2Gi")
}
