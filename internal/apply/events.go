package apply

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pgsync/pgsync/internal/observe"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
)

// Event reasons on a cluster's StatefulSet.
const (
	ReasonStepStarted  = "StepStarted"
	ReasonStepFinished = "StepFinished"
	ReasonHalted       = "Halted"
	ReasonOrphaned     = "Orphaned"
)

func (e *Executor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Executor) logf(msg string, args ...any) {
	if e.Log != nil {
		e.Log.Warn(msg, args...)
	}
}

// event records an Event on the cluster's StatefulSet; failing to record
// one never fails a step (it is logged).
func (e *Executor) event(ctx context.Context, live *observe.Cluster, eventType, reason, message string) {
	if live == nil || live.StatefulSet == nil {
		return
	}
	sts := live.StatefulSet
	now := metav1.NewTime(e.now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: sts.Name + ".", Namespace: sts.Namespace},
		InvolvedObject: corev1.ObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: sts.Name,
			Namespace: sts.Namespace, UID: sts.UID},
		Reason: reason, Message: truncate(message, 1024), Type: eventType,
		Source:         corev1.EventSource{Component: pc.FieldManager},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "pgsync.io/apply", ReportingInstance: "pgsync",
	}
	if _, err := e.Client.CoreV1().Events(sts.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		e.logf("record event", "reason", reason, "error", err.Error())
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// setHalted marks the cluster halted with why (an annotation status shows).
func (e *Executor) setHalted(ctx context.Context, live *observe.Cluster, why string) error {
	if live == nil || live.StatefulSet == nil {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, pc.AnnHalted, truncate(why, 1024))
	sts := live.StatefulSet
	_, err := e.Client.AppsV1().StatefulSets(sts.Namespace).Patch(ctx, sts.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: patchManager})
	return err
}

// clearHalted removes the halt marker once a new spec is applied.
func (e *Executor) clearHalted(ctx context.Context, t Target) error {
	if t.Live == nil || t.Live.StatefulSet == nil || t.Live.StatefulSet.Annotations[pc.AnnHalted] == "" || t.Desired == nil {
		return nil
	}
	// Only a new spec lifts the halt: re-applying the halted one (drift,
	// a new commit with the same spec) keeps the marker.
	if revision.Restart(t.Desired) == revision.Restart(t.Live.Observed.Spec) {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, pc.AnnHalted)
	sts := t.Live.StatefulSet
	_, err := e.Client.AppsV1().StatefulSets(sts.Namespace).Patch(ctx, sts.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: patchManager})
	return err
}

// patchManager owns what apply writes with plain patches (the halt marker,
// volume sizes), apart from the server-side applied objects of "pgsync",
// so a later apply neither owns nor removes them.
const patchManager = "pgsync-apply"
