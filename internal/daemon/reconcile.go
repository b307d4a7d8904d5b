package daemon

import (
	"context"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// WatchReconcile calls trigger whenever the pgsync.io/reconcile annotation
// of a managed cluster's StatefulSet (in namespace, "" for all) takes a new
// value — `pgsync reconcile NS/NAME`, or kubectl annotate — until ctx ends.
// It watches through an informer (one List, then a watch), so asking costs
// the API server nothing per cycle. The caller (the leader) runs it.
func WatchReconcile(ctx context.Context, client kubernetes.Interface, namespace string, trigger func(), log *slog.Logger) error {
	f := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = pc.LabelManagedBy + "=" + pc.ManagedBy }))
	inf := f.Apps().V1().StatefulSets().Informer()
	if _, err := inf.AddEventHandler(ReconcileHandler(trigger, log)); err != nil {
		return err
	}
	f.Start(ctx.Done())
	<-ctx.Done()
	f.Shutdown()
	return nil
}

// ReconcileHandler is WatchReconcile's event handler, for an informer of
// managed StatefulSets the caller already runs (observe.Watch's).
func ReconcileHandler(trigger func(), log *slog.Logger) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			before, ok1 := oldObj.(*appsv1.StatefulSet)
			after, ok2 := newObj.(*appsv1.StatefulSet)
			if !ok1 || !ok2 {
				return
			}
			if v := after.Annotations[pc.AnnReconcile]; v != "" && v != before.Annotations[pc.AnnReconcile] {
				log.Info("reconcile requested", "cluster", after.Namespace+"/"+after.Name, "value", v)
				trigger()
			}
		},
	}
}
