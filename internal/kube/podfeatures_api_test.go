package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestAPIStorageAndPodFeatures: a cluster with walStorage, a pvcTemplate,
// probes and both security contexts renders a StatefulSet a real
// kube-apiserver accepts in a namespace enforcing PodSecurity
// `restricted`, with no warning, and a pod from its template (both claims
// as volumes, as the StatefulSet controller makes them) is admitted.
func TestAPIStorageAndPodFeatures(t *testing.T) {
	ns, cs, dyn, w := warnedClients(t)
	c := loadCluster(t, func(y string) string {
		return strings.Replace(withFeatures(y), "namespace: shop", "namespace: "+ns, 1)
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
		t.Errorf("API server warnings (PodSecurity restricted?): %q", got)
	}
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, o.StatefulSet.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(sts.Spec.VolumeClaimTemplates); n != 2 {
		t.Fatalf("stored StatefulSet has %d claim templates, want 2", n)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns, Labels: sts.Spec.Template.Labels},
		Spec:       *sts.Spec.Template.Spec.DeepCopy(),
	}
	for _, v := range []string{pc.DataVolume, pc.WALVolume} {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: v, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v + "-web-0"}}})
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("a pod from the template is not admitted: %v", err)
	}
	// What validation refuses is what PodSecurity refuses: the same pod with
	// seccomp Unconfined is Forbidden here.
	bad := pod.DeepCopy()
	bad.Spec.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
	bad.Spec.Containers[0].SecurityContext.SeccompProfile = nil
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Fatalf("a pod with seccomp Unconfined: got %v, want Forbidden by PodSecurity", err)
	}
}
