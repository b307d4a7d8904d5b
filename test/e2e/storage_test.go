package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestStorageStandardDefaultExpandDelete checks the storage the local cluster
// promises, with the real controller-manager and kubelet: a claim that names
// no class gets the default class `standard`, binds once a pod uses it (a
// directory provisioned on the node), grows when the claim asks for more,
// and, with reclaim policy Delete, its volume and directory go when the
// claim is deleted.
func TestStorageStandardDefaultExpandDelete(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	env := kubeenv.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cs, ns := env.Client, env.Namespace

	sc, err := cs.StorageV1().StorageClasses().Get(ctx, "standard", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("StorageClass standard: %v", err)
	}
	if sc.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" || sc.AllowVolumeExpansion == nil || !*sc.AllowVolumeExpansion {
		t.Fatalf("StorageClass standard is not the default or not expandable: annotations %v, allowVolumeExpansion %v", sc.Annotations, sc.AllowVolumeExpansion)
	}

	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create claim: %v", err)
	}
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "standard" {
		t.Fatalf("claim without a class got class %v, want the default standard", pvc.Spec.StorageClassName)
	}

	yes, no := true, false
	uid := int64(26)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "user"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr(int64(1)),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "c", Image: image1518, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"bash", "-c", "echo kept >/data/f && exec sleep 3600"},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no, RunAsNonRoot: &yes,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "d", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"},
			}}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	waitFor(ctx, t, cs, ns, "the pod Ready", func() (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "user", metav1.GetOptions{})
		return err == nil && isReady(*p), err
	})
	pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimBound {
		t.Fatalf("claim %s while its pod runs, want Bound", pvc.Status.Phase)
	}
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Spec.Local == nil {
		t.Fatalf("volume %s is not a local directory: %+v", pv.Name, pv.Spec.PersistentVolumeSource)
	}
	dir := pv.Spec.Local.Path
	// The test runs on the node: the pod's write is in the volume's directory.
	if data, err := os.ReadFile(dir + "/f"); err != nil || string(data) != "kept\n" {
		t.Fatalf("the pod's file in %s: %q, %v", dir, data, err)
	}

	// Expansion through the real controller-manager: 1Gi -> 2Gi.
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("ask for 2Gi: %v", err)
	}
	want := resource.MustParse("2Gi")
	waitFor(ctx, t, cs, ns, "the claim to report 2Gi", func() (bool, error) {
		c, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got := c.Status.Capacity[corev1.ResourceStorage]
		return got.Cmp(want) == 0, nil
	})
	pv, err = cs.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(want) != 0 {
		t.Errorf("volume capacity %s after expansion, want 2Gi", got.String())
	}

	// Reclaim policy Delete: the pod, then the claim go; the volume and its
	// directory follow.
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "user", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, cs, ns, "the pod to go", func() (bool, error) {
		_, err := cs.CoreV1().Pods(ns).Get(ctx, "user", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err := cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, cs, ns, "the volume to be deleted", func() (bool, error) {
		_, err := cs.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("volume directory %s still there after the volume was deleted: %v", dir, err)
	}
}

// waitFor polls cond every second until it holds, failing the test with what
// it waited for when ctx ends.
func waitFor(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last error: %v; events: %s)", what, ctx.Err(), last, events(cs, ns))
		case <-time.After(time.Second):
		}
	}
}
