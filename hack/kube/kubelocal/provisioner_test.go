package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/test/kubeenv"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }

// The provisioner against a real kube-apiserver. No PV controller runs there,
// so the test plays its part: it annotates the claim and marks volumes bound
// or released.
func TestProvisionerLifecycle(t *testing.T) {
	cfg := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := paths{state: t.TempDir()}
	if err := os.MkdirAll(p.volumesDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	bind := storagev1.VolumeBindingWaitForFirstConsumer
	reclaim := corev1.PersistentVolumeReclaimDelete
	expandable := true
	if _, err := cs.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "standard-" + ns}, Provisioner: provisionerName,
		VolumeBindingMode: &bind, ReclaimPolicy: &reclaim, AllowVolumeExpansion: &expandable,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	class := "standard-" + ns
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Annotations: map[string]string{annStorageProvisioner: provisionerName}},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pvName := "pvc-" + string(pvc.UID)
	pass := func() {
		t.Helper()
		if err := provisionOnce(ctx, cs, p); err != nil {
			t.Fatal(err)
		}
	}

	// WaitForFirstConsumer: nothing until the scheduler picked the node.
	pvc.Status.Phase = corev1.ClaimPending
	if pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pass()
	if _, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("provisioned before a node was selected: %v", err)
	}
	pvc.Annotations[annSelectedNode] = nodeName
	if pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pass()
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no volume after the node was selected: %v", err)
	}
	dir := filepath.Join(p.volumesDir(), pvName)
	if pv.Spec.Local == nil || pv.Spec.Local.Path != dir || pv.Spec.ClaimRef.UID != pvc.UID {
		t.Fatalf("volume %s: local %v, claimRef %v", pvName, pv.Spec.Local, pv.Spec.ClaimRef)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("volume directory: %v", err)
	}

	// Bound, then the claim asks for more: the volume and the claim's status grow.
	pvc.Spec.VolumeName = pvName
	if pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc.Status.Phase = corev1.ClaimBound
	pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	if pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("3Gi")
	if _, err = cs.CoreV1().PersistentVolumeClaims(ns).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pass()
	pv, _ = cs.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	got, _ := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	want := resource.MustParse("3Gi")
	if c := pv.Spec.Capacity[corev1.ResourceStorage]; c.Cmp(want) != 0 {
		t.Errorf("volume capacity %s, want 3Gi", c.String())
	}
	if c := got.Status.Capacity[corev1.ResourceStorage]; c.Cmp(want) != 0 {
		t.Errorf("claim status capacity %s, want 3Gi", c.String())
	}

	// Released with policy Delete: the directory and the volume go.
	pv.Status.Phase = corev1.VolumeReleased
	if _, err := cs.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pass()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("volume directory still there: %v", err)
	}
	// Without a controller-manager the pv-protection finalizer stays: the
	// volume is being deleted rather than gone.
	left, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	if err == nil && left.DeletionTimestamp == nil {
		t.Errorf("volume %s not deleted", pvName)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}
