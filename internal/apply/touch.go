package apply

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// podToucher gets volumes into running pods sooner. A kubelet rewrites a
// ConfigMap or Secret volume only when it syncs the pod: on its periodic
// sync, 66–86 s later as measured, or at once when the pod changes. So a
// step waiting for an instance to see new volume content annotates its
// pod (AnnConfigRequested); a kubelet whose copy was not current yet, or
// that caches by TTL, gets the pod annotated again after 2 s, 4 s, … at
// most every 30 s, until the instance has it (docs/apply.md).
type podToucher struct {
	ns      string
	pods    corev1client.PodInterface
	now     func() time.Time
	touched map[string]touch
}

type touch struct {
	at    time.Time
	every time.Duration
}

func newPodToucher(client kubernetes.Interface, ns string, now func() time.Time) *podToucher {
	return &podToucher{ns: ns, pods: client.CoreV1().Pods(ns), now: now, touched: map[string]touch{}}
}

// touch annotates pod name with value, unless it was touched less than
// its interval ago. A refusal (no grant) is an error: without it the step
// would still complete, a minute late each time, and a missing grant is
// not hidden. Other failures come back as a note for the wait's message.
func (p *podToucher) touch(ctx context.Context, step, name, value string) (note string, err error) {
	const first, most = 2 * time.Second, 30 * time.Second
	now := p.now()
	last, again := p.touched[name]
	if again && now.Sub(last.at) < last.every {
		return "", nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, pc.AnnConfigRequested, value+" "+now.UTC().Format(time.RFC3339Nano))
	_, err = p.pods.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: pc.FieldManager})
	switch {
	case apierrors.IsForbidden(err):
		return "", fmt.Errorf("%s: annotate pod %s/%s: %w", step, p.ns, name, err)
	case err != nil:
		return " (annotating its pod: " + err.Error() + ")", nil
	}
	every := first
	if again {
		every = min(2*last.every, most)
	}
	p.touched[name] = touch{at: now, every: every}
	return "", nil
}
