package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
)

// replaceService carries out updateStrategy replace for an additional
// Service (docs/objects.md): when the live Service differs from what
// pgsync renders (a dry-run apply would change it, or is refused: an
// immutable field such as loadBalancerClass), it is deleted and, once
// gone, the caller's apply creates it anew. An unchanged or missing one
// is left to the apply.
func (e *Executor) replaceService(ctx context.Context, want *corev1.Service) error {
	drift, err := observe.ObjectDrift(ctx, e.Dynamic, want)
	if err != nil {
		return fmt.Errorf("Service %s/%s: %w", want.Namespace, want.Name, err)
	}
	if len(drift) == 0 || slices.ContainsFunc(drift, func(d string) bool { return strings.HasSuffix(d, ": missing") }) {
		return nil
	}
	svcs := e.Client.CoreV1().Services(want.Namespace)
	live, err := svcs.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("Service %s/%s: %w", want.Namespace, want.Name, err)
	}
	e.logf("re-create Service (updateStrategy replace)", "service", want.Namespace+"/"+want.Name, "changed", strings.Join(drift, ", "))
	if err := svcs.Delete(ctx, want.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &live.UID}}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("re-create Service %s/%s: delete: %w", want.Namespace, want.Name, err)
	}
	return e.wait(ctx, "Service "+want.Name+" is deleted", func(ctx context.Context) (bool, string, error) {
		got, err := svcs.Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return true, "", nil
		case err != nil:
			return false, "", err
		case got.UID != live.UID:
			return true, "", nil // created again already (another apply)
		}
		return false, "Service still exists", nil
	})
}

// pruneServices deletes the Services labelled as the cluster's (pgsync's
// ownership labels) that spec no longer renders: a default one
// spec.managed.services disables, an additional one removed from Git.
func (e *Executor) pruneServices(ctx context.Context, spec *cluster.Cluster) error {
	keep := spec.ServiceNames()
	return e.deleteServices(ctx, spec, func(name string) bool { return !slices.Contains(keep, name) })
}

// deleteServices deletes the cluster's Services for which del is true.
func (e *Executor) deleteServices(ctx context.Context, spec *cluster.Cluster, del func(string) bool) error {
	ns := spec.Metadata.Namespace
	svcs := e.Client.CoreV1().Services(ns)
	list, err := svcs.List(ctx, metav1.ListOptions{LabelSelector: kube.ServiceSelector(spec.Metadata.Name)})
	if err != nil {
		return fmt.Errorf("list Services of %s: %w", spec.Key(), err)
	}
	for _, s := range list.Items {
		if !del(s.Name) {
			continue
		}
		uid := s.UID
		if err := svcs.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete Service %s/%s of %s: %w", ns, s.Name, spec.Key(), err)
		}
	}
	return nil
}
