package apply

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWithCertificateSecrets: a scheduled pod whose containers have not
// started names the spec.certificates Secrets it mounts; a pod without
// them, unscheduled, or whose containers ran, is left as it was.
func TestWithCertificateSecrets(t *testing.T) {
	pod := func(phase corev1.PodPhase, sched corev1.ConditionStatus, st ...corev1.ContainerState) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop"},
			Status: corev1.PodStatus{Phase: phase, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: sched}}}}
		for _, s := range st {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: "postgres", State: s})
		}
		return p
	}
	creating := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	secrets := []string{"my-ca", "my-tls"}
	for _, tt := range []struct {
		name    string
		p       *corev1.Pod
		secrets []string
		named   bool
	}{
		{"held by the kubelet", pod(corev1.PodPending, corev1.ConditionTrue, creating), secrets, true},
		{"no statuses yet", pod(corev1.PodPending, corev1.ConditionTrue), secrets, true},
		{"no Secrets of the user's", pod(corev1.PodPending, corev1.ConditionTrue, creating), nil, false},
		{"not scheduled", pod(corev1.PodPending, corev1.ConditionFalse), secrets, false},
		{"running", pod(corev1.PodRunning, corev1.ConditionTrue, running), secrets, false},
	} {
		got := withCertificateSecrets("pod web-0 is not Ready (phase Pending)", tt.p, tt.secrets)
		want := "pod web-0 is not Ready (phase Pending)"
		if tt.named {
			want += "; its containers have not started: it mounts the Secrets my-ca, my-tls of spec.certificates (not optional), and the kubelet holds the pod while one is missing or lacks a key (ca.crt, ca.key, tls.crt, tls.key; its FailedMount Events say which: kubectl -n shop describe pod web-0)"
		}
		if got != want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.name, got, want)
		}
		if tt.named && !strings.Contains(got, "my-tls") {
			t.Errorf("%s: the Secret is not named", tt.name)
		}
	}
}
