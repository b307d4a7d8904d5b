package apply

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// podMonitorNotTakenOver refuses, before any object is applied, a
// PodMonitor of the cluster's name that pgsync does not own
// (CloudNativePG's docs tell users to create their own, named as the
// cluster): it is never taken over. Clusters without enablePodMonitor
// send no request.
func (e *Executor) podMonitorNotTakenOver(ctx context.Context, t Target, objs *kube.Objects) error {
	spec := t.spec()
	if objs.PodMonitor != nil {
		live, err := e.Dynamic.Resource(kube.PodMonitorResource).Namespace(spec.Metadata.Namespace).Get(ctx, objs.PodMonitor.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("get PodMonitor %s/%s: %w", spec.Metadata.Namespace, objs.PodMonitor.GetName(), err)
		}
		if l := live.GetLabels(); l[pc.LabelManagedBy] != pc.ManagedBy || l[pc.LabelCluster] != spec.Metadata.Name {
			return fmt.Errorf("refused to apply PodMonitor %s/%s (enablePodMonitor): one of that name exists and pgsync does not own it (not labelled %s=%s, %s=%s); delete it to have pgsync render its own, or set enablePodMonitor: false to keep yours",
				spec.Metadata.Namespace, live.GetName(), pc.LabelManagedBy, pc.ManagedBy, pc.LabelCluster, spec.Metadata.Name)
		}
	}
	return nil
}

// podMonitorBefore runs before obj is applied. Before the StatefulSet,
// whose applied-spec annotation records the spec: the PodMonitor of the
// spec applied last goes when the spec applied now has none, so an apply
// interrupted in between deletes it next time. Clusters without
// enablePodMonitor, before or now, send no request.
func (e *Executor) podMonitorBefore(ctx context.Context, t Target, objs *kube.Objects, obj runtime.Object) error {
	if obj == runtime.Object(objs.StatefulSet) && objs.PodMonitor == nil && t.Live != nil && t.Live.Observed.Spec.Spec.PodMonitorOn() {
		return e.deletePodMonitor(ctx, t.spec())
	}
	return nil
}

// deletePodMonitor deletes the cluster's PodMonitor if pgsync owns it; a
// missing one, or a missing kind (the CRD uninstalled), is fine.
func (e *Executor) deletePodMonitor(ctx context.Context, c *cluster.Cluster) error {
	pms := e.Dynamic.Resource(kube.PodMonitorResource).Namespace(c.Metadata.Namespace)
	name := kube.NamesOf(c).PodMonitor()
	live, err := pms.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("get PodMonitor %s/%s: %w", c.Metadata.Namespace, name, err)
	}
	if l := live.GetLabels(); l[pc.LabelManagedBy] != pc.ManagedBy || l[pc.LabelCluster] != c.Metadata.Name {
		return nil // someone else's: never pgsync's to delete
	}
	uid := live.GetUID()
	err = pms.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete PodMonitor %s/%s: %w", c.Metadata.Namespace, name, err)
	}
	return nil
}
