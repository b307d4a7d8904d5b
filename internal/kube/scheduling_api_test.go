package kube

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestAPIScheduling: a cluster setting imagePullSecrets, a priority
// class, a scheduler, spread constraints, node affinity, additional pod
// (anti-)affinity and a scratch size limit renders a StatefulSet a real
// kube-apiserver stores as rendered, with no warning, in a namespace
// enforcing PodSecurity restricted; a pod from its template is admitted
// (dry run: Priority admission resolves the class); the same pod naming a
// PriorityClass that does not exist is refused, as docs/compat.md says.
func TestAPIScheduling(t *testing.T) {
	ns, cs, dyn, w := warnedClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// PriorityClasses are cluster-wide: one of this test's own.
	class := ns + "-db"
	if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: class}, Value: 1000}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.SchedulingV1().PriorityClasses().Delete(context.Background(), class, metav1.DeleteOptions{})
	})
	c := loadCluster(t, func(y string) string {
		y = strings.Replace(withScheduling(y), "namespace: shop", "namespace: "+ns, 1)
		return strings.Replace(y, "priorityClassName: db-high", "priorityClassName: "+class, 1)
	})
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
	stored, want := sts.Spec.Template.Spec, o.StatefulSet.Spec.Template.Spec
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"imagePullSecrets", stored.ImagePullSecrets, want.ImagePullSecrets},
		{"priorityClassName", stored.PriorityClassName, class},
		{"schedulerName", stored.SchedulerName, want.SchedulerName},
		{"topologySpreadConstraints", stored.TopologySpreadConstraints, want.TopologySpreadConstraints},
		{"affinity", stored.Affinity, want.Affinity},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("stored %s %+v, want %+v", f.name, f.got, f.want)
		}
	}
	for _, v := range stored.Volumes {
		if e := v.EmptyDir; e != nil && (e.SizeLimit == nil || e.SizeLimit.String() != "256Mi") {
			t.Errorf("stored emptyDir %s sizeLimit %v, want 256Mi", v.Name, e.SizeLimit)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns, Labels: sts.Spec.Template.Labels},
		Spec:       *stored.DeepCopy(),
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: pc.DataVolume, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pc.DataVolume + "-web-0"}}})
	created, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatalf("a pod from the template is not admitted: %v", err)
	}
	if p := created.Spec.Priority; p == nil || *p != 1000 {
		t.Errorf("admitted pod's priority %v, want 1000 (the class's)", p)
	}
	if got := w.take(); len(got) != 0 {
		t.Errorf("API server warnings on the pod (PodSecurity restricted?): %q", got)
	}
	missing := pod.DeepCopy()
	missing.Spec.PriorityClassName = ns + "-none"
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, missing, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("a pod naming a PriorityClass that does not exist: got %v, want Forbidden", err)
	}
}
