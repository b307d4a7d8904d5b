package apply

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/plan"
)

// rotateCA carries out a rotate-ca step: the CA's next generation is
// created (kube.RotateCA) and the step completes once every instance
// whose pod mounts it reports seeing it (its kubelet brought the Secret
// in; podToucher hastens that). Instances whose pods cannot mount it are
// the rolling restart's (plan.recreateReason).
func (e *Executor) rotateCA(ctx context.Context, t Target, s plan.Step) error {
	spec := t.spec()
	n := kube.NamesOf(spec)
	prefix := n.CASecret() + "-"
	gen, err := strconv.Atoi(strings.TrimPrefix(s.To, prefix))
	if !strings.HasPrefix(s.To, prefix) || err != nil || n.CASecretOf(gen) != s.To {
		return fmt.Errorf("rotate-ca: %q is not a generation of %s", s.To, n.CASecret())
	}
	if err := kube.RotateCA(ctx, e.Client, spec, gen, e.now(), e.Random); err != nil {
		return err
	}
	toucher := newPodToucher(e.Client, spec.Metadata.Namespace, e.now)
	return e.wait(ctx, "every instance sees "+s.To, func(ctx context.Context) (bool, string, error) {
		live, err := e.observeOne(ctx, t)
		if err != nil {
			return false, err.Error(), nil
		}
		var behind []string
		for _, in := range live.Instances {
			if in.Status == nil || in.Status.CA == nil || in.Status.CA.Mounted < gen || in.Status.CA.Newest >= gen {
				continue
			}
			note, err := toucher.touch(ctx, "rotate-ca", in.Name, s.To)
			if err != nil {
				return false, "", err
			}
			behind = append(behind, fmt.Sprintf("%s sees generation %d, not yet %s%s", in.Name, in.Status.CA.Newest, s.To, note))
		}
		return len(behind) == 0, strings.Join(behind, "; "), nil
	})
}
