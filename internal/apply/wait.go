package apply

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
)

// waitError: a wait ran out of time; last is the condition's last reason.
type waitError struct{ what, last string }

func (w *waitError) Error() string { return "waiting until " + w.what + ": " + w.last }

// wait polls cond until it holds, fails, or ctx ends (a *waitError).
func (e *Executor) wait(ctx context.Context, what string, cond func(context.Context) (bool, string, error)) error {
	poll := e.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	last := "not checked yet"
	for {
		ok, why, err := cond(ctx)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return err
		}
		if ok {
			return nil
		}
		if why != "" {
			last = why
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &waitError{what: what, last: last}
			}
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// waitInstance waits until the pod of ordinal (another than oldUID) is
// Ready, runs the desired revision, and its manager serves in role: a
// standby streaming, or the primary.
func (e *Executor) waitInstance(ctx context.Context, t Target, ordinal int, role plan.Role, oldUID types.UID) error {
	spec := t.spec()
	name := kube.NamesOf(spec).Instance(ordinal)
	want := revision.Restart(spec)
	pods := e.Client.CoreV1().Pods(spec.Metadata.Namespace)
	return e.wait(ctx, name+" is ready as "+string(role), func(ctx context.Context) (bool, string, error) {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "pod " + name + " does not exist yet", nil
		}
		if err != nil {
			return false, err.Error(), nil
		}
		if oldUID != "" && p.UID == oldUID {
			return false, "pod " + name + " is still the old one (terminating)", nil
		}
		if got := p.Annotations[pc.AnnRevision]; got != want {
			return false, fmt.Sprintf("pod %s has revision %s, want %s", name, got, want), nil
		}
		if why := podProblem(p); why != "" {
			if p.Status.Phase == corev1.PodRunning {
				if st, err := e.Status.Status(ctx, p); err == nil {
					why = withManagerError(why, st)
				}
			}
			why = withCertificateSecrets(why, p, kube.UserCertificateSecrets(spec))
			return false, why, nil
		}
		st, err := e.Status.Status(ctx, p)
		if err != nil {
			return false, "status: " + err.Error(), nil
		}
		switch {
		case role == plan.RolePrimary && st.Role != pc.StatusPrimary:
			return false, fmt.Sprintf("%s is %s, want primary", name, st.Role), nil
		case role == plan.RoleStandby && (st.Role != pc.StatusStandby || !st.Streaming):
			return false, fmt.Sprintf("%s is %s (streaming %v), want a streaming standby", name, st.Role, st.Streaming), nil
		}
		e.sawReady(spec.Key())
		return true, "", nil
	})
}

// podProblem says why a pod is not Ready, with the container's own
// reason (ErrImagePull, CrashLoopBackOff…) when it has one.
func podProblem(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return ""
		}
	}
	why := fmt.Sprintf("pod %s is not Ready (phase %s)", p.Name, p.Status.Phase)
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" && w.Reason != "ContainerCreating" {
			why += fmt.Sprintf("; container %s: %s", cs.Name, w.Reason)
			if w.Message != "" {
				why += ": " + w.Message
			}
		}
		if cs.LastTerminationState.Terminated != nil && cs.RestartCount > 0 {
			why += fmt.Sprintf("; container %s restarted %d times (last exit %d)", cs.Name, cs.RestartCount, cs.LastTerminationState.Terminated.ExitCode)
		}
	}
	return why
}

// withManagerError adds to why a running pod is not Ready its manager's
// last error: a bootstrap waiting for a post-init SQL file (its
// ConfigMap or Secret missing) or one whose SQL failed says so there,
// and nowhere the wait's timeout message would show otherwise.
func withManagerError(why string, st pc.Status) string {
	if st.LastError == "" {
		return why
	}
	return why + "; its instance manager (" + st.Role + "): " + st.LastError
}

// observeOne observes the target's cluster alone.
func (e *Executor) observeOne(ctx context.Context, t Target) (*observe.Cluster, error) {
	f, err := observe.Observe(ctx, e.Client, observe.Options{Namespace: t.spec().Metadata.Namespace, Status: e.Status})
	if err != nil {
		return nil, err
	}
	for i := range f.Clusters {
		if f.Clusters[i].Key() == t.key() {
			return &f.Clusters[i], nil
		}
	}
	return nil, fmt.Errorf("cluster %s is not found", t.key())
}
