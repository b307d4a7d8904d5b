package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The provisioner of StorageClass `standard`: a directory per volume under
// the state directory, exposed as a `local` PersistentVolume pinned to the
// node. It provisions claims the PV controller hands to it (after the
// scheduler picked the node: WaitForFirstConsumer), deletes released volumes
// whose policy is Delete, and grows volumes (a directory has no size, so
// expansion only records the new capacity). It polls every second: the
// cluster is small and a poll cannot miss an event.

const (
	annStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	annSelectedNode       = "volume.kubernetes.io/selected-node"
	annProvisionedBy      = "pv.kubernetes.io/provisioned-by"
)

func timeAfter() <-chan time.Time { return time.After(time.Second) }

func runProvisioner(ctx context.Context, cs kubernetes.Interface, p paths) {
	log := slog.With("component", "provisioner")
	for {
		if err := provisionOnce(ctx, cs, p); err != nil && ctx.Err() == nil {
			log.Error("pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-timeAfter():
		}
	}
}

func provisionOnce(ctx context.Context, cs kubernetes.Interface, p paths) error {
	classes, err := cs.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list StorageClasses: %w", err)
	}
	ours := map[string]storagev1.StorageClass{}
	for _, c := range classes.Items {
		if c.Provisioner == provisionerName {
			ours[c.Name] = c
		}
	}
	pvcs, err := cs.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list PersistentVolumeClaims: %w", err)
	}
	pvs, err := cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list PersistentVolumes: %w", err)
	}
	pvByName := map[string]corev1.PersistentVolume{}
	for _, pv := range pvs.Items {
		pvByName[pv.Name] = pv
	}
	for _, pvc := range pvcs.Items {
		switch {
		case pvc.Status.Phase == corev1.ClaimPending && pvc.Annotations[annStorageProvisioner] == provisionerName:
			class, ok := ours[deref(pvc.Spec.StorageClassName)]
			if !ok {
				continue
			}
			if class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer &&
				pvc.Annotations[annSelectedNode] == "" {
				continue
			}
			if _, exists := pvByName["pvc-"+string(pvc.UID)]; exists {
				continue
			}
			if err := provision(ctx, cs, p, pvc, class); err != nil {
				slog.Error("provision", "claim", pvc.Namespace+"/"+pvc.Name, "err", err)
			}
		case pvc.Status.Phase == corev1.ClaimBound:
			pv, ok := pvByName[pvc.Spec.VolumeName]
			if !ok || pv.Annotations[annProvisionedBy] != provisionerName {
				continue
			}
			if err := expand(ctx, cs, pvc, pv); err != nil {
				slog.Error("expand", "claim", pvc.Namespace+"/"+pvc.Name, "err", err)
			}
		}
	}
	for _, pv := range pvs.Items {
		if pv.Annotations[annProvisionedBy] == provisionerName && pv.Status.Phase == corev1.VolumeReleased &&
			pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete {
			if err := deleteVolume(ctx, cs, p, pv); err != nil {
				slog.Error("delete volume", "pv", pv.Name, "err", err)
			}
		}
	}
	return nil
}

func provision(ctx context.Context, cs kubernetes.Interface, p paths, pvc corev1.PersistentVolumeClaim, class storagev1.StorageClass) error {
	name := "pvc-" + string(pvc.UID)
	dir := filepath.Join(p.volumesDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	mode := corev1.PersistentVolumeFilesystem
	size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{annProvisionedBy: provisionerName},
			Labels:      map[string]string{"app.kubernetes.io/managed-by": managedBy},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			VolumeMode:                    &mode,
			MountOptions:                  class.MountOptions,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID, ResourceVersion: pvc.ResourceVersion,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{nodeName},
				}}}},
			}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create PersistentVolume %s: %w", name, err)
	}
	slog.Info("provisioned", "claim", pvc.Namespace+"/"+pvc.Name, "pv", name, "size", size.String())
	return nil
}

// expand grows a bound volume whose claim asks for more (the external-resizer
// side of volume expansion): the PV's capacity, then the claim's status.
func expand(ctx context.Context, cs kubernetes.Interface, pvc corev1.PersistentVolumeClaim, pv corev1.PersistentVolume) error {
	want := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	have := pv.Spec.Capacity[corev1.ResourceStorage]
	if want.Cmp(have) > 0 {
		pv.Spec.Capacity[corev1.ResourceStorage] = want
		if _, err := cs.CoreV1().PersistentVolumes().Update(ctx, &pv, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("grow PersistentVolume %s: %w", pv.Name, err)
		}
		have = want
	}
	status := pvc.Status.Capacity[corev1.ResourceStorage]
	if have.Cmp(status) <= 0 {
		return nil
	}
	pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: have.DeepCopy()}
	pvc.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: have.DeepCopy()}
	pvc.Status.AllocatedResourceStatuses = nil
	pvc.Status.Conditions = nil
	if _, err := cs.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, &pvc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("record the new size of %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	slog.Info("expanded", "claim", pvc.Namespace+"/"+pvc.Name, "size", have.String())
	return nil
}

func deleteVolume(ctx context.Context, cs kubernetes.Interface, p paths, pv corev1.PersistentVolume) error {
	if pv.Spec.Local == nil || filepath.Dir(pv.Spec.Local.Path) != p.volumesDir() {
		return fmt.Errorf("volume path %v is not under %s", pv.Spec.Local, p.volumesDir())
	}
	if err := os.RemoveAll(pv.Spec.Local.Path); err != nil {
		return fmt.Errorf("remove %s: %w", pv.Spec.Local.Path, err)
	}
	if err := cs.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete PersistentVolume %s: %w", pv.Name, err)
	}
	slog.Info("deleted", "pv", pv.Name)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
